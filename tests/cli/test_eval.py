"""`srunit eval seg|paired|fid` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.cli.main import main


def test_cli_seg(tmp_path: Path, python_segmenter: Path, rgb_strip, capsys: pytest.CaptureFixture) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    Image.fromarray(rgb_strip[0]).save(images / "x.png")  # segments to 0 1 2 0
    Image.fromarray(np.array([[0, 1, 1, 255]], dtype=np.uint8), mode="L").save(labels / "x.png")
    py = python_segmenter
    out_json = tmp_path / "r" / "seg.json"
    # kept pixels: label 0 -> pred 0, label 1 -> pred 1, label 1 -> pred 2 (pixel 4 ignored)
    # pixAcc 2/3; acc0 = 1, acc1 = 1/2 -> clsAcc 3/4; IoU0 = 1/1, IoU1 = 1/(2+1-1) -> mIoU 3/4
    assert main(["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
                 f"{py}:segment", "--classes", "3", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "pixAcc 66.67%" in out and "clsAcc 75.00%" in out and "mIoU 75.00%" in out
    assert "absent" in out
    record = json.loads(out_json.read_text())
    assert record["format"] == "srunit-eval/1" and record["segmenter"] == f"{py}:segment"  # the benchmark's format
    data = record["segmentation"]
    assert data["pixel_accuracy"] == pytest.approx(2 / 3)
    assert data["mean_iou"] == pytest.approx(3 / 4)
    assert data["per_class"][2]["iou"] is None and data["absent_classes"] == [2]

    # a colour label map is refused, naming the file
    Image.new("RGB", (4, 1)).save(labels / "x.png")
    assert main(["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
                 f"{py}:segment", "--classes", "3"]) == 2
    assert "labels/x.png is a colour image (mode RGB)" in capsys.readouterr().err
    # cityscapes names need 19 classes: refused before any image is read (the colour label map is not reported)
    assert main(["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
                 f"{py}:segment", "--classes", "3", "--class-names", "cityscapes"]) == 2
    err = capsys.readouterr().err
    assert "--class-names gives 19 names but --classes is 3" in err and "colour image" not in err


def test_cli_seg_flips(tmp_path: Path, python_segmenter: Path, rgb_strip, capsys: pytest.CaptureFixture) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    Image.fromarray(rgb_strip[0]).save(images / "x.png")  # segments to 0 1 2 0
    Image.fromarray(np.array([[0, 1, 1, 1]], dtype=np.uint8), mode="L").save(labels / "x.png")
    out_json = tmp_path / "seg.json"
    # label 1's pixels: 1 kept, 1 -> class 2, 1 -> class 0: a flip rate of 2/3, directed 1 -> 2 of 1/3
    assert main(["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
                 f"{python_segmenter}:segment", "--classes", "3", "--class-names", "sky,building,tree",
                 "--flip-from", "building", "--flip-to", "tree", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "flips: 50.00% of the labelled pixels" in out and "directed flip rate building -> tree: 33.33%" in out
    flips = json.loads(out_json.read_text())["segmentation"]["flips"]
    assert flips["directed_flip_rate"] == pytest.approx(1 / 3) and flips["flip_rate"] == pytest.approx(0.5)
    assert flips["per_class"][1]["flip_rate"] == pytest.approx(2 / 3)
    for args, message in ((["--flip-from", "building"], "both --flip-from and --flip-to"),
                          (["--flip-from", "building", "--flip-to", "grass"], "--flip-to: 'grass' is not a class"),
                          (["--flip-from", "tree", "--flip-to", "tree"], "cannot flip into itself")):
        assert main(["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
                     f"{python_segmenter}:segment", "--classes", "3", "--class-names", "sky,building,tree",
                     *args]) == 2
        assert message in capsys.readouterr().err


def test_cli_paired(tmp_path: Path, paired_folders: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    pred, target = paired_folders
    out_json = tmp_path / "paired.json"
    assert main(["eval", "paired", "--pred", str(pred), "--target", str(target), "--delta", "30,50",
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "16.67" in out and "66.67" in out and "100.00" in out  # 100/6, 4/6, 6/6
    data = json.loads(out_json.read_text())["paired"]
    assert data["dist"] == pytest.approx(100 / 6) and data["acc"] == {"30": pytest.approx(4 / 6), "50": 1.0}
    assert main(["eval", "paired", "--pred", str(pred), "--target", str(target), "--delta", "30,x"]) == 2
    assert "--delta must be comma-separated integers" in capsys.readouterr().err
    (target / "a.png").unlink()
    assert main(["eval", "paired", "--pred", str(pred), "--target", str(target)]) == 2
    assert "a.png" in capsys.readouterr().err


def test_cli_help(capsys: pytest.CaptureFixture) -> None:
    for argv in (["eval", "--help"], ["eval", "seg", "--help"], ["eval", "paired", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    assert "(1,3,H,W)" in capsys.readouterr().out


def test_cli_eval_fid_refuses_a_missing_weights_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for name in ("real", "fake"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / name / f"{i}.png")
    missing = tmp_path / "inception-2015-12-05.pt"
    code = main(["eval", "fid", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                 "--weights", str(missing)])
    assert code == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "No download" in err


def test_unwritable_outputs_are_errors_naming_the_path_before_any_work(tmp_path: Path,
                                                                       paired_folders: tuple[Path, Path],
                                                                       capsys: pytest.CaptureFixture) -> None:
    pred, target = paired_folders
    assert main(["eval", "paired", "--pred", str(pred), "--target", str(target), "--json", str(tmp_path)]) == 2
    err = capsys.readouterr()
    assert f"--json {tmp_path} is a folder; give the path of a file" in err.err and "images:" not in err.out
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["eval", "paired", "--pred", str(pred), "--target", str(target),
                 "--json", str(a_file / "scores.json")]) == 2
    assert f"{a_file} is a file, not a folder" in capsys.readouterr().err
    # Any command: a file-system refusal is one line naming the file and the reason, no traceback.
    assert main(["data", "synthscapes", "--out", str(a_file / "sub"), "--size", "16", "--num-pool", "8",
                 "--num-test", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("srunit data synthscapes: error: ") and str(a_file) in err and "Traceback" not in err


def test_cli_seg_hallucination_rate(tmp_path: Path, python_segmenter: Path, rgb_strip,
                                    capsys: pytest.CaptureFixture) -> None:
    """--hallucinated: the pixels segmented as the named class where the source holds another, over the labelled
    pixels, printed and recorded (with and without --run is the same figure)."""
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    Image.fromarray(rgb_strip[0]).save(images / "x.png")  # segments to 0 1 2 0
    Image.fromarray(np.array([[0, 0, 1, 255]], dtype=np.uint8), mode="L").save(labels / "x.png")
    out_json = tmp_path / "r" / "seg.json"
    common = ["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
              f"{python_segmenter}:segment", "--classes", "3", "--class-names", "road,tree,car"]
    # pixel 2 (label road) is segmented as tree: no car there; pixel 3 (label tree) as car: 1 of 3 labelled pixels.
    assert main([*common, "--hallucinated", "car", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "hallucinated as car: 33.333% of the labelled pixels (1 pixels; painted on tree 100.0%)" in out
    record = json.loads(out_json.read_text())["segmentation"]["hallucination"]
    assert record["hallucination_rate"] == pytest.approx(1 / 3) and record["sources"] == {"tree": 1.0}
    assert main([*common, "--hallucinated", "1"]) == 0
    assert "hallucinated as tree: 33.333%" in capsys.readouterr().out
    assert main([*common, "--hallucinated", "bus"]) == 2
    assert "--hallucinated: 'bus' is not a class; give class names (road, tree, car)" in capsys.readouterr().err
