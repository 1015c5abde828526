"""Round thirty-seven (Y): a dry run checks the run folder and the data as `train` does; a tracker's folder that
cannot be written is refused before training; a full disk under a study's database is named as such."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from srunit.errors import ConfigError

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _run_as_root_with_setpriv() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


# ----------------------------------------------------------------------------- D9: the dry run's run folder


@pytest.fixture
def immutable_folder(tmp_path: Path) -> Iterator[Path]:
    """An empty folder with the immutable attribute (chattr +i): root cannot make anything in it."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("chattr") is None or \
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("needs root and a file system that takes chattr +i")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_dry_run_refuses_a_runs_dir_where_no_folder_can_be_made(tiny_config, tiny_data: Path,
                                                                  tmp_path: Path) -> None:
    """`train --dry-run --train.runs_dir /proc/x`: `one batch, no update: ...`, status 0; `train` then refused
    (`/proc/x: No such file or directory; check the path, its permissions and the free space`), against the docs'
    "a dry run that passes is a run that starts" (round thirty-six (H), D9, class e). Followed, the advice (a
    folder you can write) passes, and leaves nothing behind."""
    from srunit.engine.dryrun import dry_run

    config = tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=Path("/proc/srunit-x"))
    with pytest.raises(ConfigError) as err:
        dry_run(config)
    assert str(err.value) == (f"train.runs_dir /proc/srunit-x: the run folder {config.train.run_dir} cannot be made "
                              f"or written (No such file or directory); point train.runs_dir at a folder you can "
                              f"write (nothing was written)")
    config = tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=tmp_path / "new" / "runs")
    assert dry_run(config).losses and list(tmp_path.iterdir()) == []


def test_a_dry_run_refuses_a_runs_dir_inside_an_immutable_folder(tiny_config, tiny_data: Path,
                                                                 immutable_folder: Path) -> None:
    """`chattr +i ro; train --dry-run --train.runs_dir ro/x` passed as root, where every permission check says
    yes; `train` then refused (`ro/x: Operation not permitted; ...`) (round thirty-six (H), D9, class e)."""
    from srunit.engine.dryrun import dry_run

    config = tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=immutable_folder / "x")
    with pytest.raises(ConfigError, match=r"^train.runs_dir .*/ro/x: the run folder .*/ro/x/\S+ cannot be made or "
                                          r"written \(Operation not permitted\); point train.runs_dir at a folder"):
        dry_run(config)
    assert list(immutable_folder.iterdir()) == []


def test_a_records_folder_is_still_tried_and_left_as_it_was(tmp_path: Path) -> None:
    """The check that `--records` had and the dry run now shares: a new records folder (two levels) is made, tried
    and removed again; one in /proc is refused with its own advice."""
    from srunit.eval.study_records import check_records_folder

    check_records_folder(tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []
    if Path("/proc/self").is_dir():
        with pytest.raises(ConfigError, match=r"^--records /proc/srunit-rec: no record can be written there \(No "
                                              r"such file or directory\); point --records at a folder you can write"):
            check_records_folder("/proc/srunit-rec")


# ----------------------------------------------------------------------------- D10: one folder for both domains


def test_a_dry_run_warns_of_one_folder_for_both_domains(tiny_config, tiny_data: Path, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """`train --dry-run --data.dir_a X --data.dir_b X`: the data, the networks, one batch, status 0 and no
    warning, where `train` warns "domain A and domain B are one folder (X): ..." (round thirty-six (H), D10,
    class e)."""
    from srunit.engine.dryrun import dry_run

    folder = tiny_data / "trainA"
    config = tiny_config("cut", "train.steps=1", f"data.dir_a={folder}", f"data.dir_b={folder}",
                         runs_dir=tmp_path / "runs")
    with caplog.at_level(logging.WARNING):
        dry_run(config)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"domain A and domain B are one folder ({folder}): the run learns to translate these images "
                      f"into themselves; give each domain its own folder (data.dir_a, data.dir_b)"], warned
    caplog.clear()
    config = tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=tmp_path / "runs")
    with caplog.at_level(logging.WARNING):
        dry_run(config)
    assert not [r for r in caplog.records if "one folder" in r.getMessage()]


# ----------------------------------------------------------------------------- D12: a tracker's folder


@pytest.fixture
def nobody_folder(request: pytest.FixtureRequest) -> Path:
    """A folder user nobody (65534) owns, outside pytest's own temporary folders (root's alone)."""
    if not _run_as_root_with_setpriv():
        pytest.skip("needs root and setpriv")
    folder = Path(tempfile.mkdtemp(prefix="srunit-nobody-"))
    request.addfinalizer(lambda: shutil.rmtree(folder, ignore_errors=True))
    os.chown(folder, 65534, 65534)
    return folder


def _as_nobody(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AS_NOBODY, *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "HOME": str(cwd), "PYTHONWARNINGS": "ignore"})


@pytest.mark.e2e
def test_a_resume_refuses_a_tensorboard_folder_it_cannot_write(tiny_config, tiny_data: Path,
                                                              nobody_folder: Path) -> None:
    """`chmod 000 RUN/tensorboard; srunit train --resume RUN` as its owner: trained, status 0, without a word,
    and no event of the new steps was written (the summary's `logs: tensorboard --logdir` line silently absent)
    (round thirty-six (H), D12, class d); where the session logs, it failed after loading everything with `the
    tracker could not start (PermissionError: ...); fix its settings or leave tensorboard out of train.loggers`.
    Refused before training, naming the folder and the chmod; the chmod, done as said, lets the run go on and log
    there."""
    from srunit.engine import Trainer

    data = nobody_folder / "data"  # the run's images where user nobody can read them
    shutil.copytree(tiny_data, data)
    run = Trainer(tiny_config("cut", "train.steps=1", "train.name=run", data_root=data, runs_dir=nobody_folder),
                  show_progress=False).fit()
    for path in nobody_folder.rglob("*"):
        os.chown(path, 65534, 65534, follow_symlinks=False)
    board = run / "tensorboard"
    before = sorted(p.name for p in board.iterdir())
    board.chmod(0)
    resume = [sys.executable, "-m", "srunit", "train", "--resume", str(run), "--train.steps", "2", "--no-progress"]
    done = _as_nobody(resume, nobody_folder)
    assert done.returncode == 2, done.stderr
    assert (f"srunit train: error: train.loggers tensorboard: the folder {board} cannot be read and written "
            f"(Permission denied), and the tracker writes its logs there; give yourself read, write and search "
            f"permission (chmod u+rwx {board}) and run the command again (nothing was changed)") in done.stderr
    assert not (run / "checkpoints" / "step_2").exists()
    assert _as_nobody(["chmod", "u+rwx", str(board)], nobody_folder).returncode == 0  # the advice, followed
    done = _as_nobody(resume, nobody_folder)
    assert done.returncode == 0, done.stderr
    assert len(list(board.iterdir())) > len(before)  # the new session's events


def test_a_tracker_folder_that_cannot_be_made_is_refused_before_training(
        monkeypatch: pytest.MonkeyPatch, tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    """A new run whose RUN/tensorboard cannot be made (here a file system that refuses the folder) trained
    without a word, TensorBoard's writer thread failing alone (round thirty-six (H), D12). Refused before any
    step, naming the folder and the reason."""
    import srunit.checks as checks
    from srunit.engine import Trainer

    real_mkdir = Path.mkdir

    def refusing(self: Path, *args: object, **kwargs: object) -> None:
        if self.name == "tensorboard":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(checks.Path, "mkdir", refusing)
    config = tiny_config("cut", "train.steps=1", "train.name=r", data_root=tiny_data, runs_dir=tmp_path)
    with pytest.raises(ConfigError) as err:
        Trainer(config, show_progress=False).fit()
    assert str(err.value).startswith(f"train.loggers tensorboard: the folder {tmp_path / 'r' / 'tensorboard'} cannot "
                                     f"be read and written (Read-only file system), and the tracker writes its logs "
                                     f"there; make {tmp_path / 'r'} writable")
    assert not (tmp_path / "r" / "checkpoints").exists()


# ----------------------------------------------------------------------------- D14: a study's database, disk full


def _settings(tmp_path: Path):
    from srunit.tune.study import TuneSettings
    from srunit.tune.targets import FolderTarget

    for folder in ("d", "v", "l"):
        (tmp_path / folder).mkdir(exist_ok=True)
    target = FolderTarget(str(tmp_path / "d"), str(tmp_path / "v"), str(tmp_path / "l"), "seg.onnx", 3)
    return TuneSettings(preset="cut", target=target.to_dict(), study_name="s", trials=2, sampler="random",
                        space={"method.lambda_nce": {"low": 0.25, "high": 4.0, "log": True}})


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs filled to the last byte (its file `fill`), unmounted after."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and a tmpfs mount")
    try:
        fd = os.open(mount / "fill", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)  # SQLAlchemy's pool may hold the file open


def test_a_study_database_on_a_full_disk_is_named_as_a_full_disk(
        tmp_path: Path, full_disk: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`tune synthscapes --out DIR` on a full disk: `the study's storage DIR/study.db cannot be read as an SQLite
    database (OperationalError: ... database or disk is full); it is damaged or not a file: move it away (mv
    DIR/study.db DIR/study.db.damaged) ...`, and the advice, followed, repeated it (round thirty-six (H), D14,
    class e). Named as every full disk is; with space freed, the same study opens."""
    import srunit.cli.tune as tune_cli
    from srunit.tune.study import open_study

    settings = _settings(tmp_path)
    db = full_disk / "study.db"
    storage = f"sqlite:///{db}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(OSError) as err:
            open_study(storage, settings)
        assert (err.value.errno, err.value.filename) == (errno.ENOSPC, str(db))
        # what the command prints of it: the command line's one owner of a full disk's words
        monkeypatch.setattr(tune_cli, "run", lambda args, extra: open_study(storage, settings) and 0)
        assert cli_status(["tune", "synthscapes", "--preset", "cut", "--out", str(full_disk)]) == 2
        said = capsys.readouterr().err
        assert said.strip() == (f"srunit tune synthscapes: error: {db}: the disk is full (No space left on device); "
                                f"that file was not written: free space and run the command again"), said
        (full_disk / "fill").unlink()  # the advice, followed
        assert open_study(storage, settings).study_name == "s"


def test_sqlites_full_disk_and_read_only_words_are_not_called_damage(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The same without root (SQLite's own exceptions, raised where Optuna opens the storage): "database or disk
    is full" is ENOSPC and "attempt to write a readonly database" a write refused, each naming the file and not
    "damaged"; a real damaged file keeps the move-aside advice (test_round_fifteen_jobs)."""
    import importlib
    import sqlite3

    import optuna

    from srunit.tune.study import open_study

    database_errors = importlib.import_module("sqlalchemy.exc")  # Optuna's storage layer, not a dependency of ours

    settings = _settings(tmp_path)
    db = tmp_path / "study.db"
    for words, number in (("database or disk is full", errno.ENOSPC),
                          ("attempt to write a readonly database", errno.EACCES)):
        def refuse(*args: object, words: str = words, **kwargs: object) -> None:
            raise database_errors.OperationalError("INSERT", {}, sqlite3.OperationalError(words))

        monkeypatch.setattr(optuna, "create_study", refuse)
        with pytest.raises(OSError) as err:
            open_study(f"sqlite:///{db}", settings)
        assert (err.value.errno, err.value.filename) == (number, str(db)), err.value
