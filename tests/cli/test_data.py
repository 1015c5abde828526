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
    assert "srunit data: error: --num-pool must be an integer from 8 to 100,000, got 4" in capsys.readouterr().err
    assert main(["data", "synthscapes", "--out", str(out), "--size", "16", "--num-pool", "8"]) == 2
    assert "not an empty folder" in capsys.readouterr().err
