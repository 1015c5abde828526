"""Round thirty-one (lead): the smaller items round thirty-one (A) found."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from srunit.config import load_config
from srunit.errors import CheckpointError, ConfigError


def test_a_number_boolean_or_time_refused_in_a_base_chain_names_the_file_that_wrote_it(tmp_path: Path) -> None:
    """`child.yaml` with `base: parent.yaml`, where parent.yaml holds `name: 1.50`: the refusal said "train.name: 1.50
    is the number 1.5 in YAML ..." without naming parent.yaml, the file to edit (the chain's first file, the one
    given, holds no such line)."""
    (tmp_path / "child.yaml").write_text("base: parent.yaml\ntrain:\n  steps: 2\n")
    for written, what in (("1.50", "is the number 1.5"), ("yes", "got the boolean true"),
                          ("2026-12-07T10:00:00Z", "is a time in YAML")):
        (tmp_path / "parent.yaml").write_text(f"base: cut\ntrain:\n  name: {written}\n")
        with pytest.raises(ConfigError) as refused:
            load_config(tmp_path / "child.yaml")
        assert str(refused.value).startswith(f"{tmp_path / 'parent.yaml'}: train.name: "), refused.value
        assert what in str(refused.value)
        # the child's own line wins, and the refusal names the child
        (tmp_path / "child.yaml").write_text(f"base: parent.yaml\ntrain:\n  name: {written}\n")
        with pytest.raises(ConfigError) as refused:
            load_config(tmp_path / "child.yaml")
        assert str(refused.value).startswith(f"{tmp_path / 'child.yaml'}: train.name: "), refused.value
        (tmp_path / "child.yaml").write_text("base: parent.yaml\ntrain:\n  steps: 2\n")
    # given on the command line, the word is the user's text, not the file's
    assert load_config(tmp_path / "child.yaml", ["train.name=yes"]).train.name == "yes"


def test_a_section_edited_to_null_in_a_runs_config_is_named_once_not_by_its_keys(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`robust: null` written over the robust section of RUN/config.yaml was refused on resume as four edits,
    method.robust.eps, method.robust.noise ..., each "'(none)' where srunit wrote ...", and "1 more": one edit of one
    key was made."""
    from srunit.engine.trainer import resume_config

    run = tmp_path / "runs" / "srunit"
    shutil.copytree(tiny_runs["srunit"], run, symlinks=True)
    (run / "train.lock").unlink(missing_ok=True)
    written = (run / "config.yaml").read_text()
    data = yaml.safe_load(written)
    assert isinstance(data["method"]["robust"], dict) and len(data["method"]["robust"]) > 1
    data["method"]["robust"] = None
    (run / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises((CheckpointError, ConfigError)) as refused:
        resume_config(run, [])
    text = str(refused.value)
    assert "method.robust." not in text and "more" not in text.split("(")[1].split(")")[0], text
    assert "method.robust" in text
    assert "method.robust None where srunit wrote a section of " in text, text
