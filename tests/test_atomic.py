"""The atomic-write helper: content, no temp file left behind, the old file kept on failure, 0644."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit import _atomic
from srunit._atomic import write_bytes_atomic, write_text_atomic
from srunit.data.images import save_png_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_bytes_and_text_creating_parents(tmp_path: Path) -> None:
    raw, text = tmp_path / "a" / "b" / "x.bin", tmp_path / "t.html"
    write_bytes_atomic(raw, b"\x00\x01payload")
    write_text_atomic(text, "Straße\nline 2\n")
    assert raw.read_bytes() == b"\x00\x01payload"
    assert text.read_bytes() == "Straße\nline 2\n".encode()
    write_text_atomic(text, "replaced")  # an existing file is replaced whole
    assert text.read_text(encoding="utf-8") == "replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "t.html"]  # no temp file left
    assert [p.name for p in raw.parent.iterdir()] == ["x.bin"]


@pytest.mark.parametrize("failure", ["write", "replace"])
def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            failure: str) -> None:
    path = tmp_path / "scores.json"
    path.write_text("old", encoding="utf-8")
    if failure == "replace":
        def refuse(src: str, dst: str) -> None:
            raise OSError("disk full")
        monkeypatch.setattr(_atomic.os, "replace", refuse)
        data: object = b"new"
    else:
        data = 12345  # not bytes: the write itself raises, after the temp file exists
    with pytest.raises((OSError, TypeError)):
        write_bytes_atomic(path, data)  # type: ignore[arg-type]
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_files_are_shareable_not_0600(tmp_path: Path) -> None:
    text, png = tmp_path / "report.html", tmp_path / "img.png"
    write_text_atomic(text, "<html></html>")
    save_png_atomic(Image.fromarray(np.zeros((4, 5, 3), dtype=np.uint8)), png)
    assert _mode(text) == _atomic.FILE_MODE == 0o644
    assert _mode(png) == 0o644
    with Image.open(png) as img:
        assert img.size == (5, 4)
    assert sorted(os.listdir(tmp_path)) == ["img.png", "report.html"]
