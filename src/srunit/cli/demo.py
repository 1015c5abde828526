"""`srunit demo`: the main job on built-in data, end to end, in minutes on a laptop CPU.

Generates a small SynthScapes (street-scene label maps -> photo-like renderings, split by
K-means so the two domains have unmatched class statistics), trains CUT and SRUNIT briefly,
translates the test label maps, scores them against the exact ground truth with the SynthScapes
segmenter and writes the HTML report. It is `srunit bench synthscapes` with one seed and the
unmatched condition only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from srunit._outputs import OutputLock, check_name, guard_output, output_arg
from srunit._reading import check_linked_files
from srunit.checks import one_line
from srunit.cli.commands import COMMANDS
from srunit.cli.overrides import comma_list
from srunit.errors import ConfigError
from srunit.synthscapes import format_table, profile_settings, run_benchmark
from srunit.synthscapes.benchmark import REPORT_FILE, SETTINGS_FILE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help=COMMANDS["demo"].summary,
        description="Run the whole pipeline on built-in generated data (no download): SynthScapes with "
        "unmatched class statistics, CUT and SRUNIT trained for a few hundred steps, translations scored "
        "against the exact ground truth (pixAcc/clsAcc/mIoU of a segmenter, Dist/Acc(delta)), and a "
        "self-contained HTML report. For the full comparison (matched vs unmatched data, several seeds) "
        "run `srunit bench synthscapes`.",
    )
    p.add_argument("--runs-dir", type=output_arg, default=Path("runs"),
                   help="where the demo folder goes (default runs/)")
    p.add_argument("--name", default=None, help="demo folder name (default demo-YYYYmmdd-HHMMSS; never overwritten)")
    p.add_argument("--methods", type=comma_list, default=("cut", "srunit"), metavar="P1,P2",
                   help="method presets to train (default cut,srunit)")
    p.add_argument("--steps", type=int, default=600, help="training steps per method (default 600)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--cache-dir", type=output_arg,
                   help="where the scoring segmenter is cached (default $SRUNIT_CACHE or ~/.cache/srunit)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    name = check_name(args.name, "--name") if args.name is not None else time.strftime("demo-%Y%m%d-%H%M%S")
    args.name = name  # a Ctrl-C is reported with the folder's name, which the same command would not give again
    folder = guard_output(args.runs_dir / name, "--runs-dir/--name", folder=True,
                          inputs=[("--cache-dir", args.cache_dir)])
    if folder.is_dir() and any(folder.iterdir()) and not (folder / SETTINGS_FILE).is_file():
        # in the demo's own words (never overwritten; another --name); a fork whose files are links to nothing is
        # named as that
        check_linked_files(folder, [SETTINGS_FILE], "a demo folder")
        raise ConfigError(f"--runs-dir/--name {folder} exists and is not a demo folder; demo folders are never "
                          f"overwritten: pass another --name (nothing was changed)")
    settings = profile_settings("cpu", methods=args.methods, conditions=("unmatched",), seeds=1,
                                steps=args.steps, size=args.size, device=args.device)
    start = time.perf_counter()
    with OutputLock(folder, "--name"):  # a second demo into this folder is refused while this one runs
        summary = run_benchmark(folder, settings, cache_dir=args.cache_dir, command="srunit demo",
                                show_progress=not args.no_progress, report=True, out_option="--name")
    data = summary["settings"]
    print(f"\nSynthScapes {data['size']}x{data['size']}, unmatched class statistics; {data['steps']} training "
          f"steps per method; {(time.perf_counter() - start) / 60:.1f} min on {summary['machine']}")
    print("segmenter scores of the translated test label maps against their labels (percent), and pixel "
          "distance / accuracy against the exact ground-truth renderings:\n")
    print(format_table(summary))
    print("\nOne seed per method: a difference between the rows above is not a finding. The spread over "
          "training seeds is as large as the gaps between methods at this length; `srunit bench synthscapes "
          "--methods all` trains 5 seeds of every method and gives each one's difference from CUT, paired by "
          "seed, with a 95% interval.")
    print(f"\nfolder: {one_line(str(folder))}  (data/, one training run per method under unmatched/, summary.json)")
    print(f"report: {one_line(str(folder / REPORT_FILE))}")
    return 0
