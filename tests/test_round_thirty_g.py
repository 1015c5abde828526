"""Round thirty (G): numbers YAML reads as names, NaN segmenters, lossy TIFF labels, and other inputs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.errors import CheckpointError, ConfigError, DataError


class _Logits(torch.nn.Module):
    def __init__(self, fill: float) -> None:
        super().__init__()
        self.fill = fill

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(1, 4, x.shape[2], x.shape[3])
        out[:, 2] = self.fill  # channel 2 wins wherever the fill is a number above 0
        return out


@pytest.mark.parametrize("fill", [float("nan"), float("inf")])
def test_a_segmenter_whose_logits_are_nan_or_inf_is_refused(tmp_path: Path, fill: float) -> None:
    """A TorchScript segmenter returning NaN logits was argmax-ed to class 0 everywhere and scored (pixAcc 24.73%,
    exit 0); a generator's NaN output is refused, and so is now a segmenter's."""
    from srunit.eval.segmenters import load_segmenter

    image = np.zeros((8, 12, 3), dtype=np.uint8)
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    with warnings.catch_warnings():  # torch deprecates TorchScript; users' segmenters are saved that way all the same
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_Logits(1.0)).save(str(good))
        torch.jit.script(_Logits(fill)).save(str(bad))
    assert (load_segmenter(str(good), 4)(image) == 2).all()  # finite logits: channel 2 everywhere
    with pytest.raises(ConfigError, match=r"segmenter .*bad\.pt returned 96 NaN or inf logits of 384 for a 8x12 "
                                          r"image; .*fix the model"):
        load_segmenter(str(bad), 4)(image)
