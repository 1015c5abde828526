"""Round thirty-one (lead): the smaller items round thirty-one (A) found."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from srunit.config import Config, load_config
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
    assert "method.robust null where srunit wrote a section of " in text, text
    # a top-level section written as null (its defaults): named once too, by the file's own word (round thirty-two (A))
    for section in ("model", "data", "train"):
        data = yaml.safe_load(written)
        data[section] = None
        (run / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        with pytest.raises((CheckpointError, ConfigError)) as refused:
            resume_config(run, [])
        text = str(refused.value)
        assert f"({section} null where srunit wrote a section of " in text and f"{section}." not in text.split(
            "(")[1].split(")")[0], text


@pytest.mark.parametrize("how", ["rename", "copy then delete", "copy then delete after a checkpoint"])
def test_a_run_moved_before_its_first_checkpoint_or_to_another_file_system_is_told_so(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        how: str) -> None:
    """Moved at step 1 of a run that saves at step 4, the advice said "continue the run from its latest checkpoint",
    which it had none of; moved to another file system (a copy, then the folder deleted), it said `srunit train
    --resume MOVED_FOLDER`, a name the user was left to read as a placeholder, with no word of why srunit could not
    tell the place."""
    from srunit.engine import Trainer

    runs = tmp_path / "runs"
    every = 1 if how.endswith("checkpoint") else 4
    trainer = Trainer(tiny_config("cut", "train.steps=6", f"train.checkpoint_every={every}", "train.sample_every=4",
                                  "train.log_every=1", "train.loggers=[]", "train.name=mv", data_root=tiny_data,
                                  runs_dir=runs), show_progress=False)
    run, moved = runs / "mv", runs / "mv_moved"
    step = trainer.runner.train_step

    def train_step_then_move(batch: dict) -> dict:
        logs = step(batch)
        if trainer.step == (2 if every == 1 else 1):  # after step 1's checkpoint, or before step 4's
            if how == "rename":
                run.rename(moved)
            else:
                shutil.copytree(run, moved, symlinks=True)
                shutil.rmtree(run)
        return logs

    monkeypatch.setattr(trainer.runner, "train_step", train_step_then_move)
    with pytest.raises(ConfigError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "MOVED_FOLDER" not in message and f"after step {2 if every == 1 else 1}" in message, message
    if how == "rename":
        assert f"continue the run from step 0 (it holds no checkpoint yet) with `srunit train --resume " \
               f"{moved.resolve()}`" in message, message
    else:
        assert "where it is now cannot be told: the folder this run opened was deleted, as a move to another file " \
               "system does" in message, message
        # it holds no checkpoint either way (round thirty-two (A) found "from its latest checkpoint" here)
        start = "from its latest checkpoint" if every == 1 else "from step 0 (it holds no checkpoint yet)"
        assert f"continue the run {start} with `srunit train --resume` and the folder's new path" in message, message
    trainer.release()
    resumed = Trainer.resume(moved, show_progress=False)  # the advice, followed
    assert resumed.step == (1 if every == 1 else 0)


def test_a_resume_of_a_run_that_has_ended_leaves_its_files_as_they_were(
        tiny_runs: dict[str, Path], tmp_path: Path, cli_status: Callable[[list[str]], int]) -> None:
    """`srunit train --resume RUN --train.precision bf16` of a run that had ended trained nothing, but config.yaml
    then said `precision: bf16` of a run trained in fp32, and history.jsonl gained a resume line (one per such call).
    A resume that ends the run where it is (`--train.steps` its step) is a change, and is recorded."""
    run = tmp_path / "runs" / "cut"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    (run / "train.lock").unlink(missing_ok=True)

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
                if p.is_file() and p.name != "train.lock" and "tensorboard" not in p.parts}

    before = files()
    assert yaml.safe_load(before["config.yaml"])["train"]["precision"] == "fp32"
    assert cli_status(["train", "--resume", str(run), "--train.precision", "bf16", "--no-progress"]) == 0
    assert cli_status(["train", "--resume", str(run), "--no-progress"]) == 0
    assert files() == before
    # a run stopped early, ended where it is by the resume: recorded
    data = yaml.safe_load(before["config.yaml"])
    data["train"]["steps"] = 4
    (run / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    record = json.loads((run / "run.json").read_text())
    record["total_steps"], record["config"]["train"]["steps"] = 4, 4
    (run / "run.json").write_text(json.dumps(record))
    assert cli_status(["train", "--resume", str(run), "--train.steps", "1", "--no-progress"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 1
    last = json.loads((run / "history.jsonl").read_text().splitlines()[-1])
    assert last["changed"] == {"train.steps": [4, 1]}


def test_a_data_set_made_inside_another_sets_domain_folder_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`srunit data synthscapes --out ss/trainA/new` wrote a data set inside ss's trainA, and a run on ss then read
    its renderings and label maps as trainA images (image folders are read recursively), without a word."""
    from srunit.data.files import scan_images

    ss = tmp_path / "ss"
    small = ["--size", "16", "--num-pool", "12", "--num-test", "1"]
    assert cli_status(["data", "synthscapes", "--out", str(ss), *small]) == 0
    capsys.readouterr()
    images = scan_images(ss / "trainA", "trainA")
    for inside in (ss / "trainA" / "new", ss / "testB" / "a" / "b"):
        assert cli_status(["data", "synthscapes", "--out", str(inside), *small]) == 2
        err = capsys.readouterr().err
        assert f"lies inside {inside.parents[len(inside.relative_to(ss).parts) - 2]}, the " in err, err
        assert "choose a --out outside" in err and err.count("\n") == 1
    assert cli_status(["data", "maps", "--input", str(ss / "testB"), "--out", str(ss / "trainB" / "m")]) == 2
    assert "the trainB folder of the data set" in capsys.readouterr().err
    assert scan_images(ss / "trainA", "trainA") == images and not (ss / "testB" / "a").exists()
    # beside the domain folders, and in a folder named trainA of no data set: taken
    assert cli_status(["data", "synthscapes", "--out", str(ss / "other"), *small]) == 0
    assert cli_status(["data", "synthscapes", "--out", str(tmp_path / "trainA" / "x"), *small]) == 0


def test_a_report_named_other_than_html_is_refused(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`srunit report RUN --out rr.png` wrote the HTML page under an image's name, which an image viewer then failed
    to open and a browser showed as text (30A, noted)."""
    for name in ("rr.png", "rr", "rr.json"):
        assert cli_status(["report", str(tiny_runs["cut"]), "--out", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert "but the report is an HTML page" in err and "name it rr.html" in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []
    for name in ("rr.html", "RR.HTM"):
        assert cli_status(["report", str(tiny_runs["cut"]), "--out", str(tmp_path / name), "--images", "0"]) == 0
        assert (tmp_path / name).read_text().lstrip().lower().startswith("<!doctype html")


def test_bench_translations_go_into_the_eval_folder_opened_when_it_is_swapped_for_a_link(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Round thirty-one (C) left it: `bench synthscapes` and `demo` translated a run's held-out images into
    RUN/eval/translated looked up by its path, so RUN/eval moved away and replaced by a link to the user's folder
    after the check before scoring sent the translations there, over the user's files of the same names."""
    import os

    import numpy as np

    import srunit.inference as inference
    from srunit.errors import DataError
    from srunit.synthscapes.benchmark import score_run

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    (run / "train.lock").unlink(missing_ok=True)
    eval_dir, moved, victim = run / "eval", tmp_path / "moved", tmp_path / "victim"
    (victim / "translated").mkdir(parents=True)
    names = sorted(p.with_suffix(".png").name for p in (tiny_data / "testA").iterdir())
    for name in names:
        (victim / "translated" / name).write_bytes(b"the user's")
    header = inference.image_header

    def swapping(*args: object, **kwargs: object) -> object:
        if not moved.exists():  # after the translation's checks, before its first image
            os.rename(eval_dir, moved)
            os.symlink(victim, eval_dir)
        return header(*args, **kwargs)

    monkeypatch.setattr(inference, "image_header", swapping)
    try:
        score_run(run, tiny_data, lambda rgb: np.zeros(rgb.shape[:2], np.int64), "cpu", ((), None), {"label": "x"})
    except DataError as err:
        assert f"it is now at {moved}" in str(err), err
    assert moved.exists()
    assert {p.name: p.read_bytes() for p in (victim / "translated").iterdir()} == dict.fromkeys(names, b"the user's")
    assert sorted(p.name for p in (victim).iterdir()) == ["translated"]
    assert sorted(p.name for p in (moved / "translated").iterdir()) == names


def _exports_bf16_onnx_advice(run: Path, onnx: Path, capsys: pytest.CaptureFixture[str],
                               cli_status: Callable[[list[str]], int]) -> str:
    import re

    for extra in ([], ["--format", "onnx"]):
        assert cli_status(["export", str(run), "--output", str(onnx), "--precision", "bf16", *extra,
                           "--check-size", "16x16"]) == 2
        err = capsys.readouterr().err
        advised = re.search(r"--output (\S+\.pt2)", err)
        assert advised is not None and "--format export" not in err and err.count("\n") == 1, err
        assert ("without --format onnx" in err) == bool(extra)
    return advised.group(1)


def test_exports_bf16_onnx_advice_names_a_pt2_file_without_a_contradicting_format(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`export RUN --output m.onnx --precision bf16` advised "a bf16 .pt2 program (--format export)"; followed, the
    .onnx name contradicted --format export, whose refusal advised --format onnx, which gave the first refusal again
    (round thirty-two (B))."""
    assert _exports_bf16_onnx_advice(tiny_runs["cut"], tmp_path / "m.onnx", capsys, cli_status) == \
        str(tmp_path / "m.pt2")


@pytest.mark.slow  # torch.export of a bf16 program, about 20 s; the advice itself is checked in the fast tier above
def test_exports_bf16_onnx_advice_works_when_followed_as_printed(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """The advice of the test above, followed as printed, writes the advised file (and no .onnx)."""
    onnx = tmp_path / "m.onnx"
    advised = _exports_bf16_onnx_advice(tiny_runs["cut"], onnx, capsys, cli_status)
    assert cli_status(["export", str(tiny_runs["cut"]), "--output", advised, "--precision", "bf16",
                       "--check-size", "16x16"]) == 0  # the advice, followed
    assert Path(advised).is_file() and not onnx.exists()


def test_tune_data_lists_only_the_objectives_it_scores(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`tune data ... --objective bogus` listed dist, acc_30 and acc_50, which `tune data` then refused ("this target
    does not score it") (round thirty-two (B))."""
    from srunit.tune.study import TuneSettings
    from srunit.tune.targets import FolderTarget, SynthScapesTarget

    for kind, target_scores in (("folders", FolderTarget.scores), ("synthscapes", SynthScapesTarget.scores)):
        with pytest.raises(ConfigError) as refused:
            TuneSettings(preset="cut", space={}, target={"kind": kind}, study_name="s", objective="bogus")
        listed = str(refused.value).split("choose from ")[1].split(", ")
        assert listed == list(target_scores), refused.value
    with pytest.raises(ConfigError, match=r"--objective: a score `tune data` does not give \(its images have no "
                                          r"paired truth\) 'dist'; choose from mean_iou,"):
        TuneSettings(preset="cut", space={}, target={"kind": "folders"}, study_name="s", objective="dist")


@pytest.mark.parametrize("when", ["between trials", "inside a trial"])
def test_a_tuning_folder_moved_and_linked_while_it_runs_stops_the_study_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """`mv tu2 tu2-moved; ln -s $PWD/victimU tu2` while a trial ran: 130 lines of traceback (SQLite's "attempt to
    write a readonly database", Optuna's StorageInternalError) (round thirty-two (A)); a trial started after the swap
    made its run in the user's folder, and the summary, plots and best.yaml were written there by path."""
    import os
    import re

    from srunit.errors import DataError
    from srunit.tune.study import Trials, TuneSettings, run_tune
    from srunit.tune.targets import FolderTarget

    for folder in ("data", "val", "labels"):
        (tmp_path / folder).mkdir()
    target = FolderTarget(str(tmp_path / "data"), str(tmp_path / "val"), str(tmp_path / "labels"), "seg.onnx", 3)
    settings = TuneSettings(preset="cut", target=target.to_dict(), space={"method.lambda_nce": {"low": 0.5,
                            "high": 2.0}}, study_name="s", trials=3, sampler="random")
    out, moved, victim = tmp_path / "tu", tmp_path / "tu-moved", tmp_path / "victim"
    victim.mkdir()
    (victim / "mine.txt").write_text("the user's")
    calls = []

    def run(self: Trials, params: dict, seed: int, on_stop: object = None) -> tuple[float, dict]:
        calls.append(seed)
        if len(calls) == 1:
            os.rename(out, moved)
            os.symlink(victim, out)
            if when == "inside a trial":
                raise OSError("attempt to write a readonly database")  # as the storage's write failed
        return 0.5, {"runs": [f"r{seed}"]}

    monkeypatch.setattr(Trials, "run", run)
    monkeypatch.setattr(FolderTarget, "prepare", lambda self, out: None)
    monkeypatch.setattr(FolderTarget, "check", lambda self: None)
    with pytest.raises(DataError, match=rf"^{re.escape(str(out))} was moved or replaced while the tuning study wrote "
                                        rf"into it \(.*it is now at {re.escape(str(moved))}\)"):
        run_tune(out, settings, show_progress=False)
    assert len(calls) == 1
    assert sorted(p.name for p in victim.iterdir()) == ["mine.txt"]


def test_translate_into_a_folder_moved_while_it_writes_says_where_the_translations_are(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """`--output tout` moved to tout-moved (a link to the user's folder in its place) while translate wrote: every
    image went into the folder it opened, but its last line said `translated 300 image(s) into tout`, the user's
    other folder (round thirty-two (A), a candidate)."""
    import logging
    import os

    from srunit.inference import Translator

    out, moved, victim = tmp_path / "tout", tmp_path / "tout-moved", tmp_path / "victim"
    victim.mkdir()
    translator = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    translate = translator.translate_images

    def swapping(*args: object, **kwargs: object) -> object:
        if not moved.exists():
            os.rename(out, moved)
            os.symlink(victim, out)
        return translate(*args, **kwargs)

    monkeypatch.setattr(translator, "translate_images", swapping)
    with caplog.at_level(logging.WARNING, logger="srunit"):
        written = translator.translate_folder(tiny_data / "testA", out)
    assert list(victim.iterdir()) == [] and len(list(moved.iterdir())) == len(written) > 0
    assert f"--output {out} was moved while srunit wrote into it: the {len(written)} translation(s) are in {moved}" \
           in caplog.text, caplog.text


def test_tune_data_directed_flip_rate_without_flip_classes_is_refused_before_the_folder_is_made(
        tmp_path: Path) -> None:
    """`tune data ... --objective directed_flip_rate` without --flip-from/--flip-to was taken, made the tuning folder,
    failed in trial 0 advising another --objective, which the folder then refused as other settings (33A)."""
    from srunit.tune.study import TuneSettings, run_tune
    from srunit.tune.targets import FolderTarget

    for folder in ("data", "val", "labels"):
        (tmp_path / folder).mkdir()
    target = FolderTarget(str(tmp_path / "data"), str(tmp_path / "val"), str(tmp_path / "labels"), "seg.onnx", 3)
    settings = TuneSettings(preset="cut", target=target.to_dict(), space={"method.lambda_nce": {"low": 0.5,
                            "high": 2.0}}, study_name="s", trials=1, objective="directed_flip_rate")
    with pytest.raises(ConfigError, match="--objective directed_flip_rate: the directed flip rate is of the classes "
                                          "--flip-from into --flip-to, and neither is given; give both"):
        run_tune(tmp_path / "out", settings, show_progress=False)
    assert not (tmp_path / "out").exists()
