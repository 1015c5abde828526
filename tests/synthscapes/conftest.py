"""Fixtures of the SynthScapes benchmark tests."""

from __future__ import annotations

import pytest

from srunit.synthscapes import BenchSettings, SegmenterSettings


@pytest.fixture
def tiny_settings(tiny_model_overrides: list[str], tiny_segmenter_settings: SegmenterSettings):
    def make(**changes: object) -> BenchSettings:
        base = dict(methods=("cut", "srunit"), conditions=("unmatched", "matched"), seeds=1, size=32, steps=2,
                    num_pool=24, num_test=2, device="cpu",
                    overrides=(*tiny_model_overrides, "method.num_patches=16"), segmenter=tiny_segmenter_settings)
        base.update(changes)
        return BenchSettings(**base)

    return make
