"""Nothing is written where it must not be: the one output guard of every command that writes, end to end
(srunit._outputs). Each test is a defect that existed: the command replaced a file it had read, wrote into a
run folder, mixed two commands' outputs, left a partial data set, or died with a traceback."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from srunit._outputs import OutputLock
from srunit.cli.main import main


@pytest.fixture
def run_copy(tiny_runs: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of a tiny trained cut run (runs/cut: config.yaml, run.json, checkpoints/latest/G.safetensors...)."""
    run = tmp_path / "runs" / "cut"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    return run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _images(folder: Path, n: int = 2, size: int = 16) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (size, size), (40 * i, 100, 200)).save(folder / f"{i:04d}.png")
    return folder


def _code(argv: list[str]) -> int | str | None:
    """main's exit status, also where argparse itself refuses a value (SystemExit 2)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def _err(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# ----------------------------------------------------------------------------- the three reported overwrites

def test_report_out_never_replaces_a_file_of_the_run(run_copy: Path, capsys: pytest.CaptureFixture) -> None:
    before = _snapshot(run_copy)
    for target in ("config.yaml", "run.json", "notes.html"):
        assert main(["report", str(run_copy), "--out", str(run_copy / target), "--overwrite"]) == 2
        err = _err(capsys)
        assert f"--out {run_copy / target}" in err and str(run_copy) in err
    assert _snapshot(run_copy) == before
    # The designated place stays allowed, and is rewritten on the next report.
    assert main(["report", str(run_copy)]) == 0
    assert main(["report", str(run_copy)]) == 0
    assert (run_copy / "report.html").is_file()


def test_export_never_replaces_a_network_file_of_the_run(run_copy: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    before = _snapshot(run_copy)
    weights = run_copy / "checkpoints" / "latest" / "G.safetensors"
    assert main(["export", str(run_copy), "--output", str(weights), "--format", "torchscript", "--overwrite"]) == 2
    assert f"--output {weights}" in _err(capsys)
    # Also through a symlink to the run and through '..': compared by file identity, not by path text.
    link = tmp_path / "link"
    link.symlink_to(run_copy)
    sneaky = link / "checkpoints" / ".." / "config.ts"
    assert main(["export", str(run_copy), "--output", str(sneaky), "--overwrite"]) == 2
    assert f"is inside the checkpoint {run_copy}" in _err(capsys)
    # A loose weights file: exported from a copy, written into the run it came from.
    loose = tmp_path / "G.safetensors"
    shutil.copy(weights, loose)
    assert main(["export", str(loose), "--output", str(run_copy / "g.ts")]) == 2
    assert f"is inside the run folder {run_copy.resolve()}" in _err(capsys)
    assert _snapshot(run_copy) == before


def test_eval_json_never_replaces_an_input(tmp_path: Path, python_segmenter: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    images, labels = _images(tmp_path / "images"), _images(tmp_path / "labels")
    before = _snapshot(labels)
    seg = ["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
           f"{python_segmenter}:segment", "--classes", "3"]
    assert main([*seg, "--json", str(labels / "0000.png"), "--overwrite"]) == 2
    err = _err(capsys)
    assert f"--json {labels / '0000.png'} is inside --labels {labels}" in err
    assert main([*seg, "--json", str(images / "scores.json")]) == 2
    assert "is inside --images" in _err(capsys)
    assert _snapshot(labels) == before and not (images / "scores.json").exists()
    # An existing --json is replaced only with --overwrite; --sources must exist.
    (tmp_path / "scores.json").write_text("mine")
    assert main([*seg, "--json", str(tmp_path / "scores.json")]) == 2
    assert "--overwrite" in _err(capsys) and (tmp_path / "scores.json").read_text() == "mine"
    assert main([*seg, "--run", str(tmp_path / "run"), "--sources", str(tmp_path / "nope")]) == 2
    assert f"--sources {tmp_path / 'nope'}" in _err(capsys)
    # The record replaces RUN/eval/predicted: labels kept there would be deleted.
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("method: {name: cut}\n")
    (run / "run.json").write_text("{}")
    kept = _images(run / "eval" / "predicted")
    before = _snapshot(kept)
    assert main(["eval", "seg", "--images", str(images), "--labels", str(kept), "--segmenter",
                 f"{python_segmenter}:segment", "--classes", "3", "--run", str(run)]) == 2
    assert f"--labels {kept} is inside {run / 'eval'}" in _err(capsys)
    assert _snapshot(kept) == before


# ----------------------------------------------------------------------------- translate

def test_translate_output_inside_an_input_or_a_run_is_refused(run_copy: Path, tiny_runs: dict[str, Path],
                                                               tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _images(tmp_path / "in")
    link = tmp_path / "alias"
    link.symlink_to(src)
    base = ["translate", "--checkpoint", str(tiny_runs["srunit"]), "--input", str(src), "--output"]
    for out, words in ((link / "out", "is inside --input"), (src / "x" / ".." / "y", "is inside --input"),
                       (run_copy / "translated", "run folder"), (tiny_runs["srunit"] / "t", "--checkpoint")):
        assert main([*base, str(out)]) == 2
        assert words in _err(capsys)
    assert sorted(p.name for p in src.iterdir()) == ["0000.png", "0001.png"]
    assert not (run_copy / "translated").exists()
    assert _code([*base, ""]) == 2
    assert "argument --output: an empty path" in _err(capsys)


def test_two_translations_into_one_folder_the_second_is_refused(tiny_runs: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    src, out = _images(tmp_path / "in"), tmp_path / "out"
    argv = ["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(src), "--output", str(out)]
    with OutputLock(out, "--output"):  # what the first command holds while it writes
        assert main(argv) == 2
        assert f"--output {out.absolute()} is being written by pid" in _err(capsys)
    assert not out.exists() or not any(out.iterdir())
    assert main(argv) == 0  # released: the lock file is gone with its holder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


def test_translate_checks_name_lengths_before_writing(tiny_runs: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in"
    _images(src)
    Image.new("RGB", (16, 16)).save(src / ("n" * 240 + ".jpg"))  # 244 bytes + ".png" + the temporary name > 255
    out = tmp_path / "out"
    assert main(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(src), "--output", str(out)]) == 2
    err = _err(capsys)
    assert "bytes long" in err and "nothing was written" in err
    assert not out.exists() or not any(out.rglob("*"))


def test_translate_disk_full_is_one_line(tiny_runs: dict[str, Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from srunit._atomic import FolderWriter

    def full(self: FolderWriter, path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FolderWriter, "write_bytes", full)
    src, out = _images(tmp_path / "in"), tmp_path / "out"
    assert main(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(src), "--output", str(out)]) == 2
    err = _err(capsys).strip()
    assert "\n" not in err and "the disk is full" in err and str(out / "0000.png") in err
    assert "0 of 2 images were written" in err


# ----------------------------------------------------------------------------- export

def test_export_format_and_path_errors(run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", str(run_copy), "--output", str(tmp_path / "g.ts"), "--format", "onnx"]) == 2
    assert "--format onnx contradicts --output" in _err(capsys)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", str(run_copy), "--output", str(blocker / "g.ts")]) == 2
    assert f"{blocker} is a file, not a folder" in _err(capsys)
    assert _code(["export", str(run_copy), "--output", ""]) == 2
    assert "argument --output: an empty path" in _err(capsys)


# ----------------------------------------------------------------------------- report

def test_report_out_needs_overwrite_and_disk_full_is_one_line(run_copy: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.html"
    out.write_text("mine")
    assert main(["report", str(run_copy), "--out", str(out)]) == 2
    assert "--overwrite" in _err(capsys) and out.read_text() == "mine"
    from srunit._atomic import FolderWriter

    def full(folder_fd: int, name: str, data: bytes) -> None:  # the page is written relative to its folder
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FolderWriter, "_write_at", staticmethod(full))
    assert main(["report", str(run_copy), "--out", str(out), "--overwrite"]) == 2
    err = _err(capsys).strip()
    assert "\n" not in err and "the disk is full" in err and str(out) in err
    assert out.read_text() == "mine"


# ----------------------------------------------------------------------------- data, demo, bench

def test_data_names_and_outputs_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _images(tmp_path / "ab", size=8)
    for option, value in (("--left-name", "../escape"), ("--right-name", ""), ("--left-name", "..")):
        assert main(["data", "maps", "--input", str(src), "--out", str(tmp_path / "m"), option, value]) == 2
        assert f"{option} {value!r} must be a folder name" in _err(capsys)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "m").exists()
    assert main(["data", "maps", "--input", str(src), "--out", str(src / "halves")]) == 2
    assert "is inside --input" in _err(capsys)
    assert main(["data", "maps", "--input", str(src), "--out", str(tmp_path / "m")]) == 0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["map", "photo"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert _code(["data", "synthscapes", "--out", ""]) == 2
    assert "argument --out: an empty path" in _err(capsys)


def test_data_disk_full_leaves_no_partial_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    from srunit._atomic import FolderWriter

    calls = []
    real = FolderWriter._write_at

    def full_after_three(folder_fd: int, name: str, data: bytes) -> None:  # the set is written relative to --out
        calls.append(name)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(folder_fd, name, data)

    monkeypatch.setattr(FolderWriter, "_write_at", staticmethod(full_after_three))
    out = tmp_path / "ss"
    assert main(["data", "synthscapes", "--out", str(out), "--size", "16", "--num-pool", "8", "--num-test", "1"]) == 2
    err = _err(capsys).strip()
    assert "\n" not in err and f"--out {out.absolute()}: the disk is full" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_killed_data_synthscapes_leaves_nothing_train_accepts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """SIGKILL mid-way: --out does not exist (the set was built in a hidden partial folder beside it); the
    next run removes that leftover and writes the whole set."""
    out = tmp_path / "ss"
    argv = [sys.executable, "-m", "srunit", "data", "synthscapes", "--out", str(out), "--size", "16",
            "--num-pool", "4000", "--num-test", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(p.name.startswith(".ss.partial-") and any(p.rglob("*.png"))
                                                      for p in tmp_path.iterdir()):
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".ss.partial-")]  # what the next run tidies
    assert main(["train", "--preset", "cut", "--data.root", str(out), "--train.runs_dir", str(tmp_path / "runs"),
                 "--train.steps", "1", "--train.device", "cpu", "--no-progress"]) == 2
    assert f"{out / 'trainA'} does not exist" in _err(capsys)
    assert main(["data", "synthscapes", "--out", str(out), "--size", "16", "--num-pool", "8", "--num-test", "1"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "runs") == ["ss"]
    assert (out / "manifest.json").is_file()


def test_demo_and_bench_names_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--runs-dir", str(tmp_path), "--name", "../up"]) == 2
    assert "--name '../up' must be a folder name" in _err(capsys)
    assert main(["demo", "--runs-dir", str(tmp_path), "--name", "x" * 250]) == 2
    assert "--name: the name is 250 bytes long" in _err(capsys)
    assert _code(["bench", "synthscapes", "--out", ""]) == 2
    assert "argument --out: an empty path" in _err(capsys)
    assert _code(["bench", "speed", "--json", ""]) == 2
    assert "argument --json: an empty path" in _err(capsys)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- found by a second probe


def test_an_output_that_is_a_device_or_fifo_is_never_replaced(run_copy: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    """`report RUN --out /dev/full --overwrite` replaced the device node with a regular file (as root)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert _code(["report", str(run_copy), "--out", str(fifo), "--overwrite"]) == 2
    assert "not a regular file" in _err(capsys)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_sizes_given_to_eval_and_data_are_bounded(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`eval seg --classes 1000000000` died allocating a 7 EiB matrix; `data synthscapes --num-pool 10**12`
    ran for ever."""
    images = _images(tmp_path / "images")
    assert _code(["eval", "seg", "--images", str(images), "--labels", str(images), "--segmenter", "synthscapes",
                  "--classes", str(10**9)]) == 2
    assert "--classes must be an integer from 1 to 4,096" in _err(capsys)
    for option in ("--num-pool", "--num-test", "--size"):
        assert _code(["data", "synthscapes", "--out", str(tmp_path / "ss"), option, str(10**12)]) == 2
        assert f"{option} must be an integer from" in _err(capsys)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_a_new_run_never_goes_inside_another_run(run_copy: Path, tmp_path: Path, tiny_data: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    """`train --train.runs_dir RUN/checkpoints` trained a new run inside another run's checkpoints."""
    before = _snapshot(run_copy)
    assert _code(["train", "--preset", "cut", "--data.root", str(tiny_data), "--train.runs_dir",
                  str(run_copy / "checkpoints"), "--train.steps", "1", "--model.ngf", "4", "--model.ndf", "4",
                  "--data.crop_size", "32", "--data.load_size", "36"]) == 2
    assert "inside the run folder" in _err(capsys)
    assert _snapshot(run_copy) == before
