"""Round five: odd environments end in a message or quietly, never in a traceback: a terminal that shows ASCII
only, a reader that closes the pipe early (`srunit ... | head`)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from srunit.cli.main import BROKEN_PIPE, main
from srunit.networks import ResnetGenerator
from srunit.runtime.network_files import save_network


@pytest.fixture
def tiny_network(tmp_path: Path) -> tuple[Path, Path]:
    net = tmp_path / "net" / "G.safetensors"
    save_network(ResnetGenerator(ngf=4, n_blocks=1), net, "ResnetGenerator")
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    Image.new("RGB", (8, 8)).save(image)
    return net, image


def test_an_ascii_only_stdout_gets_escapes_instead_of_a_traceback(tiny_network: tuple[Path, Path], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    net, image = tiny_network
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii", errors="strict"))  # PYTHONIOENCODING
    out = tmp_path / "sorties-\u00e9t\u00e9"
    assert main(["translate", "--checkpoint", str(net), "--input", str(image), "--output", str(out),
                 "--device", "cpu"]) == 0
    sys.stdout.flush()
    assert rb"into " + os.fsencode(tmp_path) + rb"/sorties-\xe9t\xe9 in" in raw.getvalue()
    assert (out / "a.png").is_file()


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(tiny_network: tuple[Path, Path], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture) -> None:
    net, image = tiny_network
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head` that has read its lines
    monkeypatch.setattr(sys, "stdout", open(write_end, "w", buffering=1))  # noqa: SIM115 - closed by _drop_stdout
    code = main(["translate", "--checkpoint", str(net), "--input", str(image), "--output", str(tmp_path / "o"),
                 "--device", "cpu"])
    assert code == BROKEN_PIPE
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.e2e
def test_srunit_piped_into_a_reader_that_is_gone_leaves_no_traceback() -> None:
    done = subprocess.run(f"{sys.executable} -m srunit train --preset cut --dry-run | true", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr


@pytest.mark.e2e
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full: Linux")
def test_stdout_on_a_full_disk_is_one_line_not_a_traceback(tiny_network: tuple[Path, Path], tmp_path: Path) -> None:
    """Round six: `srunit translate ... > /dev/full` (stdout on a full disk) ended in an OSError traceback from the
    command's last print; the images it wrote are whole."""
    net, image = tiny_network
    out = tmp_path / "o"
    done = subprocess.run(f"{sys.executable} -m srunit translate --checkpoint {net} --input {image} --output {out} "
                          f"--device cpu > /dev/full", shell=True, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        "srunit translate: error: a write to standard output failed (No space left on device)")
    assert (out / "a.png").is_file()


@pytest.mark.e2e
def test_a_closed_stdout_leaves_no_traceback(tiny_network: tuple[Path, Path], tmp_path: Path) -> None:
    """Round six: `srunit ... >&-` (stdout closed, so Python's sys.stdout is None) ended in an AttributeError
    traceback; the descriptor is now held by /dev/null, so no file srunit opens takes the place of stdout."""
    net, image = tiny_network
    out = tmp_path / "o"
    done = subprocess.run(f"{sys.executable} -m srunit translate --checkpoint {net} --input {image} --output {out} "
                          f"--device cpu >&-", shell=True, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert (out / "a.png").is_file()
