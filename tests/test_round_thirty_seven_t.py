"""Round thirty-seven (T): the training engine's API and checks (probe (I): D9, D15, D16, D18, D22)."""

from __future__ import annotations

import errno
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from srunit.config import Config
from srunit.errors import ConfigError, DataError, MethodError


def test_resume_names_a_data_root_without_the_data_as_the_callers_argument(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path) -> None:
    """`Trainer.resume(run, data_root='nope')`: `run trains on data.root nope (its config.yaml), and the folder
    nope/trainA does not exist ...: put the images back at nope, or a link to where they are now (ln -s ...
    nope)`, blaming the run's config.yaml for the caller's argument and advising to make the folder mistyped
    (probe (I), D9, class e); `data_root=''` was `data.root: invalid value ''`. The message names the argument, and
    its advice (the folder that holds the data now), followed, resumes."""
    from srunit.engine import Trainer

    run = tmp_path / "cut"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    nope = tmp_path / "nope"
    with pytest.raises(DataError) as err:
        Trainer.resume(run, show_progress=False, data_root=str(nope))
    assert str(err.value) == (f"Trainer.resume: data_root {nope} has no trainA/ ({nope / 'trainA'} does not exist); "
                              f"give the folder that holds the run's data now (the run's config.yaml names "
                              f"{tiny_data})")
    with pytest.raises(ConfigError, match=r"^Trainer.resume: data_root is an empty path; "):
        Trainer.resume(run, show_progress=False, data_root="")
    Trainer.resume(run, show_progress=False, data_root=str(tiny_data)).release()


def _read_only_below(monkeypatch: pytest.MonkeyPatch, top: Path) -> None:
    """Every new folder at or below ``top`` fails as on a read-only file system (`mount -o remount,bind,ro`; an
    existing one is "File exists" there too)."""
    real = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if (self == top or top in self.parents) and not self.exists():
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)


@pytest.mark.parametrize("below", [(), ("runs",)])
def test_a_new_run_on_a_read_only_file_system_is_named_as_every_writer_names_it(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        below: tuple[str, ...]) -> None:
    """`srunit train --train.runs_dir romnt` (a read-only bind mount; also romnt/runs, not there yet):
    `romnt/x: Read-only file system; check the path, its permissions and the free space`, naming no option and no
    cause, where every other writer says `the folder ... is on a read-only file system; choose another path`; and
    `train --dry-run` said `... cannot be made or written (Read-only file system); ...` (probe (I), D15, class e).
    `train` and its dry run now say the same, from one owner."""
    from srunit.engine import Trainer
    from srunit.engine.dryrun import dry_run

    mount = tmp_path / "romnt"
    mount.mkdir()
    runs = mount.joinpath(*below)
    config = tiny_config("cut", "train.steps=1", "train.name=x", data_root=tiny_data, runs_dir=runs)
    _read_only_below(monkeypatch, mount)
    expected = (f"train.runs_dir {runs}: the folder {mount} is on a read-only file system; choose another "
                f"train.runs_dir (nothing was written)")
    with pytest.raises(ConfigError) as err:
        Trainer(config, show_progress=False)
    assert str(err.value) == expected
    with pytest.raises(ConfigError) as err:
        dry_run(config)
    assert str(err.value) == expected
    assert list(mount.iterdir()) == []


def test_a_fit_while_another_thread_fits_is_refused_and_a_finished_fit_lets_the_next_one_train(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two Trainers fitting at once in two threads of one process each trained a run other than the one their
    seed names (torch's random state is one per process), both recording `seed 0`, without a word (probe (I), D16,
    class d). The second thread is refused while the first fits; a fit that ended, by returning or by raising, lets
    the next one (of any thread) train."""
    from srunit.engine import Trainer
    from srunit.engine import trainer as engine

    def build(name: str) -> Trainer:
        return Trainer(tiny_config("cut", "train.steps=1", f"train.name={name}", data_root=tiny_data,
                                   runs_dir=tmp_path), show_progress=False)

    first, second = build("first"), build("second")
    inside, tried = threading.Event(), threading.Event()
    real_fit = engine.Trainer._fit

    def fit_waiting(self: Trainer, *args: Any) -> Path:
        if self is first:
            inside.set()
            assert tried.wait(60)
        return real_fit(self, *args)

    monkeypatch.setattr(engine.Trainer, "_fit", fit_waiting)
    failures: list[BaseException] = []

    def fit_first() -> None:
        try:
            first.fit()
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            failures.append(err)

    worker = threading.Thread(target=fit_first)
    worker.start()
    try:
        assert inside.wait(60)
        refused = (r"^Trainer.fit: another thread of this process is running Trainer.fit\(\) of .*first; torch's "
                   r"random state is one per process, so two runs trained at once would not follow their seeds .* "
                   r"Train them one after the other, or each in its own process \(srunit tune or srunit bench with "
                   r"--jobs N, or one srunit train each\); nothing was trained$")
        with pytest.raises(ConfigError, match=refused):
            second.fit()
        with pytest.raises(ConfigError, match=r"^Trainer: another thread of this process is running Trainer\.fit\(\) "):
            build("third")
    finally:
        tried.set()
        worker.join()
    assert failures == [] and (tmp_path / "first" / "checkpoints" / "latest").is_dir()
    assert not (tmp_path / "second" / "checkpoints").exists()

    def fit_refused_stop() -> None:  # a fit that raises in another thread
        try:
            build("fourth").fit(stop_at=0)
        except ConfigError as err:
            failures.append(err)

    worker = threading.Thread(target=fit_refused_stop)
    worker.start()
    worker.join()
    assert [str(err).split(" is not after")[0] for err in failures] == ["Trainer.fit: stop_at 0"]
    assert second.fit() == tmp_path / "second"


@pytest.fixture
def misbehaving(load_test_plugins: Callable[..., None]) -> None:
    load_test_plugins("misbehaving")


@pytest.mark.parametrize(("fault", "returned"), [
    ("meta", r"returned as its loss a tensor on the device meta, not on the run's device cpu \(computed apart from "
             r"the networks\)"),
    ("leaf", r"returned a loss whose backward pass reached none of the parameters its optimizers step \(a tensor "
             r"that requires grad but was not computed from the networks\), so training would never update them"),
])
def test_a_phase_loss_on_another_device_or_apart_from_the_networks_is_refused(
        misbehaving: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, fault: str, returned: str) -> None:
    """A plugin phase whose loss is on the meta device, or requires grad but is a new leaf (not computed from the
    networks): status 0, the usual result lines, and G's weights bit-identical before and after (probe (I), D18,
    class d). Refused at the phase's first step, naming the method and the phase."""
    from srunit.engine import Trainer

    monkeypatch.setenv("MISBEHAVING_FAULT", fault)
    config = tiny_config(None, "method.name=misbehaving", "train.steps=2", "train.name=bad", data_root=tiny_data,
                         runs_dir=tmp_path)
    with pytest.raises(MethodError, match=r"^method 'misbehaving' \(misbehaving.Misbehaving\): phase 'G' "
                                          + returned + r".*Training stopped after step 0, and no checkpoint had "
                                          r"been written"):
        Trainer(config, show_progress=False).fit()


def test_phases_that_reach_their_parameters_are_checked_at_their_first_step_and_log_steps_only(
        misbehaving: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The check that a phase's backward pass reached its parameters (added for probe (I), D18) looks at each
    phase's first step, and at steps the trainer logs (round thirty-seven (engine), probe (J) D8), so it costs
    nothing on the steps between: a run of 3 steps that logs every 50 asks once per phase."""
    from srunit.engine import Trainer, method_checks, runner

    calls: list[str] = []
    real = method_checks.check_phase_reached

    def counted(method: Any, phase: str, params: Any, later: int | None = None) -> None:
        calls.append(phase)
        real(method, phase, params, later)

    monkeypatch.setattr(runner, "check_phase_reached", counted)
    config = tiny_config(None, "method.name=misbehaving", "train.steps=3", "train.name=ok", data_root=tiny_data,
                         runs_dir=tmp_path)
    Trainer(config, show_progress=False).fit()
    assert calls == ["D", "G"]


class _Checked(Exception):
    """Raised where the benchmark goes on after its arguments were checked."""


@pytest.mark.parametrize("call", ["save", "train_to_end", "run_benchmark"])
def test_boolean_arguments_of_the_training_api_refuse_strings(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        call: str) -> None:
    """`Trainer.save(keep="no")` kept the checkpoint for good (a string read as True), where `Trainer(show_progress=
    "no")` and `fit(handle_signals="yes")` are refused (probe (I), D22, class d); `train_to_end` and `run_benchmark`
    took their flags unchecked too."""
    from srunit.engine import Trainer
    from srunit.engine.trainer import train_to_end

    config = tiny_config("cut", "train.steps=2", "train.name=k", data_root=tiny_data, runs_dir=tmp_path)
    if call == "save":
        trainer = Trainer(config, show_progress=False)
        trainer.fit(stop_at=1)
        with pytest.raises(TypeError, match=r"^Trainer.save: keep must be True or False, got str 'no'$"):
            trainer.save(keep="no")  # type: ignore[arg-type]
        trainer.save(keep=False)
        trainer.fit()
        assert sorted(p.name for p in (tmp_path / "k" / "checkpoints").iterdir()) == ["latest", "step_00000002"]
    elif call == "train_to_end":
        with pytest.raises(TypeError, match=r"^train_to_end: show_progress must be True or False, got str 'no'$"):
            train_to_end(config, show_progress="no")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^train_to_end: handle_signals must be True or False, got str 'no'$"):
            train_to_end(config, handle_signals="no")  # type: ignore[arg-type]
    else:
        import srunit.synthscapes.benchmark as bench
        from srunit import profile_settings, run_benchmark

        def checked(*args: object, **kwargs: object) -> None:
            raise _Checked

        monkeypatch.setattr(bench, "check_run_configs", checked)
        settings = profile_settings("cpu")
        with pytest.raises(TypeError, match=r"^run_benchmark: report must be True or False, got str 'no'$"):
            run_benchmark(tmp_path / "b", settings, report="no")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^run_benchmark: show_progress must be True or False, got int 0$"):
            run_benchmark(tmp_path / "b", settings, show_progress=0)  # type: ignore[arg-type]
        with pytest.raises(_Checked):
            run_benchmark(tmp_path / "b", settings, show_progress=False, report=True)
        assert not (tmp_path / "b").exists()


def test_a_trainer_follows_its_seed_whatever_other_trainers_did_before_its_fit(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    """`a = Trainer(seed 0); b = Trainer(seed 1); a.fit()` trained another run than `Trainer(seed 0).fit()` alone:
    building b reseeded the process's random state, which a's fit then drew from, without a word (probe (J), D2;
    no threads, so the one-thread claim of D16 did not apply). Each fit now starts from its own run's state: built
    one after another, or fitted in turns, every run trains as it trains alone."""
    import torch

    from srunit.engine import Trainer

    def config(name: str, seed: int) -> Config:
        return tiny_config("cut", "train.steps=4", "train.checkpoint_every=2", f"train.name={name}",
                           f"train.seed={seed}", data_root=tiny_data, runs_dir=tmp_path)

    def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in trainer.method.state_dict().items()}

    alone = Trainer(config("alone", 0), show_progress=False)
    alone.fit()
    other_alone = Trainer(config("other-alone", 1), show_progress=False)
    other_alone.fit()
    first = Trainer(config("first", 0), show_progress=False)
    second = Trainer(config("second", 1), show_progress=False)  # reseeds the process: seed 1
    first.fit(stop_at=2)
    second.fit(stop_at=3)  # in turns
    first.fit()
    second.fit()
    for trainer, reference in ((first, alone), (second, other_alone)):
        got, want = weights(trainer), weights(reference)
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want), trainer.run_dir


def test_resume_refuses_a_data_root_that_a_run_of_two_domain_folders_would_not_read(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    """`Trainer.resume(run, data_root="elsewhere")` of a run trained on data.dir_a/data.dir_b: accepted without a
    word, and the run went on with the folders its config.yaml names (probe (J), D3). Refused, naming what the run
    reads; without data_root it resumes."""
    from srunit.engine import Trainer

    config = tiny_config("cut", "train.steps=2", "train.checkpoint_every=1", "train.name=dirs",
                         f"data.dir_a={tiny_data / 'trainA'}", f"data.dir_b={tiny_data / 'trainB'}",
                         runs_dir=tmp_path)
    run = Trainer(config, show_progress=False).fit(stop_at=1)
    with pytest.raises(ConfigError) as err:
        Trainer.resume(run, show_progress=False, data_root=str(tmp_path / "elsewhere"))
    assert str(err.value) == (
        f"Trainer.resume: data_root {tmp_path / 'elsewhere'} would have no effect: the run reads the domain folder(s) "
        f"data.dir_a {tiny_data / 'trainA'}, data.dir_b {tiny_data / 'trainB'} (its config.yaml), and data_root only "
        f"moves the data.root of a run that reads ROOT/trainA and ROOT/trainB; leave data_root out (a run's data "
        f"are fixed)")
    assert Trainer.resume(run, show_progress=False).fit() == run


def test_resume_refuses_a_latest_that_leads_into_another_runs_checkpoints(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    """RUN/checkpoints/latest linked to OTHER/checkpoints/step_4: `Trainer.resume(RUN)` loaded the other run's weights
    and went on as RUN, without a word (probe (J), D5). Refused, naming the link and this run's own newest checkpoint;
    the advice followed resumes. A fork made with `cp -as`, whose latest links to the original's latest, reads its
    own step folder of that name."""
    import os
    import subprocess

    from srunit.engine import Trainer
    from srunit.errors import CheckpointError
    from srunit.runtime.run_folder import RunFolder

    config = tiny_config("cut", "train.steps=6", "train.checkpoint_every=2", "train.keep_every=2", "train.name=other",
                         data_root=tiny_data, runs_dir=tmp_path)
    other = Trainer(config, show_progress=False).fit(stop_at=4)
    run = tmp_path / "run"
    shutil.copytree(other, run, symlinks=True)
    mine = RunFolder(run)
    shutil.rmtree(mine.checkpoint(4))
    mine.latest.unlink()
    mine.latest.symlink_to(RunFolder(other).checkpoint(4))
    with pytest.raises(CheckpointError) as err:
        Trainer.resume(run, show_progress=False)
    said = str(err.value)
    assert said.startswith(
        f"{mine.latest} leads to {RunFolder(other).checkpoint(4).resolve()}, a checkpoint outside this run's "
        f"{mine.checkpoints}: resuming would continue another run's weights as this run's. Make it the link srunit "
        f"writes to this run's newest checkpoint (ln -sfn step_00000002 {mine.latest}), or copy that checkpoint "
        f"in"), said
    subprocess.run(["ln", "-sfn", "step_00000002", str(mine.latest)], check=True)
    resumed = Trainer.resume(run, show_progress=False)
    assert resumed.step == 2
    resumed.release()
    fork = tmp_path / "fork"
    subprocess.run(["cp", "-as", str(other), str(fork)], check=True)
    assert os.readlink(RunFolder(fork).latest) == str(RunFolder(other).latest)
    (fork / "train.lock").unlink()  # a link to the other run's lock, refused as such (round thirty-five)
    forked = Trainer.resume(fork, show_progress=False)
    assert forked.step == 4
    forked.release()


def test_a_trainer_whose_process_changed_its_working_folder_says_so_not_that_its_run_moved(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Trainer(config with train.runs_dir=runs)` in one folder, `os.chdir` to another, `fit()`: `the run folder
    runs/rel was moved, deleted or replaced since this Trainer opened it ...; start the run again with a new
    Trainer(config)`, where nothing had moved and a new Trainer would start another run elsewhere (probe (J), D16).
    The message says the working folder changed; changing back lets the fit train."""
    from srunit.engine import Trainer

    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    config = tiny_config("cut", "train.steps=1", "train.name=rel", "train.runs_dir=runs", data_root=tiny_data)
    trainer = Trainer(config, show_progress=False)
    monkeypatch.chdir(second)
    with pytest.raises(ConfigError) as err:
        trainer.fit()
    assert str(err.value) == (
        f"the working folder changed from {first} to {second} since this Trainer opened its run folder runs/rel (a "
        f"relative path, read from {first}, where the run still is): Trainer.fit trained nothing and wrote nothing; "
        f"change back to {first} (os.chdir) before Trainer.fit, or give train.runs_dir as an absolute path")
    assert not (second / "runs").exists()
    monkeypatch.chdir(first)
    assert trainer.fit() == Path("runs/rel") and (first / "runs" / "rel" / "checkpoints").is_dir()
