"""Shared fixtures: tiny networks and tiny generated datasets so every test runs fast on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from srunit.config import load_config
from srunit.data import make_synthetic_dataset

torch.set_num_threads(2)

TINY_MODEL = ["model.ngf=4", "model.ndf=4", "model.n_blocks=6", "model.projector_dim=8"]
PRESETS = ["cut", "fastcut", "srunit", "srunit-official"]


def tiny_config(preset: str = "srunit", *extra: str, data_root: Path | None = None, runs_dir: Path | None = None):
    overrides = [*TINY_MODEL, "method.num_patches=16", "data.load_size=36", "data.crop_size=32",
                 "data.num_workers=0", "train.device=cpu", *extra]
    if data_root is not None:
        overrides.append(f"data.root={data_root}")
    if runs_dir is not None:
        overrides.append(f"train.runs_dir={runs_dir}")
    return load_config(preset, overrides)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """trainA/trainB/testA/testB with 8 + 2 images of 40x40 per domain."""
    root = tmp_path_factory.mktemp("data")
    return make_synthetic_dataset(root, num_train=8, num_test=2, size=40, seed=0)


def random_batch(batch_size: int = 2, size: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(batch_size, 3, size, size, generator=g) * 2 - 1 for k in ("A", "B")}
