"""Every registered method and preset: a full step trains every parameter; SRUNIT's schedule."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import PRESETS, random_batch, tiny_config
from srunit.engine import StepRunner
from srunit.methods import SRUNIT, StepContext, build_method
from srunit.registry import METHODS


def _runner(preset: str, *extra: str, total: int = 10) -> StepRunner:
    return StepRunner(tiny_config(preset, *extra), torch.device("cpu"), total, lambda s: 1.0)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_parameter_gets_a_gradient(preset: str) -> None:
    extra = ("method.robust.start=0",) if preset.startswith("srunit") else ()
    runner = _runner(preset, *extra)
    logs = runner.train_step(random_batch())
    for name, p in runner.method.named_parameters():
        assert p.grad is not None, f"{preset}: {name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{preset}: {name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{preset}: {name} has an all-zero gradient"
    assert all(torch.isfinite(v) for v in logs.values())
    if preset.startswith("srunit"):
        assert "robust" in logs


@pytest.mark.parametrize("preset", PRESETS)
def test_step_updates_weights_and_batch_sizes_above_one(preset: str) -> None:
    runner = _runner(preset, "train.batch_size=3")
    before = {k: v.clone() for k, v in runner.method.state_dict().items()}
    runner.train_step(random_batch(batch_size=3))
    changed = [k for k, v in runner.method.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("D.") for k in changed)
    if preset != "srunit-official":  # the public code trains D only during its warm-up
        assert any(k.startswith("G.") for k in changed) and any(k.startswith("F.") for k in changed)


def test_registry_lists_methods_and_rejects_unknown() -> None:
    assert {"cut", "srunit"} <= set(METHODS.names())
    with pytest.raises(Exception, match="unknown method 'cyclegan'; known: cut, srunit"):
        METHODS.get("cyclegan")


def test_robust_loss_switches_on_after_start_fraction() -> None:
    method = build_method(tiny_config("srunit"))
    assert isinstance(method, SRUNIT)
    total = 8  # start 0.25 -> on from step 2
    assert [method.robust_active(StepContext(s, total, 0)) for s in range(4)] == [False, False, True, True]
    runner = _runner("srunit", total=total)
    batch = random_batch()
    seen = ["robust" in runner.train_step(batch) for _ in range(3)]
    assert seen == [False, False, True]


def test_warmup_cut_trains_g_but_official_warmup_freezes_g_and_f() -> None:
    ctx = StepContext(0, 100, 0)
    paper = build_method(tiny_config("srunit"))
    official = build_method(tiny_config("srunit-official"))
    assert [p.name for p in paper.phases(ctx)] == ["D", "G"]
    assert [p.name for p in official.phases(ctx)] == ["D"]
    assert [p.name for p in official.phases(StepContext(25, 100, 0))] == ["D", "G"]


def test_before_start_srunit_trains_exactly_as_cut() -> None:
    cut = _runner("cut", total=100)
    sr = _runner("srunit", total=100)
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


def test_one_layer_sampling_and_the_official_divisor() -> None:
    method = build_method(tiny_config("srunit", "method.robust.sample_one_layer=true"))
    picks = {method.robust_layers(StepContext(s, 100, 0)) for s in range(40)}
    assert picks == {(0,), (1,), (2,), (3,), (4,)}
    assert method.robust_layers(StepContext(7, 100, 0)) == method.robust_layers(StepContext(7, 100, 0))
    torch.manual_seed(0)
    feats = method.G.encode(torch.rand(1, 3, 16, 16))
    ctx = StepContext(3, 100, 0)
    torch.manual_seed(1)
    unbiased = method.robustness_loss(feats, ctx)
    official = build_method(dataclasses.replace(
        tiny_config("srunit", "method.robust.sample_one_layer=true", "method.robust.divide_one_layer_by_k=true")))
    official.load_state_dict(method.state_dict())
    torch.manual_seed(1)
    divided = official.robustness_loss(feats, ctx)
    assert divided.item() == pytest.approx(unbiased.item() / 5, rel=1e-6)


def test_all_layers_loss_is_the_mean_of_layer_losses() -> None:
    method = build_method(tiny_config("srunit"))
    torch.manual_seed(0)
    feats = method.G.encode(torch.rand(1, 3, 16, 16))
    ctx = StepContext(3, 100, 0)
    torch.manual_seed(1)
    total = method.robustness_loss(feats, ctx)
    torch.manual_seed(1)
    from srunit.losses import robustness_layer_loss

    layer_losses = [robustness_layer_loss(method.G, method.F, k, feats[k], num_patches=16) for k in range(5)]
    assert total.item() == pytest.approx(sum(x.item() for x in layer_losses) / 5, rel=1e-6)


def test_fastcut_flip_equivariance_compares_matching_patches() -> None:
    method = build_method(tiny_config("fastcut", "train.batch_size=2"))
    method.G.eval()
    batch = random_batch(batch_size=2)
    # Draw flips until both a flipped and an unflipped image occur in one batch (no failure either way).
    for seed in range(20):
        torch.manual_seed(seed)
        state = method.forward_step(batch, StepContext(0, 10, 0))
        if state.flip is not None and state.flip.any() and not state.flip.all():
            break
    assert state.flip is not None and state.idt_b is None
    flipped = state.flip
    # fake_b is G of the flipped input where flip is set; visuals undo it.
    with torch.no_grad():
        expect = method.G(torch.where(flipped[:, None, None, None], batch["A"].flip(3), batch["A"]))
    assert torch.allclose(state.fake_b, expect, atol=1e-6)
    loss, logs = method.generator_loss(state, StepContext(0, 10, 0))
    assert torch.isfinite(loss) and "NCE" in logs and "NCE_Y" not in logs
