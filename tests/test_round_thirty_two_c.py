"""Round thirty-two (C): export and the data commands' staged folders written relative to a folder opened once.

Round thirty-two (A) moved the output's parent folder away while `export` or `data synthscapes` wrote and put a link
to a folder of the user's in its place: the export replaced the user's file through the link, and the data set was
finished in the user's folder without its training split. Each test does that swap at a set moment (from a function
srunit calls between two writes) and checks the user's folder byte for byte."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from srunit.cli.main import main


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) below ``folder``, links not followed."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def _swap(folder: Path, moved: Path, victim: Path) -> None:
    """`mv FOLDER MOVED; ln -s VICTIM FOLDER`, as round thirty-two (A) did."""
    os.rename(folder, moved)
    os.symlink(victim, folder)


def _stopped_naming_both(err: str, folder: Path, moved: Path) -> None:
    assert "Traceback" not in err
    assert re.search(rf"{re.escape(str(folder))} was moved or replaced while .* it is now at {re.escape(str(moved))}",
                     err), err


@pytest.mark.parametrize("when", ["before the partial file", "after the partial file", "after the check"])
def test_export_with_its_folder_swapped_for_a_link_leaves_the_linked_file(
        when: str, tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """32A (1): `export --output ed/g.pt2`, ed moved and linked to the user's folder while it exported: exit 0 and
    the user's victimE/g.pt2 replaced by the export, without --overwrite. Now the export stops with one line naming
    both places; the user's folder is as it was, and the moved folder holds no partial file."""
    from srunit import export as export_module

    ed, moved, victim = tmp_path / "ed", tmp_path / "ed-moved", tmp_path / "victimE"
    ed.mkdir()
    victim.mkdir()
    (victim / "g.ts").write_bytes(b"USER")
    before = _tree(victim)
    if when != "after the check":
        real_write = export_module._write_bytes

        def write_and_swap(path: Path, data: Any, *into: Any) -> None:
            if when == "before the partial file":  # as 32A's case: while the generator was traced
                _swap(ed, moved, victim)
            real_write(path, data, *into)
            if when == "after the partial file":
                _swap(ed, moved, victim)

        monkeypatch.setattr(export_module, "_write_bytes", write_and_swap)
    else:
        real_runner = export_module._torchscript_runner

        def load_then_swap(path: Path) -> Any:
            run = real_runner(path)
            _swap(ed, moved, victim)
            return run

        monkeypatch.setattr(export_module, "_torchscript_runner", load_then_swap)
    code = main(["export", str(tiny_runs["cut"]), "--output", str(ed / "g.ts"), "--check-size", "32x32"])
    err = capsys.readouterr().err
    assert code != 0
    _stopped_naming_both(err, ed, moved)
    assert _tree(victim) == before
    assert not [name for name in os.listdir(moved) if ".partial-" in name or name == "g.ts"]


def _image(path: Path, value: int = 90, size: tuple[int, int] = (8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, dtype=np.uint8)).save(path)


def _victim(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, bytes | None]]:
    """The output's parent P (made), where it is moved (P-moved), and the user's folder victimP with a file of
    theirs, and its tree before."""
    parent, moved, victim = tmp_path / "P", tmp_path / "P-moved", tmp_path / "victimP"
    parent.mkdir()
    victim.mkdir()
    (victim / "mine.txt").write_bytes(b"USER")
    return parent, moved, victim, _tree(victim)


def _nothing_of_the_set_kept(moved: Path, name: str) -> None:
    """The moved folder keeps neither the set nor its partial folder (a lock file may stay: it is named by path)."""
    assert not [entry for entry in os.listdir(moved) if entry == name or ".partial-" in entry], os.listdir(moved)


@pytest.mark.slow
def test_data_synthscapes_with_its_parent_swapped_for_a_link_between_the_splits_writes_nothing_there(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """32A (2): `data synthscapes --out P/ds`, P moved and linked to the user's folder after the training split:
    exit 0, "wrote P/ds", and victimP/ds held only the manifest and the test folders (the training split stayed in
    P-moved/.ds.partial-*). Now the command stops with one line naming both places, nothing is written into the
    user's folder, and nothing of the set is kept (whole or not at all)."""
    from srunit.synthscapes import dataset

    parent, moved, victim, before = _victim(tmp_path)
    real = dataset.write_test_set

    def swap_then_write(*args: Any, **kwargs: Any) -> Any:
        _swap(parent, moved, victim)
        return real(*args, **kwargs)

    monkeypatch.setattr(dataset, "write_test_set", swap_then_write)
    code = main(["data", "synthscapes", "--out", str(parent / "ds"), "--size", "16", "--num-pool", "12",
                 "--num-test", "1"])
    err = capsys.readouterr().err
    assert code != 0
    _stopped_naming_both(err, parent, moved)
    assert _tree(victim) == before
    _nothing_of_the_set_kept(moved, "ds")


def test_data_maps_with_its_parent_swapped_for_a_link_between_two_images_writes_nothing_there(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """As 32A (2) for `data maps` (its halves renamed into --out one by one), swapped after the first image."""
    from srunit.datasets import pix2pix

    parent, moved, victim, before = _victim(tmp_path)
    src = tmp_path / "pix2pix"
    for i in range(2):
        _image(src / f"{i}.png", 40 * i, (4, 8))
    real, calls = pix2pix.load_rgb, []

    def load_then_swap(path: Path, **kwargs: Any) -> Any:
        calls.append(path)
        if len(calls) == 2:
            _swap(parent, moved, victim)
        return real(path, **kwargs)

    monkeypatch.setattr(pix2pix, "load_rgb", load_then_swap)
    code = main(["data", "maps", "--input", str(src), "--out", str(parent / "cut")])
    err = capsys.readouterr().err
    assert code != 0 and len(calls) == 2
    _stopped_naming_both(err, parent, moved)
    assert _tree(victim) == before
    _nothing_of_the_set_kept(moved, "cut")


@pytest.mark.parametrize("copy", [False, True])
def test_data_split_with_its_parent_swapped_for_a_link_between_the_domains_writes_nothing_there(
        copy: bool, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """As 32A (2) for `data split` (links, or copies with --copy), swapped after trainA was placed: trainB and the
    manifest were made by path, in a partial folder re-made in the user's folder."""
    from srunit.datasets import split

    parent, moved, victim, before = _victim(tmp_path)
    labels, a, b = tmp_path / "labels", tmp_path / "a", tmp_path / "b"
    for i in range(4):
        ids = np.zeros((8, 8), np.uint8)
        ids[: 2 + 4 * (i % 2)] = 1  # two kinds of histogram, for K-means' two clusters
        labels.mkdir(exist_ok=True)
        Image.fromarray(ids).save(labels / f"{i}.png")
        _image(a / f"{i}.png", 30)
        _image(b / f"{i}.png", 200)
    real, calls = split.place_files, []

    def place_then_swap(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        placed = real(*args, **kwargs)
        if len(calls) == 1:
            _swap(parent, moved, victim)
        return placed

    monkeypatch.setattr(split, "place_files", place_then_swap)
    code = main(["data", "split", "--labels", str(labels), "--classes", "2", "--images-a", str(a), "--images-b",
                 str(b), "--out", str(parent / "s"), *(["--copy"] if copy else [])])
    err = capsys.readouterr().err
    assert code != 0 and len(calls) == 2
    _stopped_naming_both(err, parent, moved)
    assert _tree(victim) == before
    _nothing_of_the_set_kept(moved, "s")


def test_a_copy_placed_through_an_opened_folder_keeps_the_source_bytes_mode_and_times(tmp_path: Path) -> None:
    """`data split --copy` places its copies through the folder opened once (it used shutil.copy2 by path): each
    copy is still the source's bytes with its permission bits and modification time."""
    from srunit._atomic import FolderWriter
    from srunit.datasets import place_files

    src = tmp_path / "src" / "a.png"
    _image(src)
    src.chmod(0o640)
    os.utime(src, ns=(1_000_000_000_123, 2_000_000_000_456))
    with FolderWriter(tmp_path / "out") as writer:
        entries = place_files([src], writer, link=False)
    copy = tmp_path / "out" / "a.png"
    assert entries == [{"name": "a.png", "source": str(src.resolve())}]
    assert not copy.is_symlink() and copy.read_bytes() == src.read_bytes()
    assert copy.stat().st_mode & 0o777 == 0o640 and copy.stat().st_mtime_ns == 2_000_000_000_456
