"""`srunit bench synthscapes`: does a method flip semantics? Trained and scored against exact truth."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from srunit._outputs import OutputLock, check_name, check_not_in_a_domain_folder, guard_output, output_arg
from srunit.checks import one_line
from srunit.cli.overrides import comma_list, split_overrides
from srunit.errors import ConfigError, shell_word
from srunit.synthscapes import DEFAULT_CONDITIONS, PROFILES, format_table, profile_settings, run_benchmark
from srunit.synthscapes.benchmark import REPORT_FILE, check_baselines
from srunit.synthscapes.settings import DEFAULT_SEEDS, check_files_keep_their_values
from srunit.synthscapes.summary import DEFAULT_BASELINE


def add_synthscapes_parser(kinds: argparse._SubParsersAction) -> None:
    cpu, long, gpu = PROFILES["cpu"], PROFILES["long"], PROFILES["gpu"]
    p = kinds.add_parser(
        "synthscapes",
        help="semantic flipping benchmark on generated street scenes with exact ground truth",
        description="Generate SynthScapes (label maps -> photo-like renderings of the same layouts), split the "
        "training pool by K-means on class histograms into domains with unmatched statistics (paper App. C) and, "
        "for the matched condition, add --matched-mix percent of the opposite cluster (App. D); the nonbijective "
        "condition gives cars to domain B only (StegoGAN's setting). Train every "
        "method x condition x seed, translate the test label maps, segment the translations with a segmenter "
        "trained on renderings (cached) and print pixAcc/clsAcc/mIoU and Dist/Acc(30)/Acc(50) against the "
        "ground truth as mean +- std over seeds (paper Table 1 layout), plus the segmenter's score on the "
        "ground truth as the upper bound, every method's difference from --baseline paired by seed with its 95% t "
        "interval (marked where it excludes 0), and per-class IoU. Rerunning with the same --out continues an "
        "interrupted benchmark. "
        "Training-config overrides (--section.key VALUE) apply to every run.",
        epilog=f"profiles: cpu = {cpu['size']} px, {cpu['steps']} steps, {cpu['num_pool']}-layout pool, "
        f"{cpu['num_test']} test images, {' '.join(cpu['overrides'])}; long = {long['size']} px, {long['steps']} "
        f"steps, {' '.join(long['overrides'])}; gpu = {gpu['size']} px, {gpu['steps']} "
        f"steps, {gpu['num_pool']}-layout pool, {gpu['num_test']} test images, full-size networks.",
    )
    p.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="cpu",
        help="default sizes: cpu (minutes per run on a laptop), long (Eq. 3 on for most of 4000 steps; about "
        "10-15 minutes per run on one core) or gpu (default cpu)",
    )
    p.add_argument(
        "--methods",
        type=comma_list,
        default=("cut", "srunit"),
        metavar="P1,P2",
        help="method presets to compare, or `all` for every packaged preset (default cut,srunit)",
    )
    p.add_argument(
        "--baseline",
        default=None,
        type=comma_list,
        metavar="PRESET[,PRESET]",
        help=f"every other method's scores minus this one's, paired by seed, with a 95%% interval; several: the "
        f"differences from each in turn (default {DEFAULT_BASELINE})",
    )
    p.add_argument(
        "--conditions",
        type=comma_list,
        default=DEFAULT_CONDITIONS,
        metavar="C1,C2",
        help="unmatched, matched and/or nonbijective (cars in domain B only; scored with the hallucination rate "
        "on a test set without cars) (default unmatched,matched)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        help=f"training seeds per method and condition (default {DEFAULT_SEEDS})",
    )
    p.add_argument(
        "--first-seed",
        type=int,
        help="the first training seed: the runs use seeds FIRST .. FIRST + "
        "SEEDS - 1, e.g. seeds no earlier benchmark used (default 0)",
    )
    p.add_argument("--size", type=int, help="image side in pixels (profile default)")
    p.add_argument("--steps", type=int, help="training steps per run (profile default)")
    p.add_argument("--batch-size", type=int, help="training batch size (default 1)")
    p.add_argument("--num-pool", type=int, help="layouts in the training pool before the split (profile default)")
    p.add_argument("--num-test", type=int, help="test images with ground truth (profile default)")
    p.add_argument(
        "--matched-mix",
        type=float,
        help="percent of the opposite cluster in the matched condition "
        "(default 100: both domains drawn from the whole pool)",
    )
    p.add_argument("--data-seed", type=int, help="seed of layouts, K-means and mixing (default 0)")
    p.add_argument(
        "--segmenter-steps",
        type=int,
        help="training steps of the scoring segmenter (profile default; "
        "another value trains and caches another segmenter and re-scores existing runs)",
    )
    p.add_argument("--segmenter-images", type=int, help="renderings the scoring segmenter trains on (profile default)")
    p.add_argument("--device", help="auto | cpu | cuda (default auto)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained at a time, each in its own process with an equal share of the CPU threads "
        "(and, on CUDA with several GPUs, a GPU each); each run's settings stay the same, its floating-point "
        "rounding can change with its thread count (default 1)",
    )
    p.add_argument("--out", type=output_arg,
                   help="benchmark folder (default runs/synthscapes-PROFILE-YYYYmmdd-HHMMSS); never inside a run "
                   "folder")
    p.add_argument(
        "--cache-dir",
        type=output_arg,
        help="where the scoring segmenter is cached (default $SRUNIT_CACHE or ~/.cache/srunit)",
    )
    p.add_argument("--records", type=output_arg, metavar="DIR",
                   help="keep a small record of every finished run in DIR (commit it) and the scoring segmenter beside "
                   "them; runs whose record exists and matches are not trained again, so the same command continues "
                   "the study on another machine (default: none)")
    p.add_argument("--no-report", action="store_true", help="do not write OUT/report.html")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_synthscapes(args: argparse.Namespace, extra: list[str]) -> int:
    overrides = tuple(split_overrides(extra))
    settings = profile_settings(
        args.profile,
        methods=args.methods,
        conditions=args.conditions,
        seeds=args.seeds,
        first_seed=args.first_seed,
        size=args.size,
        steps=args.steps,
        batch_size=args.batch_size,
        num_pool=args.num_pool,
        num_test=args.num_test,
        matched_mix=args.matched_mix,
        data_seed=args.data_seed,
        device=args.device,
        segmenter_steps=args.segmenter_steps,
        segmenter_images=args.segmenter_images,
        overrides=PROFILES[args.profile]["overrides"] + overrides if overrides else None,
    )
    if args.matched_mix is not None and "matched" not in settings.conditions:  # it changed nothing, without a word
        raise ConfigError(f"--matched-mix {args.matched_mix:g} applies to the matched condition only, and --conditions "
                          f"is {','.join(settings.conditions)}; add matched to --conditions or leave --matched-mix out")
    _refuse_void_overrides(settings.methods, settings.overrides, overrides)
    check_files_keep_their_values(settings.methods, settings.overrides, overrides, args.profile)
    check_baselines(settings.methods, args.baseline or ())  # before the output folder is made
    baseline = args.baseline or (DEFAULT_BASELINE,)
    out = args.out or Path("runs") / time.strftime(f"synthscapes-{args.profile}-%Y%m%d-%H%M%S")
    from srunit.eval.study_records import check_records_folder

    check_records_folder(args.records)
    guard_output(out, "--out", folder=True, inputs=[("--cache-dir", args.cache_dir), ("--records", args.records)])
    # 1500 images of a benchmark in ss/trainA/b were the next run's domain A, as a data command's --out would be
    check_not_in_a_domain_folder(out, "--out", "the benchmark's images")
    for method in settings.methods:  # each run folder is named PRESET-seedN
        check_name(Path(method).stem, "--methods")
    start = time.perf_counter()
    command = "srunit " + " ".join(map(shell_word, sys.argv[1:])) if sys.argv[1:] else ""
    with OutputLock(out, "--out"):  # a second benchmark into this folder is refused while this one runs
        summary = run_benchmark(
            out,
            settings,
            cache_dir=args.cache_dir,
            command=command,
            show_progress=not args.no_progress,
            report=not args.no_report,
            baseline=args.baseline or None,
            jobs=args.jobs,
            records=args.records,
        )
    print(format_table(summary))
    if not summary["differences"]:
        print(
            f"\n(no paired differences: the baseline {','.join(baseline)!r} is not among --methods, or it is the "
            f"only one)"
        )
    print(f"\n{summary['machine']}; {(time.perf_counter() - start) / 60:.1f} min")
    print(f"benchmark folder: {one_line(str(out))}  (summary.json, table.md, one run folder per method/condition/seed)")
    if not args.no_report:
        print(f"report: {one_line(str(out / REPORT_FILE))}")
    return 0


def _refuse_void_overrides(methods: tuple[str, ...], applied: tuple[str, ...], given: tuple[str, ...]) -> None:
    """An override given on the command line that a method's other options leave without effect (a weight of a
    term that is off, E5's noise) is refused, naming the method, before anything is written, as `train` refuses
    it: every run of that method trained as without it."""
    from srunit.config import load_config
    from srunit.engine.trainer import check_no_void_options
    from srunit.synthscapes.settings import overrides_for

    for method in methods:
        try:
            check_no_void_options(load_config(method, overrides_for(method, applied)), overrides_for(method, given),
                                  method)
        except ConfigError as err:
            raise ConfigError(f"--methods {method}: {err}") from None
