"""`srunit data split|maps|cityscapes|synthscapes` end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.cli import data as data_cli
from srunit.cli.main import main
from srunit.errors import ConfigError, DataError


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="srunit")
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    return data_cli.run(parser.parse_args(argv), [])


def test_cli_split_labels(tmp_path: Path) -> None:
    labels, photos = tmp_path / "labels", tmp_path / "photos"
    labels.mkdir()
    photos.mkdir()
    for i in range(6):
        lab = np.zeros((4, 4), np.uint8) if i < 4 else np.ones((4, 4), np.uint8)
        lab[0, 0] = i % 2  # small differences inside each cluster
        Image.fromarray(lab).save(labels / f"{i}.png")
        Image.new("RGB", (4, 4), (i, i, i)).save(photos / f"{i}.jpg")
    out = tmp_path / "split"
    assert _cli(["data", "split", "--labels", str(labels), "--classes", "2", "--images-a", str(labels),
                 "--images-b", str(photos), "--out", str(out), "--seed", "1"]) == 0
    assert sorted(p.name for p in (out / "trainA").iterdir()) == ["0.png", "1.png", "2.png", "3.png"]
    assert sorted(p.name for p in (out / "trainB").iterdir()) == ["4.jpg", "5.jpg"]
    assert json.loads((out / "manifest.json").read_text())["cluster_sizes"] == [4, 2]

    (photos / "5.jpg").unlink()
    with pytest.raises(DataError, match=r"1 --labels file\(s\) have no --images-b partner .*5\.png"):
        _cli(["data", "split", "--labels", str(labels), "--classes", "2", "--images-a", str(labels),
              "--images-b", str(photos), "--out", str(tmp_path / "other")])
    with pytest.raises(ConfigError, match="--classes"):
        _cli(["data", "split", "--labels", str(labels), "--images-a", str(labels),
              "--images-b", str(labels), "--out", str(tmp_path / "other")])


def test_cli_maps_then_split_maps(tmp_path: Path) -> None:
    src = tmp_path / "pix2pix"
    src.mkdir()
    for i in range(8):
        arr = np.zeros((4, 8, 3), np.uint8)
        arr[:, :4] = 100  # aerial photo half
        arr[:, 4:] = 20 if i < 4 else 230  # dark vs bright maps: two clear clusters
        arr[0, 4] = i  # keep every histogram distinct
        Image.fromarray(arr).save(src / f"{i}.png")
    assert _cli(["data", "maps", "--input", str(src), "--out", str(tmp_path / "cut")]) == 0
    out = tmp_path / "split"
    assert _cli(["data", "split", "--mode", "maps", "--images-a", str(tmp_path / "cut" / "map"),
                 "--images-b", str(tmp_path / "cut" / "photo"), "--out", str(out), "--copy"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    # 4 + 4 images: each domain = its half (4) + round(10% of 4) = 0 extras.
    assert man["counts"] == {"trainA": 4, "trainB": 4} and man["mode"] == "maps"
    assert {Path(e["source"]).parent.name for e in man["trainA"]} == {"map"}
    assert {Path(e["source"]).parent.name for e in man["trainB"]} == {"photo"}
    assert {e["name"] for e in man["trainA"]}.isdisjoint({e["name"] for e in man["trainB"]})


def test_cli_help_texts(capsys: pytest.CaptureFixture) -> None:
    for argv in (["data", "--help"], ["data", "split", "--help"], ["data", "maps", "--help"],
                 ["data", "cityscapes", "--help"]):
        with pytest.raises(SystemExit) as exc:
            _cli(argv)
        assert exc.value.code == 0
    assert "--other-fraction" in capsys.readouterr().out


def test_cli_synthscapes_writes_the_folder_and_names_bad_counts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "ss"
    assert main(["data", "synthscapes", "--out", str(out), "--size", "16", "--num-pool", "8", "--num-test", "1"]) == 0
    text = capsys.readouterr().out
    assert "trainA: " in text and "trainB: " in text and f"wrote {out}" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(list((out / "trainA").iterdir())) == len(manifest["trainA"]["pool_indices"])
    assert sorted(p.name for p in (out / "testLabels").iterdir()) == ["0000.png"]
    assert main(["data", "synthscapes", "--out", str(tmp_path / "bad"), "--num-pool", "4"]) == 2
    assert ("srunit data synthscapes: error: --num-pool must be an integer from 8 to 100,000, got 4"
            in capsys.readouterr().err)
    assert main(["data", "synthscapes", "--out", str(out), "--size", "16", "--num-pool", "8"]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_cli_mismatch_writes_the_split_whole_or_not_at_all(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    labels, photos, maps = (tmp_path / name for name in ("labels", "photos", "maps"))
    for folder in (labels, photos, maps):
        folder.mkdir()
    for i in range(12):
        lab = np.zeros((4, 4), np.uint8)
        lab[0, : 3 if i < 4 else 0] = 2  # images 0-3 hold class 2 (3 of 16 pixels), the rest do not
        Image.fromarray(lab).save(labels / f"{i}.png")
        Image.new("RGB", (4, 4), (i, 0, 0)).save(photos / f"{i}.png")
        Image.new("RGB", (4, 4), (0, i, 0)).save(maps / f"{i}.png")
    out = tmp_path / "split"
    common = ["data", "mismatch", "--labels", str(labels), "--images-a", str(photos), "--images-b", str(maps)]
    assert main([*common, "--class", "2", "--share", "50", "--num-test", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "class 2: 4 image(s) hold it, 8 lack it, 0 left out" in text
    assert "wrote 4 trainA file(s) without it, 4 trainB file(s) (2 with it, 50%) and 2 test image(s)" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert {Path(e["source"]).parent.name for e in manifest["trainA"]} == {"photos"}
    assert {Path(e["source"]).parent.name for e in manifest["trainB"]} == {"maps"}
    assert all(int(Path(e["source"]).stem) >= 4 for e in manifest["trainA"] + manifest["testA"])
    assert len(list((out / "testLabels").iterdir())) == 2
    # --min-share: 3 of 16 pixels (18.75%) is not more than 20%: those images are left out of both domains.
    assert main([*common, "--class", "2", "--share", "0", "--min-share", "20", "--out", str(tmp_path / "m")]) == 0
    assert "0 image(s) hold it, 8 lack it, 4 left out" in capsys.readouterr().out
    # Refused, nothing written: a class name without a palette, a share no split can have, an output in use.
    for argv, message in (
        (["--class", "car"], "--class 'car' is not a class"),
        (["--class", "2", "--share", "100", "--num-test", "8"], "no split with 100% of trainB holding the class"),
        (["--class", "2", "--share", "101"], "--share must be between 0 and 1"),
    ):
        bad = tmp_path / "bad"
        assert main([*common, *argv, "--out", str(bad)]) == 2
        assert message in capsys.readouterr().err
        assert not bad.exists() and not list(tmp_path.glob(".bad.partial-*"))
    assert main([*common, "--class", "2", "--out", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert main([*common, "--class", "2", "--out", str(labels / "inside")]) == 2
    assert "--labels" in capsys.readouterr().err
