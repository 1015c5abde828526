"""Run folders that follow nothing (issue 24, part 1): a lock planted as a link is refused, a run copied with
links (``cp -al``, ``cp -as``) is resumed without writing a byte of the run it was copied from, and run
folders and data folders stay apart."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.data import scan_images
from srunit.engine import Trainer
from srunit.engine.run_state import RunLock, append_history, trim_metrics
from srunit.errors import ConfigError, DataError

posix = pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "O_NOFOLLOW"), reason="links: POSIX")


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (links followed, as a reader sees them) -> sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@posix
def test_a_run_lock_that_is_a_link_to_a_users_file_is_refused_and_the_file_untouched(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    precious = tmp_path / "notes.txt"
    precious.write_text("mine\n")
    (run / "train.lock").symlink_to(precious)
    with pytest.raises(ConfigError, match=r"run folder .*: the lock .*train.lock is a symbolic link \(to "
                                          r".*notes.txt\).*remove .*train.lock"):
        RunLock(run)
    assert precious.read_text() == "mine\n"


@posix
@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_history_and_metrics_linked_into_another_run_are_never_written(tmp_path: Path, link: str) -> None:
    other, run = tmp_path / "other", tmp_path / "run"
    other.mkdir()
    run.mkdir()
    (other / "history.jsonl").write_text('{"event": "start", "step": 0}\n')
    (other / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.5}\n')
    for name in ("history.jsonl", "metrics.jsonl"):
        os.link(other / name, run / name) if link == "hard" else (run / name).symlink_to(other / name)
    before = _snapshot(other)
    append_history(run, "resume", 2)
    trim_metrics(run, 2)  # nothing to trim: the file is still made the run's own before the trainer appends to it
    assert not (run / "metrics.jsonl").is_symlink() and os.stat(run / "metrics.jsonl").st_nlink == 1
    trim_metrics(run, 1)
    assert _snapshot(other) == before
    assert [json.loads(line)["event"] for line in (run / "history.jsonl").read_text().splitlines()] == \
        ["start", "resume"]
    assert (run / "metrics.jsonl").read_text() == '{"step": 1, "loss": 1.0}\n'
    assert all(not (run / n).is_symlink() and os.stat(run / n).st_nlink == 1 for n in ("history.jsonl",
                                                                                       "metrics.jsonl"))


def test_a_damaged_metrics_log_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DataError, match=r"metrics.jsonl \(line 2\) nests JSON"):
        trim_metrics(tmp_path, 1)
    (tmp_path / "history.jsonl").write_bytes(b'{"event": "start"}\n\xc3(\n')
    with pytest.raises(DataError, match=r"history.jsonl is not UTF-8 text \(byte 0xc3 on line 2\)"):
        append_history(tmp_path, "resume", 1)


@pytest.fixture
def run_config(tiny_config, tiny_data: Path, tmp_path: Path) -> Callable[..., object]:
    def make(name: str, *overrides: str):
        return tiny_config("cut", "train.log_every=1", "train.sample_every=1", "train.checkpoint_every=1",
                           "train.keep_every=100", "train.steps=2", "train.decay_fraction=0", f"train.name={name}",
                           *overrides, data_root=tiny_data, runs_dir=tmp_path)

    return make


@posix
@pytest.mark.parametrize("flag", ["-al", "-as"])
def test_resuming_a_run_copied_with_links_leaves_the_original_untouched(run_config, tmp_path: Path, flag: str
                                                                         ) -> None:
    """A fork made with ``cp -al`` (hard links) or ``cp -as`` (symbolic links) shares every file with its original;
    resuming the fork copies what it appends to or rewrites, so the original keeps every byte."""
    if shutil.which("cp") is None or subprocess.run(["cp", flag, "--help"], capture_output=True).returncode != 0:
        pytest.skip(f"no GNU cp {flag}")
    original = Path(Trainer(run_config("original"), show_progress=False).fit())
    fork = tmp_path / "fork"
    subprocess.run(["cp", flag, str(original.resolve()), str(fork)], check=True)
    before = _snapshot(original)
    if flag == "-as":  # the lock is a link: refused with the way out, then taken once removed
        with pytest.raises(ConfigError, match=r"train.lock is a symbolic link .*cp -as.*rm "):
            Trainer.resume(fork, ["train.steps=4"], show_progress=False)
        (fork / "train.lock").unlink()
    Trainer.resume(fork, ["train.steps=4"], show_progress=False).fit()
    assert _snapshot(original) == before
    steps = [json.loads(line)["step"] for line in (fork / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert [json.loads(line)["step"] for line in (original / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_a_run_folder_inside_the_training_images_is_refused(run_config, tiny_data: Path) -> None:
    with pytest.raises(ConfigError, match=r"inside data.root .*the training images.*nothing was written"):
        Trainer(run_config("inside", f"train.runs_dir={tiny_data / 'trainA' / 'runs'}"), show_progress=False)
    assert not (tiny_data / "trainA" / "runs").exists()


def test_a_run_folder_inside_a_data_folder_is_not_read_as_images(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "trainA"
    run = data / "runs" / "photo"
    (run / "samples").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "config.yaml").write_text("method: {name: cut}\n")
    for path in (data / "a.png", run / "samples" / "step_00000001.png"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    assert scan_images(data, "domain A") == [data / "a.png"]
    assert "skipping the run folder" in caplog.text and str(run) in caplog.text
    with pytest.raises(DataError, match="is a run folder of srunit train"):
        scan_images(run, "domain A")
