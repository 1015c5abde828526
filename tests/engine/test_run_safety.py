"""Runs that survive: non-finite losses, stop signals, locked run folders, recorded resumes, partial
and disk-full checkpoints, and what training prints (issue 10, items 2 to 6 and 10)."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from srunit.engine import Trainer
from srunit.engine import checkpoint as ckpt_mod
from srunit.engine.runner import StepRunner
from srunit.engine.signals import TrainingStopped
from srunit.errors import CheckpointError, ConfigError, TrainingDiverged

RUN = ["train.log_every=1", "train.sample_every=100", "train.checkpoint_every=1", "train.keep_every=100"]


@pytest.fixture
def run_config(tiny_config, tiny_data: Path, tmp_path: Path) -> Callable[..., object]:
    """``(name, *overrides)``: a tiny CUT config of 4 steps in tmp_path/NAME (a constant learning rate
    unless overridden), logged and checkpointed every step."""

    def make(name: str, *overrides: str):
        return tiny_config("cut", *RUN, "train.steps=4", "train.decay_fraction=0", f"train.name={name}", *overrides,
                           data_root=tiny_data, runs_dir=tmp_path)

    return make


@pytest.fixture(scope="module")
def straight_weights(tiny_config, tiny_data: Path, latest_weights, tmp_path_factory: pytest.TempPathFactory
                     ) -> dict[str, torch.Tensor]:
    """The weights after an uninterrupted run of the `run_config` settings (4 steps)."""
    runs = tmp_path_factory.mktemp("straight")
    cfg = tiny_config("cut", *RUN, "train.steps=4", "train.decay_fraction=0", "train.name=straight",
                      data_root=tiny_data, runs_dir=runs)
    return latest_weights(Trainer(cfg, show_progress=False).fit())


def _on_step(monkeypatch: pytest.MonkeyPatch, step: int, action: Callable[[StepRunner], None]) -> None:
    """Run ``action(runner)`` at the start of the step that takes the runner from ``step`` to ``step + 1``."""
    original = StepRunner.train_step

    def train_step(self: StepRunner, batch):
        if self.step == step:
            action(self)
        return original(self, batch)

    monkeypatch.setattr(StepRunner, "train_step", train_step)


def _checkpoints(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").iterdir())


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- 2: non-finite training


def test_a_non_finite_loss_stops_the_run_naming_the_step_and_no_checkpoint_holds_it(
        run_config, latest_weights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = run_config("nan", "train.steps=8", "train.log_every=4", "train.checkpoint_every=2")

    def poison(runner: StepRunner) -> None:
        with torch.no_grad():
            runner.method.G.layers[1].weight.fill_(float("nan"))

    _on_step(monkeypatch, 4, poison)  # the 5th step's losses are nan; 5 is neither a log nor a checkpoint step
    trainer = Trainer(cfg, show_progress=False)
    with pytest.raises(TrainingDiverged, match=r"(?s)non-finite loss at step 5\b.*\bnan\b.*step_00000004"):
        trainer.fit()
    assert trainer.step == 6  # noticed at the next boundary, step 6, without a host sync per step
    run = tmp_path / "nan"
    assert _checkpoints(run) == ["latest", "step_00000004"]  # step 6 was not written, step 4 not rotated away
    assert all(torch.isfinite(v).all() for v in latest_weights(run).values())
    assert all(json.loads(line)["step"] <= 4 for line in (run / "metrics.jsonl").read_text().splitlines())


def test_the_losses_are_checked_at_a_log_boundary_too(run_config, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = run_config("nanlog", "train.steps=8", "train.log_every=2", "train.checkpoint_every=100")
    def poison(runner: StepRunner) -> None:
        with torch.no_grad():
            for p in runner.method.D.parameters():
                p.fill_(float("inf"))

    _on_step(monkeypatch, 2, poison)
    trainer = Trainer(cfg, show_progress=False)
    with pytest.raises(TrainingDiverged, match=r"non-finite loss at step 3\b.*\bD\b"):
        trainer.fit()
    assert trainer.step == 4


def test_a_checkpoint_with_non_finite_weights_is_never_written(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    good = torch.nn.Linear(2, 2)
    save_checkpoint = ckpt_mod.save_checkpoint
    save_checkpoint(root, 1, {"N": good}, {"step": 1}, keep=False)
    bad = torch.nn.Linear(2, 2)
    with torch.no_grad():
        bad.bias[1] = float("inf")
    with pytest.raises(CheckpointError, match=r"N\.bias holds non-finite values.*step 2 was not saved.*step_00000001"):
        save_checkpoint(root, 2, {"N": bad}, {"step": 2}, keep=False)
    assert _checkpoints(tmp_path) == ["latest", "step_00000001"]


# ----------------------------------------------------------------------------- 3: stop signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT])
def test_a_stop_signal_checkpoints_at_the_next_step_boundary_and_resume_is_exact(
        run_config, latest_weights, straight_weights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        sig: signal.Signals) -> None:
    def unhandled(signum, frame):  # what the test sees if training does not handle the signal
        raise RuntimeError(f"signal {signum} was not handled by the trainer")

    previous = signal.signal(sig, unhandled)
    try:
        _on_step(monkeypatch, 2, lambda runner: os.kill(os.getpid(), sig))  # arrives during step 3
        trainer = Trainer(run_config("split", "train.checkpoint_every=100"), show_progress=False)
        with pytest.raises(TrainingStopped) as stopped:
            trainer.fit(handle_signals=True)
        assert signal.getsignal(sig) is unhandled  # the handlers are put back
    finally:
        signal.signal(sig, previous)
    assert stopped.value.signal == sig and stopped.value.step == 3 and stopped.value.exit_code == 128 + sig
    assert stopped.value.checkpoint == tmp_path / "split" / "checkpoints" / "step_00000003"
    assert f"stopped by {signal.Signals(sig).name} after step 3" in str(stopped.value)
    assert "srunit train --resume" in str(stopped.value)
    assert (tmp_path / "split" / "checkpoints" / "latest").resolve().name == "step_00000003"
    monkeypatch.undo()
    resumed = Trainer.resume(tmp_path / "split", show_progress=False)
    assert resumed.step == 3
    resumed.fit()
    assert _same_weights(straight_weights, latest_weights(tmp_path / "split"))


def test_a_second_interrupt_stops_at_once(run_config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def twice(runner: StepRunner) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    _on_step(monkeypatch, 1, twice)
    with pytest.raises(KeyboardInterrupt):
        Trainer(run_config("twice", "train.checkpoint_every=100"), show_progress=False).fit(handle_signals=True)
    assert not (tmp_path / "twice" / "checkpoints").exists()


def test_without_handle_signals_the_callers_handlers_stay(run_config, monkeypatch: pytest.MonkeyPatch) -> None:
    """A library caller (or a test runner) keeps its own handlers: fit installs none unless asked."""
    seen: list[int] = []

    def mine(signum, frame):  # noqa: ANN001
        seen.append(signum)

    previous = signal.signal(signal.SIGUSR1, mine)
    try:
        _on_step(monkeypatch, 1, lambda runner: (signal.getsignal(signal.SIGUSR1) is mine and
                                                 os.kill(os.getpid(), signal.SIGUSR1)))
        Trainer(run_config("own", "train.checkpoint_every=100"), show_progress=False).fit()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert seen == [signal.SIGUSR1]  # the caller's handler ran, and training went on to its end


# ----------------------------------------------------------------------------- 4: one trainer per run folder


def test_a_run_folder_is_locked_while_a_trainer_holds_it(run_config, tmp_path: Path) -> None:
    first = Trainer(run_config("busy"), show_progress=False)
    # another Trainer of this very process: named as such (a message to SIGTERM pid P would end the caller)
    message = (rf"{re.escape(str(tmp_path / 'busy'))} is held by another Trainer of this process \(pid {os.getpid()} "
               rf"on {socket.gethostname()} since \d{{4}}-")
    with pytest.raises(ConfigError, match=message):
        Trainer(run_config("busy"), show_progress=False)
    first.fit(stop_at=2)  # released when fit returns
    second = Trainer.resume(tmp_path / "busy", show_progress=False)
    with pytest.raises(ConfigError, match=message):
        Trainer.resume(tmp_path / "busy", show_progress=False)
    with pytest.raises(ConfigError, match="is held by another Trainer of this process"):
        first.fit()  # fit takes the folder again, and another trainer holds it
    second.fit()
    assert second.step == 4
    lock = json.loads((tmp_path / "busy" / "train.lock").read_text())
    assert lock["pid"] == os.getpid() and lock["host"] == socket.gethostname()


def test_a_file_system_without_locks_trains_unlocked_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from srunit.engine import run_state

    def refuse(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(run_state.fcntl, "flock", refuse)
    with caplog.at_level(logging.WARNING, logger="srunit.engine.run_state"):
        lock = run_state.RunLock(tmp_path / "nfs")
    assert not lock.held
    assert (
        f"{tmp_path / 'nfs'} is not locked (its file system refused flock: {os.strerror(errno.ENOLCK)})" in caplog.text
    )
    monkeypatch.setattr(run_state, "fcntl", None)  # Windows
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="srunit.engine.run_state"):
        assert not run_state.RunLock(tmp_path / "win").held
    assert "is not locked (this system has no flock)" in caplog.text


# ----------------------------------------------------------------------------- 5: resume


def _history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def test_an_extension_is_recorded_and_survives_a_plain_resume(
    run_config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = Trainer(run_config("ext", "train.decay_fraction=0.5"), show_progress=False).fit()
    with caplog.at_level(logging.WARNING, logger="srunit.train"):
        extended = Trainer.resume(run, ["train.steps=8", "train.log_every=2"], show_progress=False)
    assert "the learning rate of step 5 goes from 0 (old schedule) to 0.00016 (new schedule)" in caplog.text
    extended.fit(stop_at=6)  # interrupted
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 8
    plain = Trainer.resume(run, show_progress=False)
    assert plain.schedule.total_steps == 8
    plain.fit()
    assert plain.step == 8 and (run / "checkpoints" / "latest").resolve().name == "step_00000008"
    history = _history(run)
    assert [h["event"] for h in history] == ["start", "resume", "resume"]
    assert [h["step"] for h in history] == [0, 4, 6]
    assert history[1]["overrides"] == {"train.steps": "8", "train.log_every": "2"}
    assert history[1]["changed"] == {"train.steps": [4, 8], "train.log_every": [1, 2]}
    assert history[2]["overrides"] == {} and history[2]["changed"] == {}
    for h in history:
        assert h["pid"] == os.getpid() and h["time"] and h["world_size"] == 1


REFUSED_ON_RESUME = [
    ("train.steps=3", r"train.steps 3 ends the run at step 3, before its current step 4; a run cannot be shortened"),
    ("train.epochs=1", r"train.epochs has no effect: train.steps 4 sets the length of the run"),
    ("train.epochs_decay=9", r"train.epochs_decay has no effect: train.steps 4 sets the length of the run"),
    ("train.name=other", r"train.name cannot change on --resume \(the run is the folder given to --resume"),
    ("train.runs_dir=elsewhere", r"train.runs_dir cannot change on --resume"),
    ("train.seed=5", r"train.seed cannot change on --resume"),
    ("train.batch_size=2", r"train.batch_size cannot change on --resume"),
    ("train.beta1=0.9", r"train.beta1 cannot change on --resume \(Adam's betas are part of the saved optimizer state"),
    ("train.beta2=0.9", r"train.beta2 cannot change on --resume"),
]


def test_refused_and_ineffective_overrides_on_resume_are_errors(run_config, tmp_path: Path) -> None:
    run = Trainer(run_config("fixed"), show_progress=False).fit()
    before = (run / "config.yaml").read_text()
    for override, message in REFUSED_ON_RESUME:
        with pytest.raises(ConfigError, match=message):
            Trainer.resume(run, [override], show_progress=False)
    assert (run / "config.yaml").read_text() == before
    assert [h["event"] for h in _history(run)] == ["start"]
    Trainer.resume(run, ["train.steps=5"], show_progress=False).fit()  # the folder was not left locked
    # The same value as recorded is no change, so it is accepted.
    assert Trainer.resume(run, ["train.seed=0", "train.name=fixed"], show_progress=False).step == 5


def test_an_lr_override_on_resume_sets_every_optimizers_learning_rate(run_config, tmp_path: Path) -> None:
    run = Trainer(run_config("lr"), show_progress=False).fit(stop_at=2)
    resumed = Trainer.resume(run, ["train.lr=0.001"], show_progress=False)
    resumed.fit(stop_at=3)
    for opt in resumed.runner.optimizers.values():
        assert [g["lr"] for g in opt.param_groups] == [0.001] * len(opt.param_groups)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], m["lr"]) for m in lines] == [(1, 2e-4), (2, 2e-4), (3, 1e-3)]


# ----------------------------------------------------------------------------- 6: partial checkpoints, disk full


def _killed_before_its_first_checkpoint(cfg, run_dir: Path) -> None:
    """A run folder as a run killed inside its first checkpoint write (step 1: it checkpoints every step) leaves it."""
    (run_dir / "checkpoints" / ".tmp-step_00000001-4242").mkdir(parents=True)
    (run_dir / "checkpoints" / ".tmp-step_00000001-4242" / "G.safetensors").write_bytes(b"\0" * 10)
    (run_dir / "checkpoints" / ".tmp-latest-4242").symlink_to("step_00000001")
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    (run_dir / "metrics.jsonl").write_text('{"step": 1}\n')


def test_a_run_killed_before_its_first_checkpoint_restarts_from_step_0(
    run_config, latest_weights, straight_weights, tmp_path: Path
) -> None:
    cfg = run_config("early")
    _killed_before_its_first_checkpoint(cfg, tmp_path / "early")
    resumed = Trainer.resume(tmp_path / "early", show_progress=False)  # with its saved config
    assert resumed.step == 0 and resumed.config == cfg
    assert _checkpoints(tmp_path / "early") == []  # the partial checkpoint is gone
    resumed.fit()
    assert _same_weights(straight_weights, latest_weights(tmp_path / "early"))
    steps = [json.loads(line)["step"] for line in (tmp_path / "early" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # the killed attempt's lines are dropped


def test_a_new_run_may_reuse_a_folder_that_holds_no_checkpoint(run_config, tmp_path: Path) -> None:
    _killed_before_its_first_checkpoint(run_config("reuse"), tmp_path / "reuse")
    Trainer(run_config("reuse", "train.steps=2"), show_progress=False).fit()
    assert _checkpoints(tmp_path / "reuse") == ["latest", "step_00000002"]


def test_a_checkpoint_half_replaced_when_killed_is_restored(run_config, latest_weights, tmp_path: Path) -> None:
    run = Trainer(run_config("half"), show_progress=False).fit(stop_at=2)
    good = latest_weights(run)
    # Killed between moving the old step_2 aside and moving the new one into place.
    os.replace(run / "checkpoints" / "step_00000002", run / "checkpoints" / ".old-step_00000002-4242")
    resumed = Trainer.resume(run, show_progress=False)
    assert resumed.step == 2 and _checkpoints(run) == ["latest", "step_00000002"]
    assert _same_weights(good, latest_weights(run))


def test_disk_full_while_saving_names_the_file_and_keeps_the_previous_checkpoint(
    run_config, latest_weights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = Trainer(run_config("full"), show_progress=False)
    run = trainer.fit(stop_at=2)
    good = latest_weights(run)
    real_write = ckpt_mod.write_file

    def full_disk(path: Path, data: bytes) -> None:
        if path.name == "D.safetensors":
            Path(path).write_bytes(data[: len(data) // 2])  # what fit on the disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, data)

    monkeypatch.setattr(ckpt_mod, "write_file", full_disk, raising=False)
    with pytest.raises(
        CheckpointError,
        match=r"no space left on .+ while writing .+/\.tmp-step_00000003-\d+/"
        r"D\.safetensors; the previous checkpoint is intact \(step_00000002\)",
    ):
        Trainer.resume(run, show_progress=False).fit()
    assert _checkpoints(run) == ["latest", "step_00000002"]  # no partial folder left behind
    monkeypatch.undo()
    resumed = Trainer.resume(run, show_progress=False)  # once there is space again, the run goes on
    resumed.fit()
    assert resumed.step == 4 and good.keys() == latest_weights(run).keys()


# ----------------------------------------------------------------------------- 10: what training prints


def test_training_prints_a_summary_and_plain_periodic_lines(
    run_config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="srunit.train"):
        Trainer(run_config("talk", "train.log_every=2"), show_progress=False).fit()
    text = caplog.text
    for expected in (
        f"run folder {tmp_path / 'talk'} (new run)",
        "data: A 11 images, B 11 images",
        "steps 0 -> 4 of 4",
        "global batch 1 (1 process x batch 1)",
        "device cpu, precision fp32",
    ):
        assert expected in text, expected
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split()[1] for line in lines] == ["2/4", "4/4"]
    assert all(" D " in line and " NCE " in line and " lr " in line for line in lines)
