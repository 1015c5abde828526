"""srunit.synthscapes.scorer: the cached scoring segmenter."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from srunit.errors import CheckpointError
from srunit.synthscapes import SegmenterSettings, load_or_train_segmenter
from srunit.synthscapes.scenes import CLASS_NAMES


def test_segmenter_is_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        tiny_segmenter_settings: SegmenterSettings) -> None:
    TINY_SEG = tiny_segmenter_settings
    net, path = load_or_train_segmenter(TINY_SEG, tmp_path)
    assert path.is_file() and path.parent == tmp_path and "32px" in path.name
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ids = net.segment(image)
    assert ids.shape == (32, 32) and ids.dtype == np.uint8 and ids.max() < len(CLASS_NAMES)

    def no_training(*_a: object, **_k: object) -> None:
        raise AssertionError("a cached segmenter must not be retrained")

    monkeypatch.setattr("srunit.synthscapes.scorer.train_segmenter", no_training)
    again, path2 = load_or_train_segmenter(TINY_SEG, tmp_path)
    assert path2 == path
    np.testing.assert_array_equal(again.segment(image), ids)
    # Other settings -> another file; a damaged file -> an error naming it.
    assert TINY_SEG.key() != SegmenterSettings(size=32, num_images=8, steps=3, batch_size=2, width=4).key()
    path.write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match=str(path)):
        load_or_train_segmenter(TINY_SEG, tmp_path)


def test_scene_segmenter_shapes_and_ids() -> None:
    import torch

    from srunit.synthscapes import SceneSegmenter
    from srunit.synthscapes.scorer import NOT_RENDERED

    torch.manual_seed(0)
    net = SceneSegmenter(width=4).eval()
    assert NOT_RENDERED == len(CLASS_NAMES)
    assert net(torch.rand(2, 3, 16, 20)).shape == (2, len(CLASS_NAMES) + 1, 16, 20)
    ids = net.segment(np.zeros((16, 20, 3), np.uint8))
    assert ids.shape == (16, 20) and ids.dtype == np.uint8 and ids.max() <= NOT_RENDERED


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from srunit.synthscapes.scorer import default_cache_dir

    monkeypatch.setenv("SRUNIT_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SRUNIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "srunit"


@pytest.mark.parametrize("show_progress", [True, False])
def test_the_first_run_segmenter_training_shows_progress_with_the_time_left(
        show_progress: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The first SynthScapes score of a machine trains the scorer (minutes on a CPU): a bar with the time left on a
    terminal, nothing with --no-progress; log lines with the time left in either case."""
    import io
    import logging
    import sys

    from srunit.synthscapes.scorer import SegmenterSettings, load_or_train_segmenter

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    settings = SegmenterSettings(size=32, num_images=4, steps=4, batch_size=2, width=4)
    with caplog.at_level(logging.INFO, logger="srunit.synthscapes.scorer"):
        load_or_train_segmenter(settings, tmp_path, show_progress=show_progress)
    bar = err.getvalue()
    if show_progress:
        assert "training the SynthScapes segmenter (once; cached)" in bar and "4/4" in bar and "<00:00" in bar
    else:
        assert "training the SynthScapes segmenter (once; cached)" not in bar
    assert re.search(r"segmenter step 4/4 .*\(about \d\d:\d\d left\)", caplog.text)
