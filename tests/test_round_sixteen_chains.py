"""Round sixteen (B): one command's output given to another, and a newcomer's Python session. Each test reproduced
a defect first: a resume whose data folder moved advised an option --resume refuses; the public entry points named
no argument when given a value of the wrong type; a config's loss terms could be changed after a Trainer was built
from it, and the run's config.yaml then said something else than what trained."""

from __future__ import annotations

import copy
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from srunit.config import Config, load_config
from srunit.errors import ConfigError, DataError


def test_a_resume_whose_data_folder_moved_names_the_run_s_option_and_a_fix_that_works(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    """`srunit train --resume RUN` after the data folder was moved said `pass --data.root DIR ...`, and --resume
    refuses every data.* override. The message names the run's data.root and a link as the way back."""
    from srunit.engine import Trainer

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    run = Trainer(tiny_config("cut", "train.steps=1", data_root=data, runs_dir=tmp_path / "runs"),
                  show_progress=False).fit()
    moved = tmp_path / "moved"
    data.rename(moved)
    with pytest.raises(DataError) as err:
        Trainer.resume(run, ["train.steps=2"], show_progress=False)
    message = str(err.value)
    assert f"data.root {data}" in message and "--resume takes train.* overrides only" in message
    assert f'ln -s "$(realpath NEW_PLACE)" {data}' in message and "pass --data.root" not in message
    data.symlink_to(moved)  # the advice, followed
    assert Trainer.resume(run, ["train.steps=2"], show_progress=False).fit() == run


@pytest.mark.parametrize("bad", [None, 1, 1.5, b"runs/x", ["runs/x"], {"a": 1}, True])
def test_the_public_entry_points_name_a_path_argument_of_the_wrong_type(
        tiny_runs: dict[str, Path], tmp_path: Path, bad: object) -> None:
    """`Translator.from_checkpoint(1)`, `translate_folder(None, out)`, `export_generator(run, 1.5)`,
    `load_generator(b"x")`, `build_report([run], out=[...])`, `Trainer.resume(True)` were Python's
    `expected str, bytes or os.PathLike object, not int`, naming neither the function nor the argument."""
    from srunit import Trainer, Translator, export_generator, load_generator
    from srunit.report import build_report

    run = tiny_runs["cut"]
    translator = Translator.from_checkpoint(run, device="cpu")
    calls: dict[str, Callable[[], object]] = {
        "Trainer.resume: run_dir": lambda: Trainer.resume(bad),  # type: ignore[arg-type]
        "Translator.from_checkpoint: checkpoint": lambda: Translator.from_checkpoint(bad),  # type: ignore[arg-type]
        "translate_folder: inputs": lambda: translator.translate_folder(bad, tmp_path / "o"),  # type: ignore[arg-type]
        "export_generator: output": lambda: export_generator(run, bad),  # type: ignore[arg-type]
        "export_generator: checkpoint": lambda: export_generator(bad, tmp_path / "g.pt2"),  # type: ignore[arg-type]
        "load_generator: checkpoint": lambda: load_generator(bad),  # type: ignore[arg-type]
    }
    if bad is not None:  # None is the default of these
        calls["translate_folder: output"] = lambda: translator.translate_folder(run.parent, bad)  # type: ignore
        calls["build_report: out"] = lambda: build_report([run], bad)  # type: ignore[arg-type]
        calls["Trainer: run_dir"] = lambda: Trainer(load_config("cut"), run_dir=bad)  # type: ignore[arg-type]
    for where, call in calls.items():
        with pytest.raises(TypeError, match=rf"^{where} must be a path \(a str or a pathlib.Path\), got "
                                            rf"{type(bad).__name__}"):
            call()
    assert not (tmp_path / "o").exists() and not (tmp_path / "g.pt2").exists()


def test_numbers_flags_and_names_of_the_wrong_type_are_named(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`translate_folder(..., max_pixels=1.5)` took 1.5 as the limit and `max_pixels=[1]` was a TypeError from '>';
    `build_report(paths=None)` was "'NoneType' object is not iterable", `num_images="3"` a TypeError from '<';
    `Trainer(config, show_progress="no")` showed the bar; `Translator.from_checkpoint(run, precision=["fp16"])`,
    `export_generator(..., format={})` and `profile_settings(["cpu"])` were "unhashable type"."""
    from srunit import Trainer, Translator, export_generator, profile_settings
    from srunit.report import build_report

    run = tiny_runs["cut"]
    translator = Translator.from_checkpoint(run, device="cpu")
    for value in (1.5, [1], "9", True):
        with pytest.raises(ConfigError, match=r"^translate_folder: max_pixels must be an integer from 1"):
            translator.translate_folder(run.parent, tmp_path / "o", max_pixels=value)  # type: ignore[arg-type]
    for paths in (None, 3):
        with pytest.raises(TypeError, match=r"^build_report: paths must be a list of run, bench or tuning folders"):
            build_report(paths, tmp_path / "r.html")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^build_report: paths\[1\] must be a path"):
        build_report([run, 7], tmp_path / "r.html")  # type: ignore[list-item]
    for count in ("3", 1.5, None, True):
        with pytest.raises(TypeError, match=r"^build_report: num_images must be an integer >= 0"):
            build_report([run], tmp_path / "r.html", num_images=count)  # type: ignore[arg-type]
    for flag in ("no", 1, None):
        with pytest.raises(TypeError, match=r"^Trainer: show_progress must be True or False"):
            Trainer(load_config("cut"), show_progress=flag)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^Trainer.resume: show_progress must be True or False"):
            Trainer.resume(run, show_progress=flag)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^--precision: invalid value \['fp16'\]; allowed: fp32, bf16, fp16"):
        Translator.from_checkpoint(run, precision=["fp16"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^--format: invalid value \{\}; allowed: onnx, export, torchscript"):
        export_generator(run, tmp_path / "g.pt2", {})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^--profile: unknown profile \['cpu'\]"):
        profile_settings(["cpu"])  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


def test_a_configs_loss_terms_cannot_be_changed_after_it_is_built(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    """`config.method.terms` was a plain dict inside the frozen Config: `config.method.terms.clear()` after
    `Trainer(config)` trained SRUNIT with its robustness term and wrote `robust: null` into the run's config.yaml
    (a resume would train without it); `terms["robust"] = "x"` was an AttributeError inside the trainer."""
    from srunit.engine import Trainer

    config = tiny_config("srunit", "train.steps=1", "train.name=s", data_root=tiny_data, runs_dir=tmp_path)
    trainer = Trainer(config, show_progress=False)
    terms = config.method.terms
    for change in (terms.clear, lambda: terms.__setitem__("robust", "x"), lambda: terms.pop("robust"),
                   lambda: terms.update({}), lambda: terms.setdefault("smooth", None)):
        with pytest.raises(TypeError, match=r"^a config's method.terms cannot be changed in place"):
            change()
    run = trainer.fit()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["method"]["robust"]["weight"] == config.method.terms["robust"].weight  # as it trained
    # copies and pickles (bench --jobs, loader workers) stay equal and frozen; the advised way out works
    for other in (copy.deepcopy(config), copy.copy(config), pickle.loads(pickle.dumps(config))):
        assert other == config
        with pytest.raises(TypeError):
            other.method.terms.clear()
    assert dict(config.with_overrides({"method": {"robust": None}}).method.terms) == {}
    assert config.with_overrides(["method.robust.weight=0.001"]).method.terms["robust"].weight == 0.001
    assert dict(load_config("cut").method.terms) == {}


def test_eval_sources_that_hold_none_of_the_translated_images_are_refused(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`eval paired --run RUN --sources DIR` with DIR a run folder, an empty folder or images of other names was
    recorded without a word (status 0), and the report said later that the source folder "is a run folder ...
    rerun the evaluation" and showed no grid. It is refused before the record is touched, naming --sources."""
    from srunit.cli.main import main

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], run)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    shutil.copy(next((tiny_data / "testA").iterdir()), tmp_path / "other" / "x.png")
    shutil.copytree(tiny_data / "testB", tmp_path / "translated")  # as if translated from testA
    paired = ["eval", "paired", "--pred", str(tmp_path / "translated"), "--target", str(tiny_data / "testB"), "--run",
              str(run), "--sources"]
    refusals = {tiny_runs["srunit"]: "is a run folder of srunit train", tmp_path / "empty": "contains no image files",
                tmp_path / "other": "holds no image of the name of 2 of the 2 translations in --pred"}
    for sources, why in refusals.items():
        assert main([*paired, str(sources)]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "--sources" in err and str(sources) in err and why in err, err
        assert "leave --sources out" in err
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # no record written
    assert main([*paired, str(tiny_data / "testA")]) == 0  # the images that were translated, by name
    assert (run / "eval" / "scores.json").is_file()


def _segment_by_red(rgb: object) -> object:
    import numpy as np

    return np.asarray(rgb)[..., 0].astype(np.int64) * 8 // 256


def test_tune_data_on_a_run_or_an_empty_folder_is_refused_before_the_tuning_folder_is_made(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`tune data --data RUN` (or --val-images RUN, a --data without images or without trainA/) failed the first
    trial, after OUT/study.db and OUT/tune.json were written; the corrected command into the same --out was then
    refused as "a tuning study with other settings" until the folder was removed by hand."""
    from srunit.cli.main import main

    segmenter = f"{__name__}:_segment_by_red"
    (tmp_path / "empty").mkdir()
    out = tmp_path / "tune"

    def tune(data: Path, images: Path) -> list[str]:
        return ["tune", "data", "--preset", "cut", "--data", str(data), "--val-images", str(images), "--val-labels",
                str(tiny_data / "testLabels"), "--segmenter", segmenter, "--classes", "8", "--trials", "1", "--out",
                str(out), "--no-progress"]

    cases = {(tiny_runs["cut"], tiny_data / "testA"): "is a run folder of srunit train",
             (tiny_data, tiny_runs["cut"]): "is a run folder of srunit train",
             (tmp_path / "empty", tiny_data / "testA"): "contains no image files",
             (tiny_data / "testB", tiny_data / "testA"): "has no trainA/ folder"}
    for (data, images), why in cases.items():
        assert main(tune(data, images)) == 2
        err = capsys.readouterr().err
        assert why in err and "Traceback" not in err and "Trial 0 failed" not in err, err
        assert not out.exists()


@pytest.mark.parametrize("bad", [None, 1, b"x", ["a"], True])
def test_the_evaluation_functions_name_arguments_of_the_wrong_type(tiny_data: Path, bad: object) -> None:
    """`paired_scores(None, target)`, `score_segmentation(images, [..], ...)`, `fid_kid(1, fake, ...)` were Python's
    `expected str, bytes or os.PathLike object`; `load_segmenter(Path("seg.onnx"))` an AttributeError ('lower');
    `load_segmenter(spec, num_classes=1.5)` was taken; `class_names=True` was "'bool' object is not iterable"."""
    from srunit.eval import fid_kid, load_segmenter, paired_scores, score_segmentation

    images, labels = tiny_data / "testB", tiny_data / "testLabels"
    segment = load_segmenter(f"{__name__}:_segment_by_red", 8)
    calls: dict[str, Callable[[], object]] = {
        "paired_scores: pred_dir": lambda: paired_scores(bad, images),  # type: ignore[arg-type]
        "paired_scores: target_dir": lambda: paired_scores(images, bad),  # type: ignore[arg-type]
        "score_segmentation: images": lambda: score_segmentation(bad, labels, segment, 8),  # type: ignore[arg-type]
        "score_segmentation: labels": lambda: score_segmentation(images, bad, segment, 8),  # type: ignore[arg-type]
        "fid_kid: real_dir": lambda: fid_kid(bad, images, weights=Path("no.pt")),  # type: ignore[arg-type]
        "fid_kid: fake_dir": lambda: fid_kid(images, bad, weights=Path("no.pt")),  # type: ignore[arg-type]
        "load_segmenter: spec": lambda: load_segmenter(bad),  # type: ignore[arg-type]
    }
    if bad is not None:
        calls["score_segmentation: predicted"] = lambda: score_segmentation(images, labels, segment, 8,
                                                                            predicted=bad)  # type: ignore[arg-type]
    for where, call in calls.items():
        with pytest.raises(TypeError, match=rf"^{where} must be a"):
            call()
    with pytest.raises(TypeError, match=r"^load_segmenter: spec must be a str"):
        load_segmenter(Path("seg.onnx"))  # type: ignore[arg-type]
    if type(bad) is not int and bad is not None:  # 1 is a class count
        with pytest.raises(ConfigError, match=r"^load_segmenter: num_classes must be an integer from 1"):
            load_segmenter(f"{__name__}:_segment_by_red", bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^class_names must be a list of names"):
        score_segmentation(images, labels, segment, 8, class_names=1)  # type: ignore[arg-type]
