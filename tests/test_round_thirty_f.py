"""Round thirty (F): file size and descriptor limits, and a C locale (docs/what-survives-what.md)."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The fix srunit gives for a UTF-8 name that a C locale (Python's UTF-8 mode off) decodes as ASCII.
LOCALE_FIX = ("its bytes are UTF-8, but this Python decodes names as ascii (a C or POSIX locale with Python's UTF-8 "
              "mode off: PYTHONUTF8=0 or -X utf8=0); run srunit with PYTHONUTF8=1 (or LANG=C.UTF-8) and rename "
              "nothing")
ASCII_ENV = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}


def _limit_file_size(size: int):  # noqa: ANN202 - a preexec_fn
    def limit() -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return limit


def test_a_failed_tensorboard_writer_thread_is_one_oserror_naming_the_event_file(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The run folder's tensorboard/ moved away during training: TensorBoard's writer thread printed its traceback
    (`Exception in thread Thread-1: Traceback ...`), and the next write raised its OSError again with no file name.
    The logger raises one OSError naming the event file, and no thread's traceback is printed."""
    from srunit.engine.loggers import TensorBoardLogger

    run = tmp_path / "run"
    run.mkdir()
    logger = TensorBoardLogger(run, "run", {})
    logger.log_scalars(1, {"loss": 1.0})
    logger.writer.flush()
    (event_file,) = (run / "tensorboard").glob("events.out.tfevents.*")
    shutil.rmtree(run / "tensorboard")
    with pytest.raises(OSError) as info:
        for step in range(2, 50):
            logger.log_scalars(step, {"loss": 1.0})
        logger.close()  # joins the writer thread: its failure is known by then
    assert info.value.errno == errno.ENOENT
    assert Path(info.value.filename) == event_file
    logger.close()  # the failure is raised once: the trainer's close after it does not raise it again
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.slow
@pytest.mark.e2e  # srunit in a subprocess
def test_an_event_file_past_the_file_size_limit_names_the_file_and_the_limit_not_standard_output(
        tiny_data: Path, tiny_model_overrides: list[str], tmp_path: Path) -> None:
    """`(ulimit -f 20; srunit train ... --train.sample_every 1)`: the TensorBoard event file met the limit at 20,480
    bytes; the writer thread's traceback was printed, then `a write to standard output failed (File too large) ...
    send its output to a disk with space, or to /dev/null`. One line names the event file and the limit."""
    command = [sys.executable, "-m", "srunit", "train", "--preset", "cut", "--no-progress", "--data.root",
               str(tiny_data), "--data.load_size=36", "--data.crop_size=32", "--data.num_workers=0",
               "--train.device=cpu", "--train.steps=30", "--train.sample_every=1", "--train.checkpoint_every=1000",
               "--train.name=uf", *(f"--{o}" for o in tiny_model_overrides)]
    done = subprocess.run(command, cwd=tmp_path, preexec_fn=_limit_file_size(20 * 1024), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    (event_file,) = (tmp_path / "runs" / "uf" / "tensorboard").glob("events.out.tfevents.*")
    assert event_file.stat().st_size == 20 * 1024
    assert done.stderr.strip().splitlines()[-1] == (
        f"srunit train: error: runs/uf/tensorboard/{event_file.name}: File too large: the file size limit of this "
        f"process, 20,480 bytes (ulimit -f), was met; raise it (`ulimit -f unlimited` in the shell, or the job's "
        f"limit) and run the command again")


def test_optuna_logs_a_trial_that_met_the_open_files_limit_without_its_traceback() -> None:
    """`(ulimit -n 14; srunit tune data ...)`: Optuna logged `Trial 0 failed ... OSError(24, 'Too many open files')`
    with a 40-line traceback before srunit's own one-line error. The filter drops the traceback of what the command
    line reports in one line (EMFILE, an OSError naming its file) and keeps that of other exceptions."""
    from srunit.tune.study import _OwnErrorsInOneLine

    def record(err: BaseException) -> logging.LogRecord:
        return logging.LogRecord("optuna.study._optimize", logging.WARNING, __file__, 1, "Trial 0 failed", None,
                                 (type(err), err, None))

    for err in (OSError(errno.EMFILE, "Too many open files"), FileNotFoundError(errno.ENOENT, "No such file", "x")):
        kept = record(err)
        assert _OwnErrorsInOneLine().filter(kept) and kept.exc_info is None, err
    for err in (ValueError("a bug"), OSError(errno.EINVAL, "Invalid argument")):  # tracebacks the CLI shows too
        kept = record(err)
        assert _OwnErrorsInOneLine().filter(kept) and kept.exc_info is not None, err


@pytest.mark.e2e  # a subprocess with a file size limit
def test_a_study_storage_past_the_file_size_limit_names_the_limit_not_damage(tmp_path: Path) -> None:
    """`(ulimit -f 100; srunit tune data ...)`: SQLite met the limit making study.db (`disk I/O error`) and srunit
    called the file damaged: `move it away ... and run the same command again`, which failed the same way. The
    message names the limit; the same call without it then opens the study in that very file."""
    db = tmp_path / "study.db"
    script = ("import sys\nfrom srunit.errors import ConfigError\nfrom srunit.tune.study import TuneSettings, "
              "open_study\nsettings = TuneSettings(preset='cut', target={}, space={'method.lambda_nce': "
              "{'low': 0.5, 'high': 2.0}}, study_name='s')\n"
              "try:\n    open_study(sys.argv[1], settings)\nexcept ConfigError as err:\n    print(err)\n"
              "else:\n    print('opened')\n")
    limited = subprocess.run([sys.executable, "-c", script, f"sqlite:///{db}"], preexec_fn=_limit_file_size(40960),
                             capture_output=True, text=True, timeout=120)
    assert limited.returncode == 0, limited.stderr[-2000:]
    assert limited.stdout.startswith(f"the study's storage {db} could not be written (OperationalError: "), \
        limited.stdout
    assert "40,960 bytes (ulimit -f)" in limited.stdout and "damaged" not in limited.stdout, limited.stdout
    again = subprocess.run([sys.executable, "-c", script, f"sqlite:///{db}"], capture_output=True, text=True,
                           timeout=120)
    assert again.stdout.strip() == "opened", again.stdout + again.stderr[-2000:]


@pytest.mark.e2e  # srunit in a subprocess under a C locale
def test_export_of_a_utf8_run_folder_under_an_ascii_locale_gives_the_locale_fix(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`LC_ALL=C PYTHONUTF8=0 srunit export runs/rü --output lc.onnx` ended in a UnicodeEncodeError traceback
    (`surrogates not allowed`, the ONNX metadata naming the checkpoint). It is one line with the locale fix, and
    nothing is written."""
    run = tmp_path / "rü"
    shutil.copytree(tiny_runs["cut"], run)
    done = subprocess.run([sys.executable, "-m", "srunit", "export", "rü", "--output", "lc.onnx"], cwd=tmp_path,
                          env=ASCII_ENV, capture_output=True, text=True, errors="replace", timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("srunit export: error: the checkpoint b'") and last.endswith(LOCALE_FIX), last
    assert "r\\xc3\\xbc/checkpoints/" in last and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert not list(tmp_path.glob("lc.onnx*"))


@pytest.mark.e2e  # srunit in a subprocess under a C locale
def test_resume_of_a_utf8_run_folder_under_an_ascii_locale_gives_the_locale_fix(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`LC_ALL=C PYTHONUTF8=0 srunit train --resume runs/rü`: `tensorboard: the tracker could not start
    (UnicodeEncodeError ...); ... leave tensorboard out ... (resume the run with srunit train --resume
    runs/r\\udcc3\\udcbc ...)`, a path that cannot be typed and a fix that is not the cause's. It is the locale fix,
    before anything in the run changes."""
    run = tmp_path / "rü"
    shutil.copytree(tiny_runs["cut"], run)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    done = subprocess.run([sys.executable, "-m", "srunit", "train", "--resume", "rü", "--train.steps=2",
                           "--no-progress"], cwd=tmp_path, env=ASCII_ENV, capture_output=True, text=True,
                          errors="replace", timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == f"srunit train: error: the run folder b'r\\xc3\\xbc': {LOCALE_FIX}"
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
