"""`srunit tune`: search a method's hyper-parameters with Optuna, on SynthScapes or on the user's own data."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from srunit._outputs import OutputLock, check_not_in_a_domain_folder, guard_output, output_arg, path_arg, text_arg
from srunit._reading import MAX_CONFIG_BYTES, folder_inside, read_text, same_folder
from srunit._yaml import load_yaml
from srunit.checks import one_line
from srunit.cli.commands import COMMANDS
from srunit.cli.overrides import comma_list, split_overrides
from srunit.config import load_config, preset_names, refuse_overrides_of
from srunit.errors import ConfigError

ACCEPTS_OVERRIDES = True

EPILOG = ("Every trial trains one run per trial seed on the training data and is scored on a validation split that "
          "the test set never shares an image with. The study lives in --storage (a SQLite file in --out by default; "
          "any database URL Optuna accepts, e.g. postgresql://..., so several processes or machines work on one "
          "study); rerunning the same command continues it: finished trials are kept, an interrupted one resumes "
          "from its checkpoint. With --records DIR every finished run leaves a small JSON record in DIR (commit "
          "it): the same command on another machine adds them to its study and trains only what is missing. "
          "Training-config overrides (--section.key VALUE) apply to every trial.")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help=COMMANDS["tune"].summary,
        description="Tune a preset's hyper-parameters as the paper tuned SRUNIT (Sec. 5.3: beta, T, the layer left "
        "out, the warm-up), with Optuna: `synthscapes` trains on a SynthScapes profile and scores on its "
        "validation layouts; `data` trains on your data and scores your validation images with your segmenter.",
    )
    kinds = p.add_subparsers(dest="tune_kind", metavar="TARGET", required=True)
    s = kinds.add_parser("synthscapes", help="tune on SynthScapes (its validation split)", epilog=EPILOG,
                         description="Tune on a SynthScapes profile: trials train on its --condition data and are "
                         "scored on validation layouts of their own seed stream (no test image is ever seen).")
    _common(s, "synthscapes")
    s.add_argument("--profile", default="long", help="cpu | long | gpu: sizes and lengths (default long)")
    s.add_argument("--condition", default="unmatched", help="the training data: unmatched or matched (default "
                   "unmatched)")
    for name, help_text in (("--size", "image side in pixels"), ("--steps", "training steps per run"),
                            ("--num-pool", "layouts in the training pool"),
                            ("--num-test", "validation images"),
                            ("--segmenter-steps", "training steps of the scoring segmenter"),
                            ("--segmenter-images", "renderings the scoring segmenter trains on")):
        s.add_argument(name, type=int, help=f"{help_text} (profile default)")
    s.add_argument("--data-seed", type=int, help="seed of the data (default 0, in every profile)")
    s.add_argument("--device", help="auto | cpu | cuda (default auto)")
    s.add_argument("--cache-dir", type=output_arg,
                   help="where the scoring segmenter is cached (default: --records DIR if "
                   "given, so the scorer travels with the study; else $SRUNIT_CACHE or ~/.cache/srunit)")

    d = kinds.add_parser("data", help="tune on your own data (your validation images, labels and segmenter)",
                         epilog=EPILOG, description="Tune on your data: trials train on --data (trainA/, trainB/) "
                         "and are scored by running --segmenter on the translations of --val-images against "
                         "--val-labels (keep these images out of --data and out of your test set).")
    _common(d, "data")
    d.add_argument("--data", type=path_arg, metavar="ROOT",
                   help="training data: ROOT/trainA, ROOT/trainB (required)")
    d.add_argument("--val-images", type=path_arg, metavar="DIR",
                   help="validation images of domain A, never trained on (required)")
    d.add_argument("--val-labels", type=path_arg, metavar="DIR",
                   help="their label maps: class ids, same name stems (required)")
    d.add_argument("--segmenter", metavar="SPEC",
                   help="a segmenter of domain B, as for `srunit eval seg --segmenter` (required)")
    d.add_argument("--classes", type=int, metavar="N", help="number of classes (required)")
    d.add_argument("--ignore-index", type=int, default=255, help="label value to skip (default 255)")
    d.add_argument("--class-names", default="none", metavar="NAMES",
                   help="names for the classes: cityscapes (the 19 train ids, needs --classes 19), synthscapes (its "
                   "8 classes, needs --classes 8), a file with one per line, or a comma-separated list")
    d.add_argument("--flip-from", type=comma_list, metavar="C1,C2",
                   help="classes over-represented in domain A, for the directed flip rate (with --flip-to)")
    d.add_argument("--flip-to", metavar="C", help="the class domain B has most in excess (with --flip-from)")


# The options `tune data` cannot run a trial without (argparse's `required` would refuse --show-space too).
DATA_OPTIONS = ("data", "val_images", "val_labels", "segmenter", "classes")


def _common(p: argparse.ArgumentParser, kind: str) -> None:
    p.add_argument("--preset", required=True, help=f"the method to tune: {', '.join(preset_names())} or a YAML file")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study ends with (default 20)")
    # `tune data --help` listed dist, acc_30 and acc_50 "on SynthScapes", scores it refuses (no paired truth)
    more = ("; and dist (minimised), acc_30, acc_50 against the layouts' paired truth" if kind == "synthscapes"
            else "; directed_flip_rate needs --flip-from and --flip-to")
    p.add_argument("--objective", default="mean_iou",
                   help=f"the score to optimise: mean_iou (default), pixel_accuracy, class_accuracy, flip_rate or "
                   f"directed_flip_rate (the flip rates minimised){more}")
    p.add_argument("--space", type=path_arg, metavar="FILE",
                   help="a search space YAML (config key -> {low, high[, log, int]} | {choices} | {leave_one_out}); "
                   "default: the method's own (srunit tune ... --show-space prints it)")
    p.add_argument("--show-space", action="store_true", help="print the search space as a --space file (YAML) and exit")
    p.add_argument("--seed", type=int, default=1000, help="training seed of every trial's first run (default 1000)")
    p.add_argument("--trial-seeds", type=int, default=1,
                   help="runs per trial, seeds SEED .. SEED + N - 1; the objective is their mean (default 1)")
    p.add_argument("--sampler", default="tpe", help="tpe (default), random or qmc")
    p.add_argument("--sampler-seed", type=int, default=0, help="seed of the sampler (default 0)")
    p.add_argument("--startup-trials", type=int, default=0,
                   help="tpe: random trials before it models the results (default max(4, trials / 3))")
    p.add_argument("--jobs", type=int, default=1,
                   help="workers, each a process with an equal share of the CPU threads (default 1)")
    p.add_argument("--study", metavar="NAME", type=text_arg("a study name", "the --out folder's name"),
                   help="the study's name in the storage (default: the --out folder's name)")
    p.add_argument("--storage", metavar="URL", type=text_arg("a storage URL", "sqlite:///OUT/study.db"),
                   help="an Optuna storage URL (default sqlite:///OUT/study.db); one study, many workers and machines")
    p.add_argument("--records", type=output_arg, metavar="DIR",
                   help="keep a record of every finished run in DIR (commit it); runs with a matching record are "
                   "not trained again and a new storage starts from them")
    p.add_argument("--out", type=output_arg,
                   help="tuning folder: settings, trial runs, study.db, study.json, best.yaml (default "
                   "runs/tune-PRESET-YYYYmmdd-HHMMSS)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _space(args: argparse.Namespace, preset_config: object) -> dict:
    from srunit.search import space_from_dict
    from srunit.tune.study import space_to_dict

    if args.space is not None:
        text = read_text(args.space, "--space", limit=MAX_CONFIG_BYTES, error=ConfigError,
                         fix="give a search space YAML file")
        data = load_yaml(text, str(args.space))
        return space_to_dict(space_from_dict(data, f"--space {args.space}"))
    space = preset_config.method.search_space()  # type: ignore[attr-defined]
    if not space:
        raise ConfigError(f"--preset {args.preset}: its method declares no search space; give one with --space FILE")
    return space_to_dict(space)


def _show_space(preset: str, space: dict) -> str:
    """The search space as a `--space` file (one flow mapping per key, so that each reads as in docs/tuning.md),
    after its description as comments: saved and edited, it is what `--space FILE` takes."""
    import yaml

    from srunit.search import describe_space, space_from_dict

    about = describe_space(space_from_dict(space, "the search space")).splitlines()
    lines = [f"# search space of {preset}; save this as a file, edit it, and pass it with --space FILE", "#",
             *(f"# {line.strip()}" for line in about), ""]
    lines += [f"{key}: {yaml.safe_dump(spec, default_flow_style=True, sort_keys=False, width=10_000).strip()}"
              for key, spec in space.items()]
    return "\n".join(lines)


def _target(args: argparse.Namespace, out: Path, overrides: tuple[str, ...]) -> dict:
    if args.tune_kind == "synthscapes":
        from srunit.runtime.device import resolve_device
        from srunit.synthscapes import profile_settings
        from srunit.synthscapes.benchmark import check_run_configs
        from srunit.synthscapes.settings import check_files_keep_their_values
        from srunit.tune.targets import SynthScapesTarget

        bench = profile_settings(args.profile, methods=(args.preset,), conditions=(args.condition,), seeds=1,
                                 size=args.size, steps=args.steps, num_pool=args.num_pool, num_test=args.num_test,
                                 data_seed=args.data_seed, device=args.device,
                                 segmenter_steps=args.segmenter_steps, segmenter_images=args.segmenter_images)
        check_run_configs(bench, out, overrides)  # before the data and the segmenter are made
        check_files_keep_their_values(bench.methods, bench.overrides, overrides, args.profile)
        # `--device cuda` without CUDA rendered the data and wrote tune.json and study.db before it was refused.
        resolve_device(bench.device, "--device")
        cache = args.cache_dir or args.records
        return SynthScapesTarget(bench.to_dict(), str(out), args.condition,
                                 None if cache is None else str(cache)).to_dict()
    from srunit.eval.run_records import resolve_class_names
    from srunit.tune.targets import FolderTarget

    _refuse_validation_in_training(args.data, args.val_images, args.val_labels)
    names = resolve_class_names(args.class_names, args.classes)
    return FolderTarget(str(args.data), str(args.val_images), str(args.val_labels), args.segmenter, args.classes,
                        args.ignore_index, names, list(args.flip_from or ()), args.flip_to).to_dict()


def _refuse_validation_in_training(data: Path, val_images: Path, val_labels: Path) -> None:
    """ConfigError where --val-images or --val-labels is a training folder of --data (ROOT/trainA, ROOT/trainB), lies
    inside one or holds one: `tune data --val-images data/trainA` scored each trial on images it trained on, without
    a word, though the help says to keep them out."""
    for option, folder in (("--val-images", val_images), ("--val-labels", val_labels)):
        for train in (Path(data) / "trainA", Path(data) / "trainB"):
            how = ("is" if same_folder(folder, train) else "lies inside" if folder_inside(folder, train)
                   else "holds" if folder_inside(train, folder) else None)
            if how is not None:
                raise ConfigError(f"{option} {one_line(str(folder))} {how} the training folder "
                                  f"{one_line(str(train))} of --data: the trials would train on what scores them; "
                                  f"keep the validation images and labels out of --data's trainA and trainB")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from srunit.tune.study import (
        TuneSettings,
        check_space,
        owned_options,
        preset_values,
        refuse_overrides_of_the_space,
        run_tune,
    )

    overrides = tuple(split_overrides(extra))
    owned, command = owned_options(args.tune_kind), f"tune {args.tune_kind}"
    refuse_overrides_of(overrides, owned, command)
    preset_config = load_config(args.preset, overrides)  # a wrong preset or override fails before anything else
    from srunit.engine.trainer import check_no_void_options

    check_no_void_options(preset_config, overrides, args.preset)  # a void option the user gave, as train refuses it
    if args.startup_trials and args.sampler != "tpe":  # it changed nothing, without a word
        raise ConfigError(f"--startup-trials {args.startup_trials} applies to the tpe sampler only, and --sampler is "
                          f"{args.sampler}; leave --startup-trials out, or use --sampler tpe")
    space = _space(args, preset_config)
    source = f"--space {args.space}" if args.space is not None else "the search space"
    check_space(space, preset_config, source, owned, command)
    refuse_overrides_of_the_space(space, overrides, source)
    if args.show_space:
        print(_show_space(args.preset, space))
        return 0
    if args.tune_kind == "data":  # not argparse-required: --show-space needs none of them
        missing = [f"--{key.replace('_', '-')}" for key in DATA_OPTIONS if getattr(args, key) is None]
        if missing:
            raise ConfigError(f"srunit tune data needs {', '.join(missing)}: the training data, the validation images "
                              f"and labels, and the segmenter that scores them (only --show-space runs without them)")
    out = args.out or Path("runs") / time.strftime(f"tune-{Path(args.preset).stem}-%Y%m%d-%H%M%S")
    data = ([("--data", args.data), ("--val-images", args.val_images), ("--val-labels", args.val_labels)]
            if args.tune_kind == "data" else [])  # trials' runs inside the images would be read as images
    from srunit.eval.study_records import check_records_folder
    from srunit.tune.study import sqlite_file

    # Written as --out is (the records, an SQLite storage): never among the inputs, nor in a run folder
    check_records_folder(args.records, inputs=data)
    if args.storage is not None and (database := sqlite_file(args.storage)) is not None:
        guard_output(database, "--storage", overwrite=True, inputs=[("--records", args.records), *data])
    guard_output(out, "--out", folder=True, inputs=[("--records", args.records), *data])
    check_not_in_a_domain_folder(out, "--out", "the trials' translations and samples")
    study = args.study or re.sub(r"[^A-Za-z0-9_.-]", "-", Path(out).resolve().name)
    settings = TuneSettings(
        preset=args.preset, target=_target(args, Path(out), overrides), space=space, study_name=study,
        objective=args.objective, trials=args.trials, seed=args.seed, trial_seeds=args.trial_seeds,
        sampler=args.sampler, sampler_seed=args.sampler_seed, startup_trials=args.startup_trials,
        overrides=overrides, preset_config=preset_values(args.preset))
    start = time.perf_counter()
    with OutputLock(out, "--out"):
        summary = run_tune(out, settings, storage=args.storage, records=args.records, jobs=args.jobs,
                           show_progress=not args.no_progress)
    print(format_summary(summary))
    from srunit.tune.study import TRIALS_DIR

    # What is there: with no finished trial no best.yaml is written (the line named it all the same).
    written = ["study.json", *(["best.yaml"] if summary.get("best") else []),
               *([f"{TRIALS_DIR}/"] if (Path(out) / TRIALS_DIR).is_dir() else [])]
    print(f"\n{(time.perf_counter() - start) / 60:.1f} min; tuning folder: {one_line(str(out))} ({', '.join(written)})")
    return 0


def format_summary(summary: dict) -> str:
    """The finished trials, best first, and the best parameters."""
    from srunit.tune.study import LOWER_IS_BETTER, shown_score

    objective = summary["objective"]
    finished = [t for t in summary["trials"] if t["state"] == "COMPLETE" and t["value"] is not None]
    finished.sort(key=lambda t: t["value"], reverse=objective not in LOWER_IS_BETTER)
    lines = [f"study {summary['study']}: {len(finished)} finished trial(s), objective {objective} "
             f"({summary['direction']})"]
    keys = sorted({k for t in finished for k in t["params"]})
    if finished:  # with none, a header of three cells stood over a separator of two
        lines.append("| " + " | ".join(["trial", objective, *keys]) + " |")
        lines.append("|---" * (len(keys) + 2) + "|")
    for t in finished:
        values = [t["params"].get(k) for k in keys]
        cells = [str(t["number"]), shown_score(objective, t["value"]),
                 *(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values)]
        lines.append("| " + " | ".join(cells) + " |")
    others = [t for t in summary["trials"] if t["state"] not in ("COMPLETE",) and not t.get("over_budget")]
    if others:
        shown = ", ".join(f"{t['number']} ({t.get('outcome') or t['state'].lower()})" for t in others)
        lines.append(f"not finished: {shown}")
    if summary.get("best"):
        lines.append(f"best: trial {summary['best']['number']}; as a preset: best.yaml")
    return "\n".join(lines)
