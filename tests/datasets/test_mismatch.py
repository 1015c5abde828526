"""srunit.datasets.mismatch: the StegoGAN-style split of one's own data (a class in domain B only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.data.labels import CITYSCAPES_TRAIN_COLOURS as COLOURS
from srunit.datasets import mismatch_split, plan_mismatch, resolve_class
from srunit.errors import ConfigError, DataError


def test_plan_takes_domains_of_one_size_with_the_share_asked() -> None:
    # 10 images hold the class, 30 lack it, 5 hold a trace of it (at most min_share): left out.
    shares = [0.3] * 10 + [0.0] * 30 + [0.005] * 5
    plan = plan_mismatch(shares, share=0.6, min_share=0.01, num_test=4, seed=3)
    assert (plan.holding, plan.lacking, plan.left_out) == (10, 30, 5)
    assert len(plan.test) == 4 and all(shares[i] == 0 for i in plan.test)
    assert all(shares[i] == 0 for i in plan.a)
    # 26 images lack it after the test set; n per domain is the largest with round(0.6 n) <= 10 holding and
    # 2 n - round(0.6 n) <= 26 lacking: n = 17 (A 17, B 10 holding + 7 lacking).
    assert len(plan.a) == len(plan.b) == 17 and plan.b_holding == round(0.6 * 17) == 10
    assert sum(shares[i] > 0.01 for i in plan.b) == 10
    parts = [set(plan.a), set(plan.b), set(plan.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])  # no image in two parts
    assert not any(0 < shares[i] <= 0.01 for i in plan.a + plan.b + plan.test)
    # Seeded: the same seed gives the same split, another seed another one.
    assert plan_mismatch(shares, share=0.6, min_share=0.01, num_test=4, seed=3) == plan
    assert plan_mismatch(shares, share=0.6, min_share=0.01, num_test=4, seed=4).a != plan.a


@pytest.mark.parametrize(("share", "size", "holding"), [(0.0, 15, 0), (1.0, 10, 10), (0.25, 17, 4)])
def test_plan_extremes_of_the_share(share: float, size: int, holding: int) -> None:
    plan = plan_mismatch([0.2] * 10 + [0.0] * 30, share=share)
    assert len(plan.a) == len(plan.b) == size and plan.b_holding == holding


def test_plan_refuses_what_cannot_be_split() -> None:
    with pytest.raises(DataError, match=r"no split with 60% of trainB holding the class: of 3 images 0 hold it"):
        plan_mismatch([0.0, 0.0, 0.0], share=0.6)
    with pytest.raises(DataError, match="--num-test 5: only 3 of the 4 images lack the class"):
        plan_mismatch([0.0, 0.0, 0.0, 0.5], share=0.5, num_test=5)
    with pytest.raises(ConfigError, match="--share must be between 0 and 1"):
        plan_mismatch([0.0], share=1.2)
    with pytest.raises(ConfigError, match="--min-share must be below 100"):
        plan_mismatch([0.0], share=0.5, min_share=1.0)


def test_class_names_and_ids() -> None:
    assert resolve_class("13", None) == 13 and resolve_class("car", "cityscapes") == 13
    with pytest.raises(ConfigError, match=r"--class 'car' is not a class.*need --palette cityscapes"):
        resolve_class("car", None)
    with pytest.raises(ConfigError, match="--class must be an integer from 0 to 65,535"):
        resolve_class("70000", None)


def _folders(root: Path, n_with: int, n_without: int) -> tuple[Path, Path, Path]:
    labels, photos, maps = root / "labels", root / "photos", root / "maps"
    for folder in (labels, photos, maps):
        folder.mkdir(parents=True)
    for i in range(n_with + n_without):
        lab = np.zeros((6, 6), np.uint8)
        if i < n_with:
            lab[2:4, 2:4] = 13  # car
        Image.fromarray(lab).save(labels / f"{i:02d}.png")
        Image.new("RGB", (6, 6), (i, 0, 0)).save(photos / f"{i:02d}.jpg")
        Image.fromarray(np.asarray(COLOURS, np.uint8)[lab]).save(maps / f"{i:02d}.png")
    return labels, photos, maps


def test_split_writes_the_folders_and_the_manifest(tmp_path: Path) -> None:
    labels, photos, maps = _folders(tmp_path, n_with=6, n_without=14)
    split, manifest = mismatch_split(tmp_path / "out", images_a=photos, images_b=maps, labels=labels, class_id=13,
                                     share=0.5, num_test=2, seed=0, link=False)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "testA", "testB", "testLabels", "trainA",
                                                     "trainB"]
    # 12 images lack the class after the test set: n = 8 (A 8, B 4 + 4 lacking = 12).
    assert len(list((out / "trainA").iterdir())) == len(list((out / "trainB").iterdir())) == 8
    assert {p.suffix for p in (out / "trainA").iterdir()} == {".jpg"}  # --images-a files
    with_car = [np.asarray(Image.open(p)).astype(int) for p in (out / "trainB").iterdir()]
    assert sum(bool((img == COLOURS[13]).all(axis=-1).any()) for img in with_car) == 4
    test_labels = [np.asarray(Image.open(p)) for p in (out / "testLabels").iterdir()]
    assert len(test_labels) == 2 and not any((lab == 13).any() for lab in test_labels)
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"trainA": 8, "trainB": 8, "trainB_holding": 4, "test": 2, "holding": 6,
                                  "lacking": 14, "left_out": 0}
    # Colour label maps with --palette, and symlinks by default.
    _, with_palette = mismatch_split(tmp_path / "colour", images_a=photos, images_b=maps, labels=maps,
                                     class_id=resolve_class("car", "cityscapes"), share=0.5, num_test=2,
                                     palette="cityscapes", seed=0)
    assert with_palette["counts"] == manifest["counts"]
    assert all(p.is_symlink() for p in (tmp_path / "colour" / "trainA").iterdir())
    # An output that is not empty is refused, and nothing is written.
    with pytest.raises(DataError, match="not an empty folder"):
        mismatch_split(out, images_a=photos, images_b=maps, labels=labels, class_id=13, share=0.5)
