"""`srunit train`: train a method on two folders of unpaired images, or resume a run."""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from pathlib import Path

from srunit._outputs import path_arg
from srunit.checks import one_line
from srunit.cli.commands import COMMANDS
from srunit.cli.overrides import config_help, split_overrides
from srunit.config import load_config, preset_names
from srunit.engine import Trainer, distributed
from srunit.engine.dryrun import dry_run
from srunit.engine.signals import TrainingStopped
from srunit.engine.trainer import check_options_take_effect, resume_config
from srunit.errors import ConfigError, shell_word
from srunit.runtime.run_folder import RunFolder

ACCEPTS_OVERRIDES = True



def _preset_arg(text: str) -> str:
    """argparse ``type=`` of --preset: an empty value is an error (it fell back to the default preset, srunit)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty name; give a packaged preset (e.g. cut, srunit) or a YAML file, "
                                         "or leave --preset out for srunit")
    return text

def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help=COMMANDS["train"].summary,
        description=textwrap.fill(
            "Train a translation model. Data: --data.root DIR (with trainA/ and trainB/) or --data.dir_a DIR "
            "--data.dir_b DIR. The run lives in RUNS_DIR/NAME (train.runs_dir, train.name). Started by torchrun "
            "(`torchrun --nproc-per-node N -m srunit train ...`), it trains data-parallel: train.batch_size images "
            "per process and step.", 78, break_on_hyphens=False),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the epilog's table of config keys is laid out
        add_help=False,  # --help lists the values of the preset and overrides given with it: printed by `run`
    )
    p.add_argument("-h", "--help", action="store_true", dest="show_help",
                   help="show this help, with the values and method options of --preset (and any overrides given)")
    p.add_argument("--preset", default=None, type=_preset_arg,
                   help=f"a packaged preset ({', '.join(preset_names())}) or a YAML file (default: srunit)")
    p.add_argument("--resume", type=path_arg, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR exactly where its latest checkpoint stopped "
                   "(only --train.* overrides and --data.num_workers are accepted, e.g. a larger --train.steps; "
                   "recorded in RUN_DIR/config.yaml and history.jsonl)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved config as YAML, then check it end to end without training or writing: "
                   "build the networks, scan the data folders, run one batch through every loss")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar: a plain log line every train.log_every steps (as without a terminal)")
    _PARSER[:] = [p]


_PARSER: list[argparse.ArgumentParser] = []  # the parser of `srunit train`, whose help `run` prints
_EPILOG_END = ("\n\nexample:\n  srunit train --preset srunit --data.root datasets/label2photo --train.name l2p "
               "--train.batch_size 4\n\nexit status: 0 done; 2 bad input, a non-finite loss (nothing after the "
               "last finite checkpoint is saved), or another process of a torchrun job lost; 128 + N when "
               "stopped by signal N after checkpointing the step "
               "(SIGTERM 143, SIGUSR1 138, SIGINT 130)")


def _print_help(args: argparse.Namespace, overrides: list[str]) -> None:
    """`srunit train [--preset P] [--section.key V ...] --help`: the options with the values P (and the overrides)
    give, and only the options of P's method."""
    if args.resume is not None:  # the values the resume trains with, refused where the resume refuses them
        config = resume_config(args.resume, overrides)[1]
        header = (f"config keys and the values of the run {args.resume} (on --resume, override only the train.* "
                  f"keys and data.num_workers, as --train.key VALUE):")
    else:
        preset = _preset(args, overrides)
        config = load_config(preset, overrides)
        check_options_take_effect(config, overrides, preset)  # listed as in force, though train refuses them
        label = f"--preset {preset}" if preset is not None else \
            f"--preset (none: the defaults of method {_named_method(overrides)})"
        header = f"config keys and the values of {label} (override any of them as --section.key VALUE):"
    parser = _PARSER[0]
    parser.epilog = config_help(config, header) + _EPILOG_END
    parser.print_help()


def _named_method(overrides: list[str]) -> str | None:
    method = [o.partition("=")[2] for o in overrides if o.partition("=")[0].strip() == "method.name"]
    return method[-1] if method else None


def _preset(args: argparse.Namespace, overrides: list[str]) -> str | None:
    """The preset a new run starts from: --preset; else, where `--method.name NAME` is given (as the listing of
    methods advises), None: the built-in defaults of that method, as its --help shows them; else srunit. srunit's
    preset under another method name trained CUT with SRUNIT's robustness term on as `cut`, and refused every other
    method for a key the user never gave ("unknown key method.flip_equivariance")."""
    if args.preset is not None:
        return str(args.preset)
    return None if _named_method(overrides) is not None else "srunit"


def run(args: argparse.Namespace, extra: list[str]) -> int:
    overrides = split_overrides(extra)
    if args.resume is not None and args.preset is not None:
        raise ConfigError(
            f"--preset cannot be combined with --resume: the run keeps the config it was started "
            f"with ({RunFolder(args.resume).config}); leave --preset out (--train.* overrides and --data.num_workers "
            f"are accepted)"
        )
    if args.show_help:
        _print_help(args, overrides)
        raise SystemExit(0)  # as argparse's own --help
    try:
        if args.resume is not None:
            # A dry run writes nothing: the lock is tested, not taken (its record names who last trained the run).
            trainer = Trainer.resume(args.resume, overrides, show_progress=not args.no_progress,
                                     _dry_run=args.dry_run)
            if args.dry_run:
                print(trainer.config.to_yaml(), end="")
                return 0
        else:
            preset = _preset(args, overrides)
            config = load_config(preset, overrides)
            check_options_take_effect(config, overrides, preset)
            if args.dry_run:
                print(config.to_yaml(), end="")
                print(dry_run(config).describe())
                return 0
            trainer = Trainer(config, show_progress=not args.no_progress, overrides=overrides)
        try:
            run_dir = trainer.fit(handle_signals=True)
        except TrainingStopped as stopped:
            # Each process says so now, then waits for the others: torchrun ends a job at its first process
            # that exits with a non-zero status, which would cut another's report (or rank 0's) short.
            print(stopped.report("train"), file=sys.stderr, flush=True)
            trainer.dist.barrier()
            return stopped.exit_code
        except KeyboardInterrupt:  # raised inside a step (a plugin's code), not Ctrl-C, which stops as above
            print(f"srunit train: interrupted; the last saved checkpoint is intact; continue with srunit train "
                  f"--resume {shell_word(trainer.run_dir)}", file=sys.stderr, flush=True)
            return 130
    finally:
        distributed.shutdown()
    if not trainer.dist.is_main:
        return 0
    folder = RunFolder(run_dir)
    print(f"run folder: {one_line(str(run_dir))}")
    print(f"  checkpoint: {one_line(str(folder.latest))}")
    print(f"  samples:    {one_line(str(folder.samples))}")
    # Only the trackers the run wrote: with train.loggers [] (or wandb alone) `tensorboard --logdir` found no logs.
    if "tensorboard" in trainer.config.train.loggers:
        print(f"  logs:       {_tensorboard()} --logdir {one_line(shell_word(folder.tracker('tensorboard')))}")
    print(f"  metrics:    {one_line(str(folder.metrics))}")
    return 0


def _tensorboard() -> str:
    """How this shell starts TensorBoard: `tensorboard` where it is on PATH, else the one beside this Python, as the
    docs' commands name it (`.venv/bin/tensorboard`): with the venv not activated, the advised `tensorboard` was not
    found."""
    beside = Path(sys.executable).with_name("tensorboard")
    if shutil.which("tensorboard") is not None or not beside.is_file():
        return "tensorboard"
    try:
        shown = beside.relative_to(Path.cwd())
    except (ValueError, OSError):  # beside lies elsewhere, or the working folder is gone
        shown = beside
    return one_line(shell_word(shown))
