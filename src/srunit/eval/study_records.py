"""Small records of finished runs, kept in a folder of the repository, so a study moves between machines.

A study (a benchmark of many seeds, a tuning study of many trials) runs for hours and is interrupted. Its run
folders are large and stay on the machine; what a later session or another machine needs is which runs are
done and what they scored. ``srunit bench synthscapes --records DIR`` and ``srunit tune --records DIR`` write
one JSON file per finished run into DIR (commit DIR), and skip a run whose record exists and was made with the
same settings (its ``settings_hash``), so the same command on another machine continues the study. A record
holds:

    format             RECORD_FORMAT
    key                the run's place in its study: "unmatched/srunit-seed100", "trial-<hash>"
    settings           everything that defines the run: its training config (paths, folder names and the
                       device left out), the data and the evaluation it was scored on
    settings_hash      sha256 (hex, first 16) of the canonical JSON of ``settings``
    seed               the training seed
    scores             ``flat_scores`` of its evaluation (fractions; dist in 0-255 units)
    evaluation         the evaluation record without its image folders (per-class IoU, flips, confusion matrix)
    commit, srunit_version, machine, train_minutes, finished    where and when it was made

The code commit is recorded, not hashed: a refactor that leaves training unchanged keeps a study's records
valid (``benchmarks/preset_hashes.py`` is the check for that).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from srunit._atomic import write_json_atomic
from srunit._outputs import Inputs, guard_output
from srunit._reading import read_json
from srunit._version import __version__
from srunit.checks import try_writing_in
from srunit.config import changed_keys
from srunit.errors import ConfigError, DataError, shell_word
from srunit.eval.records import MAX_EVAL_RECORD_BYTES, flat_scores

__all__ = ["RECORD_FORMAT", "check_records_folder", "settings_hash", "record_path", "read_record", "write_record",
           "matching_record", "canonical_run_settings", "changed_keys"]

RECORD_FORMAT = "srunit-study-record/1"
# A record embeds a run's evaluation record (a confusion matrix of up to MAX_CLASSES classes included): a few kB on
# SynthScapes, and never more than an evaluation record can be, plus room for the settings.
MAX_RECORD_BYTES = MAX_EVAL_RECORD_BYTES + 16 * 2**20

# Config keys that place a run (where its files go, which device trains it) without changing what it learns.
_PLACEMENT = {"data": ("root", "dir_a", "dir_b", "num_workers"), "train": ("runs_dir", "name", "device", "loggers")}


def canonical_run_settings(config: dict[str, Any], **context: Any) -> dict[str, Any]:
    """A training config (``Config.to_dict()``) without the keys that only place the run, with ``context`` (data
    and evaluation settings) beside it: two runs with equal canonical settings learn and are scored alike."""
    config = json.loads(json.dumps(config))  # a deep copy, with tuples as lists
    for section, keys in _PLACEMENT.items():
        for key in keys:
            (config.get(section) or {}).pop(key, None)
    return {"config": config, **context}


def settings_hash(settings: dict[str, Any]) -> str:
    """sha256 (first 16 hex digits) of ``settings`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_records_folder(folder: str | Path | None, inputs: Inputs | None = None) -> None:
    """``--records DIR`` must be a folder (new, or one a study wrote): a file there was taken for the scorer's cache
    folder, or failed only when the first trial's record was written, after it trained. With ``inputs`` ((option,
    folder) the command reads) it is placed as an output folder is (`guard_output`): `tune data --records
    VAL_IMAGES/rec` wrote its records among the validation images, `--records RUN/rec` into another run's folder.

    Raises:
        ConfigError: ``folder`` exists and is not a folder, or no file can be made in it (or it cannot be made).
        DataError: (with ``inputs``) ``folder`` is or lies inside one of them, or inside a run folder.
    """
    if folder is None:
        return
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--records {folder} is not a folder; give the folder of the records (a new one, or one "
                          f"a benchmark or study wrote)")
    if inputs is not None:  # before a file is made there to see that one can be
        guard_output(path, "--records", folder=True, inputs=inputs)
    try:
        try_writing_in(path)
        # the records of each condition or study, read before any work (a new folder was made and removed again)
        for entry in os.scandir(path) if path.is_dir() else ():
            if entry.is_dir():
                try:
                    os.listdir(entry.path)
                except PermissionError as err:  # a trial trained, then failed reading its records
                    raise ConfigError(f"--records {folder}: the folder {entry.path} cannot be read ({err.strerror}); "
                                      f"give yourself read permission (chmod u+rx {shell_word(entry.path)})") from None
    except OSError as err:  # /sys/rec as root: os.access says yes, and the first record failed after a trial trained
        raise ConfigError(f"--records {folder}: no record can be written there ({err.strerror or err}); point "
                          f"--records at a folder you can write") from None


def record_path(folder: str | Path, key: str) -> Path:
    """Where the record of ``key`` ("unmatched/srunit-seed3") lives in ``folder``."""
    return Path(folder) / f"{key}.json"


def read_record(path: str | Path) -> dict[str, Any] | None:
    """The record at ``path``, or None where there is none.

    Raises:
        DataError: the file is not a record of this format, or is too large to be one (named, with the fix).
    """
    path = Path(path)
    if not path.is_file():
        return None
    record = read_json(path, "the study record", limit=MAX_RECORD_BYTES,
                       fix=f"restore it from the repository (git checkout -- {shell_word(path)}) or delete it to "
                           f"train that run again")
    form = record.get("format") if isinstance(record, dict) else None
    if isinstance(form, str) and form.startswith("srunit-study-record/") and form != RECORD_FORMAT:
        raise DataError(f"{path} is a study record of format {form!r}, which this srunit ({__version__}, format "
                        f"{RECORD_FORMAT!r}) does not read; continue the study with the srunit that wrote it (its "
                        f"srunit_version: {record.get('srunit_version')}), or delete the record to train that run "
                        f"again")
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or "settings_hash" not in record:
        raise DataError(f"{path} is not a study record of format {RECORD_FORMAT!r}; restore it from the repository "
                        f"or delete it to train that run again")
    return record


def matching_record(folder: str | Path | None, key: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The record of ``key`` in ``folder`` if it was made with ``settings``; None where there is none.

    Raises:
        DataError: a record of ``key`` exists but was made with other settings: the study would mix runs of two
            settings, so nothing is trained or written (named, with both hashes and the fix).
    """
    if folder is None:
        return None
    path = record_path(folder, key)
    record = read_record(path)
    if record is None:
        return None
    expected = settings_hash(settings)
    if record["settings_hash"] != expected:
        changed = sorted(changed_keys(record.get("settings") or {}, settings))
        shown = ", ".join(changed[:6]) + (", ..." if len(changed) > 6 else "")
        raise DataError(f"the study record {path} was made with other settings (hash {record['settings_hash']}, "
                        f"these {expected}; differing: {shown or 'unknown'}); pass the settings of that study, "
                        f"another --records folder, or delete the record to train the run again")
    return record


def write_record(folder: str | Path, key: str, settings: dict[str, Any], seed: int, evaluation: dict[str, Any], *,
                 commit: str | None, version: str, machine: str, train_minutes: float | None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the record of a finished, scored run (atomically) and return it."""
    kept = {k: v for k, v in evaluation.items() if k not in ("images", "images_digest")}
    record = {
        "format": RECORD_FORMAT, "key": key, "settings_hash": settings_hash(settings), "settings": settings,
        "seed": int(seed), "scores": flat_scores(evaluation), "evaluation": kept,
        "commit": commit, "srunit_version": version, "machine": machine,
        "train_minutes": None if train_minutes is None else round(float(train_minutes), 2),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(extra or {}),
    }
    path = record_path(folder, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record)
    return record
