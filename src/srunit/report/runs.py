"""Reading run folders (metrics.jsonl, eval/scores.json, config.yaml) and bench folders (summary.json)."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from srunit._reading import (
    MAX_CONFIG_BYTES,
    MAX_LOG_BYTES,
    check_linked_files,
    check_regular_file,
    link_to_nothing,
    open_regular,
    parse_json,
    read_bytes,
    read_json,
    read_text,
)
from srunit._yaml import load_yaml
from srunit.checks import MAX_CLASSES, MAX_LABEL_ID, MAX_STEPS
from srunit.errors import CheckpointError, ConfigError, DataError, shell_word
from srunit.eval.records import (
    BENCH_FORMAT,
    EVAL_FORMAT,
    FLIP_KEYS,
    HALLUCINATION_KEY,
    MAX_DELTA,
    MAX_EVAL_RECORD_BYTES,
    RECORD_FILE,
    SEGMENTATION_KEYS,
    acc_threshold,
    image_set_digest,
    in_percent,
)
from srunit.eval.study_records import read_record, record_path
from srunit.runtime.run_folder import RunFolder

__all__ = ["Run", "BenchRow", "Bench", "Study", "load_metrics", "load_run", "load_bench", "load_study", "load_item",
           "runs_of", "labelled_apart", "EXPECTED"]

log = logging.getLogger(__name__)

EXPECTED = ("pass a run folder (with metrics.jsonl and/or eval/scores.json), a bench folder (with "
            "summary.json) or a tuning folder (with study.json)")
STUDY_FORMAT = "srunit-tune/1"
MAX_PLOT_BYTES = 16 * 2**20  # a study plot is a few hundred kB


@dataclass
class Run:
    """One run folder. ``metrics``: step -> {name: value}, sorted by step (empty without
    metrics.jsonl); ``scores``: the eval/scores.json record, or None."""

    path: Path
    label: str
    method: str | None
    metrics: dict[int, dict[str, float]]
    scores: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)  # files or lines that could not be read, each named
    planned_steps: int | None = None  # run.json's total_steps: the steps its schedule plans (None: unknown)
    checkpoint_step: int | None = None  # the step of its newest checkpoint (None: none)
    training: bool = False  # a training process holds the run now (its lock is taken)

    @property
    def steps(self) -> int | None:
        return max(self.metrics) if self.metrics else self.checkpoint_step

    @property
    def stopped(self) -> bool:
        """The run ended before the steps its schedule planned (a signal, a crash, ``fit(stop_at=)``) and no
        process trains it now: its scores and samples are those of an unfinished run."""
        return not self.training and self.planned_steps is not None and self._reached < self.planned_steps

    @property
    def _reached(self) -> int:
        """The step a resume continues from: its newest checkpoint's, else the last logged, else 0 (killed before
        its first checkpoint, with nothing logged: the report showed an empty steps cell, as for a run of no plan)."""
        if self.checkpoint_step is not None:
            return self.checkpoint_step
        return self.steps if self.steps is not None else 0

    @property
    def scores_note(self) -> str:
        """'' or, where the run was trained on after it was evaluated, which checkpoint its scores are of:
        `` (scores of step 4; newest checkpoint: step 6)``."""
        step = (self.scores or {}).get("checkpoint_step")
        if isinstance(step, int) and not isinstance(step, bool) and 0 <= step < 2**63 \
                and self.checkpoint_step is not None and step != self.checkpoint_step:
            return f" (scores of step {step}; newest checkpoint: step {self.checkpoint_step})"
        return ""

    @property
    def steps_shown(self) -> str:
        """The steps column of the report: ``N``, or ``N of M (stopped)`` for a run that ended early."""
        if self.stopped:
            return f"{self._reached} of {self.planned_steps} (stopped; continue with srunit train --resume)"
        if self.steps is None:
            return ""
        return str(self.steps)


@dataclass
class BenchRow:
    """One method x condition row of a bench summary; ``mean``/``std``: metric -> value or None."""

    method: str
    condition: str
    n: int
    mean: dict[str, Any]
    std: dict[str, Any]
    runs: list[Run]
    shown_as: str | None = None  # the label a report gives it beside a row of another bench of the same label

    @property
    def label(self) -> str:
        if self.shown_as is not None:
            return self.shown_as
        return f"{self.method} / {self.condition}" if self.condition not in (None, "", "-") else self.method


@dataclass
class Bench:
    """A bench folder: its summary.json, the runs of each row, and the upper-bound record."""

    path: Path
    summary: dict[str, Any]
    rows: list[BenchRow]
    upper_bound: dict[str, Any] | None
    upper_run: Run | None
    warnings: list[str] = field(default_factory=list)  # values of summary.json not shown (the "Not read" section)

    @property
    def runs(self) -> list[Run]:
        return [r for row in self.rows for r in row.runs] + ([self.upper_run] if self.upper_run else [])


# The largest logged value drawn: 1e308 and -1e308 in one panel spanned more than a float holds, and matplotlib's
# axis ended the report in "ValueError: arange: cannot compute length"; no loss of a working run comes near it.
MAX_CURVE_VALUE = 1e300


def load_metrics(path: Path, warnings: list[str] | None = None) -> dict[int, dict[str, float]]:
    """Read a trainer's metrics.jsonl into step -> {name: value}, sorted by step.

    A resumed run appends to the file, so a step may appear more than once: the last line wins.
    With ``warnings``, a damaged line is left out and named there (and in the log) instead of raising.

    Raises:
        DataError: a line is not a JSON object with an integer "step" (names the file and line).
    """
    records: dict[int, dict[str, float]] = {}
    text = read_text(path, "the metrics log", limit=MAX_LOG_BYTES, fix="move the file aside")
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = parse_json(line, f"{path} line {number}", fix="delete the damaged line")
            if not isinstance(record, dict) or isinstance(record.get("step"), bool) \
                    or not isinstance(record.get("step"), int):
                raise DataError(f"{path} line {number} must be a JSON object with an integer \"step\", got "
                                f"{line.strip()[:80]!r}; delete the damaged line")
        except DataError as e:
            if warnings is None:
                raise
            warn(warnings, f"{e} (the line is left out)")
            continue
        step = record.pop("step")
        if not 0 <= step <= MAX_STEPS:
            bad = f"{path} line {number}: step {_shown(step)} is not a training step (0 to {MAX_STEPS:,})"
            if warnings is None:
                raise DataError(f"{bad}; delete the damaged line")
            warn(warnings, f"{bad}; the line is left out")
            continue
        records[step] = {k: float(v) for k, v in record.items() if finite_number(v) and abs(v) <= MAX_CURVE_VALUE}
        if warnings is not None:
            for k, v in record.items():
                if k in records[step]:
                    continue
                what = (f"a number from -{MAX_CURVE_VALUE:g} to {MAX_CURVE_VALUE:g}" if finite_number(v) else
                        "a finite number" if isinstance(v, (int, float)) and not isinstance(v, bool) else "a number")
                warn(warnings, f"{path} line {number}: \"{k}\" is not {what} (got {_shown(v)}); the value is left "
                                f"out of the curves")
    return dict(sorted(records.items()))


def warn(warnings: list[str], message: str) -> None:
    """Say ``message`` now and put it in ``warnings``, a run's (or a study's, a bench's) "Not read" lines."""
    log.warning("%s", message)
    warnings.append(message)


def _read_json(path: Path, expected_format: str) -> dict[str, Any]:
    data = read_json(path, "the record", limit=MAX_EVAL_RECORD_BYTES, fix="rewrite it with the command that made it")
    if not isinstance(data, dict):
        raise DataError(f"{path} must hold a JSON object, got {type(data).__name__}")
    found = data.get("format", expected_format)
    if found != expected_format:
        raise DataError(f"{path} has format {found!r} but this srunit reads {expected_format!r}; rewrite it "
                        f"with this version of srunit")
    return data


def _config_method(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        config = load_yaml(read_text(path, "the run's config", limit=MAX_CONFIG_BYTES), str(path))
    except (DataError, ConfigError) as e:
        raise DataError(f"cannot read {path} ({e}); restore the config written by `srunit train`") from e
    method = config.get("method") if isinstance(config, dict) else None
    return str(method["name"]) if isinstance(method, dict) and "name" in method else None


def _shown(value: Any) -> str:
    """``value`` as its JSON file has it (null, not None), cut at 40 characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


MAX_PIXEL_DISTANCE = 255 * 3**0.5  # the RGB distance of black and white, the most paired.dist can be


def finite_number(value: Any) -> bool:
    """Whether a value read from JSON is a finite number: not a bool, NaN or an infinity, nor an integer too large
    for a float (`1` and 330 zeros ended the report in OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def key_problem(key: str) -> str | None:
    """What the score key ``key`` is not, with the part of it that is wrong, or None where it names a score: an Acc key
    whose delta `eval paired --delta` refuses (`Acc(-30) %` was shown as a column). The "Not read" line of such a key
    quoted the score under it as the delta (``its delta is not an integer from 1 to 256 (got 0.25)``)."""
    if key.startswith("acc_") and acc_threshold(key) is None:
        delta = repr(key[4:])
        return (f"a score of Acc(delta): its delta is not an integer from 1 to {MAX_DELTA} "
                f"(got {delta if len(delta) <= 40 else delta[:37] + '...'})")
    return None


def _score_high(key: str) -> float | None:
    """The highest score ``key`` can be (1 for a fraction, `MAX_PIXEL_DISTANCE` for dist), None where unbounded."""
    return 1 if in_percent(key) else MAX_PIXEL_DISTANCE if key == "dist" else None


def score_problem(key: str, value: Any) -> str | None:
    """What ``value`` is not, as the score ``key`` of a record (a fraction from 0 to 1 where `in_percent`, a pixel
    distance from 0 to `MAX_PIXEL_DISTANCE` for dist, a finite number for any other), or None where it is one: a
    bench's summary.json and a study's study.json were shown as read (a pixel accuracy of -2.5 as -250.00 %). A key
    that names no score is `key_problem`'s (what `not_a_score` says, with the key)."""
    if key_problem(key) is not None:
        return f"a score of Acc(delta): its delta is not an integer from 1 to {MAX_DELTA}"
    if not finite_number(value):
        return "a finite number"
    high = _score_high(key)
    if high is not None and not 0 <= value <= high:
        return f"a score from 0 to {high:g}"
    return None


def not_a_score(key: str, value: Any, difference: bool = False) -> str | None:
    """What a "Not read" line says of the score ``value`` under ``key``: ``is not WHAT (got VALUE)``, where the
    key is what is wrong ``is not WHAT (got 'KEY')``; None where it is a score. With ``difference``, ``value`` is
    the difference of two such scores (from -high to high)."""
    if (problem := key_problem(key)) is not None:
        return f"is not {problem}"
    if not difference:
        problem = score_problem(key, value)
    elif not finite_number(value):
        problem = "a finite number"
    elif (high := _score_high(key)) is not None and not -high <= value <= high:
        problem = f"a difference of scores from -{high:g} to {high:g}"
    return None if problem is None else f"is not {problem} (got {_shown(value)})"


def _checked_values(values: Any, where: str, fix: str, warnings: list[str], keep: Sequence[str] = ()) -> dict[str, Any]:
    """The scores of ``values`` (a dict of key -> score) that `score_problem` takes; each other one named. The keys
    ``keep`` (a record's label) are kept as they are."""
    if not isinstance(values, dict):
        if values not in (None, {}):
            warn(warnings, f"{where} is not an object (got {_shown(values)}); it is not shown: {fix}")
        return {}
    kept = {}
    for key, value in values.items():
        if key not in keep and value is not None and (said := not_a_score(str(key), value)) is not None:
            warn(warnings, f"{where}.{key} {said}; it is not shown: {fix}")  # null: not scored
        else:
            kept[key] = value
    return kept


def _checked_scores(path: Path, record: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """The record without the scores that are not finite numbers, each named in ``warnings`` (the report's "Not
    read" section) rather than shown as a dash in the table."""
    record = dict(record)

    def section(name: str) -> dict[str, Any] | None:
        value = record.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            warn(warnings, f"{path}: {name} is not an object (got {type(value).__name__}); its scores are not shown: "
                            f"run `srunit eval` again")
            del record[name]
            return None
        record[name] = dict(value)
        return record[name]

    def keep_numbers(where: dict[str, Any], keys: Any, prefix: str, scored_as: str = "") -> None:
        """Each of ``keys`` in ``where`` kept where `score_problem` takes it (as the score ``scored_as`` + key)."""
        for key in list(keys):
            if key in where and (said := not_a_score(f"{scored_as}{key}", where[key])) is not None:
                warn(warnings, f"{path}: {prefix}{key} {said}; it is not shown: run `srunit eval` again")
                del where[key]

    seg = section("segmentation")
    if seg is not None:
        keep_numbers(seg, SEGMENTATION_KEYS, "segmentation.")
        _check_segmentation_parts(path, seg, warnings)
        for part, keys in (("flips", FLIP_KEYS), ("hallucination", (HALLUCINATION_KEY,))):
            if isinstance(seg.get(part), dict):
                seg[part] = dict(seg[part])
                keep_numbers(seg[part], keys, f"segmentation.{part}.")
    paired = section("paired")
    if paired is not None:
        keep_numbers(paired, ["dist"], "paired.")
        acc = paired.get("acc")
        if acc is not None and not isinstance(acc, dict):
            warn(warnings, f"{path}: paired.acc is not an object (got {type(acc).__name__}); it is not shown: run "
                            f"`srunit eval` again")
            del paired["acc"]
        elif acc is not None:
            paired["acc"] = dict(acc)
            keep_numbers(paired["acc"], list(acc), "paired.acc.", "acc_")  # Acc(delta): a fraction
    return record


def _per_class_problem(value: Any) -> str | None:
    """What the per-class list of a segmentation record is not, or None: a list of objects, each with an integer
    ``id`` (a class) and, where given, a str ``name`` and ``accuracy``/``iou`` scores from 0 to 1 or null."""
    if not isinstance(value, list):
        return "a list of classes"
    for entry in value:
        if not isinstance(entry, dict):
            return "a list of classes (objects)"
        cid = entry.get("id")
        if isinstance(cid, bool) or not isinstance(cid, int) or not 0 <= cid < MAX_CLASSES:
            return f"a list of classes, each with an id from 0 to {MAX_CLASSES - 1}"
        if not isinstance(entry.get("name", ""), str):
            return "a list of classes, each named by a string"
        if any(entry.get(key) is not None and score_problem("mean_iou", entry[key]) is not None
               for key in ("accuracy", "iou")):
            return "a list of classes, each with scores from 0 to 1"
    return None


def _is_flip_matrix(value: Any) -> bool:
    """Whether ``value`` is a flip matrix as `srunit eval` writes it: N rows (N classes) of N + 1 shares from 0 to 1,
    or null where a class has no pixel."""
    return (isinstance(value, list) and bool(value)
            and all(isinstance(row, list) and len(row) == len(value) + 1 for row in value)
            and all(v is None or score_problem("flip_rate", v) is None for row in value for v in row))


def _check_segmentation_parts(path: Path, seg: dict[str, Any], warnings: list[str]) -> None:
    """The parts of a segmentation record the report draws beside its scores (the per-class IoU, the flips, the
    hallucinations, the ignored label), each of the wrong shape named and left out: a list where an object belongs
    or a word where a label id belongs ended the report in a traceback."""
    def drop(key: str, what: str, consequence: str = "it is not shown") -> None:
        warn(warnings, f"{path}: segmentation.{key} is not {what} (got {_shown(seg[key])}); {consequence}: run "
                        f"`srunit eval` again")
        del seg[key]

    if "per_class" in seg and (problem := _per_class_problem(seg["per_class"])) is not None:
        drop("per_class", problem)
    for key in ("flips", "hallucination"):
        if key in seg and not isinstance(seg[key], dict):
            drop(key, "an object")
    flips = seg.get("flips")
    if isinstance(flips, dict) and "matrix" in flips and not _is_flip_matrix(flips["matrix"]):
        # Drawn as read: shares of 1e308 as bars past 100 % (with numpy's overflow warnings), a ragged one not at all
        warn(warnings, f"{path}: segmentation.flips.matrix is not a list of N rows of N + 1 shares from 0 to 1 or "
                        f"null (N classes, then the share left unrendered; got {_shown(flips['matrix'])}); the "
                        f"semantic flips are not drawn: run `srunit eval` again")
        seg["flips"] = {key: value for key, value in flips.items() if key != "matrix"}
    ignore = seg.get("ignore_index")
    if "ignore_index" in seg and (isinstance(ignore, bool) or not isinstance(ignore, int)
                                  or not 0 <= ignore <= MAX_LABEL_ID):
        drop("ignore_index", f"a label id from 0 to {MAX_LABEL_ID}",
             "the flip maps take the default, 255, as the label that is never scored")


def _check_images(run: Path, record: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """The record, without its images where RUN/eval/translated is not the set its scores were computed on (an
    evaluation killed between writing the images and the scores): such images are never shown beside the scores."""
    digest = record.get("images_digest")
    translated = RunFolder(run).translated
    if digest is None or not translated.is_dir():
        return record
    try:
        found = image_set_digest(translated)
    except DataError:
        found = None
    if found == digest:
        return record
    warn(warnings, f"{translated} does not hold the images the scores of {RunFolder(run).scores} were computed "
                    f"on (an evaluation was interrupted); its images are not shown: run `srunit eval ... --run "
                    f"{shell_word(run)}` "
                    f"again")
    return {k: v for k, v in record.items() if k != "images"}


def load_run(path: Path, default_label: str | None = None) -> Run:
    """Read a run folder. The label is a benchmark's or study's eval record's, else ``default_label``, else the
    folder name; the method is the eval record's, else config.yaml's ``method.name``.

    Raises:
        DataError: the folder has neither metrics.jsonl nor eval/scores.json, or one is unreadable.
    """
    path = Path(path)
    folder = RunFolder(path)
    metrics_file, scores_file = folder.metrics, folder.scores
    if not metrics_file.is_file() and not scores_file.is_file() and not folder.config.is_file():
        check_linked_files(path, [os.path.relpath(f, path) for f in (metrics_file, scores_file, folder.config)],
                           "a run folder")
        raise DataError(f"{path} holds neither metrics.jsonl nor eval/scores.json nor summary.json; {EXPECTED}")
    warnings: list[str] = []
    for file, shown, verb in ((metrics_file, "training curves", "are"), (scores_file, "evaluation", "is")):
        said = link_to_nothing(file)  # a fork of links whose original moved: read as absent, without a word
        if said is not None:
            warn(warnings, f"{said}; the run's {shown} {verb} not shown: put the file back where the link points")
    metrics = load_metrics(metrics_file, warnings) if metrics_file.is_file() else {}
    if metrics_file.exists() and not metrics_file.is_file():  # a FIFO or a folder: no curves, without a word
        try:
            check_regular_file(metrics_file, "the metrics log")
        except DataError as e:
            warn(warnings, f"{e}; the run's training curves are left out")
    scores = None
    if scores_file.is_file():
        try:
            scores = _read_json(scores_file, EVAL_FORMAT)
        except DataError as e:
            warn(warnings, f"{e}; the run's evaluation is not shown")
    if scores is not None:
        scores = _check_images(path, _checked_scores(scores_file, scores, warnings), warnings)
    for other in sorted(folder.eval.glob("*.json")) if folder.eval.is_dir() else []:
        if other.name != RECORD_FILE:
            warn(warnings, f"{other} is not read: the report shows eval/{RECORD_FILE} only (write it with "
                            f"`srunit eval seg|paired --run {shell_word(path)}`)")
    record = scores or {}
    try:
        config_method = _config_method(folder.config)
    except DataError as e:
        config_method = None
        warn(warnings, str(e))
    method = record.get("method") or config_method
    # `srunit eval --run` names the run in its record by the folder it had then, which a move, a rename or a copy
    # makes another folder's name: such a run is shown by its own folder's name. A benchmark's or a study's record
    # names its run by method, condition and seed (its "condition" key), which stay true wherever it lies.
    named = record.get("label") if "condition" in record else None
    label = _text(str(named or default_label or path.name))
    return Run(path, str(label), None if method is None else str(method), metrics, scores, warnings,
               planned_steps=_planned_steps(folder), checkpoint_step=_checkpoint_step(folder),
               training=_being_trained(folder))


def _text(name: str) -> str:
    """A folder name as text the page and its plots can show: bytes that are not UTF-8 (held as lone surrogates,
    which matplotlib and the HTML writer refuse with a traceback) as backslash escapes (``s\xff``)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _planned_steps(folder: RunFolder) -> int | None:
    """run.json's total_steps (what the trainer planned, rewritten by a resume that changes it); None where the
    record is missing or unreadable (a run of another version: the report then cannot say it stopped early)."""
    try:
        value = read_json(folder.record, "the run record").get("total_steps")
    except (DataError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _being_trained(folder: RunFolder) -> bool:
    """Whether a training process holds the run's lock now (a shared, non-blocking flock that is let go at once;
    the lock file itself stays after training, so its existence says nothing)."""
    try:
        import fcntl
    except ImportError:  # no flock on this system: the runs are not locked either
        return False
    try:  # a FIFO in the lock's place would block a plain open() for ever; a link is no lock train made
        fd = open_regular(folder.lock, "the run's lock", follow=False)
    except DataError:  # no lock file, or one that cannot be read or is not a regular file
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing lets go of a lock taken here
    return False


def _checkpoint_step(folder: RunFolder) -> int | None:
    """The step of the run's newest checkpoint (RUN/checkpoints/latest -> step_N), None without one (or a damaged
    one)."""
    try:
        return folder.latest_step()
    except (CheckpointError, OSError):
        return None


def load_bench(path: Path) -> Bench:
    """Read a bench folder's summary.json and the run folders its rows and upper bound name.

    Raises:
        DataError: summary.json is unreadable or malformed, or a run it names is missing.
    """
    path = Path(path)
    summary_file = path / "summary.json"
    summary = _read_json(summary_file, BENCH_FORMAT)

    def run_at(rel: Any, label: str | None) -> Run:
        if isinstance(rel, str) and not (path / rel).is_dir() and isinstance(summary.get("records"), str):
            records = path / summary["records"]  # relative to the bench folder (an absolute path stays one)
            record = read_record(record_path(records, rel))  # trained elsewhere: its study record
            if record is not None and isinstance(record.get("evaluation"), dict):
                evaluation = record["evaluation"]
                return Run(path / rel, str(evaluation.get("label") or label or rel), evaluation.get("method"), {},
                           evaluation, [f"{path / rel} is not on this machine: its scores come from its study record "
                                        f"{record_path(records, rel)}, without images or loss curves"])
        if not isinstance(rel, str) or not (path / rel).is_dir():
            raise DataError(f"{summary_file} names the run folder {rel!r}, but {path / str(rel)} is not a folder; "
                            f"restore the run or rerun the benchmark")
        return load_run(path / rel, default_label=label or rel)

    rows_data = summary.get("rows", [])
    if not isinstance(rows_data, list) or not all(isinstance(r, dict) for r in rows_data):
        raise DataError(f"{summary_file}: \"rows\" must be a list of objects; rerun the benchmark")
    rows = []
    warnings: list[str] = []
    fix = "rerun the benchmark's command"
    for i, r in enumerate(rows_data):
        named = r.get("runs")
        if named is not None and not isinstance(named, list):  # 5 was a TypeError ('int' object is not iterable)
            warn(warnings, f"{summary_file}: rows[{i}].runs is not a list of run folders (got {_shown(named)}); the "
                            f"row's runs are not shown: {fix}")
            named = None
        runs = [run_at(rel, None) for rel in named or []]
        n = r.get("n")
        if n is not None and not _count(n):
            warn(warnings, f"{summary_file}: rows[{i}].n is not a count of runs (got {_shown(n)}); the number of "
                            f"runs the row names is shown: {fix}")
            n = None
        rows.append(BenchRow(method=str(r.get("method", "?")), condition=str(r.get("condition", "")),
                             n=n if isinstance(n, int) else len(runs),
                             mean=_checked_values(r.get("mean"), f"{summary_file}: rows[{i}].mean", fix, warnings),
                             std=_checked_values(r.get("std"), f"{summary_file}: rows[{i}].std", fix, warnings),
                             runs=runs))
    summary = _checked_bench(summary, summary_file, warnings)
    upper = summary.get("upper_bound")
    upper_run = run_at(upper["run"], upper.get("label")) if upper and upper.get("run") else None
    return Bench(path, summary, rows, upper, upper_run, warnings)


def _checked_bench(summary: dict[str, Any], file: Path, warnings: list[str]) -> dict[str, Any]:
    """summary.json with the values besides its rows that the page cannot show as read left out, each named: the
    metrics (a column each: `Acc(-30) %` was one), the upper bound's scores (-250.00 % was shown), the differences
    (a mean of "abc" ended the report in a TypeError) and their confidence."""
    summary, fix = dict(summary), "rerun the benchmark's command"
    metrics = summary.get("metrics")
    if metrics is not None and not isinstance(metrics, list):
        warn(warnings, f"{file}: metrics is not a list of score names (got {_shown(metrics)}); the scores the rows "
                        f"hold are shown: {fix}")
        del summary["metrics"]
    elif metrics is not None:
        kept = []
        for j, key in enumerate(metrics):
            what = key_problem(key) if isinstance(key, str) else f"a score name (got {_shown(key)})"
            if what is None:
                kept.append(key)
            else:
                warn(warnings, f"{file}: metrics[{j}] is not {what}; no column is shown for it: {fix}")
        summary["metrics"] = kept
    upper = summary.get("upper_bound")
    if upper is not None and not isinstance(upper, dict):
        warn(warnings, f"{file}: upper_bound is not an object (got {_shown(upper)}); the ground-truth row is not "
                        f"shown: {fix}")
    summary["upper_bound"] = _checked_values(upper, f"{file}: upper_bound", fix, warnings, keep=("label", "run")) \
        if isinstance(upper, dict) else None
    confidence = summary.get("confidence", 0.95)  # absent: the benchmark's 0.95; null was a TypeError
    if not (finite_number(confidence) and 0 < confidence < 1):
        warn(warnings, f"{file}: confidence is not a fraction between 0 and 1 (got {_shown(confidence)}); the "
                        f"intervals' confidence is not shown: {fix}")
        summary["confidence"] = None
    differences = summary.get("differences")
    if differences is not None and not isinstance(differences, list):
        warn(warnings, f"{file}: differences is not a list (got {_shown(differences)}); no difference is shown: "
                        f"{fix}")
        differences = []
    checked = [_checked_difference(d, f"{file}: differences[{j}]", warnings) for j, d in enumerate(differences or [])]
    summary["differences"] = [d for d in checked if d is not None]
    return summary


def _checked_difference(difference: Any, where: str, warnings: list[str]) -> dict[str, Any] | None:
    """A method's differences from a baseline (summary.json's ``differences[j]``) without the values the page
    cannot show as read, each named; None where it is not an object."""
    fix = "rerun the benchmark's command"
    if not isinstance(difference, dict):
        warn(warnings, f"{where} is not an object (got {_shown(difference)}); it is not shown: {fix}")
        return None
    difference = dict(difference)
    seeds = difference.get("seeds")
    if seeds is not None and not isinstance(seeds, list):  # 5 was a TypeError (object of type 'int' has no len())
        warn(warnings, f"{where}.seeds is not a list of seeds (got {_shown(seeds)}); its count of pairs is not "
                        f"shown: {fix}")
        del difference["seeds"]
    metrics = difference.get("metrics")
    if metrics is not None and not isinstance(metrics, dict):
        warn(warnings, f"{where}.metrics is not an object (got {_shown(metrics)}); its differences are not shown: "
                        f"{fix}")
    kept: dict[str, Any] = {}
    for key, values in (metrics.items() if isinstance(metrics, dict) else ()):
        if (what := key_problem(str(key))) is not None:
            warn(warnings, f"{where}.metrics.{key} is not {what}; it is not shown: {fix}")
            continue
        if not isinstance(values, dict):
            warn(warnings, f"{where}.metrics.{key} is not an object (got {_shown(values)}); it is not shown: {fix}")
            continue
        values = dict(values)
        n = values.get("n")
        if n is not None and not _count(n):
            warn(warnings, f"{where}.metrics.{key}.n is not a count of pairs (got {_shown(n)}); the difference is "
                            f"not shown: {fix}")
            values["n"] = None
        for bound in ("mean", "low", "high"):  # null: no interval (one pair)
            if values.get(bound) is not None and (said := not_a_score(str(key), values[bound], True)) is not None:
                warn(warnings, f"{where}.metrics.{key}.{bound} {said}; it is not shown: {fix}")
                values[bound] = math.nan
        low, mean, high = (float(values[bound]) if finite_number(values.get(bound)) else math.nan
                           for bound in ("low", "mean", "high"))
        if all(math.isfinite(v) for v in (low, mean, high)) and not low <= mean <= high:
            # [0.4, 0.1] around 0.2 was shown as read, an interval no computation gives
            warn(warnings, f"{where}.metrics.{key}: its interval [{low:g}, {high:g}] does not hold its mean {mean:g}; "
                            f"the interval is not shown: {fix}")
            values["low"] = values["high"] = math.nan
        established = values.get("established")
        if established is not None and not isinstance(established, bool):
            warn(warnings, f"{where}.metrics.{key}.established is not true or false (got {_shown(established)}); "
                            f"it is not shown in bold: {fix}")
            values["established"] = False
        elif established and not (finite_number(values.get("low")) and finite_number(values.get("high"))
                                  and (values["low"] > 0 or values["high"] < 0)):
            # bold says the interval excludes 0: it was bold for [-0.1, 0.2] as a record said so
            warn(warnings, f"{where}.metrics.{key}.established is true, but its interval does not exclude 0; it is "
                            f"not shown in bold: {fix}")
            values["established"] = False
        kept[str(key)] = values
    difference["metrics"] = kept
    return difference


@dataclass
class Study:
    """A tuning folder (`srunit tune`): its study.json and the PNG plots it names."""

    path: Path
    summary: dict[str, Any]
    plots: dict[str, bytes]
    warnings: list[str] = field(default_factory=list)


def load_study(path: Path) -> Study:
    """Read a tuning folder's study.json and its plots (a plot file that is missing or not one is left out, named).
    The values the page shows are checked, each one it cannot show named in ``warnings`` and left out.

    Raises:
        DataError: study.json is unreadable or not a study summary.
    """
    file = path / "study.json"
    summary = _read_json(file, STUDY_FORMAT)
    if not isinstance(summary.get("trials"), list):
        raise DataError(f"{file}: \"trials\" must be a list; rerun the study's command")
    plots: dict[str, bytes] = {}
    warnings: list[str] = []
    summary = _checked_study(summary, file, warnings)
    objective = summary["objective"] if isinstance(summary.get("objective"), str) else "value"
    summary["trials"] = [_checked_trial(t, i, file, objective, warnings) for i, t in enumerate(summary["trials"])]
    named = summary.get("plots")
    if not isinstance(named, dict):  # a list was an AttributeError ('list' object has no attribute 'items')
        if named is not None:
            warn(warnings, f"{file}: plots is not an object of plot names and files (got {_shown(named)}); no plot "
                            f"is shown: rerun the study's command")
        named = {}
    for name, rel in named.items():
        if not isinstance(rel, str):
            warn(warnings, f"{file}: plots.{name} is not a file name (got {_shown(rel)}); it is left out: rerun the "
                            f"study's command")
            continue
        file_of_plot = path / rel
        try:
            data = read_bytes(file_of_plot, "the plot", limit=MAX_PLOT_BYTES)
        except DataError as e:
            warn(warnings, f"{e}; it is left out")
            continue
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            warn(warnings, f"{file_of_plot} is not a PNG plot; it is left out")
            continue
        plots[str(name)] = data
    return Study(path, summary, plots, warnings)


DIRECTIONS = ("maximize", "minimize")  # study.json's direction: Optuna's words


def _checked_study(summary: dict[str, Any], file: Path, warnings: list[str]) -> dict[str, Any]:
    """study.json with its own values that the page cannot show as read set to None, each named: the objective,
    the direction (an unknown one was taken as "highest is best"), the count of finished trials and the settings'
    count of trials (`-5 of abc trials finished`)."""
    summary, fix = dict(summary), "rerun the study's command"
    objective = summary.get("objective")
    if objective is not None and (not isinstance(objective, str) or key_problem(objective) is not None):
        what = key_problem(objective) if isinstance(objective, str) else f"a score name (got {_shown(objective)})"
        warn(warnings, f"{file}: objective is not {what}; it is not shown, nor which trial is best: {fix}")
        summary["objective"] = None
    direction = summary.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        warn(warnings, f"{file}: direction is not {' or '.join(DIRECTIONS)} (got {_shown(direction)}); the "
                        f"finished trials are listed as study.json lists them, none as the best: {fix}")
        summary["direction"] = None
    finished = summary.get("finished")
    if finished is not None and not _count(finished):
        warn(warnings, f"{file}: finished is not a count of trials (got {_shown(finished)}); the finished trials "
                        f"listed are counted instead: {fix}")
        del summary["finished"]
    settings = summary.get("settings")
    if settings is not None and not isinstance(settings, dict):
        warn(warnings, f"{file}: settings is not an object (got {_shown(settings)}); it is not shown: {fix}")
        settings = None
    settings = dict(settings or {})
    trials = settings.get("trials")
    if trials is not None and not _count(trials):
        warn(warnings, f"{file}: settings.trials is not a count of trials (got {_shown(trials)}); it is not shown: "
                        f"{fix}")
        del settings["trials"]
    summary["settings"] = settings
    return summary


def _count(value: Any) -> bool:
    """Whether ``value`` read from a record is a count (of runs, trials): an integer from 0 to `MAX_STEPS`."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_STEPS


def _checked_trial(trial: Any, i: int, file: Path, objective: str, warnings: list[str]) -> Any:
    """A trial of study.json with the values the report cannot show as read left out, each named: its number, its
    seed, its objective's value (the trial is then listed as not finished), its scores and its parameters."""
    if not isinstance(trial, dict):
        return trial
    trial, fix = dict(trial), "rerun the study's command"
    number = trial.get("number")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 0):
        warn(warnings, f"{file}: trials[{i}].number is not a trial number (got {_shown(number)}); it is not shown: "
                        f"{fix}")
        trial["number"] = "?"
    seed = trial.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
        warn(warnings, f"{file}: trials[{i}].seed is not a training seed (an integer from 0 to 2**64 - 1; got "
                        f"{_shown(seed)}); it is not shown: {fix}")
        trial["seed"] = "?"
    value = trial.get("value")
    if value is not None and (said := not_a_score(objective, value)) is not None:
        warn(warnings, f"{file}: trials[{i}].value {said}; the trial is listed as not finished: {fix}")
        trial["value"], trial["state"] = None, "NOT READ"
    if "scores" in trial:
        trial["scores"] = _checked_values(trial["scores"], f"{file}: trials[{i}].scores", fix, warnings)
    params = trial.get("params")
    if params is not None and not isinstance(params, dict):  # a list was an AttributeError ('list' ... 'get')
        warn(warnings, f"{file}: trials[{i}].params is not an object (got {_shown(params)}); its parameters are "
                        f"not shown: {fix}")
        trial["params"] = {}
    return trial


def runs_of(item: Run | Bench | Study) -> list[Run]:
    """The run itself, or every run of a bench (its rows' runs, then the upper bound's); a study has none."""
    if isinstance(item, Study):
        return []
    return [item] if isinstance(item, Run) else item.runs


def _distinct_labels(labels: Sequence[str], paths: Sequence[Path]) -> list[str]:
    """``labels`` of the things in the folders ``paths``, two of them never the same: those that share a label (two
    runs of one folder name, two benches of one method, condition and seed) are told apart by the fewest last parts
    of their folders' paths that differ (``runs/c3``, ``other2/c3``), which stand for a label that is the folder's
    own name and follow any other (``cut / unmatched (b1/bench)``); one folder given twice is numbered."""
    out = list(labels)
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        parts = [Path(os.path.abspath(paths[i])).parts for i in members]
        apart = set(parts)  # one folder given twice has one path, however many parts are taken
        k = next(k for k in range(1, max(map(len, apart)) + 1) if len({p[-k:] for p in apart}) == len(apart))
        seen: dict[str, int] = {}
        for i, p in zip(members, parts):
            suffix = _text("/".join(p[-k:]).lstrip("/") or "/")
            if len(apart) == 1:  # one folder, given twice (a run and the bench that holds it): numbered only
                label = labels[i]
            else:
                label = suffix if labels[i] == _text(Path(paths[i]).name) else f"{labels[i]} ({suffix})"
            seen[label] = seen.get(label, 0) + 1
            out[i] = label if seen[label] == 1 else f"{label} ({seen[label]})"
    return out


def labelled_apart(items: Sequence[Run | Bench | Study]) -> list[Run | Bench | Study]:
    """``items`` with each run's label made distinct from every other run's, and each bench row's from every other
    row's (see ``_distinct_labels``): the one place a report's labels are decided, so its tables, plots and grids
    name a run or a row alike. Runs, rows and benches are copied, never changed."""
    runs = [r for item in items for r in runs_of(item)]
    names = iter(_distinct_labels([r.label for r in runs], [r.path for r in runs]))
    benches = [item for item in items if isinstance(item, Bench)]
    rows = [(bench, row) for bench in benches for row in bench.rows]
    row_names = iter(_distinct_labels([row.label for _, row in rows], [bench.path for bench, _ in rows]))

    def named(run: Run) -> Run:
        label = next(names)
        return run if label == run.label else replace(run, label=label)

    def named_row(row: BenchRow) -> BenchRow:
        label = next(row_names)
        runs = [named(r) for r in row.runs]
        return replace(row, runs=runs, shown_as=None if label == row.label else label)

    out: list[Run | Bench | Study] = []
    for item in items:
        if isinstance(item, Run):
            out.append(named(item))
        elif isinstance(item, Bench):  # in runs_of's order: the rows' runs, then the upper bound
            rows_named = [named_row(row) for row in item.rows]
            out.append(replace(item, rows=rows_named, upper_run=named(item.upper_run) if item.upper_run else None))
        else:
            out.append(item)
    return out


def load_item(path: Path) -> Run | Bench | Study:
    """A bench if ``path`` holds summary.json, a tuning study if it holds study.json, else a run (raises DataError
    naming ``path`` otherwise)."""
    if not path.exists():
        raise DataError(f"report PATH {path} does not exist; {EXPECTED}")
    if not path.is_dir():
        raise DataError(f"report PATH {path} is not a folder; {EXPECTED}")
    check_linked_files(path, ["summary.json", "study.json"], "a bench or tuning folder")
    if (path / "summary.json").is_file():
        return load_bench(path)
    if (path / "study.json").is_file():
        return load_study(path)
    return load_run(path)
