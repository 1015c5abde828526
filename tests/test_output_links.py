"""Writes that follow nothing (issue 24, part 1): lock files are never anything but regular files of their own,
and a command writes into the output folder it opened, even if the folder is moved and a link to the inputs is
put in its place while it runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit._outputs import OutputLock
from srunit.errors import ConfigError, DataError

posix = pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "O_NOFOLLOW"), reason="symlinks: POSIX")


@posix
def test_a_lock_that_is_a_link_to_a_users_file_is_refused_and_the_file_untouched(tmp_path: Path) -> None:
    precious = tmp_path / "thesis.tex"
    precious.write_text("ten years of work\n")
    (tmp_path / ".out.png.lock").symlink_to(precious)
    with pytest.raises(ConfigError, match=r"the lock .*\.out\.png\.lock is a symbolic link \(to .*thesis.tex\).*rm "):
        OutputLock(tmp_path / "out.png", "--output")
    assert precious.read_text() == "ten years of work\n"
    # A dangling link (to a file the lock would create) is refused too, and nothing is created.
    (tmp_path / ".b.png.lock").symlink_to(tmp_path / "made.txt")
    with pytest.raises(ConfigError, match="is a symbolic link"):
        OutputLock(tmp_path / "b.png", "--output")
    assert not (tmp_path / "made.txt").exists()


@posix
def test_a_lock_hard_linked_to_another_file_gets_a_file_of_its_own(tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("keep\n")
    os.link(other, tmp_path / ".out.png.lock")
    with OutputLock(tmp_path / "out.png", "--output") as lock:
        assert os.stat(lock.path).st_nlink == 1 and lock.path.read_text().startswith("{")
    assert other.read_text() == "keep\n"


@posix
def test_a_folder_writer_keeps_writing_into_the_folder_it_opened(tmp_path: Path) -> None:
    from srunit._atomic import FolderWriter

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "a.png").write_bytes(b"source")
    out = tmp_path / "out"
    with FolderWriter(out) as writer:
        writer.write_bytes(out / "a.png", b"one")
        out.rename(tmp_path / "moved")
        out.symlink_to(inputs)  # the output's place now leads to the inputs
        writer.write_bytes(out / "a.png", b"two")
        writer.write_bytes(out / "sub" / "b.png", b"three")
    assert (inputs / "a.png").read_bytes() == b"source" and sorted(p.name for p in inputs.iterdir()) == ["a.png"]
    assert (tmp_path / "moved" / "a.png").read_bytes() == b"two"
    assert (tmp_path / "moved" / "sub" / "b.png").read_bytes() == b"three"


@posix
def test_a_folder_writer_does_not_enter_a_linked_sub_folder(tmp_path: Path) -> None:
    from srunit._atomic import FolderWriter

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(elsewhere)
    with FolderWriter(out) as writer, pytest.raises(DataError, match="sub/a.png: a folder on its way .* is a symbolic"):
        writer.write_bytes("sub/a.png", b"x")
    assert list(elsewhere.iterdir()) == []


@posix
def test_translate_writes_into_the_output_it_opened_when_the_output_is_swapped_for_a_link(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`srunit translate`: after the first image, --output is moved and a link to --input put in its place; no
    source image is overwritten and every translation lands in the moved folder."""
    import torch

    from srunit.inference import Translator
    from srunit.networks import ResnetGenerator

    inputs = tmp_path / "photos"
    inputs.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(inputs / f"{i}.png")
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    out = tmp_path / "out"
    translator = Translator(ResnetGenerator(3, 3, ngf=4, n_blocks=1).eval(), torch.device("cpu"))
    original = Translator.translate_images
    swapped = []

    def translate_images(self, images, batch_size=1, attribute=None):
        for i, img in enumerate(original(self, images, batch_size, attribute)):
            if i == 1 and not swapped:
                out.rename(tmp_path / "moved")
                out.symlink_to(inputs)
                swapped.append(True)
            yield img

    monkeypatch.setattr(Translator, "translate_images", translate_images)
    with torch.no_grad():
        translator.translate_folder(inputs, out, batch_size=1)
    assert swapped
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before
    assert sorted(p.name for p in (tmp_path / "moved").iterdir() if not p.name.startswith(".")) == \
        ["0.png", "1.png", "2.png"]


@posix
@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_appending_to_a_linked_file_writes_a_copy_of_its_own(tmp_path: Path, link: str) -> None:
    from srunit._atomic import open_append, replace_with_own_copy

    other = tmp_path / "other.jsonl"
    other.write_text('{"step": 1}\n')
    mine = tmp_path / "mine.jsonl"
    os.link(other, mine) if link == "hard" else mine.symlink_to(other)
    with open_append(mine) as f:
        f.write('{"step": 2}\n')
    assert other.read_text() == '{"step": 1}\n'
    assert mine.read_text() == '{"step": 1}\n{"step": 2}\n' and not mine.is_symlink()
    assert os.stat(mine).st_nlink == 1 and not replace_with_own_copy(mine)


@posix
def test_without_openat_a_swapped_output_folder_stops_the_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    """Where the system cannot write relative to an open folder, the folder's identity is checked before each
    write: a link put in its place is refused, never written through."""
    import srunit._atomic as atomic
    from srunit._atomic import FolderWriter

    monkeypatch.setattr(atomic, "_DIR_FD", False)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    out = tmp_path / "out"
    with FolderWriter(out) as writer:
        writer.write_bytes(out / "a.png", b"one")
        out.rename(tmp_path / "moved")
        out.symlink_to(inputs)
        with pytest.raises(DataError, match="was moved or replaced while srunit wrote into it"):
            writer.write_bytes(out / "a.png", b"two")
    assert list(inputs.iterdir()) == []
