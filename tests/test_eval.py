"""Evaluation metrics: confusion-matrix scores, paired pixel scores, segmenter loading, `srunit eval`."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import srunit.cli.main as cli_main
from srunit.cli import eval as eval_cli
from srunit.errors import ConfigError, DataError
from srunit.eval import (
    CITYSCAPES_CLASSES,
    ConfusionMatrix,
    load_segmenter,
    paired_scores,
    pixel_distance_and_accuracy,
    segmentation_scores,
)

# --- confusion matrix -------------------------------------------------------------------------


def test_confusion_matrix_hand_example() -> None:
    # 3 classes, ignore 255, class 2 never in the labels, one prediction (7) out of range.
    # label: 0 0 0 0 | 1 1 1 | 255 255
    # pred : 0 0 1 2 | 1 1 7 | 2   0
    # Kept pixels: 7.  Class 0: G=4, T=2.  Class 1: G=3, T=2.
    # Predicted counts over kept pixels: P0=2, P1=3 (one from class 0), P2=1, other=1.
    # pixAcc = (2+2)/7 = 4/7
    # acc0 = 2/4 = 1/2, acc1 = 2/3  -> clsAcc = (1/2 + 2/3)/2 = 7/12
    # IoU0 = 2/(4+2-2) = 1/2, IoU1 = 2/(3+3-2) = 1/2 -> mIoU = 1/2
    cm = ConfusionMatrix(3, ignore_index=255)
    cm.update(np.array([[0, 0], [1, 2]]), np.array([[0, 0], [0, 0]], dtype=np.uint8))  # numpy, (2, 2)
    cm.update(torch.tensor([1, 1, 7, 2, 0]), torch.tensor([1, 1, 1, 255, 255]))  # torch, (5,)
    assert cm.matrix.tolist() == [[2, 1, 1], [0, 2, 0], [0, 0, 0]]
    assert cm.counts[:, 3].tolist() == [0, 1, 0]
    s = segmentation_scores(cm)
    assert s.pixel_accuracy == pytest.approx(4 / 7)
    assert s.class_accuracy == pytest.approx(7 / 12)
    assert s.mean_iou == pytest.approx(1 / 2)
    assert s.per_class_accuracy[:2] == pytest.approx([1 / 2, 2 / 3])
    assert s.per_class_iou[:2] == pytest.approx([1 / 2, 1 / 2])
    assert math.isnan(s.per_class_accuracy[2]) and math.isnan(s.per_class_iou[2])
    assert s.absent_classes == [2]
    assert s.num_pixels == 7


def test_confusion_matrix_bad_input() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(DataError, match=r"labels/x\.png\) holds value\(s\) 3, 9 outside \[0, 3\)"):
        cm.update(np.zeros((1, 4), int), np.array([[0, 3, 9, 255]]), source="labels/x.png")
    with pytest.raises(DataError, match="shape"):
        cm.update(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(DataError, match="dtype float"):
        cm.update(np.zeros(2), np.zeros(2, int))
    with pytest.raises(ConfigError, match="--classes"):
        ConfusionMatrix(0)
    with pytest.raises(ConfigError, match="class_names has 2 entries"):
        segmentation_scores(ConfusionMatrix(3), ["a", "b"])
    empty = ConfusionMatrix(3)
    empty.update(np.zeros(2, int), np.full(2, 255))
    with pytest.raises(DataError, match="no labelled pixels"):
        segmentation_scores(empty)
    assert len(CITYSCAPES_CLASSES) == 19 and CITYSCAPES_CLASSES[0] == "road" and CITYSCAPES_CLASSES[-1] == "bicycle"


# --- paired pixel scores ----------------------------------------------------------------------


def test_pixel_distance_and_accuracy_hand_values() -> None:
    pred = np.array([[[0, 0, 0], [100, 100, 100]], [[0, 0, 0], [10, 10, 10]]], dtype=np.uint8)
    target = np.array([[[3, 4, 0], [130, 100, 100]], [[255, 0, 0], [30, 50, 50]]], dtype=np.uint8)
    # distances: 5 (3-4-5), 30, 255 (0-255 must not wrap in uint8), sqrt(20^2+40^2+40^2) = 60
    # max channel diffs: 4, 30, 255, 40 -> <30: 1 pixel, <50: 3 pixels
    total, count, hits = pixel_distance_and_accuracy(pred, target, (30, 50))
    assert total == pytest.approx(5 + 30 + 255 + 60)
    assert count == 4
    assert hits == {30: 1, 50: 3}
    with pytest.raises(DataError):
        pixel_distance_and_accuracy(pred, target[:1], (30,))


def _save(path: Path, rgb: tuple[int, int, int], size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)


def _paired_folders(tmp_path: Path) -> tuple[Path, Path]:
    pred, target = tmp_path / "pred", tmp_path / "target"
    _save(pred / "a.png", (10, 10, 10), (2, 2))
    _save(target / "a.png", (13, 14, 10), (2, 2))  # dist 5, max diff 4
    _save(pred / "sub" / "b.png", (0, 0, 0), (2, 1))
    _save(target / "sub" / "b.bmp", (0, 40, 0), (2, 1))  # pairs by stem; dist 40, max diff 40
    return pred, target


def test_paired_scores_folders(tmp_path: Path) -> None:
    pred, target = _paired_folders(tmp_path)
    s = paired_scores(pred, target, (30, 50))
    # 4 pixels at distance 5 and 2 at 40: (20 + 80) / 6; Acc(30) = 4/6, Acc(50) = 6/6
    assert s.dist == pytest.approx(100 / 6)
    assert s.acc[30] == pytest.approx(4 / 6) and s.acc[50] == pytest.approx(1.0)
    assert (s.num_images, s.num_pixels) == (2, 6)


def test_paired_scores_errors(tmp_path: Path) -> None:
    pred, target = _paired_folders(tmp_path)
    _save(pred / "c.png", (0, 0, 0), (2, 2))
    with pytest.raises(DataError, match=r"prediction file.*no target partner.*c\.png"):
        paired_scores(pred, target)
    (pred / "c.png").unlink()
    _save(target / "d.png", (0, 0, 0), (2, 2))
    with pytest.raises(DataError, match=r"target file.*no prediction partner.*d\.png"):
        paired_scores(pred, target)
    (target / "d.png").unlink()
    _save(target / "a.png", (0, 0, 0), (3, 2))
    with pytest.raises(DataError, match=r"pred/a\.png is 2x2 but target .*target/a\.png is 3x2"):
        paired_scores(pred, target)
    with pytest.raises(ConfigError, match="--delta"):
        paired_scores(pred, target, (0,))


# --- segmenters -------------------------------------------------------------------------------

# Pixels pure red, green, blue, dark red: with an identity 1x1 conv the argmax is the strongest channel.
RGB_IMAGE = np.array([[[255, 0, 0], [0, 200, 0], [0, 0, 90], [60, 10, 20]]], dtype=np.uint8)
RGB_IDS = [[0, 1, 2, 0]]


def _identity_conv() -> torch.nn.Module:
    conv = torch.nn.Conv2d(3, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
    return conv.eval()


def _onnx_identity(path: Path) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_identity_conv(), (torch.zeros(1, 3, 4, 4),), str(path), dynamo=False,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {2: "h", 3: "w"}})
    except Exception:  # noqa: BLE001 - any exporter failure: build the same 1x1 conv by hand
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        w = numpy_helper.from_array(np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1), "w")
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"])], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h", "w"])], [w])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


SEG_PY = """
import numpy as np

def segment(image):
    # strongest channel = class id (same as the identity conv)
    return image.argmax(axis=2)

def bad(image):
    return np.zeros((1, 1), dtype=np.int64)
"""


def test_load_segmenter_three_forms(tmp_path: Path) -> None:
    ts = tmp_path / "seg.pt"
    torch.jit.trace(_identity_conv(), torch.zeros(1, 3, 2, 2)).save(str(ts))
    onnx_path = tmp_path / "seg.onnx"
    _onnx_identity(onnx_path)
    py = tmp_path / "myseg.py"
    py.write_text(SEG_PY)
    for spec in (str(ts), str(onnx_path), f"{py}:segment"):
        out = load_segmenter(spec)(RGB_IMAGE)
        assert out.shape == (1, 4) and out.dtype == np.int64, spec
        assert out.tolist() == RGB_IDS, spec
    with pytest.raises(ConfigError, match="expected an integer"):
        load_segmenter(f"{py}:bad")(RGB_IMAGE)


def test_load_segmenter_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no known form.*accepted --segmenter forms"):
        load_segmenter("deeplab")
    with pytest.raises(ConfigError, match="does not exist.*accepted"):
        load_segmenter(str(tmp_path / "missing.onnx"))
    with pytest.raises(ConfigError, match="no_such_module_xyz.*ModuleNotFoundError"):
        load_segmenter("no_such_module_xyz:f")
    py = tmp_path / "s.py"
    py.write_text(SEG_PY)
    with pytest.raises(ConfigError, match="has no function 'nope'"):
        load_segmenter(f"{py}:nope")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="cannot load TorchScript"):
        load_segmenter(str(junk))


# --- CLI --------------------------------------------------------------------------------------


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(cli_main.COMMANDS, "eval", eval_cli)
    return cli_main.main


def test_cli_seg(tmp_path: Path, main, capsys: pytest.CaptureFixture) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    Image.fromarray(RGB_IMAGE).save(images / "x.png")  # segments to 0 1 2 0
    Image.fromarray(np.array([[0, 1, 1, 255]], dtype=np.uint8), mode="L").save(labels / "x.png")
    py = tmp_path / "myseg.py"
    py.write_text(SEG_PY)
    out_json = tmp_path / "r" / "seg.json"
    # kept pixels: label 0 -> pred 0, label 1 -> pred 1, label 1 -> pred 2 (pixel 4 ignored)
    # pixAcc 2/3; acc0 = 1, acc1 = 1/2 -> clsAcc 3/4; IoU0 = 1/1, IoU1 = 1/(2+1-1) -> mIoU 3/4
    assert main(["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
                 f"{py}:segment", "--classes", "3", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "pixAcc 66.67%" in out and "clsAcc 75.00%" in out and "mIoU 75.00%" in out
    assert "absent" in out
    data = json.loads(out_json.read_text())
    assert data["pixel_accuracy"] == pytest.approx(2 / 3)
    assert data["mean_iou"] == pytest.approx(3 / 4)
    assert data["per_class"][2]["iou"] is None and data["absent_classes"] == [2]

    # a colour label map is refused, naming the file
    Image.new("RGB", (4, 1)).save(labels / "x.png")
    assert main(["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
                 f"{py}:segment", "--classes", "3"]) == 2
    assert "labels/x.png is a colour image (mode RGB)" in capsys.readouterr().err
    # cityscapes names need 19 classes
    assert main(["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
                 f"{py}:segment", "--classes", "3", "--class-names", "cityscapes"]) == 2
    assert "--class-names cityscapes needs --classes 19" in capsys.readouterr().err


def test_cli_paired(tmp_path: Path, main, capsys: pytest.CaptureFixture) -> None:
    pred, target = _paired_folders(tmp_path)
    out_json = tmp_path / "paired.json"
    assert main(["eval", "paired", "--pred", str(pred), "--target", str(target), "--delta", "30,50",
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "16.67" in out and "66.67" in out and "100.00" in out  # 100/6, 4/6, 6/6
    data = json.loads(out_json.read_text())
    assert data["dist"] == pytest.approx(100 / 6) and data["acc"] == {"30": pytest.approx(4 / 6), "50": 1.0}
    assert main(["eval", "paired", "--pred", str(pred), "--target", str(target), "--delta", "30,x"]) == 2
    assert "--delta must be comma-separated integers" in capsys.readouterr().err
    (target / "a.png").unlink()
    assert main(["eval", "paired", "--pred", str(pred), "--target", str(target)]) == 2
    assert "a.png" in capsys.readouterr().err


def test_cli_help(main, capsys: pytest.CaptureFixture) -> None:
    for argv in (["eval", "--help"], ["eval", "seg", "--help"], ["eval", "paired", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    assert "(1,3,H,W)" in capsys.readouterr().out
