"""A self-contained HTML report of training runs and benchmarks.

`build_report` reads run folders (``metrics.jsonl`` from the trainer, ``eval/scores.json`` from the
evaluation) and bench folders (``summary.json``) and writes one HTML file with inline CSS in which
every image is a base64 PNG data URI, so the file can be mailed or archived on its own. It shows the
scores tables (paper Table 1 style), per-class IoU bars, loss curves and image grids in which the
pixels whose segmentation class flipped under translation are highlighted.

Modules: ``runs`` (reading run and bench folders), ``flips`` (flip masks and the image grids),
``plots`` (matplotlib figures), ``markup`` (HTML building blocks), ``page`` (tables and the page).
"""

from srunit.report.flips import flip_mask, highlight_flips
from srunit.report.page import build_report, render_report
from srunit.report.runs import Bench, BenchRow, Run, load_bench, load_metrics, load_run

__all__ = [
    "Run", "BenchRow", "Bench", "load_metrics", "load_run", "load_bench", "flip_mask", "highlight_flips",
    "render_report", "build_report",
]
