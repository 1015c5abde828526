"""Round twenty-eight (lead): what earlier rounds left (docs/what-survives-what.md, "Round twenty-eight (lead)")."""

from __future__ import annotations

from pathlib import Path

from srunit.config import load_config


def test_a_config_hashes_as_the_frozen_value_it_is() -> None:
    """`hash(config)` raised `TypeError: unhashable type: 'FrozenTerms'` for every method with added terms (CUT,
    SRUNIT), so a Config could not be a dict key or a set member though it is frozen and compares by value."""
    srunit, again = load_config("srunit"), load_config("srunit")
    other = load_config("srunit", ["method.robust.weight=0.5"])
    assert again == srunit and hash(again) == hash(srunit)
    assert len({srunit, again, other, load_config("cut"), load_config("drit")}) == 4
    assert {srunit: "a"}[again] == "a"


def test_a_path_in_a_mapping_of_overrides_is_taken_as_its_string(tmp_path: Path) -> None:
    """`load_config("cut", {"data": {"root": Path(...)}})` was refused as "invalid value PosixPath(...); allowed: a
    string", where the API's own arguments (`Trainer(run_dir=...)`, `data_root`) take a Path."""
    config = load_config("cut", {"data": {"root": tmp_path / "data"}, "train": {"runs_dir": Path("~/runs")}})
    assert (config.data.root, config.train.runs_dir) == (str(tmp_path / "data"), "~/runs")
    assert load_config("cut").with_overrides({"data": {"root": tmp_path}}).data.root == str(tmp_path)
