"""SynthScapes: a procedural street-scene benchmark with exact ground truth for semantic flipping.

``scenes``: the renderer (layouts, label colour maps, photo-like renderings).
``dataset``: two-mode layout pool, K-means split into unmatched (or matched) domains, the non-bijective split
(a class in domain B only), paired test sets.
``scorer``: the cached scoring segmenter trained on renderings.
``settings``: what defines a benchmark, and the cpu/gpu profiles.
``benchmark``: train methods per condition and seed, evaluate; ``summary``: the paper-Table-1 summary.
"""

from srunit.synthscapes.benchmark import evaluate_images, run_benchmark
from srunit.synthscapes.dataset import make_synthscapes, write_test_set, write_train_split
from srunit.synthscapes.scorer import SceneSegmenter, SegmenterSettings, load_or_train_segmenter
from srunit.synthscapes.settings import CONDITIONS, DEFAULT_CONDITIONS, PROFILES, BenchSettings, profile_settings
from srunit.synthscapes.summary import METRICS, format_table, summarize

__all__ = [
    "CONDITIONS", "DEFAULT_CONDITIONS", "METRICS", "PROFILES", "BenchSettings", "evaluate_images", "format_table",
    "profile_settings",
    "run_benchmark", "summarize", "make_synthscapes", "write_test_set", "write_train_split", "SceneSegmenter",
    "SegmenterSettings", "load_or_train_segmenter",
]
