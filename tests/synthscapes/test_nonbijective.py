"""The non-bijective SynthScapes condition: cars in domain B only (StegoGAN's setting), a test set without cars,
and the benchmark's pieces that pick them (its data, test set, hallucinated class and run settings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import srunit.synthscapes.benchmark as bench_module
from srunit.errors import ConfigError
from srunit.synthscapes import CONDITIONS, DEFAULT_CONDITIONS, BenchSettings
from srunit.synthscapes.dataset import NONBIJECTIVE_SHARE, pool_layout, write_nonbijective_split, write_test_set
from srunit.synthscapes.scenes import CAR, CLASS_NAMES, colors_to_labels


def _labels(folder: Path) -> list[np.ndarray]:
    return [colors_to_labels(np.asarray(Image.open(p).convert("RGB"))) for p in sorted(folder.glob("*.png"))]


def test_domain_a_never_holds_the_class_and_domain_b_holds_it_in_its_share(tmp_path: Path) -> None:
    manifest = write_nonbijective_split(tmp_path / "nb", num_pool=40, size=32, seed=2)
    a, b = manifest["trainA"]["pool_indices"], manifest["trainB"]["pool_indices"]
    assert len(a) == len(b) == 10 and not set(a) & set(b)
    assert all(i % 2 == 0 for i in a) and all(i % 2 == 1 for i in b)  # no layout in both domains
    # Every trainA label map, read back from its colours, holds no car pixel.
    assert all(not (lab == CAR).any() for lab in _labels(tmp_path / "nb" / "trainA"))
    # The renderings hold what their layouts hold: the manifest's indices, recomputed from the pool stream.
    holding = [bool((pool_layout(i, size=32, seed=2)[0] == CAR).any()) for i in b]
    assert sum(holding) == manifest["trainB"]["holding_b_only"] == round(NONBIJECTIVE_SHARE * 10)
    assert len(list((tmp_path / "nb" / "trainB").glob("*.png"))) == 10
    assert manifest["trainA"]["class_fractions"]["car"] == 0.0 < manifest["trainB"]["class_fractions"]["car"]
    assert manifest["b_only"] == "car" and json.loads((tmp_path / "nb" / "manifest.json").read_text()) == manifest
    # Deterministic: the same arguments write the same files.
    write_nonbijective_split(tmp_path / "again", num_pool=40, size=32, seed=2)
    for domain in ("trainA", "trainB"):
        for p in sorted((tmp_path / "nb" / domain).glob("*.png")):
            assert p.read_bytes() == (tmp_path / "again" / domain / p.name).read_bytes()


def test_share_zero_and_one(tmp_path: Path) -> None:
    none = write_nonbijective_split(tmp_path / "zero", num_pool=16, size=32, share=0.0)
    assert none["trainB"]["holding_b_only"] == 0 and none["trainB"]["class_fractions"]["car"] == 0.0
    full = write_nonbijective_split(tmp_path / "one", num_pool=16, size=32, share=1.0)
    assert full["trainB"]["holding_b_only"] == 4
    with pytest.raises(ConfigError, match="share must be between 0 and 1"):
        write_nonbijective_split(tmp_path / "bad", num_pool=16, size=32, share=1.5)


def test_test_set_without_a_class(tmp_path: Path) -> None:
    summary = write_test_set(tmp_path / "t", num_test=6, size=32, seed=1, without=CAR)
    labels = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "t" / "testLabels").glob("*.png"))]
    assert len(labels) == 6 and not any((lab == CAR).any() for lab in labels)
    assert summary["without"] == "car" and summary["class_fractions"]["car"] == 0.0
    # The first layouts of the test stream without a car, in order: the unfiltered set's where it has none.
    plain = write_test_set(tmp_path / "plain", num_test=max(summary["layout_indices"]) + 1, size=32, seed=1)
    assert plain["count"] > 6
    for name, index in zip(sorted(p.name for p in (tmp_path / "t" / "testA").iterdir()), summary["layout_indices"]):
        kept = sorted((tmp_path / "plain" / "testA").iterdir())[index]
        assert (tmp_path / "t" / "testA" / name).read_bytes() == kept.read_bytes()


def test_the_condition_in_the_benchmark_settings(tmp_path: Path, tiny_segmenter_settings) -> None:
    assert "nonbijective" in CONDITIONS and "nonbijective" not in DEFAULT_CONDITIONS
    assert BenchSettings().conditions == DEFAULT_CONDITIONS  # benchmarks made before keep their settings
    settings = BenchSettings(methods=("cut", "stegogan"), conditions=("nonbijective",), seeds=1, size=32, steps=2,
                             num_pool=16, num_test=2, device="cpu", segmenter=tiny_segmenter_settings)
    with pytest.raises(ConfigError, match="unknown condition 'bijective'"):
        BenchSettings(conditions=("bijective",))
    assert bench_module.hallucinated_classes("nonbijective") == (CAR,)
    assert bench_module.hallucinated_classes("unmatched") == ()
    out = tmp_path / "bench"
    root = bench_module.train_data(out, settings, "nonbijective")
    assert json.loads((root / "manifest.json").read_text())["condition"] == "nonbijective"
    test = bench_module.condition_heldout(out, settings, "nonbijective")
    assert test == out / "data" / "test-nonbijective" and len(list((test / "testA").iterdir())) == 2
    assert bench_module.condition_heldout(out, settings, "unmatched") == out / "data" / "test"
    config = bench_module.run_config(settings, "stegogan", root, out / "nonbijective", "stegogan-seed0", 0)
    data = bench_module.run_settings(settings, config, "nonbijective")["data"]
    assert data["b_only"] == CLASS_NAMES[CAR] and data["share"] == NONBIJECTIVE_SHARE and "mix" not in data
