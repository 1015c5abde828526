"""`srunit report`: the HTML report of run and bench folders, flip masks, and its errors."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from srunit.cli.main import main
from srunit.errors import ConfigError, DataError
from srunit.report import build_report, flip_mask, highlight_flips, load_metrics

SIZE = 12
NAMES = ("a", "b", "c")
PALETTE = [[70, 130, 180], [70, 70, 70], [128, 64, 128]]
VOID_TAGS = {"img", "meta", "br", "hr", "link", "input"}


class Page(HTMLParser):
    """Collects the text, the <img> sources and the tag structure of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.mismatched: list[str] = []
        self.seen: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.chunks: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.mismatched.append(tag)

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(self.chunks)


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _labels(i: int) -> np.ndarray:
    """(SIZE, SIZE) uint8 ids 0..2 in bands; the last row is the ignore label 255."""
    labels = ((np.arange(SIZE)[:, None] + np.arange(SIZE)[None, :] + i) // 8 % 3).astype(np.uint8)
    labels[-1, :] = 255
    return labels


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for i, name in enumerate(NAMES):
        labels = _labels(i)
        colours = np.asarray(PALETTE + [[0, 0, 0]] * 253, dtype=np.uint8)[labels]
        _save(root / "labels" / f"{name}.png", labels)
        _save(root / "source" / f"{name}.png", colours)
        _save(root / "target" / f"{name}.png", (colours // 2 + 60).astype(np.uint8))
    return root


def _scores(label: str, method: str, pixel_accuracy: float, data: Path | None, translated: str = "translated"
            ) -> dict:
    record = {
        "format": "srunit-eval/1", "label": label, "method": method, "condition": "unmatched", "seed": 0,
        "benchmark": "synthscapes",
        "segmentation": {"pixel_accuracy": pixel_accuracy, "class_accuracy": 0.52, "mean_iou": 0.40,
                         "per_class": [{"id": 0, "name": "sky", "accuracy": 0.9, "iou": 0.8},
                                       {"id": 1, "name": "building", "accuracy": 0.5, "iou": 0.3},
                                       {"id": 2, "name": "road", "accuracy": None, "iou": None}],
                         "absent_classes": [2]},
        "paired": {"dist": 61.2, "acc": {"30": 0.41, "50": 0.60}},
        "class_names": ["sky", "building", "road"],
        "palette": PALETTE,
    }
    if data is not None:
        record["images"] = {"source": str(data / "source"), "target": str(data / "target"),
                            "labels": str(data / "labels"), "translated": translated, "predicted": "predicted"}
    return record


def make_run(folder: Path, method: str = "cut", *, data: Path | None = None, label: str | None = None,
             pixel_accuracy: float = 0.71, metrics: bool = True, flips: int = 12) -> Path:
    """A run folder as the trainer and the evaluation write it; image 'a' has ``flips`` flipped pixels
    in its first row, and every run also disagrees with the labels on the ignore row."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": {}, "data": {}, "train": {},
                                                        "method": {"name": method}}))
    if metrics:
        lines = [{"step": s, "D": 0.3 - s / 1000, "G_GAN": 0.4, "NCE": 3.4 - s / 100, "images_per_s": 6.4,
                  "lr": 2e-4} for s in (50, 100, 150)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    if data is not None or label is not None:
        scores = _scores(label or f"{method} / unmatched / seed 0", method, pixel_accuracy, data)
        (folder / "eval").mkdir()
        (folder / "eval" / "scores.json").write_text(json.dumps(scores))
    if data is not None:
        for i, name in enumerate(NAMES):
            labels = _labels(i)
            pred = labels.copy()
            pred[-1, :] = 1  # the ignore row: never a flip
            if name == "a":
                pred[0, :flips] = (labels[0, :flips] + 1) % 3
            _save(folder / "eval" / "predicted" / f"{name}.png", pred)
            _save(folder / "eval" / "translated" / f"{name}.png", np.full((SIZE, SIZE, 3), 90, dtype=np.uint8))
    return folder


def make_bench(root: Path, data: Path) -> Path:
    make_run(root / "unmatched" / "cut-seed0", "cut", data=data, flips=6)
    make_run(root / "unmatched" / "cut-seed1", "cut", data=data, label="cut / unmatched / seed 1")
    make_run(root / "unmatched" / "srunit-seed0", "srunit", data=data, flips=3)
    upper = make_run(root / "upper_bound", "none", label="segmenter on ground-truth renderings", metrics=False)
    (upper / "eval" / "scores.json").write_text(json.dumps(
        _scores("segmenter on ground-truth renderings", "none", 0.95, data, translated=str(data / "target"))))
    for i, name in enumerate(NAMES):
        _save(upper / "eval" / "predicted" / f"{name}.png", _labels(i))
    summary = {
        "format": "srunit-bench/1", "benchmark": "synthscapes",
        "command": "srunit bench synthscapes --methods cut,srunit --seeds 2", "machine": "2-core Xeon, CPU",
        "settings": {"size": SIZE, "steps": 150},
        "metrics": ["pixel_accuracy", "class_accuracy", "mean_iou", "dist", "acc_30", "acc_50"],
        "rows": [
            {"method": "cut", "condition": "unmatched", "n": 2,
             "mean": {"pixel_accuracy": 0.71, "class_accuracy": 0.52, "mean_iou": 0.4, "dist": 60.1,
                      "acc_30": 0.4, "acc_50": 0.6},
             "std": {"pixel_accuracy": 0.01, "class_accuracy": 0.02, "mean_iou": 0.03, "dist": 1.5,
                     "acc_30": 0.01, "acc_50": 0.02},
             "runs": ["unmatched/cut-seed0", "unmatched/cut-seed1"]},
            {"method": "srunit", "condition": "unmatched", "n": 1,
             "mean": {"pixel_accuracy": 0.765, "class_accuracy": 0.6, "mean_iou": 0.45, "dist": None,
                      "acc_30": 0.5, "acc_50": 0.7},
             "std": {"pixel_accuracy": None, "class_accuracy": None, "mean_iou": None, "dist": None,
                     "acc_30": None, "acc_50": None},
             "runs": ["unmatched/srunit-seed0"]},
        ],
        "upper_bound": {"label": "segmenter on ground-truth renderings", "pixel_accuracy": 0.95,
                        "class_accuracy": 0.9, "mean_iou": 0.85, "run": "upper_bound"},
    }
    (root / "summary.json").write_text(json.dumps(summary))
    return root


def _check_page(path: Path) -> Page:
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert page.stack == [] and page.mismatched == []
    for tag in ("html", "head", "body", "h1"):
        assert page.seen.count(tag) == 1
    for attrs in page.images:
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True))) as img:
            assert img.format == "PNG"
            img.load()
    for external in ("http://", "https://", "<script", "<link", "src=\"/", "href="):
        assert external not in text
    return page


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def test_flip_mask_hand_case() -> None:
    labels = np.array([[0, 1, 255], [2, 2, 1]])
    pred = np.array([[0, 2, 7], [2, 0, 1]])
    expected = np.array([[False, True, False], [False, True, False]])
    np.testing.assert_array_equal(flip_mask(pred, labels), expected)
    # With another ignore index, 255 is an ordinary label and can flip.
    np.testing.assert_array_equal(flip_mask(pred, labels, ignore_index=2),
                                  np.array([[False, True, True], [False, False, False]]))
    with pytest.raises(DataError, match="x.png"):
        flip_mask(pred, labels[:, :2], source="x.png")


def test_highlight_changes_exactly_the_flipped_pixels() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 200, size=(9, 11, 3), dtype=np.uint8)
    mask = rng.random((9, 11)) < 0.3
    out = highlight_flips(image, mask)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert (out[mask] != image[mask]).any(axis=1).all()
    assert (out[mask][:, 0] > image[mask][:, 0]).all()  # towards magenta: more red
    opaque = highlight_flips(image, mask, alpha=1.0)
    np.testing.assert_array_equal(opaque[mask], np.tile([255, 0, 255], (mask.sum(), 1)))


def test_metrics_repeated_step_keeps_the_last_value(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [{"step": 50, "G": 3.0}, {"step": 100, "G": 2.0}, {"step": 100, "G": 1.5, "robust": 0.1},
             {"step": 150, "G": 1.0}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "\n")
    assert load_metrics(path) == {50: {"G": 3.0}, 100: {"G": 1.5, "robust": 0.1}, 150: {"G": 1.0}}
    path.write_text('{"step": 1, "G": 1.0}\n{"G": 2.0}\n')
    with pytest.raises(DataError, match="line 2"):
        load_metrics(path)


def test_report_of_two_runs(tmp_path: Path, dataset: Path) -> None:
    cut = make_run(tmp_path / "runs" / "cut", "cut", data=dataset, pixel_accuracy=0.71)
    sr = make_run(tmp_path / "runs" / "srunit", "srunit", data=dataset, pixel_accuracy=0.765, flips=0)
    before = _snapshot(tmp_path / "runs")
    out = build_report([cut, sr], tmp_path / "out" / "both.html", num_images=2)
    assert out == tmp_path / "out" / "both.html"
    assert _snapshot(tmp_path / "runs") == before
    page = _check_page(out)
    for number in ("71.00", "76.50", "52.00", "40.00", "61.20", "41.00", "60.00"):
        assert number in page.text
    for heading in ("pixAcc %", "clsAcc %", "mIoU %", "Dist", "Acc(30) %", "Acc(50) %", "Per-class IoU",
                    "Training losses", "Translations"):
        assert heading in page.text
    # 12 of the 132 labelled pixels of image 'a' flipped for cut, none for srunit; the ignore row never counts.
    assert "flipped 9.1%" in page.text and "flipped 0.0%" in page.text
    alts = [a["alt"] or "" for a in page.images]
    assert sum(a.startswith("source ") for a in alts) == 2  # --images 2
    assert sum(a.startswith("ground truth ") for a in alts) == 2
    with Image.open(io.BytesIO(base64.b64decode(page.images[-1]["src"].split(",", 1)[1]))) as cell:
        assert cell.width >= 128 and cell.width % SIZE == 0  # upscaled by an integer factor


def test_bench_report_through_the_cli(tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture) -> None:
    bench = make_bench(tmp_path / "bench", dataset)
    before = _snapshot(bench)
    assert main(["report", str(bench)]) == 0
    out = bench / "report.html"
    assert str(out) in capsys.readouterr().out
    assert _snapshot(bench) == {**before, "report.html": _snapshot(bench)["report.html"]}
    page = _check_page(out)
    text = page.text
    for cell in ("71.00 \u00b1 1.00", "60.10 \u00b1 1.50", "76.50", "95.00", "85.00",
                 "segmenter on ground-truth renderings", "srunit bench synthscapes --methods cut,srunit --seeds 2",
                 "2-core Xeon, CPU"):
        assert cell in text
    # One grid column per bench row (first seed) plus the upper bound: cut-seed0 flips 6/132 pixels.
    assert "flipped 4.5%" in text and "flipped 9.1%" not in text
    assert sum((a["alt"] or "").startswith("source ") for a in page.images) == 3


def test_run_without_eval_shows_loss_curves_only(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", "srunit")
    out = build_report([run])
    assert out == run / "report.html"
    page = _check_page(out)
    assert [a["alt"] for a in page.images] == ["loss curves"]
    assert "Training losses" in page.text and "Per-class IoU" not in page.text and "Translations" not in page.text
    assert "pixAcc %" not in page.text


def test_report_errors(tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nope"
    assert main(["report", str(missing)]) == 2
    assert f"{missing} does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "summary.json" in err
    assert not (empty / "report.html").exists()
    run = make_run(tmp_path / "run", "cut")
    assert main(["report", str(run), str(run)]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["report", str(run), "--images", "-1"]) == 2
    assert "--images" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="is a folder"):
        build_report([run], out=tmp_path)
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "summary.json").write_text(json.dumps({"format": "srunit-bench/1", "rows": [{"runs": ["gone"]}]}))
    assert main(["report", str(bench)]) == 2
    assert str(bench / "gone") in capsys.readouterr().err
