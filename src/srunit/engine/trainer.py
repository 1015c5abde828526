"""The training loop: one run folder, its data, the step runner, logging, samples, checkpoints and resume.

Loss values stay on the device and are summed there; they are read (one host sync) only every
`train.log_every` steps. Started by torchrun, every process runs this same loop on its shard of
each global batch (see `srunit.engine.distributed`); only rank 0 writes the run folder.

What a run survives (docs/what-survives-what.md): a non-finite loss stops it before anything
non-finite is saved (`TrainingDiverged`); SIGTERM, SIGUSR1 and SIGINT checkpoint the step and stop
(`TrainingStopped`); one process at a time trains a run folder (`run_folder.RunLock`); every
resume is recorded in config.yaml and history.jsonl; what an interrupted save left is tidied.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from srunit._atomic import (
    READ_ONLY,
    FolderWriter,
    check_umask,
    open_append,
    why_unwritable,
    write_json_atomic,
    write_text_atomic,
)
from srunit._outputs import check_no_dangling_link, file_identity, nearest_existing, remove_leftovers, would_be_within
from srunit._progress import stderr_is_terminal
from srunit._reading import (
    MAX_CONFIG_BYTES,
    check_linked_files,
    json_lines,
    path_kind,
    read_json,
    read_text,
    same_folder,
)
from srunit._yaml import load_yaml
from srunit.checks import check_flag, check_folders_to_make, check_not_one, check_path, check_utf8_path, try_writing_in
from srunit.config import (
    Config,
    changed_keys,
    config_from_dict,
    dotted,
    keys_changed_by_files,
    parse_overrides,
)
from srunit.data import UnalignedDataset, epoch_loader, make_grid, save_png_atomic, tensor_to_pil, tensor_to_uint8
from srunit.data.files import nested_folders
from srunit.engine import distributed
from srunit.engine.checkpoint import load_training_state, remove_partial_checkpoints, save_checkpoint
from srunit.engine.loggers import ExperimentLogger, check_loggers, open_loggers
from srunit.engine.method_checks import plugin_failure
from srunit.engine.run_state import RunLock, append_history, check_logs, trim_metrics
from srunit.engine.runner import StepRunner
from srunit.engine.schedule import Schedule
from srunit.engine.signals import StopSignals, TrainingStopped, received_since, stop_requests
from srunit.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    JobLost,
    MethodError,
    SrunitError,
    TrainingDiverged,
    shell_word,
)
from srunit.methods import TranslationMethod
from srunit.options import TrainConfig
from srunit.registry import METHODS, PLUGINS_ENV, TERMS
from srunit.runtime.device import resolve_device
from srunit.runtime.network_files import load_network_weights
from srunit.runtime.provenance import software_versions
from srunit.runtime.run_folder import (
    LATEST,
    STATE_FILE,
    RunFolder,
    checkpoint_folders,
    checkpoint_name,
    checkpoint_step,
    network_file,
    run_around,
)

__all__ = ["Trainer", "train_to_end"]

log = logging.getLogger("srunit.train")

# The first step with a non-finite loss, while there is none.
_NEVER = 2**62

_F = TypeVar("_F", bound=Callable[..., Any])


def _with_autograd(fn: _F) -> _F:
    """Run ``fn`` with autograd on, whatever the caller's mode: under a caller's ``torch.no_grad()`` every phase's
    loss came back without grad (and was reported as the method's fault), under ``torch.inference_mode()`` the
    networks and optimizer state were built as inference tensors that training cannot update."""
    return torch.inference_mode(False)(torch.enable_grad()(fn))


class _RandomStateClaim:
    """The one thread of this process that builds, resumes or fits Trainers at a time. torch's random state (seeded
    as a Trainer is built, restored on resume, drawn from at every step) is one per process: two Trainers fitting at
    once in two threads each trained a run other than the one its seed names, without a word. A thread may nest
    (`Trainer.resume` builds its Trainer); the claim ends with the outermost call, however it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._what = ""
        self._depth = 0

    @contextmanager
    def held(self, doing: str, what: str) -> Iterator[None]:
        """Hold the claim for ``what`` (a description of the call, for another thread's refusal); ConfigError naming
        ``doing`` (the call refused) where another thread holds it."""
        me = threading.get_ident()
        with self._lock:
            if self._owner not in (None, me):
                raise ConfigError(
                    f"{doing}: another thread of this process is running {self._what}; torch's random state is one per "
                    f"process, so two runs trained at once would not follow their seeds (each would draw from the "
                    f"other's stream, and neither could be repeated). Train them one after the other, or each in "
                    f"its own process (srunit tune or srunit bench with --jobs N, or one srunit train each); "
                    f"nothing was trained")
            if self._owner is None:
                self._owner, self._what = me, what
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._owner, self._what = None, ""


_RANDOM_STATE = _RandomStateClaim()


def _one_thread_at_a_time(doing: str, call: str) -> Callable[[_F], _F]:
    """Run the Trainer method ``doing`` ("Trainer.fit"), called as ``call`` ("Trainer.fit()"), holding
    `_RANDOM_STATE` (refused while another thread holds it)."""
    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def held(*args: Any, **kwargs: Any) -> Any:
            run = getattr(args[0], "run_dir", None) if args else None  # a fitting Trainer's run, for the refusal
            with _RANDOM_STATE.held(doing, call if run is None else f"{call} of {run}"):
                return fn(*args, **kwargs)
        return held  # type: ignore[return-value]
    return wrap

# Options a resume cannot change, and why.
_FIXED_ON_RESUME = {
    "name": "the run is the folder given to --resume",
    "runs_dir": "the run is the folder given to --resume",
    "seed": "it drew the initial weights and orders the data of the whole run",
    "batch_size": "it sets the position in the data order and the steps of an epoch",
    "beta1": "Adam's betas are part of the saved optimizer state, which would override it",
    "beta2": "Adam's betas are part of the saved optimizer state, which would override it",
}


def _resume_changes(saved: TrainConfig, given: TrainConfig) -> dict[str, list[Any]]:
    """{'train.KEY': [recorded, given]} for every train option a resume changes; ConfigError for a
    change that cannot take effect."""
    changed = {f"train.{k}": [getattr(saved, k), getattr(given, k)] for k in TrainConfig.__dataclass_fields__
               if getattr(saved, k) != getattr(given, k)}
    for key, (old, new) in changed.items():
        name = key.split(".", 1)[1]
        if name in _FIXED_ON_RESUME:
            raise ConfigError(f"{key} cannot change on --resume ({_FIXED_ON_RESUME[name]}; recorded {old!r}, "
                              f"given {new!r}); leave it out, or start a new run under another train.name")
        if name in ("epochs", "epochs_decay") and given.steps > 0:
            raise ConfigError(f"{key} has no effect: train.steps {given.steps} sets the length of the run; "
                              "to extend it, give a larger train.steps")
        if name == "decay_fraction" and given.steps == 0:
            raise ConfigError(f"{key} has no effect: it shapes a train.steps budget, and this run's length is "
                              "train.epochs + train.epochs_decay")
    return changed


# run.json's record of the config srunit last wrote into config.yaml.
_CONFIG_RECORD = "config"

# What a run's config.yaml always holds: its sections, and the options that set the run's length.
_RUN_CONFIG_KEYS = ("method", "model", "data", "train")
_RUN_LENGTH_KEYS = ("steps", "epochs", "epochs_decay")


def check_no_void_options(config: Config, overrides: Sequence[str], preset: str | Path | None = None) -> None:
    """ConfigError for a method or data option given in ``overrides``, or changed by the user's own YAML file
    ``preset`` (`srunit.config.keys_changed_by_files`), that the other options of ``config`` leave without effect: a
    method's (`MethodOptions.void_options`), ``data.load_size`` where ``data.preprocess`` resizes nothing,
    ``data.crop_size`` where it is ``none``, or
    ``data.root`` where ``data.dir_a`` and ``data.dir_b`` name both folders. `srunit train`, `bench synthscapes` and
    `tune` check what their command line and preset file give."""
    given = _given_by_user(overrides, preset)
    void = {**{f"method.{k}": why for k, why in config.method.void_options().items()},
            **{f"model.{k}": why for k, why in config.method.void_model_options().items()}}
    for key, why in void.items():
        if key in given:
            raise ConfigError(f"{key} {given[key]} has no effect: {why}; or leave it out")
    mode = config.data.preprocess
    if "data.load_size" in given and mode in ("crop", "none"):
        what = "crops each image as stored" if mode == "crop" else "takes each image as stored"
        raise ConfigError(f"data.load_size {given['data.load_size']} has no effect: data.preprocess {mode} resizes "
                          f"nothing (it {what}); give data.preprocess resize_and_crop or scale_width too; or leave it "
                          f"out")
    if "data.crop_size" in given and mode == "none":  # scale_width keeps it as the least height: it acts there
        raise ConfigError(f"data.crop_size {given['data.crop_size']} has no effect: data.preprocess none crops and "
                          f"resizes nothing (it takes each image as stored); give data.preprocess crop, "
                          f"resize_and_crop or scale_width too; or leave it out")
    if "data.root" in given and config.data.dir_a and config.data.dir_b:  # each domain's folder is given
        raise ConfigError(f"data.root {given['data.root']} has no effect: data.dir_a {config.data.dir_a} and "
                          f"data.dir_b {config.data.dir_b} name both domains' folders; leave data.root out, or "
                          f"data.dir_a and data.dir_b to read ROOT/trainA and ROOT/trainB")


def resume_config(run_dir: Path, overrides: Sequence[str]) -> tuple[Config, Config, dict[str, list[Any]]]:
    """The config a resume of ``run_dir`` trains with: (the run's saved config, that config with the ``train.*``
    ``overrides``, {'train.KEY': [recorded, given]} for what they change). CheckpointError for a folder that is not
    a run or whose config.yaml was edited, ConfigError for an override a resume refuses. `Trainer.resume` and
    `srunit train --resume RUN --help` both read the run through it: the help showed values the resume refused
    and advised a preset file for a folder that is no run."""
    check_utf8_path(str(run_dir), "the run folder")  # its records and trackers name it as text, as a new run's
    folder = RunFolder(run_dir)
    config_file = folder.config
    if not config_file.is_file():
        check_linked_files(run_dir, [folder.CONFIG], "a run folder", error=CheckpointError)
        _refuse_a_path_inside_a_run(Path(run_dir))
        raise CheckpointError(f"{run_dir} is not a run folder (no {folder.CONFIG}); give runs/NAME of an earlier "
                              f"run")
    try:
        text = read_text(config_file, "the run's config", limit=MAX_CONFIG_BYTES, error=CheckpointError)
        data = load_yaml(text, str(config_file))
    except (CheckpointError, ConfigError) as err:
        raise CheckpointError(f"cannot read {config_file} ({err}); restore the {folder.CONFIG} `srunit train` "
                              f"wrote there") from None
    if not isinstance(data, dict) or not data:
        raise CheckpointError(f"{config_file} must hold the run's config (a mapping of sections), got "
                              f"{type(data).__name__ if data is not None else 'an empty file'}; restore the "
                              f"{folder.CONFIG} `srunit train` wrote there")
    train = data.get("train")
    lacks = [name for name in _RUN_CONFIG_KEYS if name not in data] + [
        f"train.{key}" for key in _RUN_LENGTH_KEYS if isinstance(train, dict) and key not in train]
    if lacks:  # the defaults would fill them in without a word: another length, seed, learning rate ...
        raise CheckpointError(f"{config_file} lacks {', '.join(lacks)}, which `srunit train` writes; it was "
                              f"changed since: undo the edit or restore the file (a backup, git), then resume")
    method = data.get("method")
    name = method.get("name") if isinstance(method, dict) else None
    if isinstance(name, str) and name and name not in METHODS:  # a plugin's method, its plugin not loaded here
        raise CheckpointError(
            f"{config_file} names method {name!r}, which no method or plugin registers here (known: "
            f"{', '.join(METHODS.names())}); a method of a plugin needs its module in ${PLUGINS_ENV} as when "
            f"the run was trained (export {PLUGINS_ENV}=MODULE, see docs/adding-a-method.md); if "
            f"{RunFolder.CONFIG} was edited, undo the edit; then resume")
    try:
        saved = config_from_dict(data)
    except ConfigError as err:
        terms = _unregistered_terms(method)
        if terms:  # a loss term of a plugin, its plugin not loaded here: nothing was edited
            raise CheckpointError(
                f"{config_file} holds the loss term section(s) {', '.join(f'method.{t}' for t in terms)}, which no "
                f"term or plugin registers here (known: {', '.join(TERMS.names()) or 'none'}); a term of a plugin "
                f"needs its module in ${PLUGINS_ENV} as when the run was trained (export {PLUGINS_ENV}=MODULE, see "
                f"docs/adding-a-method.md); if {RunFolder.CONFIG} was edited, undo the edit; then resume") from None
        # the file was edited by hand since `srunit train` wrote it
        raise CheckpointError(f"{config_file} is not a valid run config ({err}); it was changed since `srunit "
                              f"train` wrote it: undo the edit or restore the file (a backup, git), then "
                              f"resume") from None
    recorded = _recorded_config(folder)
    if recorded is not None:
        _check_not_edited(config_file, saved, recorded, data)
        saved_train = data["train"]
        data = recorded.to_dict()  # the file's train.* edits are changes a resume records, as its overrides are
        data["train"] = saved_train
    else:
        recorded = saved  # a run of an older srunit: run.json holds no config to compare the file with
    extra = parse_overrides(list(overrides))
    loading = {k: v for k, v in extra.get("data", {}).items() if k in _LOADING_ONLY}
    fixed = sorted(key for key in dotted(extra) if key.split(".", 1)[0] != "train"
                   and key.removeprefix("data.") not in loading)
    if fixed:
        also = ", ".join(f"data.{k}" for k in _LOADING_ONLY)
        raise ConfigError(f"--resume accepts only train.* overrides and {also} (got {', '.join(fixed)}); the model, "
                          f"method and data of a run are fixed")
    data.setdefault("train", {}).update(extra.get("train", {}))
    data.setdefault("data", {}).update(loading)
    config = config_from_dict(data)
    changed = _resume_changes(recorded.train, config.train)
    changed.update({f"data.{k}": [getattr(recorded.data, k), getattr(config.data, k)] for k in _LOADING_ONLY
                    if getattr(recorded.data, k) != getattr(config.data, k)})
    return recorded, config, changed


# Data options that change how the images are loaded, not which or how they are augmented (a pure function of (seed,
# epoch, index)): a resume may change them.
_LOADING_ONLY = ("num_workers",)


def _refuse_a_path_inside_a_run(path: Path) -> None:
    """CheckpointError naming the run folder that ``path``, given to resume as a run, lies in: a step folder (a
    resume goes on from the run's latest checkpoint, so the way to an earlier one is the latest link), the run's
    config.yaml, or any other of its files. It was "not a run folder (no config.yaml)", of its own config.yaml too."""
    run = run_around(path)
    if run is None:
        return
    again = f"`srunit train --resume {shell_word(run.path)}`"
    if path.parent == run.checkpoints and path.name != LATEST and checkpoint_step(path.name) is not None:
        raise CheckpointError(
            f"{path} is a checkpoint of the run folder {run.path}, which --resume takes: a resume goes on from the "
            f"run's latest checkpoint; to go on from {path.name} instead, point latest at it (ln -sfn {path.name} "
            f"{shell_word(run.latest)}), then {again}")
    what = ("is the latest checkpoint of" if path.parent == run.checkpoints and path.name == LATEST else
            "is the config file of" if path.name == RunFolder.CONFIG and path.parent == run.path else
            "lies inside")
    raise CheckpointError(f"{path} {what} the run folder {run.path}, not a run folder itself: give the run folder, "
                          f"{again}")


def _unregistered_terms(method: Any) -> list[str]:
    """The sections of a run config's ``method`` mapping that look like loss terms (mappings) and that no term
    registers here: a plugin's, its plugin not loaded."""
    if not isinstance(method, dict):
        return []
    return [key for key, value in method.items() if isinstance(value, dict) and key not in TERMS.names()]


def _recorded_config(folder: RunFolder) -> Config | None:
    """The config srunit last wrote into the run's config.yaml, as run.json records it beside; None for a run of an
    older srunit (no record of it) or a record that cannot be read (`Trainer._check_same_data` warns of it)."""
    try:
        record = read_json(folder.record, "the run record") if folder.record.is_file() else None
        return config_from_dict(record[_CONFIG_RECORD]) if isinstance(record, dict) and \
            isinstance(record.get(_CONFIG_RECORD), dict) else None
    except (DataError, ConfigError):
        return None


def _check_not_edited(config_file: Path, saved: Config, recorded: Config, written: Mapping[str, Any]) -> None:
    """CheckpointError where the run's config.yaml sets a method, model or data option, or a train option a resume
    cannot change (`_FIXED_ON_RESUME`), to another value than srunit wrote there (run.json records what it wrote):
    the edit trained the rest of the run with it, without a word, while the same change on the command line is
    refused; an edited train.seed was answered "leave it out", which put the default in its place, refused again."""
    now, then = (dotted({k: v for k, v in c.to_dict().items() if k != "train"})
                 | {f"train.{k}": getattr(c.train, k) for k in _FIXED_ON_RESUME} for c in (saved, recorded))
    edited = [key for key in sorted(changed_keys(then, now)) if key.removeprefix("data.") not in _LOADING_ONLY]
    # `robust: null` where srunit wrote robust's section: one edit of method.robust, not one per key below it; and
    # `model: null` (the file's own word: ``written``), whose defaults were named key by key as if the file held them
    nulls = [key for key, value in dotted(written).items()
             if value is None and any(k.startswith(f"{key}.") for k in then)]
    edited = list(dict.fromkeys(next((n for n in nulls if key.startswith(f"{n}.")), None)
                                or _edited_section(key, now, then) for key in edited))
    if not edited:
        return

    def shown(where_now: str, where_then: str) -> str:
        return "; ".join(f"{key} {'null' if key in nulls else _shown(now, key)}{where_now} {_shown(then, key)}"
                         f"{where_then}" for key in edited[:4]) + (f"; and {len(edited) - 4} more" if len(edited) > 4
                                                                   else "")

    record = config_file.parent / RunFolder.RECORD
    # run.json names another run than the folder it lies in (and config.yaml): copied in from that run, as likely as
    # an edit of config.yaml (whose train.name edited alone leaves run.json naming the folder)
    if "train.name" in edited and recorded.train.name != Path(os.path.abspath(config_file.parent)).name:
        raise CheckpointError(
            f"{config_file} and {record} disagree ({shown(' in config.yaml,', ' in run.json')}): run.json records the "
            f"config srunit wrote into config.yaml, and it names another run, so it may come from that run (copied "
            f"in with its files). If it does, put back this run's own run.json (a backup, or the run this folder was "
            f"copied from), or move it aside (mv {shell_word(record)} {shell_word(f'{record}.other')}), and the run "
            f"resumes without that record; if config.yaml was edited instead, undo the edit (put back the values "
            f"run.json records)")
    fixed = ", ".join(f"train.{k}" for k in _FIXED_ON_RESUME)
    raise CheckpointError(
        f"{config_file} was edited since `srunit train` wrote it ({shown(' where srunit wrote', '')}; "
        f"{RunFolder.RECORD} beside it records what was written): the model, method and data of a run are fixed, and "
        f"so are its {fixed}, so resuming would train the rest of it otherwise than its start; undo the edit (put "
        f"back the values srunit wrote), or start a new run from it (srunit train --preset {shell_word(config_file)} "
        "--train.name NEW); a resume changes the other train.* options (and data.num_workers) on the command line or "
        "in the file, and history.jsonl records them")


def _edited_section(key: str, now: Mapping[str, Any], then: Mapping[str, Any]) -> str:
    """``key``, or the first section above it that only one of the two dotted configs has (`robust: null` written
    over a section: the edit is of ``method.robust``, not of each key below it)."""
    parts = key.split(".")
    for end in range(1, len(parts)):
        section = ".".join(parts[:end])
        if len({any(k.startswith(f"{section}.") for k in d) for d in (now, then)}) == 2:  # a section in one only
            return section
    return key


def _shown(dotted_config: Mapping[str, Any], key: str) -> str:
    """The value of ``key`` in ``dotted_config`` for a message: "a section of N keys", its repr, or "'(none)'"."""
    below = sum(k.startswith(f"{key}.") for k in dotted_config)
    if below:
        return f"a section of {below} keys"
    return repr(dotted_config[key]) if key in dotted_config else "'(none)'"


def check_options_take_effect(config: Config, overrides: Sequence[str], preset: str | Path | None = None) -> None:
    """ConfigError for an option given on the command line of a new run that the other options make void: a length
    option (``train.epochs``/``train.epochs_decay`` with a ``train.steps`` budget, ``train.decay_fraction`` without
    one, as `_resume_changes` refuses them on a resume), or a method or data option the others leave without effect
    (`check_no_void_options`, which reads the user's own YAML file ``preset`` too). The length options of a file are
    not: a run's config.yaml, which serves as a preset, names all of them, at its packaged preset's values."""
    check_no_void_options(config, overrides, preset)
    given = _given(overrides)
    train = config.train
    for key in ("train.epochs", "train.epochs_decay"):
        if key in given and train.steps > 0:
            raise ConfigError(f"{key} {given[key]} has no effect: train.steps {train.steps} sets the length of the "
                              f"run; leave {key} out, or give train.steps 0 to train by epochs")
    if "train.decay_fraction" in given and train.steps == 0:
        raise ConfigError(f"train.decay_fraction {given['train.decay_fraction']} has no effect: it shapes a "
                          f"train.steps budget, and this run's length is train.epochs + train.epochs_decay; give "
                          f"train.steps too, or train.epochs_decay for the decay")


def _given_by_user(overrides: Sequence[str], preset: str | Path | None) -> dict[str, str]:
    """{"section.key": the value as the user gave it} for the command line's ``overrides`` and the keys the user's
    own YAML file ``preset`` sets ("0.5 (set in FILE)"); an override wins over the file, as in the config."""
    given = _given(overrides)
    for key, (value, origin) in keys_changed_by_files(preset).items():
        given.setdefault(key, f"{value} (set in {origin})")
    return given


def check_new_run_folder(config: Config, run_dir: Path, option: str | None = None) -> None:
    """ConfigError, before anything is loaded or written, where a new run of ``config`` may not take the folder
    ``run_dir``: it already holds a run, lies inside another run's folder (its checkpoints, samples, eval record) or
    inside a folder of training images (its sample grids would be read as data), or train.runs_dir cannot be made.
    What `Trainer` checks of a new run and `srunit train --dry-run` checks alike. A run folder without a checkpoint
    is taken only where it never had one (`_check_no_checkpoint_was_deleted`): a new start replaces its logs.
    ``option``: the argument that named ``run_dir`` (`Trainer`'s ``run_dir``), which the advice then names; None
    where train.runs_dir and train.name make it (a new train.name did not move a run whose run_dir was given)."""
    # First: every check below follows the path's links (a loop of them was a RuntimeError traceback from resolve)
    check_no_dangling_link(run_dir, option or "the run folder (train.runs_dir/train.name)")
    folder = RunFolder(run_dir)
    where = f"{option} {run_dir}" if option else f"the run folder {run_dir} (train.runs_dir/train.name)"
    rename = f"another {option}" if option else "a new train.name"
    place = (f"{option} {run_dir} lies" if option else
             f"train.runs_dir {config.train.runs_dir} puts the new run {run_dir}")
    elsewhere = f"a {option} outside it" if option else "train.runs_dir outside it"
    if folder.has_checkpoint():
        raise _holds_a_run(run_dir, rename)
    if folder.is_run():
        _check_no_checkpoint_was_deleted(folder, _saved_train(folder),
                                         "Trainer(config, run_dir=NEW_FOLDER)" if option else None)
    elif run_dir.is_dir() and (foreign := folder.foreign_entries()):
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ConfigError(f"{where} exists and holds files no run writes ({shown}); a new run would write its "
                          f"checkpoints and logs among them: pick {rename}, or move them away (nothing was written)")
    d = config.data
    for data_option, images in (("data.root", d.root), ("data.dir_a", d.dir_a), ("data.dir_b", d.dir_b)):
        if images is not None and would_be_within(run_dir, Path(images)):
            raise ConfigError(
                f"{place} inside {data_option} {images}, the training images, where its sample grids would be read "
                f"as images; choose {elsewhere} (nothing was written)"
            )
    made = (run_dir.parent, option) if option else (config.train.run_dir.parent, "train.runs_dir")
    for path, name in (made, (run_dir, option or "the run folder")):
        if path.exists() and not path.is_dir():  # `train` failed at its mkdir, advising permissions and free space
            fix = (f"another {option}" if option else
                   "another train.runs_dir" if path != run_dir else "another train.name")
            raise ConfigError(f"{name} {path} is {path_kind(path)}, not a folder; move it away or choose {fix} "
                              f"(nothing was written)")
    check_folders_to_make(*made)
    for parent in run_dir.resolve().parents:
        if parent.is_dir() and RunFolder(parent).is_run():
            raise ConfigError(
                f"{place} inside the run folder {parent}, whose files only its own training, eval --run and report "
                f"write; choose {elsewhere} (nothing was written)"
            )


def run_folder_error(err: OSError, config: Config, run_dir: Path, option: str | None = None) -> ConfigError:
    """What `train` and `train --dry-run` alike say where making the new run folder ``run_dir``, or its first file,
    failed with ``err``: a read-only file system as every other writer names it (`srunit._atomic.why_unwritable`),
    anything else with the system's reason. ``option``: the argument that named ``run_dir`` (`Trainer`'s
    ``run_dir``); None where train.runs_dir and train.name make it."""
    name = option or "train.runs_dir"
    given = run_dir if option else config.train.runs_dir
    blocked = nearest_existing(run_dir)
    if err.errno == errno.EROFS or (blocked.is_dir() and why_unwritable(blocked) == READ_ONLY):
        return ConfigError(f"{name} {given}: the folder {blocked} {READ_ONLY}; choose another {name} (nothing was "
                           f"written)")
    return ConfigError(f"{name} {given}: the run folder {run_dir} cannot be made or written ({err.strerror or err}); "
                       f"point {name} at a folder you can write (nothing was written)")


def make_run_folder(config: Config, run_dir: Path, option: str | None = None) -> None:
    """Make the new run folder ``run_dir`` (and the folders above it), or raise `run_folder_error`'s ConfigError:
    it was `romnt/x: Read-only file system; check the path, its permissions and the free space`."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise run_folder_error(err, config, run_dir, option) from None


def warn_if_one_folder(dir_a: str | os.PathLike[str], dir_b: str | os.PathLike[str]) -> None:
    """Warn where the two domains' folders are one: what `train` and `train --dry-run` say of it alike (a dry run
    that scanned the folders said nothing of it)."""
    if same_folder(dir_a, dir_b):
        log.warning("domain A and domain B are one folder (%s): the run learns to translate these images into "
                    "themselves; give each domain its own folder (data.dir_a, data.dir_b)", dir_a)
    elif (nested := nested_folders(dir_a, "data.dir_a", dir_b, "data.dir_b")) is not None:
        # A domain's folder inside the other's: the outer domain's images held all of the inner one's, unsaid.
        log.warning("%s, so the images of the inner one are in both domains; give each domain its own folder, neither "
                    "inside the other", nested)


def _holds_a_run(run_dir: Path, rename: str = "a new train.name") -> ConfigError:
    return ConfigError(f"run folder {run_dir} already holds a run; continue it with `srunit train --resume "
                       f"{shell_word(run_dir)}` "
                       f"(with a larger --train.steps N to extend a run that has ended), or pick {rename} "
                       f"(nothing was changed)")


class Trainer:
    """Owns one run folder. `Trainer(config).fit()` trains; `Trainer.resume(run_dir).fit()` continues."""

    @_with_autograd
    @_one_thread_at_a_time("Trainer", "Trainer(config)")
    def __init__(self, config: Config, *, run_dir: Path | None = None, _resuming: bool = False,
                 show_progress: bool = True, overrides: Sequence[str] | None = (), _dry_run: bool = False) -> None:
        """Prepare a new run of ``config``: its data, networks, optimizers and run folder (locked), no training yet.

        Args:
            config: what to train (`srunit.config.load_config`). ``config.train.runs_dir / config.train.name`` is
                the run folder; one that already holds a checkpoint is refused (continue it with `resume`).
            run_dir: another run folder than that (the config's name and runs_dir are then only recorded).
            show_progress: a progress bar while training (rank 0 of a torchrun job only).
            overrides: the ``"section.key=value"`` overrides the config was built with, recorded in the run's
                history.jsonl so the run says how it was made.

        Raises:
            TypeError: ``config`` is not a `Config` (a path: use `resume`), ``overrides`` is a single string,
                ``run_dir`` is not a path or ``show_progress`` not True or False.
            ConfigError: the run folder holds another run's checkpoints, or lies inside another run folder; an
                override in ``overrides`` has no effect with the other options (DRIT's ``model.n_blocks``).
            DataError: the data folders are missing, empty or unreadable.
        """
        if not isinstance(config, Config):
            hint = "; build one with srunit.config.load_config(preset, overrides)" if not isinstance(config, Path) \
                else "; to continue a run folder use Trainer.resume(run_dir)"
            raise TypeError(f"Trainer: config must be a srunit Config, got {type(config).__name__}{hint}")
        check_not_one(overrides, "Trainer: overrides", "'section.key=value' strings")
        overrides = () if overrides is None else overrides  # as Trainer.resume takes None: none given
        _check_overrides_describe(config, overrides)
        if not _resuming:  # an override the user names is refused as train refuses it: the run trained without it
            check_options_take_effect(config, overrides)
        show_progress = check_flag(show_progress, "Trainer: show_progress")  # "no" showed the bar
        check_umask("Trainer")  # before the run folder is made: one it could not write in was left behind
        self.config = config
        t = config.train
        self.run_dir = check_path(run_dir, "Trainer: run_dir") if run_dir is not None else t.run_dir
        self._run_dir_given = run_dir is not None
        self.folder = RunFolder(self.run_dir)  # every path of the run
        # The run folder's nearest folder that exists now (a benchmark's, or the run's own on a resume): moved away
        # and replaced by a link while the data and networks are loaded, the run was made in the folder linked.
        home = nearest_existing(self.run_dir)
        self._home = FolderWriter(home) if home.is_dir() else None  # opened until the run folder is locked
        if not _resuming:  # early, before loading anything
            check_new_run_folder(config, self.run_dir, None if run_dir is None else "run_dir")
        check_loggers(t.loggers)  # a tracker that cannot start fails here, before the run folder is made
        self.dist, self.device = distributed.setup(resolve_device(t.device))
        self.show_progress = show_progress and self.dist.is_main
        # images kept at their own size, each checked against the discriminator as a crop is with the config
        self.dataset = UnalignedDataset.for_training(config)
        self.schedule = Schedule.from_config(t, len(self.dataset), self.dist.world_size)
        self.runner = StepRunner(config, self.device, self.schedule, self.dist)
        self._loggers: list[ExperimentLogger] | None = None  # train.loggers, opened on the first log (rank 0)
        self._session_start = 0  # the step this session's training started from
        self._left_as_it_was = False  # a resume of a run that had ended: nothing trained, nothing written
        self._lock: RunLock | None = None
        self._claimed = False
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the run folder claimed
        self._cwd: str | None = None  # the working folder then
        self._own: dict[str, tuple[int, int] | None] = {}  # ... and of its checkpoints/ and samples/ (`_check_own`)
        self._holds_checkpoint = False  # the run folder held a checkpoint when claimed, or this Trainer saved one
        self._stop_vote = distributed.StopVote(self.dist)
        self._record: tuple[str, dict[str, str], dict[str, list[Any]]] | None = ("start", _given(overrides), {})
        self._claim(resuming=_resuming, dry_run=_dry_run)
        # torch's random state as this run left it, restored as each fit starts: a second Trainer built (or fitted)
        # before this one's fit reseeded the process's state, and this run then drew another run's numbers, unsaid.
        self._rng = self.runner.rng_state()

    def _claim(self, *, resuming: bool, again: bool = False, doing: str = "fit", dry_run: bool = False) -> None:
        """Rank 0 locks the run folder, checks that a new run does not replace one, and tidies what
        an interrupted checkpoint write left; every process learns the outcome (a collective).

        ``again``: this Trainer held the run before and released it; the run must still be where it left it, and
        its path must still name the folder it opened (the lock would make a new one there). ``doing``: what takes
        the run again ("fit", "save"), for that message. ``dry_run`` (a resume's `--dry-run`): the same checks,
        writing nothing: the lock is only tested (`RunLock.check_free`) and nothing is tidied."""
        failure: Exception | None = None
        if self.dist.is_main:
            try:
                if again and (moved := self._moved_since_opened(doing)) is not None:
                    raise ConfigError(moved)
                if self._home is not None:
                    self._home.check_in_place(f"the run {self.run_dir}")
                    self._home.close()
                    self._home = None
                if not resuming:  # the lock would make it, and name a read-only file system generically
                    make_run_folder(self.config, self.run_dir, "run_dir" if self._run_dir_given else None)
                if dry_run:
                    RunLock.check_free(self.run_dir)
                else:
                    self._lock = RunLock(self.run_dir, resuming=resuming)
                self._identity = file_identity(self.run_dir)
                self._cwd = _working_folder()  # what a relative run_dir is read from
                self._own = {p.name: file_identity(p) for p in (self.folder.checkpoints, self.folder.samples)}
                self._holds_checkpoint = self.folder.has_checkpoint()  # for `_check_not_moved`'s advice
                _check_own_folders(self.folder, self.config.train.loggers, resuming=resuming)
                checkpoints = self.folder.checkpoints
                if not resuming and self.folder.has_checkpoint():
                    raise _holds_a_run(self.run_dir, "another run_dir" if self._run_dir_given else "a new train.name")
                if again:
                    self._check_run_is_where_it_was_left()
                if not dry_run:
                    tidied = remove_partial_checkpoints(checkpoints)
                    if tidied:
                        log.warning("removed what an interrupted checkpoint write left in %s: %s", checkpoints,
                                    ", ".join(tidied))
                    # ... and the half-written temporary of a run file a killed start or resume was rewriting
                    # (trim_metrics rewrites a log of any size).
                    f = self.folder
                    remove_leftovers([f.config, f.record, f.history, f.metrics])
            except Exception as err:  # noqa: BLE001 - every process must hear of it, or the others wait forever
                self.release()
                failure = err
        error = self.dist.broadcast_object(None if failure is None else str(failure))
        if failure is not None:
            raise failure
        if error is not None:
            raise ConfigError(f"rank 0 could not take the run folder: {error}")
        self._claimed = not dry_run  # a dry run's Trainer holds nothing (it is never fitted)

    def _check_run_is_where_it_was_left(self) -> None:
        """A Trainer that released its run keeps its networks at its step; another Trainer or process may have
        trained the run on since (or rolled it back). Its save rewrote its own old step and pointed `latest` back at
        it, and its fit trained on from there: refused, naming both steps."""
        now = self.folder.latest_step()
        if (now or 0) != self.step:
            there = "holds no checkpoint" if now is None else f"is at step {now} (its latest checkpoint)"
            raise ConfigError(
                f"run folder {self.run_dir} {there}, but this Trainer, which released it, is at step {self.step}: "
                f"another Trainer or process changed the run since; continue the run with "
                f"Trainer.resume({str(self.run_dir)!r})")

    def _moved_since_opened(self, doing: str) -> str | None:
        """Rank 0, before ``doing`` ("fit", "save") writes anything: why the run folder's path no longer names the
        folder this Trainer opened (moved, deleted or replaced since `resume` or the constructor), or None. A fit
        went on and made a new folder at the old path (config.yaml, a history line "resume", an empty
        metrics.jsonl), trained every step, then stopped at its first write saying it wrote nothing there; that
        folder refused the advice to extend the run (its history speaks of checkpoints it lacks) and took the name
        of a new run."""
        if self._identity is None or file_identity(self.run_dir) == self._identity:
            return None
        cwd = _working_folder()
        if (not self.run_dir.is_absolute() and self._cwd is not None and cwd != self._cwd
                and file_identity(Path(self._cwd) / self.run_dir) == self._identity):
            # os.chdir since: the run is where it was, its relative path now names another place
            return (f"the working folder changed from {self._cwd} to {cwd} since this Trainer opened its run folder "
                    f"{self.run_dir} (a relative path, read from {self._cwd}, where the run still is): "
                    f"Trainer.{doing} trained nothing and wrote nothing; change back to {self._cwd} "
                    f"(os.chdir) before Trainer.{doing}, or give train.runs_dir as an absolute path")
        now = self._lock.folder_now() if self._lock is not None else None
        here = ("the folder there now is not the one it opened" if os.path.lexists(self.run_dir)
                else "there is no folder there now")
        if now is not None:
            there = f"it is now at {now}"
        elif self._claimed:
            there = ("the folder it opened was deleted, or moved to another file system (a copy, then a delete), or "
                     "this system cannot tell where it is")
        else:
            there = "where it is now cannot be told (this Trainer had released it)"
        if self._record is not None and self._record[0] == "start":  # a new run: its folder held nothing yet
            fix = "start the run again with a new Trainer(config) (or the same srunit train command)"
        elif now is not None:
            fix = (f"continue the run with Trainer.resume({str(now)!r}) (`srunit train --resume {shell_word(now)}`) "
                   f"or move it back to {self.run_dir}")
        else:
            fix = ("if it was moved, continue the run with Trainer.resume and its new path (`srunit train --resume "
                   "NEW_PATH`); a deleted run cannot be continued")
            if os.path.lexists(self.run_dir):  # its own copy put back (cp -r, rm -r, cp back) was called deleted
                fix = (f"if the folder there now is this run put back (a copy), continue it with "
                       f"Trainer.resume({str(self.run_dir)!r}); {fix}")
        return (f"the run folder {self.run_dir} was moved, deleted or replaced since this Trainer opened it ({here}; "
                f"{there}): Trainer.{doing} trained nothing and wrote nothing at {self.run_dir}; {fix}")

    def _check_opened_folder_in_place(self) -> None:
        """`_moved_since_opened` for `fit` of a Trainer that holds its run, on every process (a collective)."""
        moved = self._moved_since_opened("fit") if self.dist.is_main else None
        moved = self.dist.broadcast_object(moved)
        if moved is not None:
            raise ConfigError(moved)

    def _check_not_moved(self) -> None:
        """Refuse to write on where the run folder was moved or replaced while training: a checkpoint, sample grid
        or tracker opened now went into a new folder at the old path (beside the user's files), while config.yaml,
        the lock and metrics.jsonl stayed in the moved one. One stat of the folder, no host-device sync."""
        if file_identity(self.run_dir) == self._identity:
            return
        now = self._lock.folder_now() if self._lock is not None else None
        if now is not None:
            there, resume = f"; it is now at {now}", f"`srunit train --resume {shell_word(now)}`"
            saved = RunFolder(now).latest_step()
        else:  # a move to another file system copies the folder and deletes the one opened: no new place to find
            there = ("; where it is now cannot be told: the folder this run opened was deleted, as a move to another "
                     "file system does, or this system cannot tell")
            # whether it holds a checkpoint is known from this run's own start and saves (31A left it at "latest")
            resume, saved = "`srunit train --resume` and the folder's new path", -1 if self._holds_checkpoint else None
        start = "from step 0 (it holds no checkpoint yet)" if saved is None else "from its latest checkpoint"
        raise ConfigError(
            f"the run folder {self.run_dir} was moved or replaced while training (the folder there now is not the "
            f"one this run opened{there}): training stopped after step {self.step} without writing into "
            f"{self.run_dir}; continue the run {start} with {resume}")

    def release(self) -> None:
        """Unlock the run folder (`fit` does this when it returns; a later `fit` locks it again)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self._claimed = False

    @property
    def global_batch_size(self) -> int:
        """Images per domain in one step, over all processes."""
        return self.config.train.batch_size * self.dist.world_size

    @property
    def method(self) -> TranslationMethod:
        return self.runner.method

    @property
    def step(self) -> int:
        return self.runner.step

    # ------------------------------------------------------------------ resume
    @classmethod
    @_with_autograd
    @_one_thread_at_a_time("Trainer.resume", "Trainer.resume()")
    def resume(cls, run_dir: Path, overrides: list[str] | None = None, show_progress: bool = True, *,
               data_root: str | None = None, _dry_run: bool = False) -> Trainer:
        """Reload a run folder (config, weights, optimizers, RNG, step) to continue it exactly.

        ``data_root`` is for studies, whose folder holds both the data a run trains on and the run: where that
        folder was moved or renamed, or is named from another working folder, the run's ``data.root`` no longer
        finds the same images, and ``data_root`` says where they are now (recorded, made absolute, in the run's
        config.yaml and in its history as a change of ``data.root``). The user's own runs have no such key: a run's
        data are fixed."""
        check_not_one(overrides, "Trainer.resume: overrides", "'section.key=value' strings")
        for i, item in enumerate(overrides or ()):  # [1] was an AttributeError ('int' object has no attribute ...)
            if not isinstance(item, str):
                raise TypeError(f"Trainer.resume: overrides must hold 'section.key=value' strings, got "
                                f"{type(item).__name__} {item!r:.80} at position {i}")
        run_dir = check_path(run_dir, "Trainer.resume: run_dir")
        show_progress = check_flag(show_progress, "Trainer.resume: show_progress")
        folder = RunFolder(run_dir)
        if data_root is not None:  # '' was refused as `data.root: invalid value ''`, a key the caller never gave
            data_root = os.fspath(check_path(data_root, "Trainer.resume: data_root"))
        saved, config, changed = resume_config(run_dir, overrides or [])
        if data_root is not None and (config.data.root is None or config.data.dir_a or config.data.dir_b):
            _refuse_data_root_without_effect(data_root, config)
        elif data_root is not None and config.data.root is not None:
            _check_data_root_holds_the_data(data_root, config.data.root)
            # Recorded absolute: a relative data_root is read from the caller's folder, which the run's later
            # resumes (and config.yaml's readers) do not share.
            moved_to = os.path.abspath(os.path.expanduser(data_root))
            if os.path.abspath(os.path.expanduser(config.data.root)) != moved_to:
                changed["data.root"] = [config.data.root, moved_to]
                config = config.with_overrides({"data.root": moved_to})
        _check_the_data_is_where_the_run_says(run_dir, config)
        if not folder.has_checkpoint():
            _check_no_checkpoint_was_deleted(folder, saved.train)
        trainer = cls(config, run_dir=run_dir, _resuming=True, show_progress=show_progress, _dry_run=_dry_run)
        try:
            if folder.has_checkpoint():
                ckpt = _own_checkpoint(folder, folder.latest_checkpoint())
                for name, net in trainer.method.networks().items():
                    load_network_weights(net, network_file(ckpt, name))
                state = load_training_state(ckpt, ("step", "optimizers"))  # what the runner restores
                try:
                    trainer.runner.load_state_dict({**state, "rng": trainer._saved_rng(state),
                                                    "method": trainer._saved_method_state(state)})
                except MethodError as err:  # the plugin's load_extra_state: the checkpoint is as it was
                    raise MethodError(f"{err}. {ckpt / STATE_FILE} was not changed: fix the plugin and resume again "
                                      f"with `srunit train --resume {shell_word(run_dir)}` (`srunit --verbose "
                                      f"train` shows the traceback)") from err.__cause__
                except SrunitError:
                    raise
                except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as err:
                    raise CheckpointError(f"{ckpt / STATE_FILE} does not fit this run ({type(err).__name__}: "
                                          f"{str(err)[:300]}); the file is damaged: use an earlier step_N "
                                          f"checkpoint") from None
                _check_latest_is_a_link(folder, trainer.step)
                if trainer.dist.is_main:
                    log.info("resumed %s at step %d from %s", run_dir, trainer.step, ckpt.name)
            elif trainer.dist.is_main:
                log.warning("%s has no checkpoint (it was stopped before its first one was complete): training it "
                            "from step 0 with its saved config", run_dir)
            trainer._check_resumed_length(saved.train)
            trainer._check_same_data()
        except BaseException:
            trainer.release()
            raise
        trainer._rng = trainer.runner.rng_state()  # as the checkpoint left it
        trainer._record = ("resume", _given(overrides or []), changed)
        return trainer

    def _domain_sizes(self) -> dict[str, int]:
        return {"A": len(self.dataset.files_a), "B": len(self.dataset.files_b)}

    def _check_same_data(self) -> None:
        """Warn (rank 0) when the image folders no longer hold the images counted when the run started: the
        run continues on the new data, but its epochs and data order are not those it started with."""
        try:
            record = read_json(self.folder.record, "the run record") if self.folder.record.exists() else None
        except DataError as err:  # a damaged record: nothing to compare with
            log.warning("%s; the training data are not compared with the run's start", err)
            return
        if not isinstance(record, dict) or not self.dist.is_main:
            return
        now = self._domain_sizes()
        then = record.get("domain_sizes")
        if isinstance(then, dict):
            changed = {d: (then.get(d), n) for d, n in now.items() if then.get(d) != n}
        elif record.get("dataset_size") not in (None, len(self.dataset)):
            changed = {"A or B (the larger)": (record.get("dataset_size"), len(self.dataset))}
        else:
            changed = {}
        if changed:
            folders = dict(zip(("A", "B"), (self.dataset.dir_a, self.dataset.dir_b)))
            which = "; ".join(f"domain {d} ({folders.get(d, 'data')}): {old} images when the run started, {new} now"
                              for d, (old, new) in changed.items())
            log.warning("the training data changed since %s started: %s. Training continues on the images there "
                        "now, so its epochs and data order differ from the original run's; restore the folders "
                        "to continue it exactly", self.run_dir, which)

    def _check_resumed_length(self, saved: TrainConfig) -> None:
        """A resume may extend a run, not cut it below its step; say when the learning rate jumps."""
        t, step, total = self.config.train, self.step, self.schedule.total_steps
        if total < step:
            length = f"train.steps {t.steps}" if t.steps > 0 else \
                f"train.epochs + train.epochs_decay = {t.epochs + t.epochs_decay} epochs"
            raise ConfigError(f"{length} ends the run at step {total}, before its current step {step}; a run "
                              f"cannot be shortened: give train.steps {step} or more, or leave it out")
        old = Schedule.from_config(saved, len(self.dataset), self.dist.world_size)
        before = saved.lr * old.lr_factor(step)
        after = self.runner.learning_rate(step)
        if step < total and abs(after - before) > 1e-6 * max(before, after) and self.dist.is_main:
            log.warning("the learning rate of step %d goes from %.3g (old schedule) to %.3g (new schedule): the "
                        "schedule is recomputed for the new length (docs/what-survives-what.md, \"Learning rate "
                        "on resume\")", step + 1, before, after)

    def _saved_rng(self, state: dict[str, Any]) -> dict[str, Any] | None:
        """This process's random state in a checkpoint, or None when the checkpoint was written by a
        job of another size (each process then draws from a fresh seed of (seed, rank, step))."""
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.dist.world_size:
            if self.dist.is_main:
                log.warning("the checkpoint was written by %d process(es), this job has %d: weights, optimizer "
                            "states and the step continue, the data order and noise follow the new job size",
                            saved_world, self.dist.world_size)
            return None
        return state["rng_per_rank"][self.dist.rank] if self.dist.enabled else state["rng"]

    def _saved_method_state(self, state: dict[str, Any]) -> dict[str, Any] | None:
        """This process's method state (its image pools) in a checkpoint; rank 0's when the checkpoint
        was written by a job of another size."""
        per_rank = state.get("method_per_rank")
        if per_rank is not None and int(state.get("world_size", 1)) == self.dist.world_size:
            return per_rank[self.dist.rank]
        return state.get("method")

    # ------------------------------------------------------------------ run folder
    def _prepare_run_dir(self) -> None:
        self.folder.samples.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.folder.config, self.config.to_yaml())
        write_json_atomic(self.folder.record, {
            **software_versions(), _CONFIG_RECORD: self.config.to_dict(), "device": str(self.device),
            "seed": self.config.train.seed,
            "dataset_size": len(self.dataset), "domain_sizes": self._domain_sizes(),
            "total_steps": self.schedule.total_steps,
            "skipped_images": self.dataset.num_skipped, "world_size": self.dist.world_size,
            "batch_size_per_process": self.config.train.batch_size, "global_batch_size": self.global_batch_size,
        })

    def _update_record(self) -> None:
        """A resume may change the schedule (--train.steps): run.json's total_steps follows, so the report can
        tell a run that stopped early from one that finished; and its record of the config written to config.yaml
        (see `_check_not_edited`)."""
        try:
            record = read_json(self.folder.record, "the run record")
        except DataError:
            return  # no record (a run of another version), or a damaged one _check_same_data warned of
        update = {"total_steps": self.schedule.total_steps, _CONFIG_RECORD: self.config.to_dict()}
        if isinstance(record, dict) and any(record.get(k) != v for k, v in update.items()):
            write_json_atomic(self.folder.record, {**record, **update})

    def _had_ended(self) -> bool:
        """The run has ended, and had ended by run.json's record before this start (False where it cannot be read)."""
        if self.step < self.schedule.total_steps:
            return False
        try:
            record = read_json(self.folder.record, "the run record")
        except DataError:
            return False
        recorded = record.get("total_steps") if isinstance(record, dict) else None
        return isinstance(recorded, int) and 0 < recorded <= self.step

    def _record_run(self) -> None:
        """Rank 0, as training starts: the config in force, the history line of this start or
        resume, and the metrics of steps a killed attempt logged after the checkpoint. A resume of a run that had
        ended, and still has, trains nothing and records nothing (config.yaml said `precision: bf16` of a run
        trained in fp32); one that ends the run where it is (`--train.steps` its step) is recorded."""
        self._left_as_it_was = self.step > 0 and self._had_ended()
        if self._left_as_it_was:
            self._record = None
            self._session_start = self.step
            return
        if self.step == 0:
            self._prepare_run_dir()
        else:
            write_text_atomic(self.folder.config, self.config.to_yaml())
            self._update_record()
        trim_metrics(self.run_dir, self.step)
        self._session_start = self.step
        if self._record is not None:
            event, overrides, changed = self._record
            append_history(self.run_dir, event, self.step, overrides=overrides, changed=changed,
                           world_size=self.dist.world_size)
            self._record = None

    def _log_summary(self, stop: int, how: str) -> None:
        d, t, s = self.dataset, self.config.train, self.schedule
        log.info("run folder %s (%s)", self.run_dir, how)
        n_skipped = d.num_skipped
        skipped = f"; skipped as unreadable: A {n_skipped['A']}, B {n_skipped['B']}" if any(n_skipped.values()) else ""
        hidden = getattr(d, "hidden", {})
        if any(hidden.values()):
            first = next(p for paths in hidden.values() for p in paths)
            skipped += (f"; skipped as hidden (name starting with '.'): A {len(hidden['A'])}, B {len(hidden['B'])} "
                        f"(e.g. {first})")
        log.info("data: A %d images, B %d images (%s, %s)%s", len(d.files_a), len(d.files_b), d.dir_a, d.dir_b,
                 skipped)
        warn_if_one_folder(d.dir_a, d.dir_b)
        log.info("steps %d -> %d of %d (%d per epoch; the learning rate decays over the last %d)", self.step, stop,
                 s.total_steps, s.steps_per_epoch, s.decay_steps)
        if self.step >= s.total_steps and self.dist.is_main:
            left = ", and its files are left as they were" if self._left_as_it_was else ""
            log.warning("the run has ended (step %d of %d): nothing to train%s; extend it with srunit train --resume "
                        "%s --train.steps N (N > %d)", self.step, s.total_steps, left, self.run_dir, self.step)
        n = self.dist.world_size
        log.info("global batch %d (%d process%s x batch %d)", self.global_batch_size, n, "es" if n > 1 else "",
                 t.batch_size)
        log.info("device %s, precision %s%s", self.device, t.precision, ", compiled" if t.compile else "")

    @property
    def loggers(self) -> list[ExperimentLogger]:
        """The experiment trackers of ``train.loggers`` (TensorBoard by default), opened on first use."""
        if self._loggers is None:
            self._loggers = open_loggers(self.config.train.loggers, self.run_dir, self.run_dir.name,
                                         self.config.to_dict(), self._session_start)
        return self._loggers

    def save(self, *, keep: bool) -> Path | None:
        """Write a checkpoint of the current step (rank 0; the other processes hand it their random
        states). Returns its folder on rank 0, None on the others.

        A Trainer whose `fit` has ended takes the run again for the save, refused (ConfigError) where another
        Trainer holds it or has changed it since. TypeError for a ``keep`` that is not True or False."""
        keep = check_flag(keep, "Trainer.save: keep")  # "no" kept the checkpoint for good
        if not self._claimed:
            self._claim(resuming=True, again=True, doing="save")
            try:
                return self.save(keep=keep)
            finally:
                self.release()
        state = self.runner.state_dict()
        rngs = self.dist.gather_object(state["rng"])
        # Each process keeps its own image pools: rank 0 stores them all, as it does the random states.
        extras = self.dist.gather_object(state.get("method")) if "method" in state else None
        if not self.dist.is_main:
            return None
        state.update(world_size=self.dist.world_size, rng_per_rank=rngs if self.dist.enabled else None)
        if extras is not None and self.dist.enabled:
            state["method_per_rank"] = extras
        self._check_own(self.folder.checkpoints, "a checkpoint")
        saved = save_checkpoint(self.folder.checkpoints, self.step, self.method.networks(), state, keep=keep)
        self._own[self.folder.checkpoints.name] = file_identity(self.folder.checkpoints)  # made by the first save
        self._holds_checkpoint = True
        return saved

    def _check_own(self, path: Path, what: str) -> None:
        """Rank 0, before ``what`` is written into ``path`` (RUN/checkpoints or RUN/samples): ConfigError where the
        folder was swapped for a symbolic link, or for another folder, since this Trainer took the run (or last wrote
        there). Opened by path at every write, a link put there made the run write, and rotate away, another run's
        checkpoints (`_check_own_folders` refuses such a link when a run is taken). A folder deleted is made again,
        as before. One stat, no host-device sync."""
        if path.is_symlink():
            now = f"a symbolic link (to {os.readlink(path)})"
            fix = f"rm {shell_word(path)} (which removes the link alone: what it points to stays as it is)"
        else:
            seen, identity = self._own.get(path.name), file_identity(path)
            if seen is None or identity is None or identity == seen:
                return
            now = "another folder"
            fix = f"mv {shell_word(path)} {shell_word(f'{path}.other')}"
        raise ConfigError(
            f"{path} was replaced by {now} while the run trained: training stopped after step {self.step} without "
            f"writing {what} there, where it would have written (and rotated) files of another folder. Put the run's "
            f"own {path.name} folder back at {path} ({fix} first), and continue with `srunit train --resume "
            f"{shell_word(self.run_dir)}`")

    # ------------------------------------------------------------------ loop
    def _loader(self, epoch: int, start: int) -> DataLoader[Any]:
        t = self.config.train
        return epoch_loader(self.dataset, self.config.data, epoch=epoch, start=start, batch_size=t.batch_size,
                            seed=t.seed, rank=self.dist.rank, world_size=self.dist.world_size,
                            pin_memory=self.device.type == "cuda")

    @_with_autograd
    @_one_thread_at_a_time("Trainer.fit", "Trainer.fit()")
    def fit(self, stop_at: int | None = None, *, handle_signals: bool = False) -> Path:
        """Train to the end of the schedule, or only up to step ``stop_at`` (logged and checkpointed
        there like an interrupted run that `resume` continues); returns the run folder.

        With ``handle_signals`` (what `srunit train` asks for), SIGTERM, SIGUSR1 and SIGINT stop the
        run at the next step boundary: the step is checkpointed, then `TrainingStopped` is raised.
        Without it the process's own handlers stay in place (a library caller, a test runner).
        Raises `TrainingDiverged` (saving nothing more) when a loss is inf or nan; TypeError or ConfigError for a
        ``stop_at`` that is not an integer above the current step (it trained nothing, without a word); ConfigError
        for a later ``fit`` after another Trainer or process changed the run (continue it with `resume`), and
        before anything is trained or written where the run folder was moved, deleted or replaced since this
        Trainer opened it (naming where it is now, where that can be told).
        """
        handle_signals = check_flag(handle_signals, "Trainer.fit: handle_signals")  # "no" installed the handlers
        if isinstance(stop_at, np.integer):  # numpy's integers, as every other integer argument takes them
            stop_at = int(stop_at)
        if stop_at is not None:
            if isinstance(stop_at, bool) or not isinstance(stop_at, int):
                raise TypeError(f"Trainer.fit: stop_at must be an integer step or None (train to the end), got "
                                f"{type(stop_at).__name__} {stop_at!r:.80}")
            if stop_at <= self.step:
                raise ConfigError(f"Trainer.fit: stop_at {stop_at} is not after the run's step {self.step}, so nothing "
                                  f"would be trained; give a later step, or None to train to the end")
        if not self._claimed:
            self._claim(resuming=True, again=True)
        try:
            self._check_opened_folder_in_place()  # before anything is trained or written at the path
            self.runner.set_rng_state(self._rng)  # this run's own stream, whatever ran in this process since
            try:
                return self._fit(stop_at, handle_signals)
            finally:
                self._rng = self.runner.rng_state()  # where a later fit of this Trainer goes on
        except JobLost as lost:  # a peer was killed or crashed: this process ends too, with the way back
            raise JobLost(f"{lost}; this process stops too. {self.run_dir} keeps its last complete checkpoint: "
                          f"continue with the same torchrun command and `-m srunit train --resume "
                          f"{shell_word(self.run_dir)}`"
                          ) from None
        finally:
            self.release()

    def _fit(self, stop_at: int | None, handle_signals: bool) -> Path:
        t = self.config.train
        main = self.dist.is_main
        if self.step == 0:
            # Epoch 0 unsharded: every process derives the same values. The loader has its own
            # generator, so this leaves the random state of training untouched.
            self.runner.prepare(epoch_loader(self.dataset, self.config.data, epoch=0, start=0,
                                             batch_size=t.batch_size, seed=t.seed))
        total = self.schedule.total_steps
        stop = total if stop_at is None else min(stop_at, total)
        if main:
            event = self._record[0] if self._record is not None else ""
            how = {"start": "new run", "resume": f"resumed at step {self.step}"}.get(event,
                                                                                   f"continued at step {self.step}")
            self._record_run()
            self._log_summary(stop, how)
        self.method.train()
        # Without a terminal (a log file, a scheduler), a bar is a stream of carriage returns: plain
        # lines every log_every steps instead, also with --no-progress.
        bar_on = self.show_progress and stderr_is_terminal()
        lines_on = main and not bar_on
        bar = tqdm(total=total, initial=self.step, disable=not bar_on, unit="step", dynamic_ncols=True)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        first_bad: torch.Tensor | None = None  # on the device: the first step of this log window with a non-finite loss
        tick, images = time.perf_counter(), 0
        metrics_file = open_append(self.folder.metrics) if main else None
        signals = StopSignals().install() if handle_signals else StopSignals()  # not installed: never requested
        try:
            while self.step < stop:
                epoch, offset = divmod(self.step, self.schedule.steps_per_epoch)
                for batch in self._loader(epoch, offset * self.global_batch_size):
                    logs = self.runner.train_step(batch)
                    first_bad = self._watch_finite(logs, first_bad)
                    for k, v in logs.items():
                        sums[k] = sums[k] + v.float() if k in sums else v.float().clone()
                        counts[k] = counts.get(k, 0) + 1
                    images += self.global_batch_size
                    bar.update(1)
                    last = self.step == stop
                    stop_signal = 0 if last else self._stop_vote(signals.requested)
                    log_now = self.step % t.log_every == 0 or last or stop_signal
                    keep = self.step % t.keep_every == 0 or self.step == total
                    save_now = self.step % t.checkpoint_every == 0 or keep or last or stop_signal
                    sample_now = (self.step % t.sample_every == 0 or last or stop_signal) and main
                    if main and (log_now or save_now or sample_now):
                        self._check_not_moved()  # before anything is written at the run folder's path
                    if log_now or save_now:
                        self._check_finite(sums, first_bad)  # a host sync, where the trainer syncs anyway
                    if log_now:
                        self.dist.all_reduce_mean_(list(sums.values()))  # the mean over all processes
                        values = {k: float(v) / counts[k] for k, v in sums.items()}  # the host sync
                        now = time.perf_counter()
                        values["images_per_s"] = images / max(now - tick, 1e-9)
                        values["lr"] = self.runner.learning_rate(self.step - 1)  # the rate this step trained at
                        if metrics_file is not None:
                            self._log_scalars(values, metrics_file)
                        if lines_on:
                            log.info("step %d/%d  %s", self.step, total,
                                     "  ".join(f"{k} {v:.4g}" for k, v in values.items()))
                        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items() if k != "lr"}, refresh=False)
                        sums, counts, first_bad, tick, images = {}, {}, None, now, 0
                    if sample_now:  # a stop: its sample too
                        self._write_samples()
                    if save_now:
                        self.save(keep=keep)
                    if stop_signal:
                        ckpt = self.folder.checkpoint(self.step)
                        self.dist.barrier()  # rank 0's checkpoint is complete before any process says so
                        raise TrainingStopped(stop_signal, self.step, ckpt, self.run_dir)
                    if last:
                        break
        except BaseException as err:
            if not isinstance(err, KeyboardInterrupt):  # Ctrl-C keeps its own handling, from srunit's or any code
                # A method's broken contract or a plugin's exception (a GeneratorExit, a BaseException of its own
                # too): one line, not a traceback
                self._method_failed(err)
            raise
        finally:
            signals.restore()
            self._stop_vote.close()
            bar.close()
            if metrics_file is not None:
                metrics_file.close()
            for logger in self._loggers or []:
                logger.close()
            self._loggers = None
        self.dist.barrier()  # rank 0's last checkpoint is complete when any process returns
        return self.run_dir

    def _method_failed(self, err: BaseException) -> None:
        """Raise a one-line MethodError, with the run's last checkpoint and the way back, where ``err`` is a method
        breaking its contract (`srunit.engine.method_checks`) or was raised in a plugin's code; return otherwise
        (srunit's own errors keep their messages, its own defects their tracebacks)."""
        if isinstance(err, MethodError):
            what = str(err)
        else:
            failure = None if isinstance(err, TrainingStopped) else plugin_failure(err, self.method)
            if failure is None:
                return
            log.debug("the plugin's traceback", exc_info=err)
            what = str(failure)
        latest = self.folder.latest
        kept = (f"the latest checkpoint, {os.readlink(latest)}, is intact" if latest.is_symlink()
                else "no checkpoint had been written")
        raise MethodError(f"{what}. Training stopped after step {self.step}, and {kept}: fix the plugin and continue "
                          f"with `srunit train --resume {shell_word(self.run_dir)}` (`srunit --verbose train` shows "
                          "the traceback)"
                          ) from err

    def _watch_finite(self, logs: dict[str, torch.Tensor], first_bad: torch.Tensor | None) -> torch.Tensor | None:
        """Fold this step into the first step with a non-finite loss, on the device (no host sync)."""
        if not logs:
            return first_bad
        finite = torch.isfinite(torch.cat([v.detach().float().reshape(-1) for v in logs.values()])).all()
        bad_at = torch.where(finite, _NEVER, self.step)
        return bad_at if first_bad is None else torch.minimum(first_bad, bad_at)

    def _check_finite(self, sums: dict[str, torch.Tensor], first_bad: torch.Tensor | None) -> None:
        """TrainingDiverged if any process saw a non-finite loss since the last log (one host sync)."""
        if first_bad is None:
            return
        kinds = [torch.where(v.isnan(), 2, torch.where(v.isinf(), 1, 0)) for v in sums.values()]
        found = torch.stack([-first_bad, *kinds])
        self.dist.all_reduce_max_(found)  # the earliest bad step, and the worst kind per loss, of all processes
        head, *worst = found.tolist()
        if -head >= _NEVER:
            return
        which = ", ".join(f"{k} {('', 'inf', 'nan')[w]}" for k, w in zip(sums, worst) if w) or "a loss"
        latest = self.folder.latest
        kept = (f"the latest checkpoint, {os.readlink(latest)}, is from before it" if latest.is_symlink()
                else "no checkpoint had been written")
        raise TrainingDiverged(
            f"non-finite loss at step {-head} ({which}); training stopped at step {self.step} without saving "
            f"anything after it, and {kept}. Lower train.lr (or a loss weight) and continue from there with "
            f"`srunit train --resume {shell_word(self.run_dir)} --train.lr LR`"
        )

    def _log_scalars(self, values: dict[str, float], metrics_file: Any) -> None:
        for logger in self.loggers:
            logger.log_scalars(self.step, values)
        metrics_file.write(json.dumps({"step": self.step, **values}) + "\n")
        metrics_file.flush()

    def _write_samples(self) -> None:
        visuals = self.runner.last_visuals
        n = min(4, next(iter(visuals.values())).shape[0])
        # One row per image: real_A | fake_B | real_B (| idt_B); the same grid goes to PNG and the trackers.
        cells = torch.stack([img[i].float().cpu() for i in range(n) for img in visuals.values()])
        # A step between the loss checks may have diverged: its sample shows nan as black, and the run stops at the
        # next log or checkpoint boundary (`_check_finite`).
        cells = torch.nan_to_num(cells, nan=-1.0)
        grid = make_grid(cells, ncol=len(visuals))
        self._check_own(self.folder.samples, "a sample grid")
        save_png_atomic(tensor_to_pil(grid), self.folder.sample(self.step))
        self._own[self.folder.samples.name] = file_identity(self.folder.samples)  # made as a new run starts
        image = tensor_to_uint8(grid)
        for logger in self.loggers:
            logger.log_image(self.step, "samples/" + "|".join(visuals), image)


def _refuse_data_root_without_effect(data_root: str, config: Config) -> None:
    """ConfigError where `Trainer.resume`'s ``data_root`` would not be read: the run names a domain's folder itself
    (data.dir_a, data.dir_b), or has no data.root. It was ignored without a word, and the run trained on the folders
    its config.yaml names. The run's own data.root given again changes nothing and passes."""
    d = config.data
    if d.root and os.path.abspath(d.root) == os.path.abspath(os.path.expanduser(data_root)):
        return
    named = ", ".join(f"data.{key} {value}" for key, value in (("dir_a", d.dir_a), ("dir_b", d.dir_b)) if value)
    raise ConfigError(f"Trainer.resume: data_root {data_root} would have no effect: the run reads "
                      f"{'the domain folder(s) ' + named if named else 'no data.root'} (its {RunFolder.CONFIG}), and "
                      f"data_root only moves the data.root of a run that reads ROOT/trainA and ROOT/trainB; leave "
                      f"data_root out (a run's data are fixed)")


def _working_folder() -> str | None:
    """The process's working folder; None where it was deleted."""
    try:
        return os.getcwd()
    except FileNotFoundError:
        return None


def _check_data_root_holds_the_data(data_root: str, saved_root: str) -> None:
    """DataError naming `Trainer.resume`'s ``data_root`` where it lacks a domain's training folder: the run's
    config.yaml was blamed for the caller's argument, with advice to put the images at the folder mistyped."""
    for domain in ("A", "B"):
        folder = Path(data_root).expanduser() / f"train{domain}"
        if not folder.is_dir():
            raise DataError(f"Trainer.resume: data_root {data_root} has no train{domain}/ ({folder} does not exist); "
                            f"give the folder that holds the run's data now (the run's {RunFolder.CONFIG} names "
                            f"{saved_root})")


def _check_the_data_is_where_the_run_says(run_dir: Path, config: Config) -> None:
    """DataError naming the run's data option when its folder is gone. The dataset's own error advised passing
    --data.root or --data.dir_a/--data.dir_b, which --resume refuses (a run's data are fixed)."""
    data = config.data
    for domain in ("a", "b"):
        named = getattr(data, f"dir_{domain}")
        key, value = (f"data.dir_{domain}", named) if named else ("data.root", data.root)
        if not value:
            continue  # no data given at all: the dataset says so
        folder = Path(value).expanduser() if named else Path(value).expanduser() / f"train{domain.upper()}"
        if folder.is_dir():
            continue
        where = f" from this folder ({Path.cwd()})" if not folder.is_absolute() else ""
        start = "; or resume from the folder the run was started in" if not folder.is_absolute() else ""
        # The link as a shell takes it: its folder made first (a whole benchmark folder moved takes the link's parent
        # with it), and an absolute target (a relative one is read from the link's folder, not from here).
        # A config's `~/data` is read below $HOME, which a quoted `'~/data'` is not: the link's path expanded too.
        place = Path(value).expanduser()
        mkdir = "" if place.parent.is_dir() else f"mkdir -p {shell_word(place.parent)} && "
        link = f'{mkdir}ln -s "$(realpath NEW_PLACE)" {shell_word(place)}'
        raise DataError(f"{run_dir} trains on {key} {value} (its {RunFolder.CONFIG}), and the folder {folder} does not "
                        f"exist{where}; --resume takes train.* overrides only (a run's data are fixed): put the "
                        f"images back at {value}, or a link to where they are now ({link}){start}")


def train_to_end(config: Config, *, show_progress: bool = True, handle_signals: bool = True) -> Path:
    """Train the run ``config`` names to its last step and return its folder: resumed from its checkpoint where it
    has one (a finished run returns at once), started afresh where it has none (a folder an earlier start left
    without any checkpoint holds nothing worth keeping and is replaced). What studies call for each of their runs.

    A stop signal that came while the run took its last step (which finishes the run rather than stopping it) raises
    `TrainingStopped` all the same: a study stops there instead of training its next run. It was dropped with the
    training's handler, and a tuning worker that got Ctrl-C then went on through every trial of the study."""
    show_progress = check_flag(show_progress, "train_to_end: show_progress")
    handle_signals = check_flag(handle_signals, "train_to_end: handle_signals")
    before = stop_requests()
    run_dir = _train_to_end(config, show_progress, handle_signals)
    late = received_since(before)
    if late:
        folder = RunFolder(run_dir)
        raise TrainingStopped(late, folder.latest_step() or 0, folder.latest_checkpoint(), run_dir)
    return run_dir


def _train_to_end(config: Config, show_progress: bool, handle_signals: bool) -> Path:
    import shutil

    folder = RunFolder(config.train.run_dir)
    run_dir = folder.path
    if folder.has_checkpoint():  # the study's data where they are now: its folder may have moved since (with them)
        trainer = Trainer.resume(run_dir, show_progress=show_progress, data_root=config.data.root or None)
        if trainer.step >= trainer.schedule.total_steps:
            trainer.release()
            return run_dir
        return trainer.fit(handle_signals=handle_signals)
    if run_dir.exists() and folder.is_run():
        shutil.rmtree(run_dir)
    return Trainer(config, show_progress=show_progress).fit(handle_signals=handle_signals)


def _check_own_folders(folder: RunFolder, loggers: Sequence[str], *, resuming: bool) -> None:
    """The folders training writes into (checkpoints, samples, the trackers') must be the run's own: a fork that
    links another run's checkpoints/ (`ln -s ../run/checkpoints`) moved that run's `latest` to its own steps, and
    its rotation would delete that run's checkpoints. And they must be folders, if they exist. A resume goes on from
    what a link points to, so the advice copies it; a new run's link is only removed: copying a new run's linked
    samples/ brought the pictures it pointed to in among the run's own grids. And the logs it appends to must be
    readable as it reads them (`check_logs`)."""
    for path in (folder.checkpoints, folder.samples, *(folder.tracker(name) for name in loggers)):
        if path.is_symlink():
            link = shell_word(path)
            fix = (f"rm {link} && cp -r {shell_word(path.resolve())} {link}" if resuming else
                   f"rm {link} (which removes the link alone: {path.resolve()} stays as it is)")
            raise ConfigError(f"{path} is a symbolic link (to {os.readlink(path)}); training writes and rotates files "
                              f"there, so through a link it would change what the link points to (another run's "
                              f"checkpoints or samples). Give the run a folder of its own: {fix} (nothing was "
                              f"changed)")
        if path.exists() and not path.is_dir():  # found at the first checkpoint or sample grid, after training to it
            raise ConfigError(f"{path} is a file, not a folder; training writes its {path.name} there. Move it away "
                              f"(mv {shell_word(path)} {shell_word(f'{path}.bak')}) and start again (nothing was "
                              "changed)")
    for name in loggers:
        _check_tracker_folder(folder.tracker(name), name)
    check_logs(folder.path)  # the logs it appends to, read before config.yaml and run.json are rewritten


def _check_tracker_folder(path: Path, name: str) -> None:
    """ConfigError where the tracker ``name`` cannot write its folder ``path`` (made and removed again where it is
    missing): TensorBoard's writer thread failed there without a word, and the run trained, status 0, with no event
    written (RUN/tensorboard of mode 000)."""
    try:
        try_writing_in(path)
    except OSError as err:
        blocked = next(p for p in (path, *path.parents) if os.path.lexists(p))  # what the fix is about
        fix = (f"give yourself read, write and search permission (chmod u+rwx {shell_word(blocked)})"
               if err.errno == errno.EACCES else
               "free space" if err.errno in (errno.ENOSPC, errno.EDQUOT) else
               f"make {blocked} writable")
        raise ConfigError(f"train.loggers {name}: the folder {path} cannot be read and written "
                          f"({err.strerror or err}), and the tracker writes its logs there; {fix} and run the command "
                          f"again (nothing was changed)") from None


def _saved_train(folder: RunFolder) -> TrainConfig | None:
    """The train section of the run's config.yaml; None where it cannot be read as one."""
    try:
        data = load_yaml(read_text(folder.config, "the run's config", limit=MAX_CONFIG_BYTES), str(folder.config))
        return config_from_dict(data).train if isinstance(data, dict) else None
    except SrunitError:
        return None


def _check_no_checkpoint_was_deleted(folder: RunFolder, train: TrainConfig | None, new_run: str | None = None
                                     ) -> None:
    """A run without a checkpoint is trained from step 0, on --resume or by a new start of its name, which is right
    where it was stopped before its first one. But where its history says it was resumed at a later step, or its
    metrics log a step past the first one it saves at (``train``: the run's config before this start; saving is
    synchronous, so a later step was trained only after that save returned), it had checkpoints, which were deleted:
    training from 0 would drop every logged step from metrics.jsonl and replace its sample grids, without a word.
    ``new_run``: how to start a new run instead (default: `srunit train` under a new train.name)."""
    evidence = None
    if folder.history.is_file() and not folder.history.is_symlink():
        steps = _logged_steps(folder.history, "the run's history")
        if steps and max(steps) > 0:
            evidence = f"{folder.history} says the run was resumed at step {max(steps)}"
    first_save = min(train.checkpoint_every, train.keep_every) if train is not None else None
    if first_save is not None and evidence is None and folder.metrics.is_file() and not folder.metrics.is_symlink():
        steps = _logged_steps(folder.metrics, "the run's metrics log")
        if steps and max(steps) > first_save:
            evidence = (f"{folder.metrics} logs step {max(steps)}, past step {first_save}, where the run saved its "
                        f"first checkpoint")
    if evidence is None:
        return
    raise CheckpointError(f"{folder.checkpoints} holds no checkpoint, but {evidence}: its checkpoints were deleted, "
                          f"and training it from step 0 would replace its metrics and samples. Restore "
                          f"{folder.checkpoints} from a copy, or start a new run "
                          f"({new_run or 'srunit train ... --train.name NEW_NAME'}); nothing was changed")


def _logged_steps(path: Path, what: str) -> list[int]:
    """The integer "step" of each line of the JSON-lines file ``path`` (lines cut short or without one are skipped)."""
    return [value["step"] for _, value in json_lines(path, what)
            if isinstance(value, dict) and isinstance(value.get("step"), int) and not isinstance(value["step"], bool)]


def _own_checkpoint(folder: RunFolder, ckpt: Path) -> Path:
    """The run's own checkpoint folder of ``ckpt`` (its ``latest``, resolved). A `latest` or a step_N that leads into
    another run's checkpoints was resumed from without a word: the run went on from the other run's weights as its
    own. A fork made with `cp -as`, whose `latest` links to the original's, holds the same step_N itself: that one
    is read. CheckpointError where the run has no such folder of its own."""
    own_folder = Path(os.path.realpath(folder.checkpoints))
    if ckpt.parent == own_folder:
        return ckpt
    own = folder.checkpoints / ckpt.name
    if own.is_dir() and not own.is_symlink() and (own / STATE_FILE).is_file():
        return own.resolve()
    steps = [p.name for p in checkpoint_folders(folder.checkpoints) if not p.is_symlink()]
    copy = (f"copy that checkpoint in (cp -r {shell_word(ckpt)} {shell_word(folder.checkpoints)}/, then ln -sfn "
            f"{ckpt.name} {shell_word(folder.latest)}) to continue it here")
    fix = (f"Make it the link srunit writes to this run's newest checkpoint (ln -sfn {steps[-1]} "
           f"{shell_word(folder.latest)}), or {copy}" if steps else f"This run has no checkpoint of its own: {copy}")
    raise CheckpointError(f"{folder.latest} leads to {ckpt}, a checkpoint outside this run's {folder.checkpoints}: "
                          f"resuming would continue another run's weights as this run's. {fix}; nothing was changed")


def _check_latest_is_a_link(folder: RunFolder, step: int) -> None:
    """RUN/checkpoints/latest must be the link srunit writes: a copy that followed links (``scp -r``, ``cp -rL``, a
    zip) made it a folder, which the next checkpoint cannot replace by a link (it failed after training a step,
    with advice about permissions and free space)."""
    latest = folder.latest
    if latest.is_symlink() or not latest.is_dir():
        return
    name = checkpoint_name(step)
    link = shell_word(latest)
    fix = (f"rm -r {link} && ln -s {name} {link}" if (folder.checkpoints / name).is_dir()
           else f"mv {link} {shell_word(folder.checkpoints / name)} && ln -s {name} {link}")
    raise CheckpointError(f"{latest} is a folder, not the link to the newest step_N that srunit writes (a copy "
                          f"that followed links: scp -r, cp -rL, rsync -L, a zip); the next checkpoint could not "
                          f"replace it. Make it a link again: {fix}")


def _check_overrides_describe(config: Config, overrides: Sequence[str]) -> None:
    """``overrides`` only record how ``config`` was built (history.jsonl): ones the config does not hold were written
    there as the run's own (`train.steps=99` recorded, 1 step trained) and took no effect, without a word."""
    if not overrides:
        return
    rebuilt = config.with_overrides(list(overrides))
    if rebuilt == config:
        return
    now, then = dotted(config.to_dict()), dotted(rebuilt.to_dict())
    differ = [f"{key} {now.get(key)!r} (the overrides say {then.get(key)!r})"
              for key in sorted(changed_keys(then, now))]
    raise ConfigError(f"Trainer: overrides are recorded as the way config was built, not applied, and config does not "
                      f"hold them: {', '.join(differ[:4])}; build the config with load_config(preset, overrides) and "
                      f"pass the same list, or leave overrides out")


def _given(overrides: Sequence[str]) -> dict[str, str]:
    """["train.steps=10", ...] -> {"train.steps": "10", ...}, as the command line gave them (history.jsonl)."""
    given = dict(item.partition("=")[::2] for item in overrides)
    return {k.strip(): v for k, v in given.items()}
