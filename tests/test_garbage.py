"""Round five: no silent garbage. Inputs that would give numbers without meaning are refused or warned about:
weights that are not floating point, label maps in a lossy format, images whose EXIF orientation turns them,
YAML 1.1 booleans where a name belongs, and a Python API writing into a run's checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from srunit.errors import CheckpointError
from srunit.networks import ResnetGenerator
from srunit.runtime.network_files import load_network, save_network


def _rewrite_as(path: Path, key: str, dtype: torch.dtype) -> None:
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    tensors[key] = (tensors[key] * 100).to(dtype)
    save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int8, torch.bool])
def test_weights_that_are_not_floating_point_are_refused(dtype: torch.dtype, tmp_path: Path) -> None:
    path = tmp_path / "G.safetensors"
    save_network(ResnetGenerator(ngf=4, n_blocks=1), path, "ResnetGenerator")
    key = next(k for k in load_file(str(path)) if k.endswith("weight"))
    _rewrite_as(path, key, dtype)
    with pytest.raises(CheckpointError, match=rf"the weight {key} is stored as {str(dtype)[6:]}, not as floating "
                                              rf"point"):
        load_network(path)
