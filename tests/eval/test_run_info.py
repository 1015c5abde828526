"""srunit.eval.run_records: a damaged RUN/config.yaml is a named DataError, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from srunit.errors import DataError
from srunit.eval.run_records import _run_info


@pytest.mark.parametrize(("text", "says"), [
    ("method: {name: cut}\ntrain: {seed: " + "7" * 10_000 + "}\n", "an integer of 10000 digits"),
    ("method: {name: cut}\nmethod: {name: srunit}\n", "the key 'method' appears twice"),
    ("method: cut\ndata: [1]\n", "method must be a mapping"),
])
def test_a_damaged_run_config_is_a_named_error(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(DataError, match=says) as err:
        _run_info(tmp_path)
    assert str(tmp_path / "config.yaml") in str(err.value)


def test_a_run_config_is_read(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("method: {name: cut}\ndata: {root: d}\n")
    assert _run_info(tmp_path) == {"label": tmp_path.name, "method": "cut",
                                   "data": {"root": "d", "dir_a": None, "dir_b": None}}
