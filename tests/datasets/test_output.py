"""srunit.datasets.output: output folders must be new or empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from srunit.datasets import require_empty_output
from srunit.errors import DataError


def test_require_empty_output(tmp_path: Path) -> None:
    require_empty_output(tmp_path / "new")  # absent: fine
    (tmp_path / "empty").mkdir()
    require_empty_output(tmp_path / "empty")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(DataError) as e:
        require_empty_output(tmp_path / "busy", "SynthScapes data folder")
    assert str(e.value).startswith(f"SynthScapes data folder {tmp_path / 'busy'} already exists and is not an empty "
                                   "folder; srunit never overwrites files")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="^--out .*file already exists"):
        require_empty_output(tmp_path / "file")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
