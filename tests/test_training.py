"""Training runs: schedule, determinism, exact resume, checkpoint safety, run folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import random_batch, tiny_config
from srunit.engine import Schedule, StepRunner, Trainer
from srunit.engine import checkpoint as ckpt_mod
from srunit.errors import ConfigError

RUN = ["train.log_every=1", "train.sample_every=2", "train.checkpoint_every=1", "train.keep_every=100"]


def test_schedule_constant_then_linear_decay() -> None:
    s = Schedule(steps_per_epoch=10, total_steps=40, decay_steps=20)
    factors = [s.lr_factor(i) for i in range(40)]
    assert factors[:20] == [1.0] * 20
    assert factors[20] == pytest.approx(1 - 1 / 21) and factors[39] == pytest.approx(1 / 21)
    assert all(a > b for a, b in zip(factors[20:], factors[21:]))
    cfg = tiny_config("cut", "train.epochs=3", "train.epochs_decay=2", "train.batch_size=2")
    sched = Schedule.from_config(cfg, dataset_len=9)
    assert (sched.steps_per_epoch, sched.total_steps, sched.decay_steps) == (4, 20, 8)
    cfg = tiny_config("cut", "train.steps=50", "train.decay_fraction=0.2")
    assert Schedule.from_config(cfg, dataset_len=9).decay_steps == 10


def test_training_is_deterministic_on_cpu() -> None:
    def run() -> dict[str, torch.Tensor]:
        runner = StepRunner(tiny_config("srunit", "method.robust.start=0"), torch.device("cpu"), 10, lambda s: 1.0)
        for _ in range(2):
            runner.train_step(random_batch())
        return runner.method.state_dict()

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    latest = run_dir / "checkpoints" / "latest"
    out = {}
    for f in sorted(latest.glob("*.safetensors")):
        out.update({f"{f.stem}.{k}": v for k, v in load_file(str(f)).items()})
    return out


@pytest.mark.parametrize("preset", ["srunit", "fastcut"])
def test_resume_continues_bit_for_bit(tiny_data: Path, tmp_path: Path, preset: str) -> None:
    extra = [*RUN, "train.steps=4", "train.batch_size=2", "data.num_workers=0"]
    straight = Trainer(tiny_config(preset, *extra, "train.name=straight", data_root=tiny_data, runs_dir=tmp_path),
                       show_progress=False).fit()
    first = Trainer(tiny_config(preset, *extra, "train.name=split", data_root=tiny_data, runs_dir=tmp_path),
                    show_progress=False)
    # Stop after 2 of the 4 steps, as an interrupted run would.
    first.schedule = Schedule(first.schedule.steps_per_epoch, 2, first.schedule.decay_steps)
    first.runner.total_steps = 4
    first.fit()
    resumed = Trainer.resume(tmp_path / "split", show_progress=False)
    assert resumed.step == 2
    resumed.fit()
    a, b = _weights(straight), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted one"


def test_run_folder_contents_and_no_overwrite(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config("cut", *RUN, "train.steps=3", "train.name=r", data_root=tiny_data, runs_dir=tmp_path)
    run_dir = Trainer(cfg, show_progress=False).fit()
    for name in ("config.yaml", "run.json", "metrics.jsonl", "samples/step_00000002.png", "tensorboard"):
        assert (run_dir / name).exists(), name
    latest = run_dir / "checkpoints" / "latest"
    assert latest.is_symlink() and latest.resolve().name == "step_00000003"
    assert {p.name for p in latest.iterdir()} == {"G.safetensors", "D.safetensors", "F.safetensors", "state.pt", "KEEP"}
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("step_*")) == ["step_00000003"]  # unkept pruned
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and '"images_per_s"' in lines[0]
    before = (run_dir / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(cfg, show_progress=False)
    assert (run_dir / "config.yaml").read_text() == before


def test_crash_while_saving_keeps_the_previous_checkpoint(tiny_data: Path, tmp_path: Path, monkeypatch) -> None:
    cfg = tiny_config("cut", *RUN, "train.steps=2", "train.name=c", data_root=tiny_data, runs_dir=tmp_path)
    trainer = Trainer(cfg, show_progress=False)
    run_dir = trainer.fit()
    good = _weights(run_dir)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        trainer.save(keep=False)
    monkeypatch.undo()
    assert (run_dir / "checkpoints" / "latest").resolve().name == "step_00000002"
    after = _weights(run_dir)
    assert all(torch.equal(good[k], after[k]) for k in good)
    resumed = Trainer.resume(run_dir, ["train.steps=3"], show_progress=False)
    assert resumed.step == 2
    resumed.fit()
    assert (run_dir / "checkpoints" / "latest").resolve().name == "step_00000003"


def test_resume_rejects_non_train_overrides(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config("cut", *RUN, "train.steps=1", "train.name=o", data_root=tiny_data, runs_dir=tmp_path)
    run_dir = Trainer(cfg, show_progress=False).fit()
    with pytest.raises(ConfigError, match="only train"):
        Trainer.resume(run_dir, ["model.ngf=8"])
    with pytest.raises(Exception, match="not a run folder"):
        Trainer.resume(tmp_path / "nothing-here")


def test_compiled_step_matches_eager_step(monkeypatch: pytest.MonkeyPatch) -> None:
    # aot_eager traces every network entry point with dynamo and AOTAutograd like the default
    # backend, without inductor's C++ code generation (minutes on 2 cores).
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compile_(fn, backend="aot_eager", **kw))

    def run(compile_: bool) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        cfg = tiny_config("srunit", "method.robust.start=0", f"train.compile={str(compile_).lower()}")
        runner = StepRunner(cfg, torch.device("cpu"), 10, lambda s: 1.0)
        logs = runner.train_step(random_batch())
        return logs, runner.method.state_dict()

    eager_logs, eager = run(False)
    compiled_logs, compiled = run(True)
    assert eager.keys() == compiled.keys()  # compiling leaves parameter names (checkpoints) unchanged
    for k in eager_logs:
        assert torch.allclose(eager_logs[k], compiled_logs[k], rtol=1e-3, atol=1e-5), k
    for k in eager:
        assert torch.allclose(eager[k], compiled[k], rtol=1e-3, atol=1e-5), k
