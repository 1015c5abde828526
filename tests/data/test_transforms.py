"""srunit.data.transforms: the training-time preprocessing modes, its checks and its randomness."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.data import PREPROCESS_MODES, Preprocess
from srunit.data import transforms as transforms_mod
from srunit.errors import ConfigError


def test_preprocess_validation() -> None:
    # Configuration mistakes are ConfigErrors naming the option and the value.
    with pytest.raises(ConfigError, match="resize_and_crop") as e:
        Preprocess(mode="zoom")
    assert "'zoom'" in str(e.value) and "data.preprocess" in str(e.value)
    with pytest.raises(ConfigError, match="data.crop_size.*data.load_size"):
        Preprocess(mode="resize_and_crop", load_size=100, crop_size=128)
    with pytest.raises(ConfigError, match="data.load_size") as e:
        Preprocess(load_size=0)
    assert str(e.value) == "data.load_size must be an integer >= 1, got 0; set --data.load_size to e.g. 286"
    with pytest.raises(ConfigError, match=re.escape("data.crop_size must be an integer >= 1, got 2.5")):
        Preprocess(crop_size=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="data.flip: invalid value 'yes'"):
        Preprocess(flip="yes")  # type: ignore[arg-type]
    Preprocess(mode="crop", load_size=100, crop_size=128)  # load_size unused by "crop"
    assert set(PREPROCESS_MODES) == {"resize_and_crop", "crop", "scale_width",
                                     "scale_width_and_crop", "none"}


@pytest.mark.parametrize(("mode", "shape"), [
    ("resize_and_crop", (3, 32, 32)),
    ("crop", (3, 32, 32)),
    ("scale_width", (3, 32, 36)),          # width 36, height max(27, crop 32)
    ("scale_width_and_crop", (3, 32, 32)),
    ("none", (3, 32, 40)),                 # 30 -> nearest multiple of 4
])
def test_preprocess_modes_shapes(mode: str, shape: tuple[int, int, int], rand_rgb) -> None:
    img = Image.fromarray(rand_rgb(30, 40))
    pre = Preprocess(mode=mode, load_size=36, crop_size=32)
    x = pre(img, np.random.default_rng(0))
    assert x.shape == shape and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_small_image_scaled_up_and_warned_once(caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch, rand_rgb) -> None:
    monkeypatch.setattr(transforms_mod, "_warned_small", False)
    pre = Preprocess(mode="crop", crop_size=32, flip=False)
    small = Image.fromarray(rand_rgb(10, 20))
    with caplog.at_level(logging.WARNING, logger="srunit.data"):
        a = pre(small, np.random.default_rng(0), name="tiny.png")
        b = pre(small, np.random.default_rng(1), name="other.png")
    assert a.shape == b.shape == (3, 32, 32)
    warnings = [r for r in caplog.records if r.name == "srunit.data"]
    assert len(warnings) == 1
    assert "tiny.png" in warnings[0].getMessage() and "crop_size" in warnings[0].getMessage()


def test_flip_and_crop_are_pure_functions_of_rng(rand_rgb) -> None:
    img = Image.fromarray(rand_rgb(12, 16))
    base = Preprocess(mode="none", flip=False)(img, np.random.default_rng(0))
    pre = Preprocess(mode="none", flip=True)
    seen = set()
    for seed in range(16):
        x = pre(img, np.random.default_rng(seed))
        assert torch.equal(x, pre(img, np.random.default_rng(seed)))
        if torch.equal(x, base):
            seen.add("plain")
        else:
            assert torch.equal(x, base.flip(-1))
            seen.add("flipped")
    assert seen == {"plain", "flipped"}

    crop = Preprocess(mode="crop", crop_size=8, flip=False)
    outs = {crop(img, np.random.default_rng(s)).numpy().tobytes() for s in range(8)}
    assert len(outs) > 1


@pytest.mark.parametrize("mode", ["resize_and_crop", "scale_width_and_crop"])
def test_small_image_in_the_resize_modes_is_warned_once(caplog: pytest.LogCaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch, rand_rgb, mode: str) -> None:
    """The resize modes scale a 20x10 image to load_size without needing the crop fit: still warned."""
    monkeypatch.setattr(transforms_mod, "_warned_small", False)
    pre = Preprocess(mode=mode, load_size=36, crop_size=32)
    with caplog.at_level(logging.WARNING, logger="srunit.data"):
        pre(Image.fromarray(rand_rgb(40, 40)), np.random.default_rng(0), name="big.png")  # 40x40: no warning
        pre(Image.fromarray(rand_rgb(10, 20)), np.random.default_rng(0), name="tiny.png")
        pre(Image.fromarray(rand_rgb(10, 20)), np.random.default_rng(1), name="again.png")
    [warning] = [r.getMessage() for r in caplog.records if r.name == "srunit.data"]
    assert "image tiny.png is 20x10 as stored, smaller than data.crop_size=32" in warning and mode in warning
