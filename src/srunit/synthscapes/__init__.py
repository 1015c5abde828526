"""SynthScapes: a procedural street-scene benchmark with exact ground truth for semantic flipping.

``data``: two-mode layout pool, K-means split into unmatched (or matched) domains, paired test set.
``segmenter``: the cached scoring segmenter trained on renderings.
``benchmark``: train methods per condition and seed, evaluate, summarise as in paper Table 1.
"""

from srunit.synthscapes.benchmark import (
    CONDITIONS,
    METRICS,
    PROFILES,
    BenchSettings,
    evaluate_images,
    format_table,
    profile_settings,
    run_benchmark,
    summarize,
)
from srunit.synthscapes.data import make_synthscapes, write_test_set, write_train_split
from srunit.synthscapes.segmenter import SceneSegmenter, SegmenterSettings, load_or_train_segmenter

__all__ = [
    "CONDITIONS", "METRICS", "PROFILES", "BenchSettings", "evaluate_images", "format_table", "profile_settings",
    "run_benchmark", "summarize", "make_synthscapes", "write_test_set", "write_train_split", "SceneSegmenter",
    "SegmenterSettings", "load_or_train_segmenter",
]
