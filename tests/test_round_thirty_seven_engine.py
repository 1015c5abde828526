"""Round thirty-seven (engine): the training engine's fixes for probe (J), "train" (D6-D15)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from srunit.config import Config
from srunit.errors import MethodError

_LABEL = r"^method 'misbehaving' \(misbehaving.Misbehaving\)"


@pytest.fixture
def misbehaving(load_test_plugins: Callable[..., None]) -> None:
    load_test_plugins("misbehaving")


def _train(tiny_config: Callable[..., Config], tiny_data: Path, runs: Path, *overrides: str) -> Path:
    from srunit.engine import Trainer

    config = tiny_config(None, "method.name=misbehaving", "train.steps=4", "train.checkpoint_every=2",
                         "train.name=bad", *overrides, data_root=tiny_data, runs_dir=runs)
    return Trainer(config, show_progress=False).fit()


@pytest.mark.parametrize(("fault", "raised"), [
    ("generator-exit", "GeneratorExit"),
    ("base-exception", "MisbehavingBaseException"),
])
def test_a_plugin_raising_a_base_exception_of_its_own_names_itself_in_one_line(
        misbehaving: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fault: str, raised: str) -> None:
    """A plugin phase raising GeneratorExit, or a BaseException subclass of its own, at step 3: a traceback, status 1,
    where a RuntimeError there is one line naming the plugin and the last checkpoint (probe (J), D7). Now the same
    line; `srunit train` prints it alone, status 2."""
    from srunit.cli.main import main

    monkeypatch.setenv("MISBEHAVING_FAULT", fault)
    with pytest.raises(MethodError, match=_LABEL + r" failed in plugin module 'misbehaving': " + raised
                       + r": misbehaving at step 3\. Training stopped after step 3, and the latest checkpoint, "
                         r"step_00000002, is intact: fix the plugin and continue with `srunit train --resume .*bad`"):
        _train(tiny_config, tiny_data, tmp_path / "api")
    capsys.readouterr()
    preset = tmp_path / "bad.yaml"
    preset.write_text("method:\n  name: misbehaving\n")
    code = main(["train", "--preset", str(preset), "--model.ndf", "4", "--data.root", str(tiny_data),
                 "--data.load_size", "32", "--data.crop_size", "32", "--train.device", "cpu", "--train.steps", "4",
                 "--train.checkpoint_every", "2", "--train.runs_dir", str(tmp_path / "cli"), "--train.name", "bad",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("INFO")]
    assert lines == [f"srunit train: error: method 'misbehaving' (misbehaving.Misbehaving) failed in plugin module "
                     f"'misbehaving': {raised}: misbehaving at step 3. Training stopped after step 3, and the latest "
                     f"checkpoint, step_00000002, is intact: fix the plugin and continue with `srunit train --resume "
                     f"{tmp_path / 'cli' / 'bad'}` (`srunit --verbose train` shows the traceback)"]


def test_a_plugin_raising_keyboard_interrupt_still_interrupts(
        misbehaving: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """KeyboardInterrupt keeps its own handling (it is Ctrl-C, wherever it is raised): not made a MethodError by
    the fix of probe (J), D7."""
    monkeypatch.setenv("MISBEHAVING_FAULT", "interrupt")
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_config, tiny_data, tmp_path)


def test_a_method_whose_step_has_no_phase_is_refused(
        misbehaving: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A method whose `phases()` returned [] trained to the end, status 0, its checkpoints and samples of untrained
    networks (probe (J), D9). Now a MethodError naming the method and the step, before that step trains."""
    from srunit.engine.dryrun import dry_run

    monkeypatch.setenv("MISBEHAVING_FAULT", "no-phases")  # [] at the second step
    with pytest.raises(MethodError, match=_LABEL + r": phases\(\) returned an empty list at step 2, so the step would "
                       r"train nothing; phases\(\) returns the step's phases, a list of at least one "
                       r"srunit.methods.Phase .*Training stopped after step 1"):
        _train(tiny_config, tiny_data, tmp_path)
    # the dry run asks phases() of steps 0 and train.steps: here step 1 (train.steps=1) is the empty one
    config = tiny_config(None, "method.name=misbehaving", "train.steps=1", "train.name=dry", data_root=tiny_data,
                         runs_dir=tmp_path)
    with pytest.raises(MethodError, match=_LABEL + r": phases\(\) returned an empty list at step 2"):
        dry_run(config)


def test_a_phase_whose_loss_leaves_its_parameters_later_is_refused_at_the_next_log_step(
        misbehaving: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A G phase whose loss is a new leaf tensor from its third step on: status 0, G never updated after step 2,
    no word; the check ran at the phase's first step only (probe (J), D8). Now it runs at every log step too (tensor
    metadata, no host sync): refused at step 4 (log_every 2), naming the step."""
    monkeypatch.setenv("MISBEHAVING_FAULT", "leaf-later")
    with pytest.raises(MethodError, match=_LABEL + r": phase 'G' returned a loss whose backward pass reached none of "
                       r"the parameters its optimizers step \(a tensor that requires grad but was not computed from "
                       r"the networks\), so training would stop updating them at step 4; .*Training stopped after "
                       r"step 3, and the latest checkpoint, step_00000002, is intact"):
        _train(tiny_config, tiny_data, tmp_path, "train.log_every=2", "train.steps=6")


def test_translating_and_exporting_leave_torchs_random_state_as_it_was(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Translator.from_checkpoint` and `export_generator` changed torch's global random state (they built each
    network with a random initialisation before loading its weights), so a Trainer fitting in another thread stopped
    following its seed (probe (J), D6). Now they draw nothing from it: srunit's networks are built empty (every
    tensor comes from the file), without `fork_rng`'s save and restore, which would undo another thread's draws."""
    from srunit import export_generator
    from srunit.inference import Translator

    def no_fork(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a network of srunit built with a random initialisation")

    monkeypatch.setattr(torch.random, "fork_rng", no_fork)
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    for preset, run in tiny_runs.items():
        translator = Translator.from_checkpoint(run, device="cpu")
        translator.translate_folder(tiny_data / "testA", tmp_path / preset)
        export_generator(run, tmp_path / f"{preset}.pt2")
        assert torch.equal(torch.get_rng_state(), before), preset
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == sorted(
        p.with_suffix(".png").name for p in (tiny_data / "testA").iterdir())


def test_a_network_holding_a_tensor_its_file_does_not_is_built_for_real_and_the_random_state_put_back() -> None:
    """The empty build of probe (J), D6's fix is for networks whose state dict holds every tensor; one that keeps a
    tensor elsewhere (a plugin's non-persistent buffer) is built with its initialisation, the random state put back."""
    from srunit.runtime.network_files import empty_network

    class Kernel(torch.nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, width, 3)
            self.register_buffer("kernel", torch.ones(width), persistent=False)

    torch.manual_seed(5)
    before = torch.get_rng_state()
    net = empty_network(Kernel, {"width": 2})
    assert torch.equal(net.kernel, torch.ones(2)) and torch.equal(torch.get_rng_state(), before)
    assert empty_network(torch.nn.Conv2d, {"in_channels": 3, "out_channels": 2, "kernel_size": 3}).weight.shape == (
        2, 3, 3, 3)
    assert torch.equal(torch.get_rng_state(), before)


def test_a_relative_data_root_given_to_resume_is_recorded_absolute(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cd /tmp; Trainer.resume(run, data_root="jtrain/ss2").fit()` wrote `root: jtrain/ss2` to the run's
    config.yaml, relative to the folder Python called resume from; a later `train --resume` from the run's own folder
    then said the data were gone (probe (J), D10). Now the run records the absolute path, as it had it, and a resume
    from anywhere else finds the data."""
    import shutil

    import yaml

    from srunit.engine import Trainer

    run = tmp_path / "runs" / "cut"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    caller = tmp_path / "caller"
    shutil.copytree(tiny_data, caller / "moved" / "ss")
    monkeypatch.chdir(caller)
    Trainer.resume(run, ["train.steps=2"], show_progress=False, data_root="moved/ss").fit()
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["root"] == str(caller / "moved" / "ss")
    monkeypatch.chdir(tmp_path / "runs")
    Trainer.resume(Path("cut"), ["train.steps=3"], show_progress=False).fit()
    assert (run / "checkpoints" / "latest").resolve().name == "step_00000003"


def _files(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def test_a_dry_run_of_a_resume_writes_nothing(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`train --resume RUN --dry-run` replaced RUN/train.lock's record of the process that last trained the run with
    its own, and failed on a read-only run, opening the lock to write (probe (J), D13). Now it tests the lock without
    taking it: every file of the run (the lock's record, what an interrupted checkpoint write left) is as it was."""
    import shutil

    from srunit.cli.main import main

    run = tmp_path / "cut"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    (run / "checkpoints" / ".tmp-step_00000002-999").mkdir()  # left by a killed save: a resume removes it
    before = _files(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--dry-run", "--train.steps", "9", "--no-progress"]) == 0
    assert "steps: 9" in capsys.readouterr().out
    assert _files(run) == before
    assert (run / "checkpoints" / ".tmp-step_00000002-999").is_dir()


def test_a_second_resume_of_a_run_in_training_is_not_told_to_pick_another_name(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second `train --resume RUN` while another process trains RUN was told `... or pick another train.name`,
    which a resume refuses (probe (J), D15). Now a resume, and its dry run, are told to wait for the other or stop
    it, and nothing else."""
    import json
    import shutil
    import subprocess
    import sys

    from srunit.cli.main import main

    run = tmp_path / "cut"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    lock = run / "train.lock"
    lock.write_text(json.dumps({"pid": 999999, "host": "elsewhere", "since": "2026-01-01T00:00:00+00:00"}) + "\n")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(lock)!r}, os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        expected = (f"srunit train: error: run folder {run} is in use by pid 999999 on elsewhere since "
                    f"2026-01-01T00:00:00+00:00 ({lock}); wait for that training to end or stop it (SIGTERM saves a "
                    f"checkpoint)\n")
        for dry in ([], ["--dry-run"]):
            capsys.readouterr()
            assert main(["train", "--resume", str(run), "--train.steps", "3", "--no-progress", *dry]) == 2
            assert capsys.readouterr().err.endswith(expected)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)


def test_resume_of_a_step_folder_or_a_runs_config_names_the_run_folder(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`train --resume RUN/checkpoints/step_N` and `--resume RUN/config.yaml` said `... is not a run folder (no
    config.yaml); give runs/NAME of an earlier run`, of the config.yaml given too, naming neither the run folder
    they lie in nor how to resume from an earlier step (probe (J), D14). Now each names the run folder; a step folder
    says how to go on from it, and that advice, followed, resumes from that step."""
    import subprocess

    from srunit.cli.main import main
    from srunit.engine import Trainer

    monkeypatch.chdir(tmp_path)
    Trainer(tiny_config("cut", "train.steps=4", "train.checkpoint_every=2", "train.keep_every=2", "train.name=r",
                        data_root=tiny_data, runs_dir=Path("runs")), show_progress=False).fit()
    expected = {
        "runs/r/checkpoints/step_00000002": "runs/r/checkpoints/step_00000002 is a checkpoint of the run folder "
        "runs/r, which --resume takes: a resume goes on from the run's latest checkpoint; to go on from step_00000002 "
        "instead, point latest at it (ln -sfn step_00000002 runs/r/checkpoints/latest), then `srunit train --resume "
        "runs/r`",
        "runs/r/config.yaml": "runs/r/config.yaml is the config file of the run folder runs/r, not a run folder "
        "itself: give the run folder, `srunit train --resume runs/r`",
        "runs/r/checkpoints/latest": "runs/r/checkpoints/latest is the latest checkpoint of the run folder runs/r, "
        "not a run folder itself: give the run folder, `srunit train --resume runs/r`",
        "runs/r/samples": "runs/r/samples lies inside the run folder runs/r, not a run folder itself: give the run "
        "folder, `srunit train --resume runs/r`",
        "runs": "runs is not a run folder (no config.yaml); give runs/NAME of an earlier run",
    }
    for given, message in expected.items():
        capsys.readouterr()
        assert main(["train", "--resume", given, "--train.steps", "6", "--no-progress"]) == 2
        assert capsys.readouterr().err.splitlines()[-1] == f"srunit train: error: {message}"
    subprocess.run(["ln", "-sfn", "step_00000002", "runs/r/checkpoints/latest"], check=True)
    resumed = Trainer.resume(Path("runs/r"), ["train.steps=6"], show_progress=False)
    assert resumed.step == 2
    resumed.release()


def test_a_run_json_of_another_run_is_named_as_such_not_as_an_edit_of_config_yaml(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """run.json copied in from another run (its train.name and seed): `RUN/config.yaml was edited since srunit
    train wrote it (train.name 'r3' where srunit wrote 'r4'; train.seed 3 where srunit wrote 4 ...): ... undo the
    edit (put back the values srunit wrote)`, advice that makes the run's untouched config another run's (probe (J),
    D12). Now the two files are said to disagree, run.json to be maybe another run's, and moving it aside, as
    advised, resumes the run."""
    import json
    import shutil

    from srunit.engine import Trainer
    from srunit.errors import CheckpointError

    run = tmp_path / "cut"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    record = json.loads((run / "run.json").read_text())
    record["config"]["train"].update(name="other", seed=7)  # as another run's record holds them
    (run / "run.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError) as err:
        Trainer.resume(run, ["train.steps=2"], show_progress=False)
    assert str(err.value) == (
        f"{run / 'config.yaml'} and {run / 'run.json'} disagree (train.name 'cut' in config.yaml, 'other' in run.json; "
        f"train.seed 1 in config.yaml, 7 in run.json): run.json records the config srunit wrote into config.yaml, "
        f"and it names another run, so it may come from that run (copied in with its files). If it does, put back "
        f"this run's own run.json (a backup, or the run this folder was copied from), or move it aside (mv "
        f"{run / 'run.json'} {run / 'run.json.other'}), and the run resumes without that record; if config.yaml was "
        f"edited instead, undo the edit (put back the values run.json records)")
    (run / "run.json").rename(run / "run.json.other")
    assert Trainer.resume(run, ["train.steps=2"], show_progress=False).fit() == run


@pytest.mark.parametrize(("folder", "what"), [("checkpoints", "a checkpoint"), ("samples", "a sample grid")])
@pytest.mark.parametrize("swap", ["link", "folder"])
def test_a_runs_checkpoints_or_samples_swapped_while_it_trains_are_not_written_through(
        tiny_runs: dict[str, Path], tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        folder: str, what: str, swap: str) -> None:
    """RUN/checkpoints (or RUN/samples) moved away and replaced by a link to another run's while the run trained:
    srunit wrote its checkpoints there, pointed the other run's latest at them and rotated the other run's own
    checkpoint away (probe (J), D11). Now the folder's identity is checked before each write: training stops, naming
    the swap, and the other run's files are as they were."""
    import shutil

    from srunit.engine import Trainer
    from srunit.errors import ConfigError

    victim = tmp_path / "victim"
    shutil.copytree(tiny_runs["cut"], victim, symlinks=True)
    before = _files(victim)
    trainer = Trainer(tiny_config("cut", "train.steps=4", "train.checkpoint_every=2", "train.sample_every=2",
                                  "train.name=live", data_root=tiny_data, runs_dir=tmp_path), show_progress=False)
    live = tmp_path / "live" / folder
    real_step = trainer.runner.train_step

    def step_then_swap(batch: Any) -> Any:
        logs = real_step(batch)
        if trainer.runner.step == 3:  # after the checkpoint and the samples of step 2
            live.rename(live.with_name(f"{folder}.real"))
            if swap == "link":
                live.symlink_to(victim / folder)
            else:
                shutil.copytree(victim / folder, live, symlinks=True)
        return logs

    trainer.runner.train_step = step_then_swap  # type: ignore[method-assign]
    now = f"a symbolic link (to {victim / folder})" if swap == "link" else "another folder"
    fix = (f"rm {live} (which removes the link alone: what it points to stays as it is)" if swap == "link" else
           f"mv {live} {live}.other")
    with pytest.raises(ConfigError) as err:
        trainer.fit()
    assert str(err.value) == (
        f"{live} was replaced by {now} while the run trained: training stopped after step 4 without writing {what} "
        f"there, where it would have written (and rotated) files of another folder. Put the run's own {folder} "
        f"folder back at {live} ({fix} first), and continue with `srunit train --resume {tmp_path / 'live'}`")
    assert _files(victim) == before
    assert sorted(p.name for p in (victim / "checkpoints").iterdir()) == ["latest", "step_00000001"]
