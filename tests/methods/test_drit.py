"""srunit.methods.drit: DRIT's options, its step schedule, and the total loss of each of its phases
against a recomputation from the definitions (explicit sigmoid cross-entropies and KL sums, one
network pass per image set, every translation rebuilt from its codes)."""

from __future__ import annotations

import math

import pytest
import torch

import srunit.methods.drit as drit_module
from srunit.engine import Schedule, StepRunner
from srunit.errors import ConfigError
from srunit.methods import DRITOptions, StepContext, build_method

WEIGHTS = ("method.lambda_domain=0.7", "method.lambda_content=1.3", "method.lambda_cc=9", "method.lambda_recon=11",
           "method.lambda_latent=8", "method.lambda_kl=0.02", "method.lambda_ms=0.5")


def _eps(mu: torch.Tensor) -> torch.Tensor:
    """The fixed 'random' draws of the reparameterisation: a function of the shape only."""
    g = torch.Generator().manual_seed(mu.shape[0] * 100 + mu.shape[1])
    return torch.randn(mu.shape, generator=g)


@pytest.fixture
def fixed_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drit_module, "reparameterize", lambda mu, logvar: mu + (0.5 * logvar).exp() * _eps(mu))


def _method(tiny_config, *overrides: str):  # noqa: ANN001, ANN202
    torch.manual_seed(0)
    config = tiny_config("drit", *WEIGHTS, *overrides)
    method = build_method(config.method, config.model)
    method.E_c.shared[-1].eval()  # no noise on the content codes: the recomputation sees the same codes
    # Weights of unit gain instead of N(0, 0.02): every output then depends clearly on every input and
    # code, so that a term computed from the wrong image or code changes the totals.
    with torch.no_grad():
        for m in method.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="linear")
    return method


# ----------------------------------------------------------------------------- the reference


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """mean of -(t log s + (1 - t) log(1 - s)), s = sigmoid(logits), in float64."""
    s = torch.sigmoid(logits.double())
    return (-(target * torch.log(s) + (1 - target) * torch.log(1 - s))).mean()


def _bce_maps(maps, target: float) -> torch.Tensor:  # noqa: ANN001 - a tensor or a list of tensors
    maps = [maps] if torch.is_tensor(maps) else maps
    return sum(_bce(m, target) for m in maps)


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    per_image = []
    for i in range(mu.shape[0]):
        total = 0.0
        for j in range(mu.shape[1]):
            m, lv = mu[i, j].double(), logvar[i, j].double()
            total = total + 0.5 * (torch.exp(lv) + m * m - 1 - lv)
        per_image.append(total)
    return torch.stack(per_image).mean()


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.double() - b.double()).abs().sum() / a.numel()


def _sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.sqrt(torch.exp(logvar)) * _eps(mu)


def _reference(method, real_a: torch.Tensor, real_b: torch.Tensor, z: torch.Tensor,  # noqa: ANN001
               z2: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The four phase totals of DRIT, every network run per image set and every translation built
    from its codes by hand."""
    o, E_c, E_a, G = method.options, method.E_c, method.E_a, method.G
    c_a, c_b = E_c.encode_a(real_a), E_c.encode_b(real_b)
    mu_a, lv_a = E_a.encode_a(real_a)
    mu_b, lv_b = E_a.encode_b(real_b)
    attr_a, attr_b = _sample(mu_a, lv_a), _sample(mu_b, lv_b)
    fake_a, fake_b = G.decode_a(c_b, attr_a), G.decode_b(c_a, attr_b)  # content of the other domain
    self_a, self_b = G.decode_a(c_a, attr_a), G.decode_b(c_b, attr_b)
    cycle_a = G.decode_a(E_c.encode_b(fake_b), _sample(*E_a.encode_a(fake_a)))
    cycle_b = G.decode_b(E_c.encode_a(fake_a), _sample(*E_a.encode_b(fake_b)))
    codes = [z] if z2 is None else [z, z2]
    rand_a = [G.decode_a(c_b, code) for code in codes]
    rand_b = [G.decode_b(c_a, code) for code in codes]

    d = 0.0
    for real, fake, rands, d1, d2 in ((real_a, fake_a, rand_a, method.D_A, method.D_A2),
                                      (real_b, fake_b, rand_b, method.D_B, method.D_B2)):
        d = d + _bce_maps(d1(real), 1) + _bce_maps(d1(fake), 0)
        for r in rands:  # with mode seeking the real images count once per random code
            d = d + _bce_maps(d2(real), 1) + _bce_maps(d2(r), 0)
    d_content = _bce_maps(method.D_content(c_a), 0) + _bce_maps(method.D_content(c_b), 1)
    eg = (o.lambda_domain * (_bce_maps(method.D_A(fake_a), 1) + _bce_maps(method.D_B(fake_b), 1))
          + o.lambda_content * (_bce_maps(method.D_content(c_a), 0.5) + _bce_maps(method.D_content(c_b), 0.5))
          + o.lambda_cc * (_l1(cycle_a, real_a) + _l1(cycle_b, real_b))
          + o.lambda_recon * (_l1(self_a, real_a) + _l1(self_b, real_b))
          + o.lambda_kl * (_kl(mu_a, lv_a) + _kl(mu_b, lv_b) + (c_a.double() ** 2).mean() + (c_b.double() ** 2).mean()))
    g = o.lambda_domain * sum(
        _bce_maps(method.D_A2(r), 1) + _bce_maps(method.D_B2(s), 1) for r, s in zip(rand_a, rand_b)
    )
    g = g + o.lambda_latent * (_l1(E_a.encode_a(rand_a[0])[0], z) + _l1(E_a.encode_b(rand_b[0])[0], z))
    if z2 is not None:
        dz = _l1(z2, z)
        g = g + o.lambda_ms * (
            1 / (_l1(rand_a[1], rand_a[0]) / dz + 1e-5) + 1 / (_l1(rand_b[1], rand_b[0]) / dz + 1e-5)
        )
    return {"D": d, "D_content": d_content, "EG": eg, "G": g}


def _phase_totals(method, state, ctx: StepContext) -> dict[str, torch.Tensor]:  # noqa: ANN001
    return {phase.name: phase.loss(state, ctx)[0] for phase in method.phases(ctx)}


@pytest.mark.parametrize("mode_seeking", [True, False])
def test_every_phase_total_matches_its_recomputation(
    tiny_config, random_batch, fixed_codes, mode_seeking: bool
) -> None:
    method = _method(tiny_config, f"method.mode_seeking={mode_seeking}")
    batch = random_batch(batch_size=2)
    ctx = StepContext(0, 10, 0)
    torch.manual_seed(1)
    state = method.forward_step(batch, ctx)
    t = state.translations
    assert t is not None and (t.z2 is not None) == mode_seeking and t.z.shape == (2, 8)
    totals = _phase_totals(method, state, ctx)
    assert list(totals) == ["D", "D_content", "EG", "G"]
    expected = _reference(method, batch["A"], batch["B"], t.z, t.z2)
    for name, value in totals.items():
        assert value.item() == pytest.approx(expected[name].item(), rel=2e-5), name
    # The phase logs add up to the totals.
    _, logs = method.encoder_generator_loss(state, ctx)
    assert sum(v for k, v in logs.items() if k != "EG").item() == pytest.approx(logs["EG"].item(), rel=1e-6)
    assert ("mode_seeking_A" in method.random_code_loss(state, ctx)[1]) == mode_seeking


def test_the_recomputation_notices_wrong_wiring(tiny_config, random_batch, fixed_codes) -> None:
    """A translation built from the wrong content code, or the KL without its log-variance term, does
    not match: the recomputation can fail."""
    method = _method(tiny_config)
    batch = random_batch(batch_size=2)
    ctx = StepContext(0, 10, 0)
    torch.manual_seed(1)
    state = method.forward_step(batch, ctx)
    t = state.translations
    expected = _reference(method, batch["A"], batch["B"], t.z, t.z2)
    # fake_b from B's own content instead of A's: the discriminators' total changes.
    t_wrong = drit_module.Translations(**{**vars(t), "fake_b": t.self_b})
    wrong = _phase_totals(
        method, drit_module.DRITState(state.real_a, state.real_b, state.content_a, state.content_b, t_wrong), ctx
    )
    assert wrong["D"].item() != pytest.approx(expected["D"].item(), rel=2e-5)
    assert drit_module.kl_to_standard_normal(t.mu_a, t.logvar_a).item() == pytest.approx(
        _kl(t.mu_a, t.logvar_a).item(), rel=1e-5
    )
    assert _kl(t.mu_a, t.logvar_a).item() != pytest.approx(_kl(t.mu_a, torch.zeros_like(t.logvar_a)).item(), rel=1e-3)


def test_options_are_checked() -> None:
    assert DRITOptions().nz == 8 and DRITOptions().d_iter == 3 and DRITOptions().content_lr_scale == 0.4
    for kwargs, key in (
        ({"nz": 0}, "method.nz"),
        ({"d_iter": 0}, "method.d_iter"),
        ({"content_dis_layers": -1}, "method.content_dis_layers"),
        ({"lambda_cc": -1.0}, "method.lambda_cc"),
        ({"content_clip": 0.0}, "method.content_clip"),
        ({"content_lr_scale": 0.0}, "method.content_lr_scale"),
    ):
        with pytest.raises(ConfigError, match=f"{key}: invalid value"):
            DRITOptions(**kwargs)


def test_crops_too_small_for_the_discriminators_are_config_errors(tiny_config, random_batch) -> None:
    # Images kept at their own size (data.preprocess none) are checked on every batch; crops with the config.
    method = _method(tiny_config, "method.dis_layers=4", "method.content_dis_layers=3", "data.preprocess=none",
                     "train.batch_size=1")
    assert [n for n in (208, 209) if method.fits(n)] == [209]  # the public layout: 3 scales x 4 layers, 3 layers
    with pytest.raises(
        ConfigError,
        match=r"data.crop_size: DRIT's discriminators take images of at least 209x209 "
        r"pixels with method.dis_scales 3, method.dis_layers 4 and "
        r"method.content_dis_layers 3, got 32x32",
    ):
        method.forward_step(random_batch(batch_size=1), StepContext(1, 9, 0))


def test_activation_checkpointing_is_refused_by_name(tiny_config) -> None:
    with pytest.raises(
        ConfigError, match="train.activation_checkpointing: invalid value True; allowed: false for DRIT"
    ):
        StepRunner(
            tiny_config("drit", "train.activation_checkpointing=true"), torch.device("cpu"), Schedule.constant(2)
        )


def test_phases_follow_the_public_schedule(tiny_config) -> None:
    method = _method(tiny_config)
    kinds = ["full" if len(method.phases(StepContext(s, 9, 0))) > 1 else "content" for s in range(7)]
    assert kinds == ["full", "content", "content", "full", "content", "content", "full"]
    d, content, eg, g = method.phases(StepContext(0, 9, 0))
    assert set(d.optimizers) == {"D_A", "D_A2", "D_B", "D_B2"} and content.optimizers == ("D_content",)
    assert content.clip_grad_norm == 5.0 and d.clip_grad_norm is None and eg.clip_grad_norm is None
    assert eg.optimizers == ("E_c", "E_a", "G") and set(eg.frozen) == {"D_A", "D_A2", "D_B", "D_B2", "D_content"}
    assert g.optimizers == ("E_c", "G") and set(g.frozen) == {*eg.frozen, "E_a"}
    assert [p.name for p in method.phases(StepContext(1, 9, 0))] == ["D_content"]
    assert set(method.networks()) == {"E_c", "E_a", "G", "D_A", "D_A2", "D_B", "D_B2", "D_content"}


def test_runner_steps_the_scheduled_networks_with_their_optimizer_settings(tiny_config, random_batch) -> None:
    """Adam with weight decay 1e-4 everywhere and D_content at lr / 2.5 on the schedule; a D_content-only
    step changes D_content alone; the second generator update sees the weights the first one left."""
    config = tiny_config("drit", "train.lr=1e-3")
    runner = StepRunner(config, torch.device("cpu"), Schedule(steps_per_epoch=2, total_steps=3, decay_steps=2))
    method = runner.method
    for opt in runner.optimizers.values():
        assert opt.param_groups[0]["weight_decay"] == 1e-4
        assert opt.param_groups[0]["betas"] == (0.5, 0.999)
    seen = {}
    original = method.random_code_loss

    def recording(state, ctx):  # noqa: ANN001, ANN202
        seen["G"] = {k: v.clone() for k, v in method.G.state_dict().items()}
        return original(state, ctx)

    method.random_code_loss = recording
    before = {k: v.clone() for k, v in method.state_dict().items()}
    batch = random_batch(batch_size=2)
    runner.train_step(batch)  # step 0: full
    assert any(not torch.equal(seen["G"][k], before[f"G.{k}"]) for k in seen["G"])  # EG stepped G first
    after_full = {k: v.clone() for k, v in method.state_dict().items()}
    assert all(not torch.equal(after_full[k], before[k]) for k in before if k.endswith("weight"))
    runner.train_step(batch)  # step 1: D_content alone
    changed = {k.split(".")[0] for k, v in method.state_dict().items() if not torch.equal(v, after_full[k])}
    assert changed == {"D_content"}
    runner.train_step(batch)  # step 2: D_content alone, at a decayed rate
    lr = runner.learning_rate(2)
    assert lr < 1e-3
    assert runner.optimizers["G"].param_groups[0]["lr"] == pytest.approx(lr)
    assert runner.optimizers["D_content"].param_groups[0]["lr"] == pytest.approx(0.4 * lr)


@pytest.mark.parametrize("clip", [1e-3, 1e3])
def test_content_discriminator_gradient_is_clipped(tiny_config, random_batch, clip: float) -> None:
    config = tiny_config("drit", f"method.content_clip={clip}")
    runner = StepRunner(config, torch.device("cpu"), Schedule.constant(4))
    runner.step = 1  # a D_content-only step
    runner.train_step(random_batch(batch_size=2))
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in runner.method.D_content.parameters()]))
    if clip < 1:
        assert norm.item() == pytest.approx(clip, rel=1e-3)
    else:
        assert clip > norm.item() > 1e-3


def test_fp16_step_updates_the_loss_scaler_before_an_optimizer_steps_again(tiny_config, random_batch) -> None:
    """The G phase steps E_c and G a second time in a step; the loss scaler allows one step per update."""
    config = tiny_config("drit", "train.precision=fp16")
    runner = StepRunner(config, torch.device("cpu"), Schedule.constant(4))
    calls = []
    update = runner.scaler.update
    runner.scaler.update = lambda *a: (calls.append(runner.step), update(*a))[1]
    logs = runner.train_step(random_batch(batch_size=1))
    assert len(calls) == 2 and {"EG", "G"} <= set(logs)


def test_low_precision_losses_of_a_full_step_stay_close_to_fp32(tiny_config, random_batch) -> None:
    """Every logged loss of a full step (the contract test checks a D_content-only step) in bf16 and
    fp16 against fp32, same weights and draws: within 1%. Measured over 3 seeds (32 px, width 8): at
    most 0.39% off in bf16 (mode seeking 0.16%), 0.03% in fp16."""
    config = tiny_config("drit", "model.ngf=8", "model.ndf=8")
    torch.manual_seed(0)
    method = build_method(config.method, config.model)  # the method's own initialisation
    batch = random_batch(batch_size=2, size=32)
    ctx = StepContext(0, 10, 0)
    from srunit.runtime.device import autocast

    results = {}
    for precision in ("fp32", "bf16", "fp16"):
        torch.manual_seed(1)
        with autocast(torch.device("cpu"), precision):
            state = method.forward_step(batch, ctx)
            results[precision] = {
                k: v.item() for phase in method.phases(ctx) for k, v in phase.loss(state, ctx)[1].items()
            }
    assert len(results["fp32"]) > 20
    for precision in ("bf16", "fp16"):
        for key, value in results["fp32"].items():
            assert results[precision][key] == pytest.approx(value, rel=1e-2, abs=1e-4), (precision, key)
            assert math.isfinite(results[precision][key])


def test_the_mode_seeking_weight_without_mode_seeking_is_refused_when_given(tiny_config) -> None:
    """method.lambda_ms weighs a term that method.mode_seeking false leaves out: the run trained as without it."""
    from srunit.engine.trainer import check_options_take_effect

    given = ["method.mode_seeking=false", "method.lambda_ms=5"]
    with pytest.raises(ConfigError, match="method.lambda_ms 5 has no effect: it weighs the mode seeking term, and "
                                          "method.mode_seeking is false"):
        check_options_take_effect(tiny_config("drit", *given), given)
    check_options_take_effect(tiny_config("drit", given[1]), given[1:])
    check_options_take_effect(tiny_config("drit", given[0]), given[:1])
