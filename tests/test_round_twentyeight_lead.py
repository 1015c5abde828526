"""Round twenty-eight (lead): what earlier rounds left (docs/what-survives-what.md, "Round twenty-eight (lead)")."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_translating_a_folder_on_a_terminal_shows_the_images_done_and_the_time_left(
        tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`srunit translate` of a folder printed nothing until its last image was written: thousands of images at full
    resolution on a CPU looked like a hang for minutes."""
    from srunit.cli.main import main
    from srunit.inference import Translator

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 24, 3), 40 * i, np.uint8)).save(inputs / f"{i}.png")
    translator = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    for show, expected in ((True, "0/3 [00:00<?, ?image/s]"), (False, None)):  # erased when done
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        assert len(translator.translate_folder(inputs, tmp_path / f"out{show}", show_progress=show)) == 3
        assert expected in terminal.getvalue() if expected else terminal.getvalue() == ""
    with pytest.raises(TypeError, match="show_progress"):
        translator.translate_folder(inputs, tmp_path / "x", show_progress="no")  # type: ignore[arg-type]
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(inputs), "--output",
                 str(tmp_path / "cli"), "--no-progress"]) == 0
    assert terminal.getvalue() == "" and len(list((tmp_path / "cli").iterdir())) == 3
