"""Round twenty (B): the committed studies (studies/), the numbers the docs quote from them, and the commands the
docs print to rebuild or continue them. Each test reproduced a defect first; the quoted numbers are recomputed
here from the committed records with plain json and numpy, not with srunit's summariser."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from srunit.cli.main import main
from srunit.errors import DataError
from srunit.eval.study_records import write_record
from srunit.synthscapes.benchmark import check_run_configs
from srunit.tune import study as study_module
from srunit.tune.study import Trials, TuneSettings
from srunit.tune.targets import SynthScapesTarget

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"
SPACE = {"method.lambda_nce": {"low": 0.25, "high": 4.0, "log": True},
         "method.nce_temperature": {"low": 0.03, "high": 0.2}}


def _records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _preset_file(tmp_path: Path) -> Path:
    preset = tmp_path / "presets" / "cut-tuned.yaml"  # as studies/confirm-long/presets/ holds them
    preset.parent.mkdir(parents=True)
    preset.write_text("base: cut\nmethod:\n  name: cut\n  lambda_nce: 3.6\ntrain:\n  name: cut-tuned\n")
    return preset


def test_a_benchmark_of_a_preset_file_builds_its_run_configs(tmp_path: Path, tiny_settings) -> None:
    """The confirmatory study's commands (`--methods studies/confirm-long/presets/srunit-tuned.yaml,...`) were
    refused before any work: `train.name: invalid value 'studies/confirm-long/presets/srunit-tuned.yaml'` (the check
    of every run's config named each run by the preset's path), so the docs' "the commands above rebuild these
    tables" did not run."""
    preset = _preset_file(tmp_path)
    check_run_configs(tiny_settings(methods=(str(preset), "cut")), tmp_path / "bench")
    assert not (tmp_path / "bench").exists()


def test_a_tuning_study_of_a_preset_file_gets_past_its_config_check(tmp_path: Path, capsys) -> None:
    """`tune synthscapes --preset FILE.yaml` was refused the same way, naming train.name."""
    preset = _preset_file(tmp_path)
    code = main(["tune", "synthscapes", "--preset", str(preset), "--out", str(tmp_path / "study"),
                 "--device", "cuda:99", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "train.name" not in err and "--device" in err
    assert not (tmp_path / "study").exists()


def _study(tmp_path: Path, tiny_settings, name: str = "s", overrides: tuple[str, ...] = ()) -> Trials:
    bench = tiny_settings(methods=("cut",), conditions=("unmatched",))
    target = SynthScapesTarget(bench.to_dict(), str(tmp_path / "out"))
    settings = TuneSettings(preset="cut", target=target.to_dict(), space=SPACE, study_name=name, trials=2,
                            sampler="random", overrides=overrides)
    return Trials(settings, str(tmp_path / "out"), f"sqlite:///{tmp_path / 'study.db'}", str(tmp_path / "records"))


def _write_trial(trials: Trials, params: dict[str, Any], seed: int) -> Path:
    name, _, identity = trials.run_of(trials.trial_overrides(params), seed)
    write_record(trials.records, f"trials/{name}", identity, seed, {"segmentation": {"mean_iou": 0.4}},
                 commit=None, version="0", machine="test", train_minutes=1.0,
                 extra={"study": trials.settings.study_name, "params": params, "trial_seed": seed,
                        "objective": "mean_iou"})
    return Path(trials.records) / "trials" / f"{name}.json"


def test_a_records_folder_of_another_study_or_other_settings_is_refused_before_any_trial(
        tmp_path: Path, tiny_settings) -> None:
    """docs/tuning.md printed `srunit tune synthscapes --preset srunit --profile long --trials 20 --records
    studies/tune-long-srunit` (no --study: the study is named after the new --out); a study run with another fixed
    option (`--method.lambda_nce 2`) beside the records of the committed one did the same: every record was left
    aside without a word and the study trained its trials anew into the same folder, two studies' runs side by
    side (which `plan_confirmatory.py` then read as one)."""
    params = {"method.lambda_nce": 1.0, "method.nce_temperature": 0.07}
    record = _write_trial(_study(tmp_path, tiny_settings), params, 1000)
    study_module.check_records(_study(tmp_path, tiny_settings))  # the same study and settings continue
    with pytest.raises(DataError, match=r"record of study 's' .*; pass --study s \(with that study's options\)"):
        study_module.check_records(_study(tmp_path, tiny_settings, name="tune-srunit-20261206"))
    with pytest.raises(DataError, match=r"other settings than this command's \(differing: config.method.num_patches\)"):
        study_module.check_records(_study(tmp_path, tiny_settings, overrides=("method.num_patches=8",)))
    data = json.loads(record.read_text())
    data["params"] = {"method.lambda_nce": 1.0}
    record.write_text(json.dumps(data))
    with pytest.raises(DataError, match="another search space"):
        study_module.check_records(_study(tmp_path, tiny_settings))


def _plan(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    spec = importlib.util.spec_from_file_location("plan_confirmatory", ROOT / "benchmarks" / "plan_confirmatory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["plan_confirmatory.py", *args])
    try:
        module.main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def _trial_folder(folder: Path, rows: list[tuple[str, int, float, str]]) -> Path:
    (folder / "trials").mkdir(parents=True)
    for name, seed, score, study in rows:
        (folder / "trials" / f"{name}.json").write_text(json.dumps(
            {"seed": seed, "study": study, "scores": {"mean_iou": score, "directed_flip_rate": 1 - score}}))
    return folder


@pytest.mark.parametrize("rows, fragment", [
    ([("x", 1, 0.4, "s"), ("x-copy", 1, 0.9, "s"), ("y", 2, 0.5, "s")], "two records of seed 1"),
    ([("x", 1, 0.4, "s"), ("y", 2, 0.5, "other")], "holds records of two studies: 's'"),
])
def test_plan_confirmatory_refuses_a_folder_that_mixes_runs(tmp_path: Path, monkeypatch, capsys,
                                                            rows: list, fragment: str) -> None:
    """Two records of one seed: one was dropped without a word ("2 runs"), the kept one chosen by file name; a
    record of another study was paired as one of this study's trials."""
    a = _trial_folder(tmp_path / "a", rows)
    b = _trial_folder(tmp_path / "b", [("x", 1, 0.4, "b"), ("y", 2, 0.45, "b")])
    code, text = _plan(monkeypatch, capsys, str(a), str(b))
    assert code == 2 and fragment in text and "Traceback" not in text


def test_plan_confirmatory_names_a_damaged_record_and_survives_scores_without_spread(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """A truncated record was a JSONDecodeError traceback; equal scores (no spread) a ZeroDivisionError."""
    a = _trial_folder(tmp_path / "a", [("x", 1, 0.4, "a"), ("y", 2, 0.4, "a")])
    b = _trial_folder(tmp_path / "b", [("x", 1, 0.4, "b"), ("y", 2, 0.4, "b")])
    code, text = _plan(monkeypatch, capsys, str(a), str(b), "--pairs", "4")
    assert code == 0 and "no spread" in text
    (a / "trials" / "y.json").write_text('{"seed": 2, "scores": {"mean_i')
    code, text = _plan(monkeypatch, capsys, str(a), str(b))
    assert code == 2 and "y.json cannot be read as a study record" in text and "Traceback" not in text


def _docs(name: str) -> str:
    return (ROOT / name).read_text()


def _commands(text: str) -> list[str]:
    """Every `srunit bench|tune` command in the docs' code blocks, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    joined = "\n".join(re.sub(r"\\\n\s*", " ", b) for b in blocks)
    return [line.strip() for line in joined.splitlines() if re.search(r"srunit (bench synthscapes|tune synthscapes)",
                                                                      line)]


def test_every_command_on_a_committed_study_uses_its_scorer_and_names_its_study() -> None:
    """`bench synthscapes ... --records studies/long-flipping` (and the StegoGAN table's, and docs/tuning.md's)
    printed no --cache-dir: the committed scorer in studies/scorer/ was not found, a new segmenter trained for
    minutes and was written into the committed records folder; docs/tuning.md's commands also lacked --study."""
    for name in ("docs/synthscapes.md", "docs/tuning.md", "README.md"):
        for command in _commands(_docs(name)):
            records = re.search(r"--records studies/([\w.-]+)", command)
            if records is None or not (STUDIES / records.group(1)).is_dir():  # a committed study's folder
                continue
            assert "--cache-dir studies/scorer" in command, command
            if "tune synthscapes" in command and records.group(1).startswith("tune-long"):
                assert f"--study {records.group(1)}" in command, command


def _trials(study: str) -> list[dict[str, Any]]:
    return _records(STUDIES / study / "trials")


def test_the_numbers_quoted_from_study_c_match_its_records() -> None:
    """C's other 19 trials: the docs said median 48.5 mIoU and 51.2 directed flips; the records give 48.4, 51.3."""
    c = _trials("tune-long-srunit-on-tuned-cut")
    assert len(c) == 20
    best = max(c, key=lambda r: r["scores"]["mean_iou"])
    assert best["trial_seed"] == 1015
    others = [r for r in c if r is not best]
    miou = statistics.median(100 * r["scores"]["mean_iou"] for r in others)
    flips = statistics.median(100 * r["scores"]["directed_flip_rate"] for r in others)
    text = " ".join(_docs("docs/synthscapes.md").split())
    assert f"score {min(100 * r['scores']['mean_iou'] for r in others):.1f}–" \
           f"{max(100 * r['scores']['mean_iou'] for r in others):.1f} mIoU (median {miou:.1f})" in text
    assert f"directed flips (median {flips:.1f})" in text


def test_the_confirmatory_studys_flips_into_vegetation_match_its_records() -> None:
    """The docs said both tuned presets "flip 94% of the building pixels ... into vegetation": 94% of them flip,
    89% into vegetation (the rest to other classes)."""
    records = _records(STUDIES / "confirm-long" / "records" / "unmatched")
    into, flipped = {}, {}
    for arm in ("srunit-tuned", "cut-tuned"):
        runs = [r for r in records if r["key"].startswith(f"unmatched/{arm}-seed")]
        assert len(runs) == 24
        for c, name in ((0, "sky"), (1, "building")):
            rows = [np.array(r["evaluation"]["segmentation"]["confusion_matrix"][c], float) for r in runs]
            into[arm, name] = 100 * np.mean([row[2] / row.sum() for row in rows])
            flipped[arm, name] = 100 * np.mean([1 - row[c] / row.sum() for row in rows])
    text = " ".join(_docs("docs/synthscapes.md").split())
    building = round(np.mean([flipped[a, "building"] for a in ("srunit-tuned", "cut-tuned")]))
    building_veg = round(np.mean([into[a, "building"] for a in ("srunit-tuned", "cut-tuned")]))
    sky_veg = round(np.mean([into[a, "sky"] for a in ("srunit-tuned", "cut-tuned")]))
    assert (building, building_veg, sky_veg) == (94, 89, 16)
    assert f"Both flip {building}% of the building pixels ({building_veg}% into vegetation) and {sky_veg}% of the " \
           f"sky pixels into vegetation" in text


@pytest.mark.parametrize("study", ["tune-long-cut", "tune-long-srunit", "tune-long-srunit-on-tuned-cut"])
def test_each_committed_tuning_study_holds_one_study_one_setting_and_one_run_per_seed(study: str) -> None:
    """What the tuning commands and plan_confirmatory.py now refuse is absent from the committed studies."""
    paths = sorted((STUDIES / study / "trials").glob("*.json"))
    records = [json.loads(p.read_text()) for p in paths]
    assert len(records) == 20 and {r["study"] for r in records} == {study}
    assert len({r["seed"] for r in records}) == 20
    assert all(r["key"] == f"trials/{p.stem}" for p, r in zip(paths, records, strict=True))
    fixed = {json.dumps({k: v for k, v in r["settings"]["config"]["method"].items()
                         if k not in ("lambda_nce", "nce_temperature", "robust")}, sort_keys=True) for r in records}
    assert len(fixed) == 1


def test_a_copy_of_a_committed_study_is_not_changed_by_a_refused_continuation(tmp_path: Path, capsys,
                                                                             monkeypatch) -> None:
    """Continuing a copy of studies/tune-long-cut under another study name is refused before anything is written:
    the copy's records are byte for byte as committed, and no tuning folder is made."""
    copy = tmp_path / "tune-long-cut"
    shutil.copytree(STUDIES / "tune-long-cut", copy)
    before = {p.name: p.read_bytes() for p in (copy / "trials").iterdir()}
    import srunit.engine.trainer as trainer

    monkeypatch.setattr(trainer, "train_to_end", lambda *a, **k: pytest.fail("no trial may train"))
    code = main(["tune", "synthscapes", "--preset", "cut", "--profile", "long", "--trials", "20", "--no-progress",
                 "--records", str(copy), "--cache-dir", str(STUDIES / "scorer"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "record of study 'tune-long-cut'" in err and "pass --study tune-long-cut" in err
    assert {p.name: p.read_bytes() for p in (copy / "trials").iterdir()} == before
    assert not (tmp_path / "out").exists()


def test_trials_added_from_records_keep_their_numbers_and_a_new_trial_takes_an_unused_seed(
        tmp_path: Path, tiny_settings) -> None:
    """tune-long-cut's records (trials 0 and 2..20: trial 1 failed where they were made), continued on another
    machine: the trials were added in file-name order, so its best trial, 9 (seed 1009) in the docs, was listed as
    trial 18, and the study's next trial, number 20, trained on seed 1020, which trial 20's record already held."""
    from srunit.tune.study import import_records, open_study

    trials = _study(tmp_path, tiny_settings)
    for k in (3, 0, 2):  # written out of order; trial 1 has no record
        _write_trial(trials, {"method.lambda_nce": 1.0 + k / 10, "method.nce_temperature": 0.07}, 1000 + k)
    study = open_study(trials.storage, trials.settings)
    assert import_records(study, trials) == 3
    done = {t.number: t.user_attrs["seed"] for t in study.get_trials() if t.state.name == "COMPLETE"}
    assert done == {0: 1000, 2: 1002, 3: 1003}
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    next_seed = trials.settings.trial_seed(len(study.get_trials()))
    assert next_seed == 1004 and next_seed not in done.values()


def test_a_benchmark_record_or_a_future_record_among_a_studys_trials_is_named_plainly(
        tmp_path: Path, tiny_settings) -> None:
    """A benchmark's record put in trials/ was skipped without a word (the new check first advised `--study None`);
    a record of a later format was called "not a study record ... restore it from the repository"."""
    trials = _study(tmp_path, tiny_settings)
    record = _write_trial(trials, {"method.lambda_nce": 1.0, "method.nce_temperature": 0.07}, 1000)
    bench = record.with_name("cut-seed0.json")
    data = json.loads(record.read_text())
    bench.write_text(json.dumps({k: v for k, v in data.items() if k not in ("study", "params", "trial_seed")}))
    with pytest.raises(DataError, match=r"cut-seed0.json is not a tuning trial's record .*; move it out") as error:
        study_module.check_records(trials)
    assert "None" not in str(error.value)
    bench.unlink()
    record.write_text(json.dumps({**data, "format": "srunit-study-record/2"}))
    with pytest.raises(DataError, match=r"format 'srunit-study-record/2', which this srunit .* does not read"):
        study_module.check_records(trials)
