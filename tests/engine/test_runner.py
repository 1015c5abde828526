"""srunit.engine.runner: learning rates from the schedule, the resumable state, compiled steps, CUDA."""

from __future__ import annotations

import io

import pytest
import torch

from srunit.engine import Schedule, StepRunner

LR = 1e-3


def _cpu_runner(config, schedule: Schedule) -> StepRunner:
    return StepRunner(config, torch.device("cpu"), schedule)


def _lrs(runner: StepRunner) -> dict[str, list[float]]:
    return {name: [g["lr"] for g in opt.param_groups] for name, opt in runner.optimizers.items()}


def test_every_optimizer_follows_the_schedule_each_step(tiny_config, random_batch) -> None:
    # srunit-official trains D only for the first steps: G and F's rates must follow the schedule anyway.
    config = tiny_config("srunit-official", f"train.lr={LR}")
    runner = _cpu_runner(config, Schedule(steps_per_epoch=2, total_steps=6, decay_steps=4))
    expected = [LR, LR, LR * 4 / 5, LR * 3 / 5, LR * 2 / 5, LR * 1 / 5]  # 2 constant steps, then 4 decaying
    assert runner.total_steps == 6 and set(runner.optimizers) == {"G", "D", "F"}
    assert runner.learning_rate(3) == pytest.approx(expected[3]) and runner.learning_rate(step=5) == pytest.approx(
        expected[5]
    )
    batch = random_batch()
    for step in range(6):
        assert runner.step == step and runner.learning_rate() == pytest.approx(expected[step])
        runner.train_step(batch)
        for name, rates in _lrs(runner).items():
            assert rates == pytest.approx([expected[step]] * len(rates)), (step, name)
    assert runner.learning_rate() == 0.0  # step 6 lies past the end of the decay


def test_state_dict_round_trip_continues_exactly_and_loads_old_scheduler_entries(tiny_config, random_batch) -> None:
    config = tiny_config("cut", f"train.lr={LR}")
    schedule = Schedule(steps_per_epoch=2, total_steps=4, decay_steps=2)
    first = _cpu_runner(config, schedule)
    for seed in range(2):
        first.train_step(random_batch(seed=seed))
    state = first.state_dict()
    assert set(state) == {"step", "optimizers", "scaler", "rng"} and state["step"] == 2  # no LambdaLR any more
    weights = {k: v.clone() for k, v in first.method.state_dict().items()}
    # Checkpoints written while the runner used LambdaLR schedulers carry their state: it is not needed.
    dummy = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    old_scheduler = torch.optim.lr_scheduler.LambdaLR(dummy, lambda s: 1.0).state_dict()
    legacy = {**state, "schedulers": {name: old_scheduler for name in state["optimizers"]}}
    buffer = io.BytesIO()  # through a file, as a checkpoint goes (the live state shares tensors with `first`)
    torch.save(legacy, buffer)
    buffer.seek(0)
    legacy = torch.load(buffer, weights_only=True)

    second = _cpu_runner(config, schedule)
    second.method.load_state_dict(weights)
    second.load_state_dict(legacy)
    assert second.step == 2 and second.learning_rate() == pytest.approx(LR * 2 / 3)
    batch = random_batch(seed=2)
    # The torch RNG is global: both runners start their next step from the restored state.
    first.train_step(batch)  # load_state_dict restored the RNG of step 2
    torch.set_rng_state(state["rng"]["torch"])
    second.train_step(batch)
    assert _lrs(first) == _lrs(second)
    a, b = first.method.state_dict(), second.method.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "a restored runner diverged"


@pytest.mark.slow  # torch.compile of a whole step: 15-18 s on 2 cores
def test_compiled_step_matches_eager_step(tiny_config, random_batch, monkeypatch: pytest.MonkeyPatch) -> None:
    # aot_eager traces every network entry point with dynamo and AOTAutograd like the default
    # backend, without inductor's C++ code generation (minutes on 2 cores).
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compile_(fn, backend="aot_eager", **kw))

    def run(compile_: bool) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        cfg = tiny_config("srunit", "method.robust.start=0", f"train.compile={str(compile_).lower()}")
        runner = _cpu_runner(cfg, Schedule.constant(10))
        logs = runner.train_step(random_batch())
        return logs, runner.method.state_dict()

    eager_logs, eager = run(False)
    compiled_logs, compiled = run(True)
    assert eager.keys() == compiled.keys()  # compiling leaves parameter names (checkpoints) unchanged
    for k in eager_logs:
        assert torch.allclose(eager_logs[k], compiled_logs[k], rtol=1e-3, atol=1e-5), k
    for k in eager:
        assert torch.allclose(eager[k], compiled[k], rtol=1e-3, atol=1e-5), k


@pytest.mark.gpu
def test_one_step_on_cuda_trains_with_finite_losses(tiny_config, random_batch) -> None:
    device = torch.device("cuda")
    config = tiny_config("srunit", "train.device=cuda", "method.robust.start=0")
    runner = StepRunner(config, device, Schedule.constant(10))
    assert all(p.device.type == "cuda" for p in runner.method.parameters())
    before = {k: v.detach().clone() for k, v in runner.method.state_dict().items()}
    logs = runner.train_step(random_batch())  # CPU tensors: the runner moves them
    torch.cuda.synchronize(device)
    assert {"D", "G", "NCE", "robust"} <= set(logs)
    assert all(v.device.type == "cuda" and bool(torch.isfinite(v)) for v in logs.values())
    after = runner.method.state_dict()
    for net in ("G", "D", "F"):
        assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith(f"{net}.")), net
    assert all(v.shape == (2, 3, 32, 32) and v.device.type == "cuda" for v in runner.last_visuals.values())


@pytest.mark.parametrize("option", ["train.channels_last=true", "train.activation_checkpointing=true"])
def test_memory_options_train_the_same_weights(tiny_config, random_batch, normalised_away, option: str) -> None:
    """channels_last changes only the memory layout, activation checkpointing only when activations are
    computed: two SRUNIT steps give the same losses and weights as without (1e-5; conv biases that
    feed an InstanceNorm move by rounding noise and are left out)."""

    def run(*extra: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], StepRunner]:
        runner = _cpu_runner(tiny_config("srunit", "method.robust.start=0", *extra), Schedule.constant(10))
        for seed in range(2):
            logs = runner.train_step(random_batch(seed=seed))
        return logs, runner.method.state_dict(), runner

    plain_logs, plain, _ = run()
    logs, weights, runner = run(option)
    if option.startswith("train.channels_last"):
        conv = runner.method.G.layers[1].weight
        assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    else:
        assert runner.method.G.activation_checkpointing
    for k in plain_logs:
        assert torch.allclose(logs[k], plain_logs[k], rtol=1e-5, atol=1e-6), k
    skip = {f"G.{n}" for n in normalised_away(runner.method.G)} | {f"D.{n}" for n in normalised_away(runner.method.D)}
    for k in plain:
        if k not in skip:
            assert torch.allclose(weights[k], plain[k], rtol=0, atol=1e-5), k


def test_activation_checkpointing_recomputes_the_residual_blocks(
    tiny_config, random_batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    from srunit.nn import blocks

    calls = [0]
    forward = blocks.ResnetBlock.forward

    def counted(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return forward(self, x)

    monkeypatch.setattr(blocks.ResnetBlock, "forward", counted)
    counts = []
    for option in ("false", "true"):
        calls[0] = 0
        runner = _cpu_runner(tiny_config("cut", f"train.activation_checkpointing={option}"), Schedule.constant(10))
        runner.train_step(random_batch())
        counts.append(calls[0])
    # Every block call that builds a graph runs once more in the backward pass.
    plain, checkpointed = counts
    assert plain > 0 and checkpointed == 2 * plain


@pytest.mark.gpu
def test_a_cuda_step_never_waits_for_the_device(tiny_config, random_batch) -> None:
    """No host-device synchronisation inside a training step (bf16, channels-last, fused Adam):
    torch raises on any synchronising call while the debug mode is "error"."""
    device = torch.device("cuda")
    config = tiny_config(
        "srunit", "train.device=cuda", "method.robust.start=0", "train.precision=bf16", "train.channels_last=true"
    )
    runner = StepRunner(config, device, Schedule.constant(10))
    assert all(group.get("fused") for opt in runner.optimizers.values() for group in opt.param_groups)
    batch = {k: v.to(device) for k, v in random_batch().items()}
    runner.train_step(batch)  # first step: allocations and autotuning may synchronise
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2):
            runner.train_step(batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize(device)
