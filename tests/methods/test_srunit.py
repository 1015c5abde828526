"""SRUNIT (CUT with its robust term): the robustness loss's schedule, warm-up variants, layer sampling, divisor."""

from __future__ import annotations

import pytest
import torch

from srunit.engine import Schedule, StepRunner
from srunit.errors import ConfigError
from srunit.losses import RobustnessTerms, robustness_layer_loss, robustness_ratios
from srunit.methods import CUT, RobustnessOptions, StepContext, build_method


def _method(config) -> CUT:
    method = build_method(config.method, config.model)
    assert isinstance(method, CUT) and "robust" in method.regularizers  # SRUNIT is CUT with its robust term
    return method


def _runner(config, total: int = 10) -> StepRunner:
    return StepRunner(config, torch.device("cpu"), Schedule.constant(total))


def test_robustness_options_are_checked(tiny_config) -> None:
    with pytest.raises(ConfigError, match="method.robust.max_noise: invalid value 1e-08"):
        RobustnessOptions(max_noise=1e-8)
    with pytest.raises(ConfigError, match="method.robust.layers: invalid value"):
        RobustnessOptions(layers=(1, 1))
    with pytest.raises(ConfigError, match="method.robust.start: invalid value 1.5"):
        RobustnessOptions(start=1.5)
    with pytest.raises(ConfigError, match=r"method.robust.layers: invalid value \(0, 5\); allowed: indices in 0..4"):
        _method(tiny_config("srunit", "method.robust.layers=0,5"))


def test_robust_loss_switches_on_after_start_fraction(tiny_config, random_batch) -> None:
    torch.manual_seed(0)
    method = _method(tiny_config("srunit"))
    total = 8  # start 0.25 -> on from step 2
    assert [method.regularizers["robust"].active(StepContext(s, total, 0)) for s in range(4)] == [
        False,
        False,
        True,
        True,
    ]
    runner = _runner(tiny_config("srunit"), total=total)
    batch = random_batch()
    seen = ["robust" in runner.train_step(batch) for _ in range(3)]
    assert seen == [False, False, True]


def test_warmup_cut_trains_g_but_official_warmup_freezes_g_and_f(tiny_config) -> None:
    ctx = StepContext(0, 100, 0)
    paper = _method(tiny_config("srunit"))
    official = _method(tiny_config("srunit-official"))
    assert [p.name for p in paper.phases(ctx)] == ["D", "G"]
    assert [p.name for p in official.phases(ctx)] == ["D"]
    assert [p.name for p in official.phases(StepContext(25, 100, 0))] == ["D", "G"]


def test_official_warmup_with_beta_zero_trains_plain_cut_throughout(tiny_config, random_batch) -> None:
    """With --reg 0 the public code trains CUT from the first step: no D-only warm-up, no Eq. 3."""
    method = _method(tiny_config("srunit-official", "method.robust.weight=0"))
    for step in (0, 24, 25, 99):
        ctx = StepContext(step, 100, 0)
        assert [p.name for p in method.phases(ctx)] == ["D", "G"] and not method.regularizers["robust"].active(ctx), (
            step
        )
    runner = _runner(tiny_config("srunit-official", "method.robust.weight=0"), total=100)
    before = {k: v.clone() for k, v in runner.method.G.state_dict().items()}
    logs = runner.train_step(random_batch())
    assert "G" in logs and "robust" not in logs
    assert any(not torch.equal(v, before[k]) for k, v in runner.method.G.state_dict().items())


def test_before_start_srunit_trains_exactly_as_cut(tiny_config, random_batch) -> None:
    cut = _runner(tiny_config("cut"), total=100)
    sr = _runner(tiny_config("srunit"), total=100)
    sr.method.load_state_dict(cut.method.state_dict())
    batch = random_batch()
    torch.manual_seed(3)
    a = cut.train_step(batch)
    torch.manual_seed(3)
    b = sr.train_step(batch)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k])
    for (n1, p1), (n2, p2) in zip(cut.method.named_parameters(), sr.method.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)


def test_one_layer_sampling_and_the_official_divisor(tiny_config) -> None:
    torch.manual_seed(0)
    method = _method(tiny_config("srunit", "method.robust.sample_one_layer=true"))
    picks = {method.regularizers["robust"].layers(StepContext(s, 100, 0)) for s in range(40)}
    assert picks == {(0,), (1,), (2,), (3,), (4,)}
    assert method.regularizers["robust"].layers(StepContext(7, 100, 0)) == method.regularizers["robust"].layers(
        StepContext(7, 100, 0)
    )
    torch.manual_seed(0)
    feats = method.G.encode(torch.rand(1, 3, 16, 16))
    ctx = StepContext(3, 100, 0)
    torch.manual_seed(1)
    unbiased = method.regularizers["robust"].value(method, feats, ctx)
    official = _method(
        tiny_config("srunit", "method.robust.sample_one_layer=true", "method.robust.divide_one_layer_by_k=true")
    )
    official.load_state_dict(method.state_dict())
    torch.manual_seed(1)
    divided = official.regularizers["robust"].value(official, feats, ctx)
    assert divided.item() == pytest.approx(unbiased.item() / 5, rel=1e-6)


def test_all_layers_loss_is_the_mean_of_layer_losses(tiny_config) -> None:
    torch.manual_seed(0)
    method = _method(tiny_config("srunit"))
    torch.manual_seed(0)
    feats = method.G.encode(torch.rand(1, 3, 16, 16))
    ctx = StepContext(3, 100, 0)
    torch.manual_seed(1)
    total = method.regularizers["robust"].value(method, feats, ctx)
    torch.manual_seed(1)
    layer_losses = [
        robustness_layer_loss(method.G, method.F, k, feats[k], RobustnessTerms(num_patches=16)) for k in range(5)
    ]
    assert total.item() == pytest.approx(sum(x.item() for x in layer_losses) / 5, rel=1e-6)


@pytest.mark.parametrize("preset", ["srunit", "srunit-official"])
def test_generator_loss_adds_beta_times_eq3(tiny_config, random_batch, reference_generator_loss, preset: str) -> None:
    """SRUNIT's whole G loss = CUT's + beta * mean over the layers of Eq. 3, recomputed by hand with
    the same tau and positions (all layers, the paper's noise): dropping beta fails the comparison."""
    config = tiny_config(
        preset,
        "method.robust.start=0",
        "method.robust.weight=0.01",
        "method.robust.noise=paper",
        "method.robust.sample_one_layer=false",
        "method.robust.distance_eps=0",
        "train.batch_size=2",
    )
    torch.manual_seed(0)
    method = _method(config)
    ctx = StepContext(3, 10, 0)
    torch.manual_seed(1)
    state = method.forward_step(random_batch(batch_size=2), ctx)
    loss, logs = method.generator_loss(state, ctx)
    expected = reference_generator_loss(method, state, robust=True)
    without_robust = reference_generator_loss(method, state)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert "robust" in logs and logs["robust"].item() * 0.01 == pytest.approx(
        (expected - without_robust).item(), rel=1e-5
    )
    assert abs(expected.item() - without_robust.item()) > 1e-3  # beta * Eq. 3 is a visible part of the sum
    unweighted = without_robust + logs["robust"]  # beta dropped
    assert loss.item() != pytest.approx(unweighted.item(), rel=1e-5)


def test_the_median_of_the_ratios_is_logged_beside_eq3(tiny_config, random_batch, fixed_draws) -> None:
    """`robust` is the mean of the per-position ratios ||F(h) - F(h')|| / |tau| (per layer, then over
    layers), `robust_median` their median over every position of every layer."""
    method = _method(tiny_config("srunit", "method.robust.start=0"))
    ctx = StepContext(3, 10, 0)
    state = method.forward_step(random_batch(batch_size=2), ctx)
    _, logs = method.generator_loss(state, ctx)
    layers = method.options.terms["robust"].layers
    ratios = robustness_ratios(
        method.G, method.F, layers, [state.feats_a()[k] for k in layers], method.regularizers["robust"].terms
    )
    assert all(r.shape == (2, 16) for r in ratios)  # (B, num_patches)
    assert logs["robust"].item() == pytest.approx(sum(r.mean().item() for r in ratios) / len(layers), rel=1e-5)
    assert logs["robust_median"].item() == pytest.approx(torch.cat([r.flatten() for r in ratios]).median().item())
    assert logs["robust_median"].item() < logs["robust"].item()  # a few tiny |tau| pull the mean up


@pytest.mark.parametrize("preset", ["srunit", "srunit-official"])
def test_control_variate_estimator_trains(tiny_config, random_batch, preset: str) -> None:
    """method.robust.estimator control_variate: a step with Eq. 3 on gives finite losses and gradients
    to G and F."""
    config = tiny_config(
        preset, "method.robust.estimator=control_variate", "method.robust.start=0", "method.robust.warmup=cut"
    )
    runner = StepRunner(config, torch.device("cpu"), Schedule.constant(4))
    logs = runner.train_step(random_batch())
    assert torch.isfinite(logs["robust"]) and logs["robust"] > 0
    for name, p in runner.method.named_parameters():
        if name.startswith(("G.", "F.")):
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("form", ["eq4", "semantic-consistency"])
def test_the_control_variate_of_a_form_that_never_uses_it_is_refused(form: str) -> None:
    """eq4 and E5 never use the control variate: such a run trained as with plain, without a word."""
    with pytest.raises(ConfigError, match=f"method.robust.estimator: invalid value 'control_variate'; allowed: plain "
                                          f"with method.robust.form {form}"):
        RobustnessOptions(estimator="control_variate", form=form)
    RobustnessOptions(estimator="control_variate", form="no-projector")  # E3's ratios take it


def test_dividing_by_k_without_a_sampled_layer_is_void_and_refused_when_given(tiny_config) -> None:
    """srunit-official divides its one sampled layer by K; with every layer summed the option changes nothing, so
    a new run refuses it given on the command line (the preset's own value stays, as sampling off is an ablation)."""
    from srunit.engine.trainer import check_options_take_effect

    assert RobustnessOptions(divide_one_layer_by_k=True).void_options().keys() == {"divide_one_layer_by_k"}
    assert RobustnessOptions(divide_one_layer_by_k=True, sample_one_layer=True).void_options() == {}
    given = ["method.robust.divide_one_layer_by_k=true"]
    with pytest.raises(ConfigError, match="method.robust.divide_one_layer_by_k true has no effect: it divides the one "
                                          "sampled L_k by K, and method.robust.sample_one_layer is false"):
        check_options_take_effect(tiny_config("srunit", *given), given)
    off = ["method.robust.sample_one_layer=false"]
    check_options_take_effect(tiny_config("srunit-official", *off), off)
    both = ["method.robust.sample_one_layer=true", *given]
    check_options_take_effect(tiny_config("srunit", *both), both)
