"""`srunit report`: one self-contained HTML page of runs and benchmarks (tables, plots, flip grids)."""

from __future__ import annotations

import argparse

from srunit._outputs import output_arg, path_arg
from srunit.checks import one_line
from srunit.cli.commands import COMMANDS
from srunit.report import build_report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help=COMMANDS["report"].summary,
        description="Collect run folders and bench folders into one HTML file (inline CSS, images as data "
        "URIs): the benchmark tables (mean +- std over seeds, with the upper bound), the scores of each "
        "evaluated run, per-class IoU bars, loss curves, and image grids with the pixels whose segmentation "
        "class flipped under translation highlighted. The report is the only file written: PATH/report.html "
        "inside the folder given (or --out); nothing else in the input folders is changed.",
    )
    p.add_argument("paths", nargs="+", type=path_arg, metavar="PATH",
                   help="a run folder (metrics.jsonl and/or eval/scores.json) or a bench folder (summary.json)")
    p.add_argument("--out", type=output_arg, metavar="FILE",
                   help="HTML file to write, named .html or .htm (default PATH/report.html; required with several "
                   "PATHs); never another file inside a PATH or a run folder")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--images", type=int, default=6, metavar="N",
                   help="images per translation grid, the first N by name (default 6; 0 for none)")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    out = build_report(args.paths, args.out, num_images=args.images, overwrite=args.overwrite)
    print(f"wrote {one_line(str(out))}")
    return 0
