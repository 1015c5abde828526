"""srunit.synthscapes.benchmark: evaluating translations, and the benchmark end to end (tiny settings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import srunit.synthscapes.benchmark as bench_module
from srunit.errors import ConfigError
from srunit.eval.paired import paired_scores
from srunit.report import build_report
from srunit.synthscapes import (
    SegmenterSettings,
    evaluate_images,
    load_or_train_segmenter,
    run_benchmark,
)
from srunit.synthscapes.benchmark import REPORT_FILE
from srunit.synthscapes.scenes import CLASS_NAMES, colors_to_labels


def _array(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_evaluation_with_an_oracle_and_a_constant_segmenter(synth_data: Path, tmp_path: Path) -> None:
    # The label colour maps segmented by inverting the palette are a perfect "translation".
    perfect = evaluate_images(
        synth_data / "testA", tmp_path / "oracle", synth_data, colors_to_labels, {"label": "oracle"}
    )
    seg = perfect["segmentation"]
    assert seg["pixel_accuracy"] == 1.0 and seg["class_accuracy"] == 1.0 and seg["mean_iou"] == 1.0
    expected = paired_scores(synth_data / "testA", synth_data / "testB", (30, 50))
    assert perfect["paired"]["dist"] == pytest.approx(expected.dist)
    assert (tmp_path / "oracle" / "scores.json").is_file()
    np.testing.assert_array_equal(
        _array(tmp_path / "oracle" / "predicted" / "0001.png"), _array(synth_data / "testLabels" / "0001.png")
    )

    labels = np.stack([_array(p) for p in sorted((synth_data / "testLabels").iterdir())])
    sky = evaluate_images(
        synth_data / "testA", tmp_path / "sky", synth_data, lambda im: np.zeros(im.shape[:2], np.uint8), {}
    )["segmentation"]
    share = (labels == 0).mean()
    assert sky["pixel_accuracy"] == pytest.approx(share)
    present = [c for c in range(len(CLASS_NAMES)) if (labels == c).any()]
    assert sky["class_accuracy"] == pytest.approx(1.0 / len(present))  # sky 100%, every other class 0%
    assert sky["mean_iou"] == pytest.approx(share / len(present))  # IoU_sky = |sky| / |all|


def test_benchmark_end_to_end_continues_and_refuses_other_settings(
    tmp_path: Path, tiny_settings, check_report_page, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "bench"
    summary = run_benchmark(out, tiny_settings(), cache_dir=tmp_path / "cache", show_progress=False, report=True)
    assert [(r["method"], r["condition"]) for r in summary["rows"]] == [
        ("cut", "unmatched"),
        ("srunit", "unmatched"),
        ("cut", "matched"),
        ("srunit", "matched"),
        ("label maps, untranslated", "-"),
    ]
    identity = json.loads((out / "identity" / "eval" / "scores.json").read_text())
    # Folders inside the bench folder are named relative to the record's eval/ folder, so the bench folder moves.
    assert identity["images"]["translated"] == "../../data/test/testA"
    assert summary["rows"][-1]["mean"]["dist"] == pytest.approx(identity["paired"]["dist"])
    for row in summary["rows"][:-1]:
        record = json.loads((out / row["runs"][0] / "eval" / "scores.json").read_text())
        assert 0.0 <= record["segmentation"]["mean_iou"] <= 1.0 and record["method"] == row["method"]
        assert len(list((out / row["runs"][0] / "eval" / "translated").iterdir())) == 2
        assert len(list((out / row["runs"][0] / "eval" / "predicted").iterdir())) == 2
    assert json.loads((out / "summary.json").read_text())["rows"] == summary["rows"]
    assert (out / "table.md").read_text().startswith("| method | data |")
    # report=True: the HTML report of the benchmark, one grid column per row (first seed) and the upper bound.
    page = check_report_page(out / REPORT_FILE)
    assert REPORT_FILE == "report.html" and "label maps, untranslated" in page.text
    assert sum((a["alt"] or "").startswith("source ") for a in page.images) == 2  # both test images
    report_bytes = (out / REPORT_FILE).read_bytes()
    html = report_bytes.decode()
    assert html.index("<h2>Benchmark synthscapes</h2>") < html.index("<h2>Runs</h2>")  # the table first

    # A rerun with the same settings does no new training and gives the same table.
    monkeypatch.setattr(bench_module, "train_run", lambda *a, **k: pytest.fail("finished runs must be reused"))
    again = run_benchmark(out, tiny_settings(), cache_dir=tmp_path / "cache", show_progress=False)
    assert again["rows"] == summary["rows"]
    assert (out / REPORT_FILE).read_bytes() == report_bytes  # report=False leaves the report alone
    with pytest.raises(ConfigError, match="other settings"):
        run_benchmark(out, tiny_settings(steps=3), cache_dir=tmp_path / "cache", show_progress=False)

    # Another segmenter re-scores every run (and the references) without retraining.
    other = SegmenterSettings(size=32, num_images=8, steps=3, batch_size=2, width=4)
    rescored = run_benchmark(out, tiny_settings(segmenter=other), cache_dir=tmp_path / "cache", show_progress=False)
    name = load_or_train_segmenter(other, tmp_path / "cache")[1].name
    for folder in [*(r["runs"][0] for r in rescored["rows"]), "upper_bound"]:
        assert json.loads((out / folder / "eval" / "scores.json").read_text())["segmenter"] == name
    assert json.loads((out / "settings.json").read_text())["segmenter"]["steps"] == 3

    # Moved as a whole, the bench folder's report still finds every image it shows.
    moved = tmp_path / "moved"
    out.rename(moved)
    build_report([moved])
    page = check_report_page(moved / REPORT_FILE)
    assert sum((a["alt"] or "").startswith("source ") for a in page.images) == 2 and "is not read" not in page.text


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path, tiny_settings) -> None:
    out = tmp_path / "bench"
    settings = tiny_settings(methods=("cut",), conditions=("unmatched",), steps=4)
    run_benchmark(out, settings, cache_dir=tmp_path / "cache", show_progress=False)
    run_dir = out / "unmatched" / "cut-seed0"
    steps_before = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    (run_dir / "eval" / "scores.json").unlink()  # as if the process died after training
    run_benchmark(out, settings, cache_dir=tmp_path / "cache", show_progress=False)
    steps_after = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps_after == steps_before  # not retrained, only re-evaluated
    assert (run_dir / "eval" / "scores.json").is_file()
    assert not (out / REPORT_FILE).exists()  # no report unless asked


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_every_preset_trains_at_each_profiles_image_size(profile: str, tmp_path: Path) -> None:
    """`--methods all` reaches every preset: each one's networks take the profile's images (DRIT's
    discriminators included) and every loss runs on a batch of them. Widths are cut for speed; depth,
    which decides the sizes a network takes, stays the profile's."""
    from srunit.engine.dryrun import dry_run
    from srunit.synthscapes import make_synthscapes, profile_settings

    settings = profile_settings(profile, methods=("all",))
    root = tmp_path / "data"
    make_synthscapes(root, num_pool=8, num_test=1, size=settings.size, seed=0)
    narrow = ("model.ngf=4", "model.ndf=4", "model.projector_dim=8")
    for preset in settings.methods:
        config = bench_module.run_config(settings, preset, root, tmp_path / "runs", preset, 0).with_overrides(narrow)
        config = config.with_overrides(("train.device=cpu",))
        losses = dry_run(config).losses
        assert losses and all(np.isfinite(v) for v in losses.values()), (preset, losses)


def test_nonbijective_condition_scores_hallucinations_and_keeps_stegogans_masks(
    tmp_path: Path, tiny_settings, check_report_page
) -> None:
    """`--conditions nonbijective`: trained on domains where only B holds cars, scored on a test set without cars,
    with the hallucination rate beside the other scores; a StegoGAN run also keeps the masks of its translations,
    and the report shows them."""
    out = tmp_path / "bench"
    settings = tiny_settings(methods=("cut", "stegogan"), conditions=("nonbijective",), seeds=2)
    summary = run_benchmark(out, settings, cache_dir=tmp_path / "cache", show_progress=False, report=True)
    rows = {(r["method"], r["condition"]): r for r in summary["rows"]}
    assert set(rows) == {("cut", "nonbijective"), ("stegogan", "nonbijective"), ("label maps, untranslated", "-")}
    car = CLASS_NAMES.index("car")
    for method in ("cut", "stegogan"):
        row = rows[(method, "nonbijective")]
        assert 0.0 <= row["mean"]["hallucination_rate"] <= 1.0 and row["n"] == 2
        run = out / row["runs"][0]
        record = json.loads((run / "eval" / "scores.json").read_text())
        # Scored on the test set without cars: no label pixel is a car, so the rate is the share of car predictions.
        assert (run / "eval" / record["images"]["labels"]).resolve() == (out / "data" / "test-nonbijective"
                                                                         / "testLabels").resolve()
        predicted = np.stack([_array(p) for p in sorted((run / "eval" / "predicted").iterdir())])
        assert record["segmentation"]["hallucination"]["hallucination_rate"] == pytest.approx((predicted == car).mean())
        assert ("masks" in record["images"]) == (method == "stegogan")
    masks = sorted((out / rows[("stegogan", "nonbijective")]["runs"][0] / "eval" / "masks").iterdir())
    assert [p.name for p in masks] == ["0000.png", "0001.png"]
    diff = next(d for d in summary["differences"] if d["method"] == "stegogan")
    assert diff["metrics"]["hallucination_rate"]["n"] == 2  # paired by seed with CUT
    assert "Halluc." in (out / "table.md").read_text()
    page = check_report_page(out / REPORT_FILE)
    assert "unmatchability mask" in page.text
    assert sum((a["alt"] or "").endswith(" unmatched") for a in page.images) == 2
