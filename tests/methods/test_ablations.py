"""The ablations E1-E6 of SRUNIT's App. G as loss terms on CUT: each step's loss against a recomputation by hand,
their schedules, E1's statistics (prepare, checkpoint, resume) and E6's double backward under loss
scaling and compiled discriminators."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import srunit.methods.terms.smoothness as smoothness_module
from srunit.engine import Schedule, StepRunner, Trainer
from srunit.errors import ConfigError
from srunit.methods import CUT, StepContext, build_method


def _method(config):  # noqa: ANN001, ANN202 - a Config; the registered method it names
    torch.manual_seed(0)
    return build_method(config.method, config.model)


def _half_distance(image: torch.Tensor) -> float:
    """Mean |left - right| over the W // 2 column pairs of one (C, H, W) image, column by column."""
    w = image.shape[-1]
    cols = [(image[:, :, c] - image[:, :, w - w // 2 + c]).abs().sum().item() for c in range(w // 2)]
    return sum(cols) / (image[:, :, : w // 2].numel())


# ----------------------------------------------------------------------------- schedules


# One term's schedule in the fast tier; the other two terms' in the full suite.
@pytest.mark.parametrize(("preset", "key"), [("e1-distancegan", "distance"),
                                             pytest.param("e2-harmonicgan", "smooth", marks=pytest.mark.slow),
                                             pytest.param("e6-lipschitz", "lipschitz", marks=pytest.mark.slow)])
def test_added_terms_switch_on_after_a_quarter_of_training(tiny_config, random_batch, preset: str, key: str) -> None:
    config = tiny_config(preset)
    options = config.method.terms[key]
    assert options.start == 0.25
    assert [options.active(StepContext(s, 8, 0)) for s in range(4)] == [False, False, True, True]
    runner = StepRunner(config, torch.device("cpu"), Schedule.constant(8))
    g = torch.Generator().manual_seed(1)
    runner.prepare([{k: torch.rand(2, 3, 32, 32, generator=g) * s for k in "AB"} for s in (1.0, 0.3)])
    seen = [key in runner.train_step(random_batch()) for _ in range(3)]
    assert seen == [False, False, True]


# ----------------------------------------------------------------------------- E1


def test_e1_statistics_come_from_the_first_images_of_each_domain(tiny_config) -> None:
    method = _method(tiny_config("e1-distancegan", "method.distance.stats_images=5"))
    assert list(method.regularizers) == ["distance"] and not method.stats.ready
    g = torch.Generator().manual_seed(2)
    batches = [{k: torch.rand(2, 3, 8, 10, generator=g) * 2 - 1 for k in "AB"} for _ in range(4)]
    pulled = []

    def feed():  # noqa: ANN202 - records how many batches the method takes
        for batch in batches:
            pulled.append(batch)
            yield batch

    with torch.no_grad():
        method.prepare(feed())
    assert len(pulled) == 3  # 5 images of each domain: 2 + 2 + 1 of the third batch
    for i, domain in enumerate("AB"):
        images = [img for b in batches[:3] for img in b[domain]][:5]
        distances = [_half_distance(img) for img in images]
        assert method.stats.mean[i].item() == pytest.approx(statistics.fmean(distances), rel=1e-5)
        assert method.stats.std[i].item() == pytest.approx(statistics.pstdev(distances), rel=1e-4)
        assert method.stats.images[i].item() == 5
    assert method.stats.ready


def test_e1_generator_loss_adds_the_standardised_self_distance(tiny_config, random_batch,
                                                              reference_generator_loss) -> None:
    config = tiny_config("e1-distancegan", "method.distance.start=0", "method.distance.weight=0.5")
    method = _method(config)
    mean, std = torch.tensor([0.6, 0.2]), torch.tensor([0.05, 0.1])
    method.stats.set(torch.tensor([0.6 - 0.05, 0.6 + 0.05]), torch.tensor([0.1, 0.3]))  # these mean and std
    assert torch.allclose(method.stats.mean, mean) and torch.allclose(method.stats.std, std)
    ctx = StepContext(0, 10, 0)
    state = method.forward_step(random_batch(batch_size=2), ctx)
    loss, logs = method.generator_loss(state, ctx)
    per_image = [abs((_half_distance(x) - 0.6) / 0.05 - (_half_distance(y) - 0.2) / 0.1)
                 for x, y in zip(state.real_a, state.fake_b.detach())]
    expected_term = sum(per_image) / len(per_image)
    assert logs["distance"].item() == pytest.approx(expected_term, rel=1e-4)
    expected = reference_generator_loss(method, state) + 0.5 * expected_term
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_e1_needs_its_statistics_and_statistics_with_a_spread(tiny_config, random_batch) -> None:
    method = _method(tiny_config("e1-distancegan", "method.distance.start=0"))
    state = method.forward_step(random_batch(), StepContext(0, 10, 0))
    with pytest.raises(RuntimeError, match="call method.prepare"):
        method.generator_loss(state, StepContext(0, 10, 0))
    same = torch.rand(2, 3, 8, 8)
    with pytest.raises(ConfigError, match="domain A over 2 training image.*no spread"):
        method.prepare(iter([{"A": same[:1].expand(2, -1, -1, -1), "B": same}]))
    with pytest.raises(ConfigError, match="method.distance.stats_images: invalid value 1"):
        tiny_config("e1-distancegan", "method.distance.stats_images=1")


def test_e1_statistics_live_in_the_checkpoint_and_resume_does_not_recompute_them(
        tiny_config, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = ["train.steps=3", "train.checkpoint_every=1", "train.log_every=1", "train.sample_every=10",
           "train.name=e1", "method.distance.start=0"]
    trainer = Trainer(tiny_config("e1-distancegan", *run, data_root=tiny_data, runs_dir=tmp_path), show_progress=False)
    trainer.fit(stop_at=1)
    saved = load_file(str(tmp_path / "e1" / "checkpoints" / "latest" / "stats.safetensors"))
    # Every image of epoch 0 (fewer than 900): the same statistics a direct computation gives.
    images = trainer.dataset
    assert int(saved["images"][0]) == len(images) - len(images) % trainer.config.train.batch_size
    assert torch.equal(saved["mean"], trainer.method.stats.mean) and bool(torch.isfinite(saved["std"]).all())

    def refuse(self, batches) -> None:  # noqa: ANN001 - a resumed run must not recompute
        raise AssertionError("prepare called on resume")

    monkeypatch.setattr(CUT, "prepare", refuse)
    resumed = Trainer.resume(tmp_path / "e1", show_progress=False)
    assert resumed.method.stats.ready and torch.equal(resumed.method.stats.std, saved["std"])
    resumed.fit()
    assert resumed.step == 3


# ----------------------------------------------------------------------------- E2


def _soft_histogram_by_interpolation(patch: torch.Tensor, bins: int) -> torch.Tensor:
    """(C, S, S) -> (C, bins): each value split between the bin centres on either side, linearly."""
    spacing = 2 / (bins - 1)
    position = (patch.clamp(-1, 1).flatten(1) + 1) / spacing  # (C, S*S) in [0, bins - 1]
    low = position.floor().clamp(max=bins - 2).long()
    frac = position - low
    hist = torch.zeros(patch.shape[0], bins)
    hist.scatter_add_(1, low, 1 - frac)
    hist.scatter_add_(1, low + 1, frac)
    return hist / position.shape[1]


def test_e2_generator_loss_adds_the_smoothness_of_patch_pairs(tiny_config, random_batch, reference_generator_loss,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    corners = torch.tensor([[0, 0], [20, 24], [5, 9], [13, 2], [24, 24], [0, 17]])

    def fixed(images: torch.Tensor, num_patches: int, size: int) -> torch.Tensor:
        assert (num_patches, size) == (6, 8)
        return corners.expand(images.shape[0], -1, -1)

    monkeypatch.setattr(smoothness_module, "sample_patch_corners", fixed)
    config = tiny_config("e2-harmonicgan", "method.smooth.start=0", "method.smooth.num_patches=6",
                         "method.smooth.patch_size=8", "method.smooth.bins=5", "method.smooth.weight=2")
    method = _method(config)
    assert isinstance(method, CUT) and list(method.regularizers) == ["smooth"]
    ctx = StepContext(0, 10, 0)
    state = method.forward_step(random_batch(batch_size=2), ctx)
    loss, logs = method.generator_loss(state, ctx)
    terms = []
    for x, y in zip(state.real_a, state.fake_b.detach()):
        def hists(img: torch.Tensor) -> list[torch.Tensor]:
            return [_soft_histogram_by_interpolation(img[:, r:r + 8, c:c + 8], 5) for r, c in corners.tolist()]

        hx, hy = hists(x), hists(y)
        for a, b in ((0, 1), (2, 3), (4, 5)):
            terms.append(abs((hx[a] - hx[b]).abs().sum() - (hy[a] - hy[b]).abs().sum()).item())
    assert logs["smooth"].item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    expected = reference_generator_loss(method, state) + 2 * sum(terms) / len(terms)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_e2_compares_g_x_in_the_frame_of_x_and_checks_the_patch_size(tiny_config, random_batch) -> None:
    config = tiny_config("e2-harmonicgan", "method.smooth.start=0", "method.flip_equivariance=true",
                         "method.nce_idt=false")
    method = _method(config)
    ctx = StepContext(0, 10, 0)
    torch.manual_seed(3)
    state = method.forward_step(random_batch(batch_size=4), ctx)
    assert state.flip is not None and bool(state.flip.any())
    torch.manual_seed(4)
    logs = {}
    method.regularization(state, ctx, logs)
    unflipped = torch.where(state.flip[:, None, None, None], state.fake_b.flip(3), state.fake_b).detach()
    torch.manual_seed(4)  # the same patches: the corners are the first draw of the term
    corners = smoothness_module.sample_patch_corners(state.real_a, 256, 16)
    expected = smoothness_module.smoothness_loss(state.real_a, unflipped, corners, 16, 16)
    assert logs["smooth"].item() == pytest.approx(expected.item(), rel=1e-6)
    too_big = _method(tiny_config("e2-harmonicgan", "method.smooth.start=0", "method.smooth.patch_size=40"))
    state = too_big.forward_step(random_batch(), ctx)
    with pytest.raises(ConfigError, match="method.smooth.patch_size 40 does not fit into the 32x32"):
        too_big.generator_loss(state, ctx)
    with pytest.raises(ConfigError, match="method.smooth.num_patches: invalid value 5"):
        tiny_config("e2-harmonicgan", "method.smooth.num_patches=5")


# ----------------------------------------------------------------------------- E3-E5


@pytest.mark.parametrize("preset", ["e3-no-projector", "e4-eq4", "e5-semantic-consistency"])
def test_robust_forms_replace_eq3_in_the_generator_loss(tiny_config, random_batch, reference_generator_loss,
                                                        preset: str) -> None:
    """E3 (no F_k), E4 (Eq. 4) and E5 (L_sc): the whole G loss = CUT's + beta * the form, recomputed
    by hand with the same tau and positions; Eq. 3 in its place would not match."""
    config = tiny_config(preset, "method.robust.start=0", "method.robust.weight=0.01", "train.batch_size=2")
    method = _method(config)
    ctx = StepContext(3, 10, 0)
    torch.manual_seed(1)
    state = method.forward_step(random_batch(batch_size=2), ctx)
    loss, logs = method.generator_loss(state, ctx)
    expected = reference_generator_loss(method, state, robust=True)
    without = reference_generator_loss(method, state)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logs["robust"].item() * 0.01 == pytest.approx((expected - without).item(), rel=1e-4)
    eq3 = _method(tiny_config("srunit", "method.robust.start=0", "method.robust.weight=0.01"))
    eq3.load_state_dict(method.state_dict())
    assert reference_generator_loss(eq3, state, robust=True).item() != pytest.approx(expected.item(), rel=1e-5)


# ----------------------------------------------------------------------------- E6


def _penalty_image_by_image(d: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """(1/B) sum_i ||grad of the mean logit of D at real_i|| + ||... at fake_i||, one image at a time."""
    total = torch.zeros(())
    for images in (real, fake):
        for i in range(images.shape[0]):
            x = images[i:i + 1].detach().clone().requires_grad_(True)
            logits = d(x)
            (grad,) = torch.autograd.grad(logits.sum() / logits.numel(), x, create_graph=True)
            total = total + grad.square().sum().sqrt()
    return total / real.shape[0]


@pytest.mark.parametrize("real", ["source", "target"])
def test_e6_discriminator_loss_adds_the_lipschitz_penalty(tiny_config, random_batch, normalised_away,
                                                         real: str) -> None:
    config = tiny_config("e6-lipschitz", "method.lipschitz.start=0", "method.lipschitz.weight=3",
                         f"method.lipschitz.real={real}")
    method = _method(config)
    assert isinstance(method, CUT) and list(method.regularizers) == ["lipschitz"]
    ctx = StepContext(0, 10, 0)
    state = method.forward_step(random_batch(batch_size=2), ctx)
    loss, logs = method.discriminator_loss(state, ctx)
    real_images = state.real_a if real == "source" else state.real_b
    penalty = _penalty_image_by_image(method.D, real_images, state.fake_b)
    gan = 0.5 * ((method.D(state.real_b) - 1).square().mean() + method.D(state.fake_b.detach()).square().mean())
    assert logs["lipschitz"].item() == pytest.approx(penalty.item(), rel=1e-5)
    assert loss.item() == pytest.approx((gan + 3 * penalty).item(), rel=1e-5)
    assert 3 * penalty.item() > 1e-3 * gan.item()  # a visible part of the sum
    # The double backward: D's parameter gradients equal those of the image-by-image computation (but for
    # the biases an InstanceNorm subtracts again, whose true gradient is zero and computed one is rounding).
    params = [p for name, p in method.D.named_parameters() if name not in normalised_away(method.D)]
    grads = torch.autograd.grad(loss, params)
    expected = torch.autograd.grad(gan + 3 * penalty, params)
    for got, want in zip(grads, expected):
        assert (got - want).norm() <= 1e-4 * want.norm()


def test_e6_penalty_is_float32_under_autocast_and_loss_scaling(tiny_config, random_batch) -> None:
    """Inside an fp16 autocast region the penalty still runs in float32, so its gradient scaled by
    GradScaler and unscaled again equals the plain float32 gradient (the scale is a power of two)."""
    method = _method(tiny_config("e6-lipschitz", "method.lipschitz.start=0"))
    ctx = StepContext(0, 10, 0)
    state = method.forward_step(random_batch(batch_size=2), ctx)
    # Not the biases that an InstanceNorm or the mean subtracts again: the input gradient ignores them.
    params = [p for name, p in method.D.named_parameters() if name.endswith("weight")]
    plain = torch.autograd.grad(method.discriminator_regularization(state, ctx, {}), params)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    with torch.autocast("cpu", dtype=torch.float16):
        penalty = method.discriminator_regularization(state, ctx, {})
    assert penalty.dtype == torch.float32
    scaled = torch.autograd.grad(scaler.scale(penalty), params)
    for got, want in zip(scaled, plain):
        assert torch.allclose(got / 2.0**16, want, rtol=1e-6, atol=0)


def test_e6_trains_in_fp16_with_the_grad_scaler(tiny_config, random_batch) -> None:
    """fp16 with the dynamic loss scale: E6 skips exactly the steps CUT skips (on the CPU the first D
    step and the first G steps overflow at the initial scales and are skipped while the scale backs
    off) and its scale follows CUT's, so the penalty adds no overflow; its D steps are then taken."""
    runners = {preset: StepRunner(tiny_config(preset, *(["method.lipschitz.start=0"] if preset != "cut" else []),
                                              "train.precision=fp16"), torch.device("cpu"), Schedule.constant(10))
               for preset in ("cut", "e6-lipschitz")}
    for seed in range(2):
        changed = {}
        for preset, runner in runners.items():
            before = {n: {k: v.clone() for k, v in net.state_dict().items()}
                      for n, net in runner.method.networks().items()}
            logs = runner.train_step(random_batch(seed=seed))
            assert all(math.isfinite(v.item()) for v in logs.values())
            changed[preset] = {
                n
                for n, net in runner.method.networks().items()
                if any(not torch.equal(v, before[n][k]) for k, v in net.state_dict().items())
            }
        assert "lipschitz" in logs
        assert changed["e6-lipschitz"] == changed["cut"], seed
        assert runners["e6-lipschitz"].scaler.get_scale() == runners["cut"].scaler.get_scale()
    assert "D" in changed["e6-lipschitz"]  # the second D step is taken, the penalty's gradient included


def test_e6_penalty_runs_d_eagerly_whatever_wraps_its_forward(tiny_config, random_batch) -> None:
    """compile_networks replaces D.forward by a torch.compile wrapper, whose graphs have no double
    backward: the penalty calls the class's forward, so a replaced forward is never used there."""
    method = _method(tiny_config("e6-lipschitz", "method.lipschitz.start=0"))
    ctx = StepContext(0, 10, 0)
    state = method.forward_step(random_batch(batch_size=2), ctx)
    expected = method.discriminator_regularization(state, ctx, {})

    def refuse(x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the penalty used the replaced forward")

    method.D.forward = refuse
    assert torch.equal(method.discriminator_regularization(state, ctx, {}), expected)


def test_prepare_asks_nothing_of_the_data_for_methods_without_statistics(tiny_config) -> None:
    """The trainer hands every new run's method the loader of epoch 0; a method that takes nothing
    from it (all but E1) must not even start iterating it (loader workers would start for nothing)."""

    class Untouchable:
        def __iter__(self):  # noqa: ANN204 - an iterable that must not be iterated
            raise AssertionError("the batches were iterated")

    for preset in ("cut", "srunit", "e2-harmonicgan", "e6-lipschitz"):
        StepRunner(tiny_config(preset), torch.device("cpu"), Schedule.constant(4)).prepare(Untouchable())
    with pytest.raises(AssertionError, match="were iterated"):
        StepRunner(tiny_config("e1-distancegan"), torch.device("cpu"), Schedule.constant(4)).prepare(Untouchable())
