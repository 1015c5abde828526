"""`srunit tune` end to end on tiny SynthScapes: a study, its records, and the same study on a fresh machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srunit.cli.main import main

TINY = ["--profile", "cpu", "--size", "32", "--steps", "2", "--num-pool", "24", "--num-test", "2",
        "--segmenter-steps", "2", "--segmenter-images", "8", "--no-progress", "--sampler", "random",
        "--model.ngf", "4", "--model.ndf", "4", "--model.projector_dim", "8", "--method.num_patches", "16"]


def _tune(out: Path, records: Path, trials: int, *extra: str) -> int:
    return main(["tune", "synthscapes", "--preset", "srunit", "--trials", str(trials), "--out", str(out),
                 "--records", str(records), "--study", "s", *TINY, *extra])


def test_a_study_continues_from_its_records_on_a_fresh_machine(tmp_path: Path, capsys) -> None:
    records = tmp_path / "records"
    assert _tune(tmp_path / "a", records, 2) == 0
    first = json.loads((tmp_path / "a" / "study.json").read_text())
    assert first["finished"] == 2
    runs = sorted(p.name for p in (records / "trials").glob("*.json"))
    assert len(runs) == 2 and list(records.glob("synthscapes-segmenter-*.safetensors"))  # the scorer travels too
    record = json.loads((records / "trials" / runs[0]).read_text())
    assert record["study"] == "s" and set(record["params"]) == {
        "method.robust.weight", "method.robust.max_noise", "method.robust.layers", "method.robust.start"}
    assert "mean_iou" in record["scores"] and "directed_flip_rate" in record["scores"]
    assert (tmp_path / "a" / "best.yaml").read_text().count("base: srunit") == 1

    # Another machine: a new tuning folder and storage, the committed records. Nothing is trained again.
    assert _tune(tmp_path / "b", records, 2) == 0
    again = json.loads((tmp_path / "b" / "study.json").read_text())
    assert again["finished"] == 2 and all(t["from_records"] for t in again["trials"])
    assert not (tmp_path / "b" / "trials").exists()
    assert sorted(t["value"] for t in again["trials"]) == sorted(t["value"] for t in first["trials"])

    # A larger budget (in a folder of its own) trains only the trial that is missing.
    assert _tune(tmp_path / "c", records, 3) == 0
    more = json.loads((tmp_path / "c" / "study.json").read_text())
    assert more["finished"] == 3 and sum(not t["from_records"] for t in more["trials"]) == 1
    assert len(list((tmp_path / "c" / "trials").iterdir())) == 1
    assert len(list((records / "trials").glob("*.json"))) == 3
    capsys.readouterr()


def test_another_budget_in_the_same_folder_is_refused(tmp_path: Path, capsys) -> None:
    records = tmp_path / "records"
    assert _tune(tmp_path / "a", records, 1) == 0
    capsys.readouterr()
    assert _tune(tmp_path / "a", records, 2) == 2
    assert "trials differ" in capsys.readouterr().err


def test_show_space_and_a_method_without_one(tmp_path: Path, capsys) -> None:
    assert main(["tune", "synthscapes", "--preset", "srunit", "--show-space"]) == 0
    out = capsys.readouterr().out
    assert "method.robust.weight log-uniform in [1e-05, 0.001]" in out
    assert main(["tune", "synthscapes", "--preset", "cyclegan", "--out", str(tmp_path / "x")]) == 2
    assert "declares no search space; give one with --space FILE" in capsys.readouterr().err
    space = tmp_path / "space.yaml"
    space.write_text("method.lambda_a: {low: 1, high: 20, log: true}\n")  # lambda_cycle is no option of cyclegan
    assert main(["tune", "synthscapes", "--preset", "cyclegan", "--space", str(space), "--show-space"]) == 0
    assert "method.lambda_a log-uniform in [1, 20]" in capsys.readouterr().out


def test_tune_data_shows_its_space_without_data_options_and_names_the_missing_ones(tmp_path: Path, capsys) -> None:
    assert main(["tune", "data", "--preset", "cut", "--show-space"]) == 0
    assert "method.lambda_nce" in capsys.readouterr().out
    assert main(["tune", "data", "--preset", "cut", "--data", str(tmp_path), "--classes", "3",
                 "--out", str(tmp_path / "study")]) == 2
    assert "srunit tune data needs --val-images, --val-labels, --segmenter:" in capsys.readouterr().err
    assert not (tmp_path / "study").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--objective", "fid"], "--objective: unknown score 'fid'"),
    (["--trials", "0"], "--trials must be an integer"),
    (["--storage", "nosuch://x"], "--storage nosuch://x"),
])
def test_bad_options_are_named(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    assert _tune(tmp_path / "a", tmp_path / "r", 1, *args) == 2
    assert message in capsys.readouterr().err
