"""srunit.synthscapes.dataset: deterministic SynthScapes folders, exact test ground truth, disjoint domains."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.errors import ConfigError, DataError
from srunit.synthscapes import make_synthscapes, write_test_set, write_train_split
from srunit.synthscapes.dataset import heldout_layout, numbered_png_names, pool_layout
from srunit.synthscapes.scenes import VEGETATION, colors_to_labels, render_labels, render_photo


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _array(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_same_seed_same_bytes_other_seed_other_images(synth_data: Path, tmp_path: Path) -> None:
    make_synthscapes(tmp_path / "again", num_pool=24, num_test=3, size=32, seed=1)
    assert _digest(synth_data) == _digest(tmp_path / "again")
    make_synthscapes(tmp_path / "other", num_pool=24, num_test=3, size=32, seed=2)
    assert _digest(synth_data)["testB/0000.png"] != _digest(tmp_path / "other")["testB/0000.png"]


def test_test_set_is_exact_ground_truth(synth_data: Path) -> None:
    for i in range(3):
        layout, rng = heldout_layout(i, size=32, seed=1)
        name = f"{i:04d}.png"
        np.testing.assert_array_equal(_array(synth_data / "testLabels" / name), layout)
        np.testing.assert_array_equal(colors_to_labels(_array(synth_data / "testA" / name)), layout)
        np.testing.assert_array_equal(_array(synth_data / "testB" / name), render_photo(layout, rng))
    # The test layouts are not training layouts.
    assert (synth_data / "trainA" / "0000.png").read_bytes() != (synth_data / "testA" / "0000.png").read_bytes()


def test_domains_come_from_disjoint_layouts_of_the_two_clusters(synth_data: Path) -> None:
    manifest = json.loads((synth_data / "manifest.json").read_text())
    a, b = manifest["trainA"]["pool_indices"], manifest["trainB"]["pool_indices"]
    assert all(i % 2 == 0 for i in a) and all(i % 2 == 1 for i in b)
    assert len(list((synth_data / "trainA").iterdir())) == len(a) and len(
        list((synth_data / "trainB").iterdir())
    ) == len(b)
    first_a = pool_layout(a[0], size=32, seed=1)[0]
    np.testing.assert_array_equal(_array(synth_data / "trainA" / "0000.png"), render_labels(first_a))
    # Unmatched statistics: the vegetation share differs strongly between the domains.
    veg = [np.mean([(pool_layout(i, size=32, seed=1)[0] == VEGETATION).mean() for i in d]) for d in (a, b)]
    assert abs(veg[0] - veg[1]) > 0.15
    assert manifest["trainA"]["class_fractions"]["vegetation"] == pytest.approx(veg[0], abs=1e-4)


def test_full_mix_uses_every_pool_layout(tmp_path: Path) -> None:
    manifest = make_synthscapes(tmp_path / "m", num_pool=24, num_test=1, size=32, seed=1, mix=100)
    assert manifest["trainA"]["pool_indices"] == list(range(0, 24, 2))
    assert manifest["trainB"]["pool_indices"] == list(range(1, 24, 2))


def test_refuses_non_empty_folder_and_bad_counts(synth_data: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not an empty folder"):
        make_synthscapes(synth_data, num_pool=24, num_test=1, size=32)
    with pytest.raises(ConfigError, match=re.escape("--num-pool must be an integer from 8 to 100,000, got 2")):
        make_synthscapes(tmp_path / "x", num_pool=2, size=32)


def test_numbered_png_names_sort_in_order() -> None:
    assert numbered_png_names(3) == ["0000.png", "0001.png", "0002.png"]
    names = numbered_png_names(10001)
    assert names[-1] == "10000.png" and names[0] == "00000.png" and sorted(names) == names
    assert numbered_png_names(0) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_pool": 7}, "--num-pool must be an integer from 8 to 100,000, got 7"),
        ({"num_pool": 8.0}, "--num-pool must be an integer from 8 to 100,000, got 8.0"),
        ({"size": 8}, "--size must be an integer from 16 to 4,096, got 8"),
    ],
)
def test_train_split_counts_are_config_errors_naming_the_option(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        write_train_split(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_test_set_checks_and_summary(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("--num-test must be an integer from 1 to 100,000, got 0")):
        write_test_set(tmp_path / "t", num_test=0, size=16)
    with pytest.raises(ConfigError, match=re.escape("--size must be an integer from 16 to 4,096, got 15")):
        write_test_set(tmp_path / "t", num_test=1, size=15)
    summary = write_test_set(tmp_path / "t", num_test=2, size=16, seed=3)
    assert (summary["count"], summary["size"], summary["seed"]) == (2, 16, 3)
    assert sum(summary["class_fractions"].values()) == pytest.approx(1.0, abs=1e-3)
    for folder in ("testA", "testB", "testLabels"):
        assert sorted(p.name for p in (tmp_path / "t" / folder).iterdir()) == ["0000.png", "0001.png"]
    with pytest.raises(DataError, match="not an empty folder"):
        write_test_set(tmp_path / "t", num_test=2, size=16)
