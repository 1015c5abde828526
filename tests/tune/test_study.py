"""Tuning studies (srunit.tune.study): the budget, two workers on one storage, interruption and records."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from srunit.engine.signals import TrainingStopped
from srunit.errors import ConfigError
from srunit.tune import study as study_module
from srunit.tune.study import Trials, TuneSettings, open_study, run_tune, work
from srunit.tune.targets import FolderTarget

SPACE = {"method.lambda_nce": {"low": 0.25, "high": 4.0, "log": True},
         "method.nce_temperature": {"low": 0.03, "high": 0.2}}


def _settings(tmp_path: Path, trials: int = 4, **changes: Any) -> TuneSettings:
    for folder in ("data", "val", "labels"):
        (tmp_path / folder).mkdir(exist_ok=True)
    target = FolderTarget(str(tmp_path / "data"), str(tmp_path / "val"), str(tmp_path / "labels"), "seg.onnx", 3)
    return TuneSettings(**{"preset": "cut", "target": target.to_dict(), "space": SPACE, "study_name": "s",
                           "trials": trials, "sampler": "random", **changes})


def _fake_run(log_file: Path, seconds: float = 0.3):
    """A trial that takes ``seconds`` and leaves a line per run in ``log_file`` (appends are atomic per line)."""
    def run(self: Trials, params: dict[str, Any], seed: int, *, on_stop: Any = None) -> tuple[float, dict[str, Any]]:
        with open(log_file, "a") as f:
            f.write(json.dumps(params, sort_keys=True) + "\n")
        time.sleep(seconds)
        return params["method.lambda_nce"], {"runs": [json.dumps(params, sort_keys=True)]}

    return run


def _worker(settings: TuneSettings, out: str, storage: str, log_file: str, index: int) -> None:
    Trials.run = _fake_run(Path(log_file))  # type: ignore[method-assign]  # in this forked process only
    work(Trials(settings, out, storage), index)


@pytest.mark.slow  # 1.9 s: two worker processes on one SQLite file
def test_two_workers_on_one_sqlite_file_train_every_trial_once_and_lose_none(tmp_path: Path) -> None:
    settings = _settings(tmp_path, trials=6)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    log_file = tmp_path / "runs.log"
    open_study(storage, settings)  # created once, as run_tune does before it starts the workers
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_worker, args=(settings, str(tmp_path), storage, str(log_file), i))
               for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    trained = log_file.read_text().splitlines()
    study = open_study(storage, settings)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 6  # the budget, exactly: no more, and none lost
    assert len(trained) == len(set(trained)) == 6  # each trial trained once, no over-budget trial trained
    assert sorted(json.dumps(t.params, sort_keys=True) for t in complete) == sorted(trained)
    assert len({t.number for t in complete}) == 6
    over = [t for t in study.trials if t.state.name == "PRUNED"]
    assert all(t.user_attrs.get("over_budget") for t in over)


@pytest.mark.slow  # 2.2 s: a trial stopped by a signal, then queued and resumed
def test_an_interrupted_trial_is_queued_again_and_resumed_with_its_parameters(tmp_path: Path, monkeypatch) -> None:
    settings = _settings(tmp_path, trials=3)
    calls: list[dict[str, Any]] = []
    seeds: list[int] = []

    def run(self: Trials, params: dict[str, Any], seed: int, *, on_stop: Any = None) -> tuple[float, dict[str, Any]]:
        calls.append(params)
        seeds.append(seed)
        if len(calls) == 2:  # the second trial is stopped by a signal mid-way
            on_stop()
            raise TrainingStopped.__new__(TrainingStopped)
        return 1.0, {"runs": [str(len(calls))]}

    monkeypatch.setattr(Trials, "run", run)
    monkeypatch.setattr(FolderTarget, "prepare", lambda self, out: None)
    monkeypatch.setattr(FolderTarget, "check", lambda self: None)
    with pytest.raises(TrainingStopped):
        run_tune(tmp_path / "out", settings)
    study = open_study(f"sqlite:///{(tmp_path / 'out' / 'study.db').resolve()}", settings)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "WAITING"]
    summary = run_tune(tmp_path / "out", settings)  # the same command continues
    assert summary["finished"] == 3
    assert calls[2] == calls[1] and seeds[2] == seeds[1]  # the stopped trial comes first, and its run resumes
    assert len(calls) == 4 and seeds == [1000, 1001, 1001, 1003]  # trial 2 was the stopped one's copy


def test_a_rerun_with_other_settings_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(Trials, "run", lambda self, params, seed, on_stop=None: (0.5, {"runs": ["x"]}))
    monkeypatch.setattr(FolderTarget, "prepare", lambda self, out: None)
    monkeypatch.setattr(FolderTarget, "check", lambda self: None)
    run_tune(tmp_path / "out", _settings(tmp_path, trials=1))
    with pytest.raises(ConfigError, match="seed differ"):
        run_tune(tmp_path / "out", _settings(tmp_path, trials=1, seed=7))


def test_bad_settings_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--objective"):
        _settings(tmp_path, objective="miou")
    with pytest.raises(ConfigError, match="--sampler"):
        _settings(tmp_path, sampler="grid")
    with pytest.raises(ConfigError, match="--trials"):
        _settings(tmp_path, trials=0)


def test_a_storage_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--storage nosuch://x"):
        open_study("nosuch://x", _settings(tmp_path))


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_the_budget_counts_finished_and_earlier_running_trials(tmp_path: Path) -> None:
    settings = _settings(tmp_path, trials=2)
    study = open_study(f"sqlite:///{tmp_path / 's.db'}", settings)
    first, second = study.ask(), study.ask()
    third = study.ask()
    assert not study_module._over_budget(study, first, 2)
    assert not study_module._over_budget(study, second, 2)
    assert study_module._over_budget(study, third, 2)  # two running ahead of it fill the budget
    study.tell(first, 1.0)
    study.tell(second, 1.0)
    assert study_module._over_budget(study, third, 2)


def test_a_folder_study_names_its_data_by_content_so_another_machine_continues_it(tmp_path: Path) -> None:
    """Records match by settings: the same images under another path (another machine) are the same settings;
    one changed image is not."""
    import shutil

    import numpy as np
    from PIL import Image

    from srunit.config import load_config

    def target(root: Path) -> FolderTarget:
        return FolderTarget(str(root / "data"), str(root / "val"), str(root / "labels"), "module:segment", 3)

    first = tmp_path / "here"
    for i, folder in enumerate(("data/trainA", "data/trainB", "val", "labels")):
        (first / folder).mkdir(parents=True)
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(first / folder / "a.png")
    shutil.copytree(first, tmp_path / "there")
    config = load_config("cut", [])
    same = target(first).identity(config)
    assert target(tmp_path / "there").identity(config) == same
    assert str(first) not in json.dumps(same)
    Image.fromarray(np.full((4, 4, 3), 9, np.uint8)).save(tmp_path / "there" / "data" / "trainB" / "a.png")
    assert target(tmp_path / "there").identity(config) != same


def test_the_best_preset_trains_the_best_trials_method(tmp_path: Path) -> None:
    """best.yaml holds the method options the study fixed on the command line (typed) under the tuned values, and
    names its size overrides in a comment: `train --preset best.yaml` trains the trial's method."""
    import yaml

    from srunit.config import load_config

    settings = _settings(tmp_path, overrides=("method.lambda_nce=3.5", "method.nce_temperature=0.05",
                                              "train.steps=20000"),
                         space={"method.lambda_nce": SPACE["method.lambda_nce"]})
    trials = Trials(settings, str(tmp_path / "out"), "sqlite://")
    text = study_module.best_preset(settings, {"method.lambda_nce": 2.0}, trials)
    preset = tmp_path / "best.yaml"
    preset.write_text(text)
    assert yaml.safe_load(text)["method"] == {"name": "cut", "lambda_nce": 2.0, "nce_temperature": 0.05}
    assert "--train.steps 20000" in text
    trial = trials.target.config("cut", settings.overrides, trials.trial_overrides({"method.lambda_nce": 2.0}),
                                 tmp_path, "t", 0)
    assert load_config(preset).method == trial.method
