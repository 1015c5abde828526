"""srunit.runtime.checkpoints.read_run_config: a damaged RUN/config.yaml is described, never a traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from srunit.runtime.checkpoints import read_run_config


@pytest.mark.parametrize(("text", "says"), [
    ("method: {name: cut}\ntrain: {seed: " + "7" * 10_000 + "}\n", "an integer of 10000 digits"),
    ("method: {name: cut}\nmethod: {name: srunit}\n", "the key 'method' appears twice"),
    ("method: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 64 levels deep"),
])
def test_a_damaged_run_config_is_read_as_empty_with_a_warning(tmp_path: Path, text: str, says: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "config.yaml").write_text(text)
    with caplog.at_level(logging.WARNING, logger="srunit"):
        assert read_run_config(tmp_path) == {}
    assert str(tmp_path / "config.yaml") in caplog.text and says in caplog.text
