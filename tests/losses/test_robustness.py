"""srunit.losses.robustness: the feature noise and L_k (Eq. 3) against a direct computation."""

from __future__ import annotations

import pytest
import torch

from srunit.losses import FeatureNoise, RobustnessTerms, perturb, robustness_layer_loss, robustness_ratios
from srunit.losses.robustness import sample_feature_noise
from srunit.networks import PatchProjector, ResnetGenerator, sample_patch_ids


def test_feature_noise_distribution() -> None:
    torch.manual_seed(0)
    h = torch.zeros(4, 16, 8, 8)
    noise = sample_feature_noise(h, max_noise=0.1, min_noise=1e-7)
    assert torch.allclose(noise.direction.norm(dim=1), torch.ones(4, 8, 8), atol=1e-5)
    m = noise.magnitude
    assert m.shape == (4, 1, 8, 8) and m.min() >= 1e-7 and m.max() <= 0.1
    assert 0.04 < m.mean().item() < 0.06  # uniform on [1e-7, 0.1]
    # ||tau|| is the drawn magnitude at each position.
    assert torch.allclose(noise.tau.norm(dim=1, keepdim=True), m, rtol=1e-5)


def _eq3_directly(g: ResnetGenerator, f: PatchProjector, k: int, x: torch.Tensor, tau: torch.Tensor,
                  divide_by: torch.Tensor) -> torch.Tensor:
    """Eq. 3 at every position, (B, H, W), running the flat layer list by hand (no encode/decode API)."""
    pos = g.feature_layers[k]
    h = x
    for layer in g.layers[: pos + 1]:
        h = layer(h)
    y = h + tau
    for layer in g.layers[pos + 1 :]:
        y = layer(y)
    h2 = y
    for layer in g.layers[: pos + 1]:
        h2 = layer(h2)
    mlp = f.mlps[k]

    def proj(t: torch.Tensor) -> torch.Tensor:
        v = t.permute(0, 2, 3, 1)
        v = mlp[2](torch.relu(mlp[0](v)))
        return v / (v.norm(dim=-1, keepdim=True) + 1e-7)

    dist = (proj(h) - proj(h2)).norm(dim=-1)  # (B, H, W)
    return dist / divide_by[:, 0]


@pytest.mark.parametrize("k", [0, 2, 4])
@pytest.mark.parametrize("official", [False, True])
def test_robustness_loss_matches_eq3(k: int, official: bool) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    f = PatchProjector(g.feature_channels, dim=8)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    h = g.encode(x)[k]
    noise = sample_feature_noise(h, max_noise=0.1)
    hw = h.shape[2] * h.shape[3]
    got = robustness_layer_loss(g, f, k, h, RobustnessTerms(num_patches=hw, max_noise=0.1, official_noise=official),
                                noise=noise)
    tau_norm = noise.tau.norm(dim=1, keepdim=True)
    if official:  # the public code adds T * direction but divides by the drawn magnitude
        expected = _eq3_directly(g, f, k, x, noise.direction * 0.1, noise.magnitude).mean()
    else:
        expected = _eq3_directly(g, f, k, x, noise.tau, tau_norm).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-4)


def test_robustness_loss_on_sampled_positions_is_their_mean() -> None:
    torch.manual_seed(1)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    f = PatchProjector(g.feature_channels, dim=8)
    x = torch.rand(1, 3, 16, 16)
    h = g.encode(x)[3]  # 4x4 map: 16 positions
    noise = FeatureNoise(
        torch.nn.functional.normalize(torch.randn(h.shape), dim=1), torch.rand(1, 1, 4, 4) * 0.1 + 0.01
    )
    torch.manual_seed(5)
    part = robustness_layer_loss(g, f, 3, h, RobustnessTerms(num_patches=5), noise=noise)
    torch.manual_seed(5)
    ids = sample_patch_ids(h, 5)  # the same draw as inside the loss
    per_position = _eq3_directly(g, f, 3, x, noise.tau, noise.magnitude).reshape(1, 16)
    assert part.item() == pytest.approx(per_position[0, ids[0]].mean().item(), rel=1e-4)


@pytest.mark.parametrize("detach", [False, True])
def test_robustness_gradient_reaches_g_and_f_or_only_g(detach: bool) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    f = PatchProjector(g.feature_channels, dim=8)
    h = g.encode(torch.rand(1, 3, 16, 16))[2]
    robustness_layer_loss(g, f, 2, h, RobustnessTerms(num_patches=8, detach_projector=detach)).backward()
    assert g.layers[1].weight.grad is not None and g.layers[1].weight.grad.abs().sum() > 0
    assert g.layers[-2].weight.grad.abs().sum() > 0  # reaches the decoder through G^{K+1}_k
    f_grads = [p.grad for p in f.mlps[2].parameters()]
    if detach:
        assert all(gr is None for gr in f_grads)
    else:
        assert all(gr is not None and gr.abs().sum() > 0 for gr in f_grads)


def _grads(net: torch.nn.Module, leave_out: set[str]) -> dict[str, torch.Tensor]:
    return {
        n: p.grad.clone() if p.grad is not None else torch.zeros_like(p)
        for n, p in net.named_parameters()
        if n not in leave_out
    }


@pytest.mark.parametrize("layers", [(0, 1, 2, 3, 4), (3, 0, 4)])
def test_batched_passes_equal_the_separate_passes(layers: tuple[int, ...], normalised_away) -> None:
    """One growing decode and one shrinking re-encode give the per-layer losses and gradients of
    one decode and re-encode per layer, from the same random draws, in the order of ``layers``
    (gradients to 1e-4 relative; conv biases that feed an InstanceNorm have a true gradient of zero
    and are left out)."""
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    f = PatchProjector(g.feature_channels, dim=8)
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    terms = RobustnessTerms(num_patches=7)

    def run(batched: bool) -> tuple[list[float], list[torch.Tensor]]:
        g.zero_grad(set_to_none=True)
        f.zero_grad(set_to_none=True)
        feats = g.encode(x)
        torch.manual_seed(3)
        if batched:
            losses = [r.mean() for r in robustness_ratios(g, f, layers, [feats[k] for k in layers], terms)]
        else:
            losses = [robustness_layer_loss(g, f, k, feats[k], terms) for k in layers]
        sum(losses).backward()
        return [loss.item() for loss in losses], {
            **_grads(g, normalised_away(g)),
            **{f"F.{n}": v for n, v in _grads(f, set()).items()},
        }

    (batched, g_batched), (separate, g_separate) = run(True), run(False)
    assert len(batched) == len(layers) and len(g_batched) > 30
    assert batched == pytest.approx(separate, rel=1e-5)
    for name, grad in g_separate.items():
        scale = grad.abs().max()
        assert torch.allclose(g_batched[name], grad, rtol=0, atol=1e-4 * scale + 1e-8), name
    # Every weight of G takes part (the decoder through every copy); F only for the selected layers.
    assert all(
        grad.abs().sum() > 0
        for name, grad in g_separate.items()
        if name.endswith("weight") and not name.startswith("F.")
    )


def test_decode_many_and_encode_many_equal_the_single_passes() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    feats = g.encode(x)
    ks = (0, 2, 4)
    many = g.decode_many(ks, [feats[k][: i + 1] for i, k in enumerate(ks)])  # blocks of 1, 2 and 3 images
    single = torch.cat([g.decode_from(k, feats[k][: i + 1]) for i, k in enumerate(ks)])
    assert many.shape == (6, 3, 16, 16) and torch.allclose(many, single, atol=1e-6)
    blocks = g.encode_many(many, ks, [1, 2, 3])
    expected = [g.encode_layer(many[a:b], k) for (a, b), k in zip(((0, 1), (1, 3), (3, 6)), ks)]
    assert all(torch.allclose(u, v, atol=1e-6) for u, v in zip(blocks, expected))
    with pytest.raises(ValueError, match="increasing"):
        g.decode_many((2, 0), [feats[2], feats[0]])
    with pytest.raises(ValueError, match="summing to the batch"):
        g.encode_many(many, ks, [1, 2, 2])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("batched", [False, True])
def test_under_autocast_the_realised_perturbation_is_tau_at_every_layer(dtype: torch.dtype, batched: bool) -> None:
    """The first layer of G^{K+1}_k receives G^k_1(x) + tau_k in float32 and computes in float32, so
    what it sees differs from G^k_1(x) by tau_k up to float32 rounding, at every feature layer; the
    same sum in the autocast dtype (the old behaviour) loses most of a small tau."""
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    f = PatchProjector(g.feature_channels, dim=8)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    layers = tuple(range(g.num_features))
    seen: dict[int, tuple[torch.Tensor, torch.dtype]] = {}  # position -> (input, output dtype) of its first call

    def watch(positions: list[int]) -> list[torch.utils.hooks.RemovableHandle]:
        def pre(position: int):  # noqa: ANN202 - a hook
            def record(module: torch.nn.Module, args: tuple) -> None:
                seen.setdefault(position, (args[0].detach().clone(), None))

            return record

        def post(position: int):  # noqa: ANN202 - a hook
            def record(module: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
                if seen[position][1] is None:
                    seen[position] = (seen[position][0], out.dtype)

            return record

        return [
            h
            for p in positions
            for h in (g.layers[p].register_forward_pre_hook(pre(p)), g.layers[p].register_forward_hook(post(p)))
        ]

    first = [g.feature_layers[k] + 1 for k in layers]  # the first layer of G^{K+1}_k
    with torch.autocast("cpu", dtype=dtype):
        feats = g.encode(x)
        noises = [
            FeatureNoise(
                torch.nn.functional.normalize(torch.randn(h.shape), dim=1),
                torch.full((h.shape[0], 1, *h.shape[2:]), 1e-3),
            )
            for h in feats
        ]
        if batched:  # one decode: each layer's first call is the one its copy enters with
            hooks = watch(first)
            robustness_ratios(g, f, layers, feats, RobustnessTerms(num_patches=4), noises=noises)
            for hook in hooks:
                hook.remove()
        else:  # one decode per layer: watch the first layer of each pass while that pass runs
            for k in layers:
                hooks = watch([first[k]])
                robustness_layer_loss(g, f, k, feats[k], RobustnessTerms(num_patches=4), noise=noises[k])
                for hook in hooks:
                    hook.remove()
    assert feats[1].dtype == dtype  # the heavy layers did run in low precision
    fp32_eps = torch.finfo(torch.float32).eps
    for k in layers:
        received, out_dtype = seen[g.feature_layers[k] + 1]
        received = received[-feats[k].shape[0] :]  # batched: the copy that entered at this layer is appended last
        h, tau = feats[k].float(), noises[k].tau
        assert received.dtype == torch.float32 and out_dtype == torch.float32, k
        bound = 2 * fp32_eps * (h.abs() + tau.abs())
        assert ((received - h) - tau).abs().le(bound).all(), f"layer {k}: the realised perturbation is not tau"
        if k > 0:  # features in the autocast dtype: there the old sum rounds tau away
            rounded = (feats[k] + tau.to(dtype)).float() - h
            assert not ((rounded - tau).abs().le(bound).all()), k


def test_perturb_adds_in_float32() -> None:
    h = torch.ones(1, 2, 2, 2, dtype=torch.bfloat16)
    noise = FeatureNoise(torch.nn.functional.normalize(torch.ones(1, 2, 2, 2), dim=1), torch.full((1, 1, 2, 2), 1e-3))
    out = perturb(h, noise, RobustnessTerms())
    assert out.dtype == torch.float32 and torch.allclose(out - 1, noise.tau, atol=1e-7)
    official = perturb(h, noise, RobustnessTerms(max_noise=0.1, official_noise=True))
    assert torch.allclose(official - 1, noise.direction * 0.1, atol=1e-6)  # T * direction, as the public code adds


def test_mean_inverse_magnitude_is_the_integral() -> None:
    from scipy.integrate import quad

    for lo, hi in ((1e-7, 0.1), (1e-7, 1e-3), (0.01, 0.5)):
        integral, _ = quad(lambda m: 1.0 / m, lo, hi, points=[lo * 10, lo * 1e3, lo * 1e5], limit=200)
        assert RobustnessTerms(max_noise=hi, min_noise=lo).mean_inverse_magnitude == pytest.approx(
            integral / (hi - lo), rel=1e-6
        )
    assert RobustnessTerms(max_noise=0.2, min_noise=0.2).mean_inverse_magnitude == pytest.approx(5.0)


@pytest.mark.parametrize("official", [False, True])
def test_control_variate_estimator_is_its_formula(official: bool) -> None:
    """d0 E[1/|tau|] + (d - d0) / |tau| at every position (paper noise), d(T u) E[1/|tau|] (public noise)."""
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    f = PatchProjector(g.feature_channels, dim=8)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    k = 2
    h = g.encode(x)[k]
    noise = sample_feature_noise(h, max_noise=0.1)
    hw = h.shape[2] * h.shape[3]
    terms = RobustnessTerms(num_patches=hw, max_noise=0.1, official_noise=official, estimator="control_variate")
    got = robustness_ratios(g, f, [k], [h], terms, noises=[noise], translated_feats=[g.encode(g(x))[k]])[0].mean()
    c = torch.log(torch.tensor(0.1 / 1e-7, dtype=torch.float64)).item() / (0.1 - 1e-7)
    ones = torch.ones_like(noise.magnitude)
    step = noise.direction * 0.1 if official else noise.tau
    d = _eq3_directly(g, f, k, x, step, ones)  # the distance, not divided
    if official:
        want = (d * c).mean()
    else:
        d0 = _eq3_directly(g, f, k, x, torch.zeros_like(step), ones)  # tau = 0: G^k_1(G(x)) against G^k_1(x)
        want = (d0 * c + (d - d0) / noise.magnitude[:, 0]).mean()
    assert got.item() == pytest.approx(want.item(), rel=1e-4)
    with pytest.raises(ValueError, match="needs G"):
        if not official:
            robustness_ratios(g, f, [k], [h], terms, noises=[noise])
        else:
            raise ValueError("needs G (the public noise does not need it)")


def test_control_variate_estimator_has_far_lower_variance() -> None:
    """Over 20 noise draws the step estimate's spread falls severalfold (57 -> 14 on these 16 px width-4
    networks; measured on 64 px width-32 ones over 200 draws: sd 162 -> 7.6 at T = 0.1), and the plain
    mean lies within its own noise of it."""
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=2)
    f = PatchProjector(g.feature_channels, dim=8)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        feats, translated = g.encode(x), g.encode(g(x))
        estimates = {}
        for estimator in ("plain", "control_variate"):
            terms = RobustnessTerms(num_patches=64, max_noise=0.1, estimator=estimator)
            torch.manual_seed(1)
            estimates[estimator] = torch.stack(
                [
                    torch.stack(
                        [r.mean() for r in robustness_ratios(g, f, range(5), feats, terms, translated_feats=translated)]
                    ).mean()
                    for _ in range(20)
                ]
            )
    plain, cv = estimates["plain"], estimates["control_variate"]
    assert cv.std() * 3 < plain.std()
    assert abs(plain.mean() - cv.mean()) < 3 * plain.std() / 20**0.5
