"""Round thirty-four (C): the commands srunit's messages advise to paste into a shell quote each path and name as a
shell reads it (`srunit.errors.shell_word`), so a folder whose name holds a space or a quote pastes as itself:
`srunit train --resume runs/my run` resumed `runs/my`. Each test takes the command exactly as printed, and runs it
through a shell (or splits it as a shell does and runs srunit on its words)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from srunit.config import Config
from srunit.errors import ConfigError, DataError, TrainingStopped

# A space, and a quote with a space: the two ways a pasted path broke apart.
ODD_NAMES = ["my runs", "it's here"]


def _backticked(message: str, start: str) -> list[str]:
    """The words of the first `...` command of ``message`` that starts with ``start``, split as a shell splits them."""
    found = re.search(r"`(" + re.escape(start) + r"[^`]*)`", message)
    assert found is not None, message
    return shlex.split(found.group(1))


def _shell(command: str, cwd: Path) -> None:
    done = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, (command, done.stderr)


def test_a_path_of_safe_characters_prints_as_it_is_and_any_other_as_a_shell_reads_it_back() -> None:
    from srunit.errors import shell_word

    for safe in ("runs/r1", "/tmp/a-b_c.d/step_00000010", "x@y%z+=:,"):
        assert shell_word(safe) == safe and shell_word(Path(safe)) == str(Path(safe))
    for odd in ("runs/my run", "it's", "a$HOME", "*", "a\"b", ""):
        assert shlex.split(f"echo {shell_word(odd)}")[1:] == [odd]
    for hidden in ("tab\there", "new\nline"):  # ANSI-C quotes (round thirty-seven), which bash reads back
        assert "\t" not in shell_word(hidden) and "\n" not in shell_word(hidden)
        done = subprocess.run(["bash", "-c", f"printf %s {shell_word(hidden)}"], capture_output=True, text=True,
                              timeout=30)
        assert done.stdout == hidden, shell_word(hidden)


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_stopped_runs_resume_advice_resumes_that_run_when_pasted(
        name: str, tiny_runs: dict[str, Path], tmp_path: Path, cli_status: Callable[[list[str]], int]) -> None:
    """TrainingStopped's `srunit train --resume RUN` named RUN unquoted: `--resume <tmp>/my runs/srunit` resumed
    `<tmp>/my` (and `runs/srunit` was an unknown argument)."""
    run = tmp_path / name / "srunit"
    shutil.copytree(tiny_runs["srunit"], run, symlinks=True)
    stop = TrainingStopped(signal.SIGTERM, 1, run / "checkpoints" / "step_00000001", run)
    argv = _backticked(str(stop), "srunit train --resume")
    assert argv == ["srunit", "train", "--resume", str(run)]
    assert argv[-1] in stop.report("train")
    assert cli_status([*argv[1:], "--no-progress"]) == 0  # the run (which had ended) found and resumed


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_run_folder_that_holds_a_run_advises_a_resume_of_that_folder(
        name: str, tiny_runs: dict[str, Path], tiny_config: Callable[..., Config], tiny_data: Path,
        tmp_path: Path, cli_status: Callable[[list[str]], int]) -> None:
    from srunit.engine import Trainer

    runs = tmp_path / name
    shutil.copytree(tiny_runs["srunit"], runs / "srunit", symlinks=True)
    with pytest.raises(ConfigError, match="already holds a run") as refused:
        Trainer(tiny_config("srunit", "train.steps=1", "train.name=srunit", data_root=tiny_data, runs_dir=runs),
                show_progress=False)
    argv = _backticked(str(refused.value), "srunit train --resume")
    assert argv == ["srunit", "train", "--resume", str(runs / "srunit")]
    assert cli_status([*argv[1:], "--no-progress"]) == 0


@pytest.mark.slow  # 2 s: two exports of a tiny generator
@pytest.mark.parametrize("name", ODD_NAMES)
def test_the_bf16_export_advice_writes_the_advised_file_when_pasted(
        name: str, tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`export RUN --output "my runs/m.onnx" --precision bf16` advised `--output <tmp>/my runs/m.pt2`: pasted, the
    export wrote `<tmp>/my` and took `runs/m.pt2` as a second checkpoint."""
    onnx = tmp_path / name / "m.onnx"
    onnx.parent.mkdir()
    assert cli_status(["export", str(tiny_runs["cut"]), "--output", str(onnx), "--precision", "bf16",
                       "--check-size", "16x16"]) == 2
    err = capsys.readouterr().err
    advised = shlex.split(err.split("torch.export program: ", 1)[1])
    assert advised == ["--output", str(onnx.with_suffix(".pt2"))], err
    assert cli_status(["export", str(tiny_runs["cut"]), *advised, "--precision", "bf16", "--check-size", "16x16"]) == 0
    assert sorted(p.name for p in onnx.parent.iterdir()) == ["m.pt2"]


def test_the_export_folder_advice_names_a_file_in_it_as_a_shell_reads_it(tmp_path: Path) -> None:
    from srunit.export import export_generator

    folder = tmp_path / "it's here"
    folder.mkdir()
    with pytest.raises(ConfigError, match="is a folder") as refused:
        export_generator(tmp_path / "run", folder)
    assert shlex.split(str(refused.value).split("e.g. ", 1)[1]) == [str(folder / "generator.onnx")]


@pytest.mark.parametrize("study", ["my study", "it's mine"])
def test_a_renamed_tuning_folders_study_advice_continues_it(study: str, tmp_path: Path) -> None:
    """`--study NAME` of a renamed tuning folder named a study whose name holds a space unquoted: pasted, `--study my
    study` took `my` as the study and `study` as a stray argument."""
    import dataclasses

    from srunit.tune.study import TuneSettings, _prepare_out
    from srunit.tune.targets import FolderTarget

    for folder in ("data", "val", "labels"):
        (tmp_path / folder).mkdir()
    target = FolderTarget(str(tmp_path / "data"), str(tmp_path / "val"), str(tmp_path / "labels"), "seg.onnx", 3)
    target = target.to_dict()
    space = {"method.lambda_nce": {"low": 0.25, "high": 4.0, "log": True}}
    before = TuneSettings(preset="cut", target=target, space=space, study_name=study, trials=2, sampler="random")
    out = tmp_path / "renamed"
    _prepare_out(out, before)
    with pytest.raises(ConfigError, match="--study defaults to") as refused:
        _prepare_out(out, dataclasses.replace(before, study_name="renamed"))
    advised = shlex.split(str(refused.value).split("add ", 1)[1])
    assert advised == ["--study", study], str(refused.value)
    _prepare_out(out, dataclasses.replace(before, study_name=advised[1]))  # the advice, followed: it continues


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_moved_tuning_datas_link_advice_makes_the_link_when_pasted(name: str, tmp_path: Path) -> None:
    """`tune data`'s moved --data: `mkdir -p OLD_PARENT && ln -s NEW OLD` with each path unquoted made links named
    by the words of the paths."""
    from srunit.tune.study import _moved_paths

    new = tmp_path / name / "now"
    new.mkdir(parents=True)
    (new / "a.png").write_bytes(b"x")
    old = tmp_path / f"old {name}" / "data"
    said = _moved_paths({"data_root": str(old)}, {"data_root": str(new)})
    command = said.split("continues it: ", 1)[1]
    assert command.startswith("mkdir -p "), said
    _shell(command, tmp_path)
    assert old.is_symlink() and (old / "a.png").read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, f"old {name}"])


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_resumed_runs_moved_data_link_advice_makes_the_link_when_pasted(
        name: str, tiny_runs: dict[str, Path], tiny_config: Callable[..., Config], tiny_data: Path,
        tmp_path: Path) -> None:
    """The trainer's data-moved advice (`mkdir -p PARENT && ln -s "$(realpath NEW_PLACE)" OLD`) already quoted its
    paths (round thirty-one); kept through the one helper, and followed here with NEW_PLACE filled in."""
    from srunit.engine import Trainer

    data = tmp_path / name / "ss"
    shutil.copytree(tiny_data, data)
    run = Trainer(tiny_config("srunit", "train.steps=1", "train.name=r", data_root=data, runs_dir=tmp_path / "runs"),
                  show_progress=False).fit()
    moved = tmp_path / "now" / "ss"
    moved.parent.mkdir()
    os.rename(data, moved)
    os.rmdir(tmp_path / name)  # the link's folder is made too
    with pytest.raises(DataError, match="a link to where they are now") as refused:
        Trainer.resume(run, show_progress=False)
    command = re.search(r"now \((mkdir -p .*?)\)(;|$)", str(refused.value)).group(1)
    _shell(command.replace("NEW_PLACE", shlex.quote(str(moved))), Path.cwd())
    assert os.path.realpath(tmp_path / name / "ss") == str(moved.resolve())
    Trainer.resume(run, show_progress=False).release()  # the data found through the link


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_linked_checkpoints_folders_copy_advice_gives_the_run_a_folder_of_its_own(name: str, tmp_path: Path) -> None:
    """`rm RUN/checkpoints && cp -r TARGET RUN/checkpoints` with the paths unquoted removed and copied other paths."""
    from srunit.engine.trainer import _check_own_folders
    from srunit.runtime.run_folder import RunFolder

    other = tmp_path / f"other {name}" / "checkpoints"
    (other / "step_00000001").mkdir(parents=True)
    (other / "step_00000001" / "state.pt").write_bytes(b"state")
    run = RunFolder(tmp_path / name / "run")
    run.path.mkdir(parents=True)
    run.checkpoints.symlink_to(other)
    with pytest.raises(ConfigError, match="symbolic link") as refused:
        _check_own_folders(run, [], resuming=True)
    command = re.search(r"folder of its own: (rm .*?) \(nothing was changed\)", str(refused.value)).group(1)
    assert shlex.split(command) == ["rm", str(run.checkpoints), "&&", "cp", "-r", str(other), str(run.checkpoints)]
    _shell(command, tmp_path)
    assert not run.checkpoints.is_symlink()
    assert (run.checkpoints / "step_00000001" / "state.pt").read_bytes() == b"state"
    assert (other / "step_00000001" / "state.pt").read_bytes() == b"state"  # what the link pointed to, as it was

    with pytest.raises(ConfigError, match="removes the link alone"):  # a new run's: the link removed, nothing copied
        shutil.rmtree(run.checkpoints)
        run.checkpoints.symlink_to(other)
        _check_own_folders(run, [], resuming=False)


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_file_where_a_runs_folder_belongs_is_moved_aside_by_the_advice(name: str, tmp_path: Path) -> None:
    from srunit.engine.trainer import _check_own_folders
    from srunit.runtime.run_folder import RunFolder

    run = RunFolder(tmp_path / name / "run")
    run.path.mkdir(parents=True)
    run.samples.write_bytes(b"mine")
    with pytest.raises(ConfigError, match="is a file") as refused:
        _check_own_folders(run, [], resuming=True)
    _shell(re.search(r"\((mv .*?)\) and start again", str(refused.value)).group(1), tmp_path)
    assert not run.samples.exists() and Path(f"{run.samples}.bak").read_bytes() == b"mine"


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_latest_folder_made_by_a_copy_is_made_a_link_again_by_the_advice(name: str, tmp_path: Path) -> None:
    from srunit.engine.trainer import _check_latest_is_a_link
    from srunit.errors import CheckpointError
    from srunit.runtime.run_folder import RunFolder

    run = RunFolder(tmp_path / name / "run")
    (run.checkpoints / "step_00000002").mkdir(parents=True)
    run.latest.mkdir()
    (run.latest / "state.pt").write_bytes(b"s")
    with pytest.raises(CheckpointError, match="Make it a link again") as refused:
        _check_latest_is_a_link(run, 2)
    _shell(str(refused.value).split("Make it a link again: ", 1)[1], tmp_path)
    assert os.readlink(run.latest) == "step_00000002"


@pytest.mark.parametrize("name", ODD_NAMES)
@pytest.mark.parametrize("dangling", [False, True])
def test_a_runs_lost_latest_link_is_made_again_by_the_advice(name: str, dangling: bool, tmp_path: Path) -> None:
    """`ln -s step_N RUN/checkpoints/latest` (deleted) and `ln -sfn step_N ...` (pointing at a deleted step)."""
    from srunit.errors import CheckpointError
    from srunit.runtime.run_folder import RunFolder, resolve_checkpoint

    run = RunFolder(tmp_path / name / "run")
    (run.checkpoints / "step_00000001").mkdir(parents=True)
    (run.checkpoints / "step_00000001" / "state.pt").write_bytes(b"s")
    if dangling:
        run.latest.symlink_to("step_00000002")
    with pytest.raises(CheckpointError, match="ln -s") as refused:
        resolve_checkpoint(run.path)
    _shell(re.search(r"(ln -sf?n? step_00000001 .*)$", str(refused.value)).group(1), tmp_path)
    assert os.readlink(run.latest) == "step_00000001" and resolve_checkpoint(run.path) == run.latest.resolve()


@pytest.mark.parametrize("name", ODD_NAMES)
def test_an_eval_runs_file_in_place_of_its_folder_is_moved_aside_by_the_advice(name: str, tmp_path: Path) -> None:
    from srunit.eval.run_records import check_own_folders
    from srunit.runtime.run_folder import RunFolder

    run = RunFolder(tmp_path / name / "run")
    run.eval.mkdir(parents=True)
    run.translated.write_bytes(b"mine")
    with pytest.raises(DataError, match="is a file") as refused:
        check_own_folders(run)
    _shell(re.search(r"Move it away \((mv .*?)\) or", str(refused.value)).group(1), tmp_path)
    assert Path(f"{run.translated}.old").read_bytes() == b"mine" and not run.translated.exists()


def test_a_moved_data_root_written_with_a_tilde_is_linked_at_home_by_the_advice(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """data.root `~/d/ss` (a config file's, which no shell expanded): the run reads it below $HOME, but the link
    advice quoted it as `'~/d/ss'`, which a shell does not expand: pasted, it made a folder named `~` in the working
    folder, and the resume still found no data."""
    from srunit.engine import Trainer

    home = tmp_path / "my home"
    monkeypatch.setenv("HOME", str(home))
    shutil.copytree(tiny_data, home / "d" / "ss")
    run = Trainer(tiny_config("srunit", "train.steps=1", "train.name=r", "data.root=~/d/ss",
                              runs_dir=tmp_path / "runs"), show_progress=False).fit()
    moved = tmp_path / "now here"
    os.rename(home / "d" / "ss", moved)
    os.rmdir(home / "d")
    with pytest.raises(DataError, match="a link to where they are now") as refused:
        Trainer.resume(run, show_progress=False)
    command = re.search(r"now \((mkdir -p .*?)\)(;|$)", str(refused.value)).group(1)
    work = tmp_path / "work"
    work.mkdir()
    _shell(command.replace("NEW_PLACE", shlex.quote(str(moved))), work)
    assert list(work.iterdir()) == [] and os.path.realpath(home / "d" / "ss") == str(moved.resolve())
    Trainer.resume(run, show_progress=False).release()
