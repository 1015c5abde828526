"""Round twenty-eight (C): runs moved, renamed, copied and archived, then used again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from srunit.report.flips import grids_section
from srunit.report.runs import load_run


def _as_eval_run_writes_it(run: Path, label: str) -> Path:
    """The record `srunit eval seg|paired --run RUN` writes: the run named by its folder's name at the time, and
    no benchmark condition or seed."""
    record = json.loads((run / "eval" / "scores.json").read_text())
    for key in ("condition", "seed", "benchmark"):
        record.pop(key)
    record["label"] = label
    (run / "eval" / "scores.json").write_text(json.dumps(record))
    return run


def test_a_renamed_or_copied_run_is_shown_by_its_own_folders_name(tmp_path, report_dataset, make_report_run) -> None:
    """`eval --run runs/r1`, then `mv runs/r1 runs/baseline` and `cp -r runs/baseline runs/fork`: the report
    called both runs r1, a folder that no longer exists, and the two columns could not be told apart."""
    first = _as_eval_run_writes_it(make_report_run(tmp_path / "runs" / "r1", data=report_dataset), "r1")
    baseline = tmp_path / "runs" / "baseline"
    first.rename(baseline)
    fork = tmp_path / "runs" / "fork"
    shutil.copytree(baseline, fork)

    assert [load_run(baseline).label, load_run(fork).label] == ["baseline", "fork"]
    html = grids_section([load_run(baseline), load_run(fork)], 1)
    assert "<th>baseline: translation / flips</th>" in html and "<th>fork: translation / flips</th>" in html


def test_a_benchmark_runs_record_keeps_its_label_wherever_it_lies(tmp_path, make_report_run) -> None:
    """A benchmark names its runs by method, condition and seed: that stays true after a move."""
    run = make_report_run(tmp_path / "bench" / "unmatched" / "cut-seed1", label="cut / unmatched / seed 1")
    moved = tmp_path / "cut-seed1-moved"
    run.rename(moved)
    assert load_run(moved).label == "cut / unmatched / seed 1"


def test_the_data_an_evaluation_read_moved_away_is_named_with_the_option_that_names_its_new_place(
        tmp_path, report_dataset, make_report_run) -> None:
    """`mv data data2` after `eval seg --run RUN`: the report said `labels image folder .../labels does not exist;
    rerun the evaluation to write it`, but the evaluation reads the user's folders and never writes them: run as it
    was, it fails on the same missing folder."""
    run = _as_eval_run_writes_it(make_report_run(tmp_path / "run", data=report_dataset), "run")
    report_dataset.rename(tmp_path / "data2")

    html = grids_section([load_run(run)], 3)
    for role, option in (("source", "--sources"), ("labels", "--labels"), ("target", "--target")):
        note = next(line for line in html.split("Not shown: ")[1:] if line.startswith(f"{role} image folder"))
        assert str(report_dataset / role) in note and "rerun the evaluation to write it" not in note
        assert f"put the images back, or run `srunit eval ... --run RUN` again with {option} naming their new" \
               in note and str(run) in note


def _tune_settings(root: Path, study: str):
    from srunit.tune.study import TuneSettings
    from srunit.tune.targets import FolderTarget

    target = FolderTarget(str(root / "train"), str(root / "train" / "val"), str(root / "train" / "labels"),
                          "seg.onnx", 3)
    return TuneSettings(preset="cut", target=target.to_dict(), study_name=study, trials=2, sampler="random",
                        space={"method.lambda_nce": {"low": 0.25, "high": 4.0, "log": True}})


def test_a_renamed_tuning_folder_is_refused_with_the_study_name_that_continues_it(tmp_path) -> None:
    """`mv tuneA tuneB`, then the same `tune data ... --out tuneB`: refused as `study_name differ`, advising `the same
    options as before`, which were the same: --study defaults to the folder's name, which the user never typed."""
    from srunit.errors import ConfigError
    from srunit.tune.study import _prepare_out

    (tmp_path / "train" / "val").mkdir(parents=True)
    (tmp_path / "train" / "labels").mkdir()
    _prepare_out(tmp_path / "tuneA", _tune_settings(tmp_path, "tuneA"))
    (tmp_path / "tuneA").rename(tmp_path / "tuneB")
    with pytest.raises(ConfigError, match="its study is named tuneA .*: add --study tuneA$"):
        _prepare_out(tmp_path / "tuneB", _tune_settings(tmp_path, "tuneB"))
    _prepare_out(tmp_path / "tuneB", _tune_settings(tmp_path, "tuneA"))  # the advice taken: it continues


def test_a_tuning_study_whose_data_moved_names_the_link_that_continues_it(tmp_path) -> None:
    """`mv data data2`, then `tune data --data data2/train ...` into the study's folder: refused as `target differ`
    with `the same options as before`, whose folders no longer exist. It now names each option's old and new path
    and one link that gives the old paths back, which, made as printed, lets the old command continue."""
    from srunit.errors import ConfigError
    from srunit.tune.study import _prepare_out

    old, new = tmp_path / "data", tmp_path / "data2"
    (old / "train" / "val").mkdir(parents=True)
    (old / "train" / "labels").mkdir()
    _prepare_out(tmp_path / "tune", _tune_settings(old, "s"))
    old.rename(new)
    with pytest.raises(ConfigError) as refused:
        _prepare_out(tmp_path / "tune", _tune_settings(new, "s"))
    message = str(refused.value)
    assert f"--data was {old / 'train'}, now {new / 'train'}; --val-images was {old / 'train' / 'val'}" in message
    command = message.split("continues it: ")[1].split("; see ")[0]
    assert command == f"mkdir -p {old} && ln -s {new / 'train'} {old / 'train'}"  # one link: the others lie in it
    subprocess.run(command, shell=True, check=True, cwd=tmp_path)
    assert sorted(p.name for p in (old / "train").iterdir()) == ["labels", "val"]
    _prepare_out(tmp_path / "tune", _tune_settings(old, "s"))  # the old command: the same settings, accepted


def test_a_copied_tuning_folders_report_names_its_own_storage(tmp_path, monkeypatch) -> None:
    """`cp -r tuneB tuneC && srunit report tuneC`: the page said `storage sqlite:////.../tuneB/study.db`, another
    folder's file, as the storage of the study it showed; study.json named the default storage by absolute path."""
    from srunit.report.page import build_report
    from srunit.tune.study import Trials, run_tune
    from srunit.tune.targets import FolderTarget

    monkeypatch.setattr(Trials, "run", lambda self, params, seed, on_stop=None: (0.5, {"runs": ["x"]}))
    monkeypatch.setattr(FolderTarget, "prepare", lambda self, out: None)
    monkeypatch.setattr(FolderTarget, "check", lambda self: None)
    (tmp_path / "train" / "val").mkdir(parents=True)
    (tmp_path / "train" / "labels").mkdir()
    settings = _tune_settings(tmp_path, "tuneB")
    run_tune(tmp_path / "tuneB", settings.from_dict({**settings.to_dict(), "trials": 1}), show_progress=False)
    shutil.copytree(tmp_path / "tuneB", tmp_path / "tuneC")
    build_report([tmp_path / "tuneC"], tmp_path / "page.html")
    page = (tmp_path / "page.html").read_text()
    assert f"storage <code>{tmp_path / 'tuneC' / 'study.db'}</code>" in page and "tuneB" + "/study.db" not in page


@pytest.mark.slow
def test_a_run_whose_data_moved_with_their_parent_folder_resumes_after_the_link_made_as_printed(
        tiny_config, tiny_data, tmp_path, monkeypatch) -> None:
    """A benchmark folder moved (`mv benchK benchM`, its data inside it) and continued: each unfinished run trains
    on `benchK/data/unmatched` (its config.yaml) and the refusal advised `ln -s NEW_PLACE benchK/data/unmatched`.
    Typed with the new place, that failed (`benchK/data` no longer exists), and once the folder was made the
    relative target dangled (a link's target is read from the link's folder)."""
    from srunit.engine import Trainer
    from srunit.errors import DataError

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_data, tmp_path / "benchK" / "data" / "unmatched")
    run = Trainer(tiny_config("cut", "train.steps=1", data_root=Path("benchK/data/unmatched"),
                              runs_dir=Path("benchK/unmatched")), show_progress=False).fit()
    (tmp_path / "benchK").rename(tmp_path / "benchM")
    run = Path("benchM") / run.relative_to("benchK")
    with pytest.raises(DataError) as refused:
        Trainer.resume(run, ["train.steps=2"], show_progress=False)
    command = str(refused.value).split("a link to where they are now (")[1].split("); or resume")[0]
    assert command == 'mkdir -p benchK/data && ln -s "$(realpath NEW_PLACE)" benchK/data/unmatched'
    subprocess.run(command.replace("NEW_PLACE", "benchM/data/unmatched"), shell=True, check=True, cwd=tmp_path)
    assert Trainer.resume(run, ["train.steps=2"], show_progress=False).fit() == run
    assert (run / "checkpoints" / "step_00000002").is_dir()


@pytest.mark.slow  # MLflow's own start-up
def test_a_copied_runs_mlflow_store_never_writes_into_the_original(tmp_path, monkeypatch) -> None:
    """`cp -r runs/m1 runs/m1copy && srunit train --resume runs/m1copy` with `train.loggers mlflow`: MLflow's
    record of the run names its artifact folder by absolute path, so the copy's sample images were written into
    runs/m1/mlruns (or made that folder again after a `mv`). The resume is refused with a way out that works."""
    import importlib.util

    import numpy as np

    from srunit.engine.loggers import open_loggers
    from srunit.errors import ConfigError

    if importlib.util.find_spec("mlflow") is None:
        pytest.skip("the mlflow extra is not installed")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    original, copy = tmp_path / "m1", tmp_path / "m1copy"
    original.mkdir()
    [logger] = open_loggers(["mlflow"], original, "m1", {"train": {"lr": 0.0002}})
    logger.log_image(1, "samples/real_A|fake_B", image)
    logger.close()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # MLflow sets it: a new process starts without it
    shutil.copytree(original, copy)
    files = sorted(p for p in original.rglob("*"))

    with pytest.raises(ConfigError, match=f"mv {copy / 'mlruns'} {copy / 'mlruns'}.old; .*then resume"):
        open_loggers(["mlflow"], copy, "m1copy", {"train": {"lr": 0.0002}})
    (copy / "mlruns").rename(copy / "mlruns.old")  # the advice, followed; the resume, a new process (MLflow caches
    subprocess.run([sys.executable, "-c",  # a store by its URI)
                    "import sys, numpy as np; from srunit.engine.loggers import open_loggers; "
                    "[log] = open_loggers(['mlflow'], sys.argv[1], 'm1copy', {}); "
                    "log.log_image(2, 'samples/real_A|fake_B', np.zeros((4, 4, 3), np.uint8)); log.close()", str(copy)],
                   check=True, env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"})
    # Nothing of the copy's in the original. (MLflow writes a compressed copy of the original's own step-1 image from
    # a thread of its own, which may land after `files` was listed.)
    grown = set(original.rglob("*")) - set(files)
    assert set(files) <= set(original.rglob("*"))
    assert all("+step+1+" in p.name and p.name.endswith("compressed.webp") for p in grown), grown
    assert len(list((copy / "mlruns").rglob("*.png"))) == 1
