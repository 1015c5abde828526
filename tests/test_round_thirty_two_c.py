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

import pytest

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

