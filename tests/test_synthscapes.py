"""SynthScapes: data determinism and consistency, the scoring segmenter's cache, the benchmark end to end."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import srunit.synthscapes.benchmark as bench_module
from srunit.cli.main import main
from srunit.data.synthetic import CLASS_NAMES, VEGETATION, colors_to_labels, render_labels, render_photo
from srunit.errors import CheckpointError, ConfigError, DataError
from srunit.eval.paired import paired_scores
from srunit.synthscapes import (
    BenchSettings,
    SegmenterSettings,
    evaluate_images,
    format_table,
    load_or_train_segmenter,
    make_synthscapes,
    profile_settings,
    run_benchmark,
    summarize,
)
from srunit.synthscapes.data import pool_layout, heldout_layout
from tests.conftest import TINY_MODEL

TINY_SEG = SegmenterSettings(size=32, num_images=8, steps=2, batch_size=2, width=4)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _array(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "ss"
    make_synthscapes(root, num_pool=24, num_test=3, size=32, seed=1)
    return root


def test_same_seed_same_bytes_other_seed_other_images(synth: Path, tmp_path: Path) -> None:
    make_synthscapes(tmp_path / "again", num_pool=24, num_test=3, size=32, seed=1)
    assert _digest(synth) == _digest(tmp_path / "again")
    make_synthscapes(tmp_path / "other", num_pool=24, num_test=3, size=32, seed=2)
    assert _digest(synth)["testB/0000.png"] != _digest(tmp_path / "other")["testB/0000.png"]


def test_test_set_is_exact_ground_truth(synth: Path) -> None:
    for i in range(3):
        layout, rng = heldout_layout(i, size=32, seed=1)
        name = f"{i:04d}.png"
        np.testing.assert_array_equal(_array(synth / "testLabels" / name), layout)
        np.testing.assert_array_equal(colors_to_labels(_array(synth / "testA" / name)), layout)
        np.testing.assert_array_equal(_array(synth / "testB" / name), render_photo(layout, rng))


def test_domains_come_from_disjoint_layouts_of_the_two_clusters(synth: Path) -> None:
    manifest = json.loads((synth / "manifest.json").read_text())
    a, b = manifest["trainA"]["pool_indices"], manifest["trainB"]["pool_indices"]
    assert all(i % 2 == 0 for i in a) and all(i % 2 == 1 for i in b)
    assert len(list((synth / "trainA").iterdir())) == len(a) and len(list((synth / "trainB").iterdir())) == len(b)
    first_a = pool_layout(a[0], size=32, seed=1)[0]
    np.testing.assert_array_equal(_array(synth / "trainA" / "0000.png"), render_labels(first_a))
    # Unmatched statistics: the vegetation share differs strongly between the domains.
    veg = [np.mean([(pool_layout(i, size=32, seed=1)[0] == VEGETATION).mean() for i in d]) for d in (a, b)]
    assert abs(veg[0] - veg[1]) > 0.15
    assert manifest["trainA"]["class_fractions"]["vegetation"] == pytest.approx(veg[0], abs=1e-4)


def test_full_mix_uses_every_pool_layout(tmp_path: Path) -> None:
    manifest = make_synthscapes(tmp_path / "m", num_pool=24, num_test=1, size=32, seed=1, mix=100)
    assert manifest["trainA"]["pool_indices"] == list(range(0, 24, 2))
    assert manifest["trainB"]["pool_indices"] == list(range(1, 24, 2))


def test_refuses_non_empty_folder_and_bad_counts(synth: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not an empty folder"):
        make_synthscapes(synth, num_pool=24, num_test=1, size=32)
    with pytest.raises(ConfigError, match="num_pool"):
        make_synthscapes(tmp_path / "x", num_pool=2, size=32)


def test_evaluation_with_an_oracle_and_a_constant_segmenter(synth: Path, tmp_path: Path) -> None:
    # The label colour maps segmented by inverting the palette are a perfect "translation".
    perfect = evaluate_images(synth / "testA", tmp_path / "oracle", synth, colors_to_labels, {"label": "oracle"})
    seg = perfect["segmentation"]
    assert seg["pixel_accuracy"] == 1.0 and seg["class_accuracy"] == 1.0 and seg["mean_iou"] == 1.0
    expected = paired_scores(synth / "testA", synth / "testB", (30, 50))
    assert perfect["paired"]["dist"] == pytest.approx(expected.dist)
    assert (tmp_path / "oracle" / "scores.json").is_file()
    np.testing.assert_array_equal(_array(tmp_path / "oracle" / "predicted" / "0001.png"),
                                  _array(synth / "testLabels" / "0001.png"))

    labels = np.stack([_array(p) for p in sorted((synth / "testLabels").iterdir())])
    sky = evaluate_images(synth / "testA", tmp_path / "sky", synth, lambda im: np.zeros(im.shape[:2], np.uint8),
                          {})["segmentation"]
    share = (labels == 0).mean()
    assert sky["pixel_accuracy"] == pytest.approx(share)
    present = [c for c in range(len(CLASS_NAMES)) if (labels == c).any()]
    assert sky["class_accuracy"] == pytest.approx(1.0 / len(present))  # sky 100%, every other class 0%
    assert sky["mean_iou"] == pytest.approx(share / len(present))  # IoU_sky = |sky| / |all|


def test_segmenter_is_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net, path = load_or_train_segmenter(TINY_SEG, tmp_path)
    assert path.is_file() and path.parent == tmp_path and "32px" in path.name
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ids = net.segment(image)
    assert ids.shape == (32, 32) and ids.dtype == np.uint8 and ids.max() < len(CLASS_NAMES)

    def no_training(*_a: object, **_k: object) -> None:
        raise AssertionError("a cached segmenter must not be retrained")

    monkeypatch.setattr("srunit.synthscapes.segmenter.train_segmenter", no_training)
    again, path2 = load_or_train_segmenter(TINY_SEG, tmp_path)
    assert path2 == path
    np.testing.assert_array_equal(again.segment(image), ids)
    # Other settings -> another file; a damaged file -> an error naming it.
    assert TINY_SEG.key() != SegmenterSettings(size=32, num_images=8, steps=3, batch_size=2, width=4).key()
    path.write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match=str(path)):
        load_or_train_segmenter(TINY_SEG, tmp_path)


def test_summary_statistics_and_table() -> None:
    def record(pix: float, dist: float) -> dict:
        return {"segmentation": {"pixel_accuracy": pix, "class_accuracy": pix / 2, "mean_iou": pix / 4},
                "paired": {"dist": dist, "acc": {"30": 0.5, "50": 0.75}}}

    records = {("cut", "unmatched"): [("u/a", record(0.6, 10.0)), ("u/b", record(0.7, 20.0)),
                                      ("u/c", record(0.8, 30.0))],
               ("cut", "matched"): [("m/a", record(0.9, 5.0))]}
    summary = summarize(records, record(0.99, 0.0), record(0.5, 70.0))
    row = summary["rows"][0]
    assert row["n"] == 3 and row["runs"] == ["u/a", "u/b", "u/c"]
    assert row["mean"]["pixel_accuracy"] == pytest.approx(0.7)
    assert row["std"]["pixel_accuracy"] == pytest.approx(0.1)  # sample std of 0.6, 0.7, 0.8
    assert row["std"]["dist"] == pytest.approx(10.0) and row["mean"]["acc_50"] == pytest.approx(0.75)
    assert summary["rows"][1]["std"]["dist"] == 0.0
    table = format_table(summary)
    assert "| cut | unmatched | 3 | 70.00 ± 10.00 | 35.00 ± 5.00 | 17.50 ± 2.50 | 20.00 ± 10.00 |" in table
    assert "| cut | matched | 1 | 90.00 |" in table and "99.00" in table
    assert "| label maps, untranslated | - | - | 50.00 | 25.00 | 12.50 | 70.00 |" in table


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown method preset 'cutt'"):
        BenchSettings(methods=("cutt",))
    with pytest.raises(ConfigError, match="--conditions"):
        BenchSettings(conditions=("similar",))
    with pytest.raises(ConfigError, match="--size"):
        BenchSettings(size=30)
    with pytest.raises(ConfigError, match="--profile"):
        profile_settings("tpu")
    s = profile_settings("cpu", seeds=1, size=32)
    assert s.segmenter.size == 32 and BenchSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def _tiny_settings(**changes: object) -> BenchSettings:
    base = dict(methods=("cut", "srunit"), conditions=("unmatched", "matched"), seeds=1, size=32, steps=2,
                num_pool=24, num_test=2, device="cpu",
                overrides=(*TINY_MODEL, "method.num_patches=16"), segmenter=TINY_SEG)
    base.update(changes)
    return BenchSettings(**base)


def test_benchmark_end_to_end_continues_and_refuses_other_settings(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "bench"
    summary = run_benchmark(out, _tiny_settings(), cache_dir=tmp_path / "cache", show_progress=False)
    assert [(r["method"], r["condition"]) for r in summary["rows"]] == [
        ("cut", "unmatched"), ("srunit", "unmatched"), ("cut", "matched"), ("srunit", "matched"),
        ("label maps, untranslated", "-")]
    identity = json.loads((out / "identity" / "eval" / "scores.json").read_text())
    assert identity["images"]["translated"] == str((out / "data" / "test" / "testA").resolve())
    assert summary["rows"][-1]["mean"]["dist"] == pytest.approx(identity["paired"]["dist"])
    for row in summary["rows"][:-1]:
        record = json.loads((out / row["runs"][0] / "eval" / "scores.json").read_text())
        assert 0.0 <= record["segmentation"]["mean_iou"] <= 1.0 and record["method"] == row["method"]
        assert len(list((out / row["runs"][0] / "eval" / "translated").iterdir())) == 2
        assert len(list((out / row["runs"][0] / "eval" / "predicted").iterdir())) == 2
    assert json.loads((out / "summary.json").read_text())["rows"] == summary["rows"]
    assert (out / "table.md").read_text().startswith("| method | data |")

    # A rerun with the same settings does no new training and gives the same table.
    monkeypatch.setattr(bench_module, "_train", lambda *a, **k: pytest.fail("finished runs must be reused"))
    again = run_benchmark(out, _tiny_settings(), cache_dir=tmp_path / "cache", show_progress=False)
    assert again["rows"] == summary["rows"]
    with pytest.raises(ConfigError, match="other settings"):
        run_benchmark(out, _tiny_settings(steps=3), cache_dir=tmp_path / "cache", show_progress=False)

    # Another segmenter re-scores every run (and the references) without retraining.
    other = SegmenterSettings(size=32, num_images=8, steps=3, batch_size=2, width=4)
    rescored = run_benchmark(out, _tiny_settings(segmenter=other), cache_dir=tmp_path / "cache",
                             show_progress=False)
    name = load_or_train_segmenter(other, tmp_path / "cache")[1].name
    for folder in [*(r["runs"][0] for r in rescored["rows"]), "upper_bound"]:
        assert json.loads((out / folder / "eval" / "scores.json").read_text())["segmenter"] == name
    assert json.loads((out / "settings.json").read_text())["segmenter"]["steps"] == 3


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    settings = _tiny_settings(methods=("cut",), conditions=("unmatched",), steps=4)
    run_benchmark(out, settings, cache_dir=tmp_path / "cache", show_progress=False)
    run_dir = out / "unmatched" / "cut-seed0"
    steps_before = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    (run_dir / "eval" / "scores.json").unlink()  # as if the process died after training
    run_benchmark(out, settings, cache_dir=tmp_path / "cache", show_progress=False)
    steps_after = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps_after == steps_before  # not retrained, only re-evaluated
    assert (run_dir / "eval" / "scores.json").is_file()


def test_cli_bench_and_demo_write_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    load_or_train_segmenter(TINY_SEG, cache)  # the tiny segmenter stands in for the profile's one
    monkeypatch.setattr(bench_module, "load_or_train_segmenter",
                        lambda settings, cache_dir=None, device="cpu": load_or_train_segmenter(TINY_SEG, cache))
    out = tmp_path / "b"
    assert main(["bench", "synthscapes", "--methods", "cut", "--conditions", "unmatched", "--seeds", "1",
                 "--size", "32", "--steps", "2", "--num-pool", "16", "--num-test", "2", "--device", "cpu",
                 "--out", str(out), "--no-progress", *[f"--{o}" for o in TINY_MODEL]]) == 0
    text = capsys.readouterr().out
    assert "| cut | unmatched | 1 |" in text and f"report: {out / 'report.html'}" in text
    settings = json.loads((out / "settings.json").read_text())
    assert "model.ngf=4" in settings["overrides"] and settings["steps"] == 2
    assert (out / "report.html").read_text().count("data:image/png;base64,") > 3

    assert main(["bench", "synthscapes", "--methods", "nope", "--out", str(tmp_path / "c")]) == 2
    assert "unknown method preset 'nope'" in capsys.readouterr().err

    assert main(["demo", "--runs-dir", str(tmp_path), "--name", "d", "--methods", "cut", "--steps", "2",
                 "--size", "32", "--device", "cpu", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert f"report: {tmp_path / 'd' / 'report.html'}" in text and "| cut | unmatched | 1 |" in text


def test_gpu_profile_runs_when_shrunk(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # The GPU-sized profile (full-size networks, 256 NCE patches) on the CPU, cut down to seconds.
    out = tmp_path / "g"
    assert main(["bench", "synthscapes", "--profile", "gpu", "--methods", "cut", "--conditions", "matched",
                 "--seeds", "1", "--size", "32", "--steps", "1", "--num-pool", "16", "--num-test", "1",
                 "--segmenter-steps", "1", "--segmenter-images", "2", "--device", "cpu", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--no-report"]) == 0
    settings = json.loads((out / "settings.json").read_text())
    assert settings["overrides"] == [] and settings["segmenter"]["steps"] == 1 and settings["segmenter"]["size"] == 32
    config = (out / "matched" / "cut-seed0" / "config.yaml").read_text()
    assert "ngf: 64" in config and "n_blocks: 9" in config and "| cut | matched | 1 |" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--segmenter-steps"):
        profile_settings("gpu", segmenter_steps=0)
