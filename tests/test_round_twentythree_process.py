"""Round twenty-three (B): the process a user runs srunit in (global torch state a caller set before the API)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from srunit.config import Config
from srunit.errors import ConfigError


@pytest.fixture
def torch_defaults() -> Iterator[None]:
    """Whatever a test sets of torch's process-wide defaults is put back after it."""
    dtype, device = torch.get_default_dtype(), torch.get_default_device()
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_default_device(device)


DEFAULTS = {
    "float64": (lambda: torch.set_default_dtype(torch.float64),
                "torch's default dtype is torch.float64 (torch.set_default_dtype)"),
    "float16": (lambda: torch.set_default_dtype(torch.float16),
                "torch's default dtype is torch.float16 (torch.set_default_dtype)"),
    "meta": (lambda: torch.set_default_device("meta"),
             "torch's default device is meta (torch.set_default_device)"),
}


@pytest.mark.parametrize("default", sorted(DEFAULTS))
def test_torch_defaults_srunit_cannot_compute_under_are_refused_by_name(
        default: str, torch_defaults: None, tiny_config: Callable[..., Config], tiny_data: Path,
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`torch.set_default_dtype(torch.float64)` (or float16, or `torch.set_default_device("meta")`) before the API:
    `Trainer(...).fit()` and `Translator.from_checkpoint(...).translate_folder(...)` ended in torch's `RuntimeError:
    Input type (float) and bias type (double) should be the same` (meta: `NotImplementedError: Cannot copy out of meta
    tensor`), and `export_generator` wrote a file of float64 weights that said fp32. Each is now refused naming the
    default, the call that set it and the call that puts it back."""
    from srunit import Trainer, Translator, export_generator

    config = tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=tmp_path / "runs")
    set_default, named = DEFAULTS[default]
    set_default()
    calls: list[Callable[[], object]] = [
        lambda: Trainer(config, show_progress=False),
        lambda: Translator.from_checkpoint(tiny_runs["cut"], device="cpu"),
        lambda: export_generator(tiny_runs["cut"], tmp_path / "g.pt2", check_sizes=[(1, 32, 32)]),
    ]
    for call in calls:
        with pytest.raises(ConfigError) as err:
            call()
        text = str(err.value)
        assert "\n" not in text and named in text, text
        assert ("torch.set_default_dtype(torch.float32)" if "dtype" in named else "torch.set_default_device('cpu')"
                ) in text, text
    assert not (tmp_path / "runs").exists() and not (tmp_path / "g.pt2").exists()
    # the advice as printed puts srunit back to work
    torch.set_default_dtype(torch.float32)
    torch.set_default_device("cpu")
    assert Translator.from_checkpoint(tiny_runs["cut"], device="cpu").translate_tensor(
        torch.zeros(1, 3, 32, 32)).dtype == torch.float32


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(str(run / "checkpoints" / "latest" / "G.safetensors"))


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_a_trainer_trains_under_a_callers_no_grad_or_inference_mode(
        mode: str, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    """`torch.set_grad_enabled(False)` or `with torch.inference_mode():` around `Trainer(config).fit()` (a caller that
    just translated something): training stopped at step 0 with `method 'cut' ...: phase 'D' returned as its loss a
    tensor ... that does not require grad ...: fix the plugin`, blaming a built-in method. Training owns its grad mode
    now: the run is the one trained in a plain process, weight for weight."""
    from srunit import Trainer

    def train(name: str) -> Path:
        config = tiny_config("cut", "train.steps=1", f"train.name={name}", data_root=tiny_data,
                             runs_dir=tmp_path / "runs")
        return Trainer(config, show_progress=False).fit()

    plain = _weights(train("plain"))
    if mode == "no_grad":
        with torch.no_grad():
            run = train("caller")
    else:
        with torch.inference_mode():
            run = train("caller")
    assert torch.is_grad_enabled()
    caller = _weights(run)
    assert caller.keys() == plain.keys()
    for key, value in plain.items():
        assert torch.equal(caller[key], value), key


def _train_command(tiny_data: Path, tiny_model_overrides: list[str], *extra: str) -> list[str]:
    import sys
    return [sys.executable, "-m", "srunit", "train", "--preset", "cut", "--no-progress", "--data.root", str(tiny_data),
            "--data.load_size=36", "--data.crop_size=32", "--data.num_workers=0", "--train.device=cpu",
            "--train.steps=1", "--train.name=r", *(f"--{o}" for o in tiny_model_overrides), *extra]


@pytest.mark.slow
def test_a_file_size_limit_met_by_a_checkpoint_names_the_limit_not_standard_output(
        tiny_data: Path, tiny_model_overrides: list[str], tmp_path: Path) -> None:
    """`ulimit -f 100`, then `srunit train`: the checkpoint's write met EFBIG and the command said `a write to
    standard output failed (File too large); the files the command wrote are whole: send its output to a disk with
    space, or to /dev/null` (no checkpoint had been written). It now names the limit, the file and the way on, and
    the resume it advises, once the limit is raised, trains the run."""
    import resource
    import signal
    import subprocess

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as Python itself does: the write then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 1024, 100 * 1024))

    command = _train_command(tiny_data, tiny_model_overrides, "--train.loggers=[]")
    done = subprocess.run(command, cwd=tmp_path, preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("srunit train: error: the file size limit of this process, 102,400 bytes (ulimit -f), was "
                           "met while writing runs/r/checkpoints/"), last
    assert "ulimit -f unlimited" in last and "srunit train --resume RUN" in last and "standard output" not in last
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "runs" / "r" / "checkpoints").iterdir())
    import sys
    resumed = subprocess.run([sys.executable, "-m", "srunit", "train", "--resume", "runs/r", "--no-progress"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (tmp_path / "runs" / "r" / "checkpoints" / "step_00000001" / "G.safetensors").is_file()


@pytest.fixture
def time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """``(tz)`` sets $TZ for this process (time.tzset); the old zone is back after the test."""
    import time

    def set_zone(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_a_time_zone_offset_past_24_hours_is_written_in_utc_not_a_traceback(
        time_zone: Callable[[str], None], tiny_config: Callable[..., Config], tiny_data: Path,
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`TZ=XYZ-24:30` (POSIX allows offsets up to 24:59:59; `date` shows the time there): every command that takes a
    run's lock, and `srunit report`, ended in `ValueError: offset must be a timedelta strictly between
    -timedelta(hours=24) and timedelta(hours=24)` from `datetime.astimezone`. Such a zone is written in UTC."""
    import datetime
    import json

    from srunit import Trainer
    from srunit.report import build_report

    time_zone("XYZ-24:30")
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    run = Trainer(tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=tmp_path / "runs"),
                  show_progress=False).fit()
    start = json.loads((run / "history.jsonl").read_text().splitlines()[0])
    when = datetime.datetime.fromisoformat(start["time"])
    assert when.utcoffset() == datetime.timedelta(0)
    assert before <= when <= datetime.datetime.now(datetime.timezone.utc)
    page = build_report([tiny_runs["cut"]], tmp_path / "report.html")
    assert "generated " in Path(page).read_text()
    time_zone("XYZ-05:30")  # an offset Python holds is still written as the local time
    Trainer(tiny_config("cut", "train.steps=1", "train.name=other", data_root=tiny_data, runs_dir=tmp_path / "runs"),
            show_progress=False).fit()
    other = json.loads((tmp_path / "runs" / "other" / "history.jsonl").read_text().splitlines()[0])
    assert other["time"].endswith("+05:30"), other


@pytest.mark.slow
def test_the_train_summary_names_only_the_trackers_the_run_wrote(
        tiny_data: Path, tiny_model_overrides: list[str], tmp_path: Path) -> None:
    """`srunit train ... --train.loggers []` ended with `logs: tensorboard --logdir runs/r/tensorboard`, a folder
    that run never made (TensorBoard, run as printed, shows no data). The summary names TensorBoard only for a run
    that logs to it, and the metrics file every run writes."""
    import subprocess

    for loggers, shown in (("[]", False), ("[tensorboard]", True)):
        done = subprocess.run(_train_command(tiny_data, tiny_model_overrides, f"--train.loggers={loggers}",
                                             f"--train.name=r{len(loggers)}"),
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        run = tmp_path / "runs" / f"r{len(loggers)}"
        assert ("tensorboard --logdir" in done.stdout) == shown == (run / "tensorboard").is_dir(), done.stdout
        assert f"metrics:    runs/r{len(loggers)}/metrics.jsonl" in done.stdout
        assert (run / "metrics.jsonl").is_file()


@pytest.mark.e2e  # srunit in a subprocess
def test_utf8_names_under_an_ascii_locale_are_refused_with_the_locale_fix_not_a_rename(
        tiny_data: Path, tiny_model_overrides: list[str], tmp_path: Path) -> None:
    """`LC_ALL=C PYTHONUTF8=0 srunit train --train.name rü` (or a data folder holding `bü.png`): Python decodes the
    arguments and file names as ASCII, and srunit said `train.name b'r\\xc3\\xbc' is not valid UTF-8 ...: choose a
    UTF-8 name (or rename the folder, e.g. with convmv)` (for the data: `convmv -f latin1 -t utf-8`, which garbles a
    name that is UTF-8 already). The bytes are UTF-8: the message says so and gives the locale fix, which works."""
    import os
    import shutil
    import subprocess

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    first = sorted((data / "trainA").iterdir())[0]
    first.rename(first.with_name("bü.png"))
    ascii_env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    fix = ("its bytes are UTF-8, but this Python decodes names as ascii (a C or POSIX locale with Python's UTF-8 mode "
           "off: PYTHONUTF8=0 or -X utf8=0); run srunit with PYTHONUTF8=1 (or LANG=C.UTF-8) and rename nothing")
    for extra, named in ((["--train.name=rü", "--dry-run"], "train.name b'r\\xc3\\xbc': "),
                         (["--dry-run"], "holds 1 file name(s) this Python cannot decode: b'b\\xc3\\xbc.png'; ")):
        done = subprocess.run(_train_command(data, tiny_model_overrides, *extra), cwd=tmp_path, env=ascii_env,
                              capture_output=True, text=True, errors="replace", timeout=300)
        assert done.returncode == 2, done.stderr[-2000:]
        last = done.stderr.strip().splitlines()[-1]
        assert named + fix in last and "convmv" not in last and "not valid UTF-8" not in last, last
    fixed = subprocess.run(_train_command(data, tiny_model_overrides, "--train.name=rü", "--dry-run"), cwd=tmp_path,
                           env={**ascii_env, "PYTHONUTF8": "1"}, capture_output=True, text=True, timeout=300)
    assert fixed.returncode == 0, fixed.stderr[-2000:]


@pytest.mark.e2e  # srunit in a subprocess
def test_too_many_open_files_names_the_limit_not_a_traceback(tiny_data: Path, tiny_model_overrides: list[str],
                                                             tmp_path: Path) -> None:
    """`ulimit -n 12; srunit train ... --data.num_workers 2`: the loader's `os.pipe()` met EMFILE, an OSError that
    names no file, and the command ended in its traceback. It is one line naming the limit and how to raise it."""
    import resource
    import subprocess

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (12, 12))

    command = [*_train_command(tiny_data, tiny_model_overrides, "--train.loggers=[]"), "--data.num_workers=2"]
    done = subprocess.run(command, cwd=tmp_path, preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        "srunit train: error: too many open files: this process may open 12 (ulimit -n); raise the limit (e.g. "
        "ulimit -n 4096) and run the command again")


def test_running_out_of_memory_is_one_line_naming_the_limit(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`ulimit -v 700000; srunit train ...`: torch's import of its compiler inside the optimizer raised MemoryError
    and the command ended in its traceback. Whatever raises it, the command says so in one line with the limit.
    (The allocator's refusal is made here by the command itself: where a real limit strikes depends on the build.)"""
    import resource

    from srunit.cli import main as cli
    from srunit.cli import translate

    def refuse(*args: object) -> int:
        raise MemoryError

    monkeypatch.setattr(translate, "run", refuse)
    assert cli.main(["translate", "--checkpoint", "r", "--input", "i", "--output", "o"]) == 2
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    words = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft:,} bytes"
    assert capsys.readouterr().err == (
        f"srunit translate: error: out of memory (MemoryError) with this process's address space limited to {words} "
        f"(ulimit -v); raise the limit or free memory, or ask for less (smaller images, batches or networks)\n")


@pytest.mark.e2e  # srunit in a subprocess
def test_a_file_size_limit_met_by_an_output_names_the_limit(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`ulimit -f 4; srunit report RUN --out rep.html`: `rep.html: File too large; check the path, its permissions
    and the free space`, none of which was the cause. The message names the limit and how to raise it."""
    import resource
    import signal
    import subprocess
    import sys

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    done = subprocess.run([sys.executable, "-m", "srunit", "report", str(tiny_runs["cut"]), "--out", "rep.html"],
                          cwd=tmp_path, preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        "srunit report: error: rep.html: File too large: the file size limit of this process, 4,096 bytes (ulimit "
        "-f), was met; raise it (`ulimit -f unlimited` in the shell, or the job's limit) and run the command again")
    assert not (tmp_path / "rep.html").exists()


def test_a_run_held_by_another_trainer_of_the_same_process_says_so(tiny_config: Callable[..., Config],
                                                                  tiny_data: Path, tmp_path: Path) -> None:
    """Two `Trainer(config)` of one run in one Python session (the first not yet fitted): the second said the run
    `is in use by pid P ...; wait for that training to end or stop it (SIGTERM saves a checkpoint)`, P being the
    caller's own process, which that advice would end. It now names the other Trainer and its `release()`, which,
    called as advised, lets the second take the run."""
    import os

    from srunit import Trainer

    config = tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=tmp_path / "runs")
    first = Trainer(config, show_progress=False)
    with pytest.raises(ConfigError) as err:
        Trainer(config, show_progress=False)
    text = str(err.value)
    assert text.startswith(f"run folder {tmp_path / 'runs' / 'cut'} is held by another Trainer of this process "
                           f"(pid {os.getpid()} on "), text
    assert "call that Trainer's release()" in text and "SIGTERM" not in text
    first.release()
    assert (Trainer(config, show_progress=False).fit() / "checkpoints" / "latest").is_dir()


@pytest.mark.slow
@pytest.mark.parametrize("args", [["train", "--help"], ["translate", "--help"], ["data", "split", "--help"],
                                  ["--version"]])
def test_help_and_version_on_a_full_disk_are_one_line_not_silence(args: list[str]) -> None:
    """`srunit train --help > /dev/full` (or `--version`): argparse drops a refused write, so the command wrote
    nothing, said nothing and exited 0, where every other output on a full disk is one line and status 2."""
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "srunit", *args], stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().endswith("a write to standard output failed (No space left on device); the files the "
                                        "command wrote are whole: send its output to a disk with space, or to "
                                        "/dev/null"), done.stderr
    assert "Traceback" not in done.stderr
    shown = subprocess.run([sys.executable, "-m", "srunit", *args], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout and not shown.stderr, shown.stderr[-2000:]
