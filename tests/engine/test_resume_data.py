"""`train --resume` of a run whose image folders changed since it started: the user is told, with the counts."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from srunit.engine import Trainer


def test_resume_warns_when_the_data_changed_since_the_run_started(tiny_config, tiny_data: Path, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    run = Trainer(tiny_config("cut", "train.steps=1", "train.name=r", data_root=data, runs_dir=tmp_path / "runs"),
                  show_progress=False).fit()
    with caplog.at_level(logging.WARNING, logger="srunit"):
        Trainer.resume(run, ["train.steps=1"], show_progress=False).release()
    assert "training data changed" not in caplog.text
    before = len(list((data / "trainA").glob("*.png")))
    for i, path in enumerate(sorted((data / "trainA").glob("*.png"))[:3]):
        shutil.copy(path, data / "trainA" / f"extra{i}.png")
    with caplog.at_level(logging.WARNING, logger="srunit"):
        Trainer.resume(run, ["train.steps=2"], show_progress=False).fit()
    assert f"the training data changed since {run} started: domain A ({data / 'trainA'}): {before} images when " \
           f"the run started, {before + 3} now" in caplog.text
    assert "domain B" not in caplog.text


def test_trainer_names_a_config_of_the_wrong_type(tiny_config, tmp_path: Path) -> None:
    from srunit.config import Config

    for bad, hint in (({"method": {"name": "cut"}}, "load_config"), ("srunit", "load_config"),
                      (tmp_path, "Trainer.resume"), (3, "load_config")):
        with pytest.raises(TypeError, match=rf"Trainer: config must be a srunit Config, got {type(bad).__name__}.*"
                                            rf"{hint}"):
            Trainer(bad)  # type: ignore[arg-type]
    assert isinstance(tiny_config("cut"), Config)


def test_the_data_summary_counts_skipped_hidden_files(tiny_config, tiny_data: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    shutil.copy(data / "trainB" / "0000.png", data / "trainB" / "._0000.png")
    with caplog.at_level(logging.INFO, logger="srunit"):
        Trainer(tiny_config("cut", "train.steps=1", "train.name=h", data_root=data, runs_dir=tmp_path / "runs"),
                show_progress=False).fit()
    assert f"skipped as hidden (name starting with '.'): A 0, B 1 (e.g. {data / 'trainB' / '._0000.png'})" \
        in caplog.text
    assert "one folder" not in caplog.text  # the warning of test_one_folder_for_both_domains_is_warned_of


def test_one_folder_for_both_domains_is_warned_of(tiny_config, tiny_data: Path, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """data.dir_b naming data.dir_a's folder (here through a link) trained without a word: A -> A."""
    same = tmp_path / "same"
    same.symlink_to(tiny_data / "trainA")
    with caplog.at_level(logging.INFO, logger="srunit"):
        Trainer(tiny_config("cut", "train.steps=1", "train.name=one", f"data.dir_a={tiny_data / 'trainA'}",
                            f"data.dir_b={same}", runs_dir=tmp_path / "runs"), show_progress=False).fit()
    assert f"domain A and domain B are one folder ({tiny_data / 'trainA'}): the run learns to translate these " \
           "images into themselves; give each domain its own folder (data.dir_a, data.dir_b)" in caplog.text
