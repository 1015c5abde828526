"""The SynthScapes benchmark: train methods on unmatched and matched data, score against exact truth.

For every method (a preset name), data condition and seed, the benchmark trains a run on
SynthScapes, translates the test label maps, segments the translations with the cached scoring
segmenter and writes the run's evaluation record (``RUN/eval/scores.json``, translations and
predicted class maps). The summary gives mean and spread over seeds in the layout of paper
Table 1 (pixAcc, clsAcc, mIoU of the segmenter against the source labels; Dist and Acc(delta)
against the ground-truth renderings), with the segmenter's own score on the ground truth as the
upper bound. Conditions: ``unmatched`` (K-means split, mix 0), ``matched`` (``matched_mix``
percent of the opposite cluster added to each domain, paper App. D) and ``nonbijective`` (cars in domain
B only, StegoGAN's setting: scored on a test set without cars, with the hallucination rate, the share of
pixels its translations paint as cars; `srunit.eval.hallucination`). A run whose checkpoint has an
unmatchability mask (StegoGAN) also gets the masks of its translations (`srunit.unmatched`).

Folder layout of a benchmark::

    OUT/settings.json        what was asked; a rerun with the same OUT continues the benchmark
    OUT/data/{unmatched,matched,nonbijective}/trainA,trainB   OUT/data/test/testA,testB,testLabels
    OUT/data/test-nonbijective/testA,testB,testLabels   (the nonbijective condition's: no car)
    OUT/CONDITION/PRESET-seedS/   a trainer run folder + eval/
    OUT/upper_bound/eval/    the segmenter on the ground-truth renderings
    OUT/summary.json, OUT/table.md
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srunit._atomic import FolderWriter, check_folder_in_place, check_umask, write_json_atomic
from srunit._outputs import remove_leftovers
from srunit._reading import check_linked_files, path_kind, read_json
from srunit._version import __version__
from srunit.checks import MAX_JOBS, check_flag, check_int
from srunit.config import Config, changed_keys, dotted, load_config, parse_overrides, set_in_base_files
from srunit.data.images import SKIP_HINT
from srunit.engine.trainer import resume_config, train_to_end
from srunit.errors import ConfigError, DataError, SrunitError, shell_word
from srunit.eval.flips import directed_flip_classes
from srunit.eval.paired import paired_scores
from srunit.eval.records import EVAL_FORMAT, MAX_EVAL_RECORD_BYTES, flat_scores, stored_folder
from srunit.eval.scoring import score_segmentation
from srunit.eval.segmenters import Segmenter
from srunit.eval.study_records import canonical_run_settings, matching_record, write_record
from srunit.inference import INPUT_FILE_FIX, Translator
from srunit.report import build_report
from srunit.report.page import REPORT_FILE
from srunit.runtime.device import resolve_device
from srunit.runtime.provenance import git_commit, machine_description
from srunit.runtime.run_folder import RunFolder
from srunit.synthscapes.dataset import (
    NONBIJECTIVE_CLASS,
    NONBIJECTIVE_SHARE,
    write_nonbijective_split,
    write_test_set,
    write_train_split,
)
from srunit.synthscapes.parallel import Job, run_jobs
from srunit.synthscapes.scenes import CLASS_NAMES, PALETTE
from srunit.synthscapes.scorer import load_or_train_segmenter
from srunit.synthscapes.settings import NONBIJECTIVE, BenchSettings, overrides_for
from srunit.synthscapes.summary import DEFAULT_BASELINE, UPPER_BOUND_LABEL, format_table, summarize
from srunit.unmatched import UnmatchedMasks

if TYPE_CHECKING:
    import torch

__all__ = ["REPORT_FILE", "SETTINGS_FILE", "evaluate_images", "run_benchmark", "train_data", "heldout_data",
           "condition_heldout", "hallucinated_classes", "flip_classes", "run_settings", "run_config",
           "check_run_configs", "train_run", "score_run"]

log = logging.getLogger(__name__)

DELTAS = (30, 50)
SETTINGS_FILE = "settings.json"  # OUT/settings.json: what the benchmark was asked (module docstring)


def evaluate_images(images_dir: Path, eval_dir: Path, test_dir: Path, segment: Segmenter,
                    info: dict[str, Any], flips: tuple[tuple[int, ...], int | None] = ((), None), *,
                    hallucinated: tuple[int, ...] = (), masks_dir: Path | None = None,
                    home: Path | None = None, opened: FolderWriter | None = None) -> dict[str, Any]:
    """Score translated test images and write the evaluation record ``eval_dir/scores.json``.

    Args:
        images_dir: translations (or, for the upper bound, the ground truth), named as testA.
        eval_dir: gets ``predicted/NAME.png`` (class ids) and ``scores.json``.
        test_dir: holds ``testA``, ``testB`` and ``testLabels``.
        segment: (H, W, 3) uint8 -> (H, W) class ids.
        info: label, method, condition, seed ... copied into the record.
        flips: the directed flip rate's source class ids and destination class id (`flip_classes`).
        hallucinated: the ids of the classes the test sources never hold (`hallucinated_classes`): their
            hallucination rate is recorded.
        masks_dir: the unmatchability masks of the translations (`srunit.unmatched`), recorded for the report.
        home: the output folder that holds both the data and the run (moved as a whole): folders inside it are
            recorded relative to ``eval_dir`` (`stored_folder`); default: the run folder, ``eval_dir``'s parent.
        opened: ``eval_dir`` as its caller opened it already (`score_run`, which translated into it): no path is
            looked up again between the translations and their scores.
    """
    labels_dir = test_dir / "testLabels"
    # RUN/eval opened once: moved away and replaced by a link meanwhile, no class map or record goes through the link.
    with (nullcontext(opened) if opened is not None else FolderWriter(eval_dir)) as writer, \
            writer.subfolder(RunFolder.PREDICTED) as predicted:
        seg = score_segmentation(images_dir, labels_dir, segment, len(CLASS_NAMES), class_names=CLASS_NAMES,
                                 predicted=predicted)
        paired = paired_scores(images_dir, test_dir / "testB", DELTAS)
        record = {
            "format": EVAL_FORMAT, **info,
            "segmentation": seg.to_dict(*flips, hallucinated=hallucinated),
            "paired": paired.to_dict(),
            "class_names": list(CLASS_NAMES), "palette": PALETTE.tolist(),
            "images": {role: stored_folder(folder, eval_dir, eval_dir.parent if home is None else home)
                       for role, folder in (("source", test_dir / "testA"), ("target", test_dir / "testB"),
                                            ("labels", labels_dir), ("translated", images_dir),
                                            ("predicted", eval_dir / RunFolder.PREDICTED), ("masks", masks_dir))
                       if folder is not None},
        }
        writer.check_in_place("the scoring")  # the record names its folders by their paths
        writer.write_json(RunFolder.SCORES, record)
    return record


def check_baselines(methods: Sequence[str], baselines: Sequence[str]) -> None:
    """Refuse a baseline that is not among ``methods`` (preset names or files, compared by stem): it was found only
    after every run had trained, as "no paired differences"."""
    stems = [Path(m).stem for m in methods]
    given = [b for b in baselines if Path(b).stem not in stems]
    if given:
        raise ConfigError(f"--baseline {','.join(given)} is not among --methods {','.join(methods)}; add it "
                          f"to --methods, or choose a baseline among them")


def _prepare_out(out: Path, settings: BenchSettings, option: str = "--out") -> None:
    """Continue the benchmark in ``out`` or start one there; ``option`` names the folder as the command takes it
    (bench's --out, demo's --name), so that its advice names an option the command has."""
    stored = out / SETTINGS_FILE
    if stored.is_file():
        data = read_json(stored, "the benchmark settings", error=ConfigError)  # its errors name the file
        try:
            previous = BenchSettings.from_dict(data)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{stored} is not the settings file of a benchmark: {e}; it is written by srunit bench "
                              f"synthscapes and was edited or damaged since: restore it from a copy, or pass a new "
                              f"{option} (nothing was changed)") from e
        # The segmenter only scores: another one re-scores the trained runs instead of refusing.
        if replace(previous, segmenter=settings.segmenter) != settings:
            raise ConfigError(f"{out} holds a benchmark with other settings ({stored}); pass a new {option}, or the "
                              f"same options as before to continue it (nothing was changed)")
        if previous.segmenter != settings.segmenter:
            log.info("other segmenter settings: the runs in %s are re-scored, not retrained", out)
            write_json_atomic(stored, settings.to_dict())
        log.info("continuing the benchmark in %s", out)
        return
    if out.exists() and not out.is_dir():  # a file was pathlib's NotADirectoryError from iterdir
        raise DataError(f"{option} {out} is {path_kind(out)}, not a folder; pass a new folder (nothing was changed)")
    # A first run killed while it wrote the settings left only their temporary: the folder is this command's own.
    remove_leftovers([stored])  # the callers hold the folder's OutputLock
    if out.exists() and any(out.iterdir()):
        check_linked_files(out, [SETTINGS_FILE], "a benchmark folder")
        raise DataError(f"{option} {out} exists and is not a benchmark folder; pass a new folder (nothing was changed)")
    write_json_atomic(stored, settings.to_dict())


def train_data(out: Path, settings: BenchSettings, condition: str) -> Path:
    """``OUT/data/CONDITION``: the two training domains, written on first use (an interrupted write is redone)."""
    root = out / "data" / condition
    if not (root / "manifest.json").is_file():  # absent or interrupted: rebuild from scratch
        if root.exists():
            shutil.rmtree(root)
        if condition == NONBIJECTIVE:
            manifest = write_nonbijective_split(root, num_pool=settings.num_pool, size=settings.size,
                                                seed=settings.data_seed)
        else:
            mix = 0.0 if condition == "unmatched" else settings.matched_mix
            manifest = write_train_split(root, num_pool=settings.num_pool, size=settings.size,
                                         seed=settings.data_seed, mix=mix)
        log.info("%s data: trainA %d label maps (mean class fractions %s), trainB %d renderings (%s)", condition,
                 len(manifest["trainA"]["pool_indices"]), manifest["trainA"]["class_fractions"],
                 len(manifest["trainB"]["pool_indices"]), manifest["trainB"]["class_fractions"])
    return root


def heldout_data(out: Path, settings: BenchSettings, split: str = "test") -> Path:
    """``OUT/data/test`` (or ``OUT/data/validation``): the held-out label maps, renderings and class maps,
    written on first use."""
    root = out / "data" / split
    done = root / f"{split}.json"
    if not done.is_file():
        if root.exists():
            shutil.rmtree(root)
        write_test_set(root, num_test=settings.num_test, size=settings.size, seed=settings.data_seed, split=split,
                       summary_file=done.name)
    return root


def condition_heldout(out: Path, settings: BenchSettings, condition: str) -> Path:
    """The test set a condition's runs are scored on: ``OUT/data/test``, or for the nonbijective condition
    ``OUT/data/test-nonbijective`` (the test stream's layouts without a car), written on first use."""
    if condition != NONBIJECTIVE:
        return heldout_data(out, settings)
    root = out / "data" / "test-nonbijective"
    done = root / "test.json"
    if not done.is_file():
        if root.exists():
            shutil.rmtree(root)
        write_test_set(root, num_test=settings.num_test, size=settings.size, seed=settings.data_seed,
                       without=NONBIJECTIVE_CLASS, summary_file=done.name)
    return root


def hallucinated_classes(condition: str) -> tuple[int, ...]:
    """The classes a condition's test sources never hold while its domain B does: their every pixel in a
    translation is a hallucination (cars, for the nonbijective condition; none for the others)."""
    return (NONBIJECTIVE_CLASS,) if condition == NONBIJECTIVE else ()


def flip_classes(out: Path, settings: BenchSettings) -> tuple[tuple[int, ...], int | None]:
    """The directed flip rate's classes (`srunit.eval.flips`), from the class shares of the unmatched split's two
    domains; every condition is scored with the same classes, so its flips compare with the unmatched ones."""
    manifest = read_json(train_data(out, settings, "unmatched") / "manifest.json", "the split's manifest",
                         fix="delete the split's folder to make it again")
    return directed_flip_classes(manifest["trainA"]["class_fractions"], manifest["trainB"]["class_fractions"],
                                 CLASS_NAMES)


def run_settings(settings: BenchSettings, config: Config, condition: str, split: str = "test") -> dict[str, Any]:
    """What defines one run of the benchmark and its score, for its study record (`srunit.eval.study_records`):
    the training config and the data and evaluation settings."""
    data = {"num_pool": settings.num_pool, "size": settings.size, "data_seed": settings.data_seed,
            "condition": condition, "mix": 0.0 if condition == "unmatched" else settings.matched_mix}
    if condition == NONBIJECTIVE:  # no K-means mix: one class in domain B only, in a share of its images
        del data["mix"]
        data.update(b_only=CLASS_NAMES[NONBIJECTIVE_CLASS], share=NONBIJECTIVE_SHARE)
    evaluation = {"split": split, "num_test": settings.num_test, "segmenter": asdict(settings.segmenter)}
    return canonical_run_settings(config.to_dict(), benchmark="synthscapes", data=data, evaluation=evaluation)


def train_run(settings: BenchSettings, preset: str, data_root: Path, runs_dir: Path, name: str, seed: int,
              show_progress: bool) -> Path:
    """Train (or finish) run ``runs_dir/name``: resumed from its checkpoint where it has one."""
    config = run_config(settings, preset, data_root, runs_dir, name, seed)
    return train_to_end(config, show_progress=show_progress)


def _check_run_of_the_same_options(run_dir: Path, config: Config, preset: str) -> None:
    """ConfigError where the benchmark's run ``run_dir`` (trained, or begun) was trained with other options than
    ``config``, what the benchmark asks of it now: its preset file edited between two calls, the run was taken as it
    was (scored, or resumed with its own config) beside runs of the edited file, in one table, without a word."""
    if not RunFolder(run_dir).config.is_file():
        return
    try:
        recorded = resume_config(run_dir, [])[0]
    except SrunitError:  # a damaged run: its resume says so, where it is trained further
        return
    then, now = (dotted(canonical_run_settings(c.to_dict())["config"]) for c in (recorded, config))
    keys = sorted(changed_keys(then, now))
    if keys:
        where = set_in_base_files(preset, keys[:4])
        shown = "; ".join(f"{k} {then.get(k)!r} in the run, {now.get(k)!r} now{where.get(k, '')}" for k in keys[:4])
        more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
        raise ConfigError(f"{run_dir} was trained with other options than {preset} gives now ({shown}{more}): the "
                          f"preset was edited since the benchmark began; undo the edit to continue it, or pass a new "
                          f"--out for the edited preset (nothing was changed)")


def run_config(settings: BenchSettings, preset: str, data_root: Path, runs_dir: Path, name: str, seed: int,
               *more: Sequence[str] | Mapping[str, Any]) -> Config:
    """The training config of one benchmark run: the preset at the benchmark's size, length and seed,
    with the profile's overrides where the method has the option (`overrides_for`), then ``more`` overrides
    (``"section.key=value"`` lists or ``{"section.key": value}`` mappings, as `Config.with_overrides` takes them; a
    study's options and a trial's values), later ones winning."""
    s, steps = settings.size, settings.steps
    every = max(1, steps // 4)
    own = {"data.root": str(data_root), "data.load_size": s + s // 8, "data.crop_size": s, "data.num_workers": 0,
           "train.steps": steps, "train.decay_fraction": 0.5, "train.batch_size": settings.batch_size,
           "train.seed": seed, "train.device": settings.device, "train.runs_dir": str(runs_dir), "train.name": name,
           "train.log_every": min(50, steps), "train.sample_every": every, "train.checkpoint_every": every,
           "train.keep_every": steps}
    # One step, the profile's overrides (and ``more``) after the benchmark's values: a config of the size alone is not
    # checked on its way (DRIT's discriminators take the profile's size only with the profile's fewer layers).
    merged = {**own, **dict(_dotted(parse_overrides(overrides_for(preset, settings.overrides))))}
    for extra in more:
        if not isinstance(extra, Mapping):
            extra = dict(_dotted(parse_overrides(extra)))
        merged.update(extra)
    return load_config(preset).with_overrides(merged)


def check_run_configs(settings: BenchSettings, out: Path, *more: Sequence[str] | Mapping[str, Any]) -> None:
    """Build the config of each preset's runs (`run_config`, with ``more``) before any work: DRIT's discriminators
    refused `--size 32` after minutes of the segmenter's training. A size a preset cannot take is named as
    ``--size``."""
    for preset in settings.methods:
        try:
            run_config(settings, preset, out, out, _run_name(preset, 0), 0, *more)  # a preset file's path has a /
        except ConfigError as err:
            if "data.crop_size" not in str(err):
                raise
            raise ConfigError(f"--size {settings.size} does not fit {preset} (it is each run's data.crop_size): "
                              f"{_advice_as_options(str(err))}") from None


def _advice_as_options(message: str) -> str:
    """The crop check's advice in this command's options: `use e.g. --size 24, or --model.n_layers_d 2 with --size
    20`, where it named data.crop_size, which the benchmark and a study refuse (their runs' crop is --size)."""
    head, sep, fix = message.rpartition("; use e.g. ")
    if not sep:
        return message
    fix = re.sub(r"\bdata\.crop_size (\d+)", r"--size \1", fix)
    return head + sep + re.sub(r"\bmodel\.n_layers_d (\d+)", r"--model.n_layers_d \1", fix)


def _dotted(nested: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"method": {"robust": {"weight": "1"}}}`` as ``("method.robust.weight", "1")``."""
    for key, value in nested.items():
        if isinstance(value, Mapping) and value:
            yield from _dotted(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _scored_by(scores_file: Path, segmenter_name: str) -> bool:
    """Whether ``scores_file`` exists and was written with the segmenter file ``segmenter_name``."""
    if not scores_file.is_file():
        return False
    record = read_json(scores_file, "the evaluation record", limit=MAX_EVAL_RECORD_BYTES,
                       fix="delete it to score the run again")
    return isinstance(record, dict) and record.get("segmenter") == segmenter_name


def _run_name(preset: str, seed: int) -> str:
    return f"{Path(preset).stem}-seed{seed}"


def run_benchmark(out: str | Path, settings: BenchSettings, *, cache_dir: str | Path | None = None,
                  command: str = "", show_progress: bool = True, report: bool = False,
                  baseline: str | Sequence[str] | None = None, jobs: int = 1,
                  records: str | Path | None = None, out_option: str = "--out") -> dict[str, Any]:
    """Run (or continue) the benchmark in ``out``; returns the summary (also in ``out/summary.json``).

    Finished runs (with ``eval/scores.json``) are reused, an interrupted run resumes from its
    latest checkpoint, so a rerun with the same settings only does what is missing. With other
    segmenter settings (only) the trained runs are translated and scored again, not retrained.
    With ``report``, the HTML report of the benchmark is written to ``out/report.html``. Every other
    method's difference from ``baseline`` (a preset name among the methods, or several in turn) is paired by
    seed (None: the default baseline, where it is among the methods; one given must be among them). With ``jobs``
    > 1 the runs still to train are trained that many at a time, each in its own process
    (see `srunit.synthscapes.parallel`), which also scores its run (and writes its record) as soon as it is
    trained.

    ``records``: a folder (in the repository) that keeps a small record of every finished run
    (`srunit.eval.study_records`) and the scoring segmenter itself; a run whose record exists and matches
    its settings is neither trained nor scored again, so the study continues on another machine.

    ``out_option``: the option that gave ``out``, named in the advice of a refusal (`srunit demo` has ``--name``).
    """
    if not isinstance(settings, BenchSettings):  # a profile name was `'str' object has no attribute 'to_dict'`
        raise TypeError(f"run_benchmark: settings must be BenchSettings, got {type(settings).__name__} "
                        f"{settings!r:.60}; build them with srunit.profile_settings(profile, ...)")
    if not isinstance(out, (str, Path)):
        raise TypeError(f"run_benchmark: out must be a folder path (str or Path), got {type(out).__name__}")
    show_progress = check_flag(show_progress, "run_benchmark: show_progress")
    report = check_flag(report, "run_benchmark: report")  # "no" wrote the report
    check_int(jobs, "--jobs", 1, maximum=MAX_JOBS)
    check_umask("run_benchmark")
    if baseline is None:  # the default, compared where it is among the methods
        baselines = [DEFAULT_BASELINE]
    else:  # one given is among the methods, or refused before any work
        baselines = [Path(b).stem for b in ([baseline] if isinstance(baseline, str) else baseline)]
        check_baselines(settings.methods, baselines)
    out = Path(out)
    check_run_configs(settings, out)
    # Before the settings are written: a device this machine lacks left OUT/settings.json naming it, so the
    # command the error advised (--device cpu, same --out or --name) was refused as "other settings".
    device = resolve_device(settings.device, "--device")  # bench synthscapes, demo and tune synthscapes: --device
    _prepare_out(out, settings, out_option)
    with FolderWriter(out) as home:
        try:
            return _run_benchmark(out, home, settings, device, baselines, cache_dir=cache_dir, command=command,
                                  show_progress=show_progress, report=report, jobs=jobs, records=records)
        except Exception:  # a step that met the folder gone (a training image "does not exist", a job that failed)
            # names the folder's move, not that step's error: its advice (rm -r OUT/data/...) acted on nothing there
            home.check_in_place(BENCHMARK, fix=_moved_advice(out, home.now_at(), out_option))
            raise


BENCHMARK = "the benchmark"  # `check_folder_in_place`'s words for what stopped (the command line, all of bench
# synthscapes's options, was twice in one message)


def _moved_advice(out: Path, now: Path | None, out_option: str = "--out") -> str:
    """How to continue a benchmark whose folder ``out`` was moved to ``now`` (None: not known) while it ran: the
    same command with the folder back in place, or (``--out``, not the demo's ``--name``) naming its new place;
    the same command as it was would start another benchmark in ``out``."""
    if now is None:
        return f"move it back to {shell_word(out)} and run the same command again to continue it"
    back = f"move it back (mv {shell_word(now)} {shell_word(out)}) and run the same command again"
    if out_option == "--out":
        return f"{back}, or run it with --out {shell_word(now)}, to continue it"
    return f"{back} to continue it"


def _run_benchmark(out: Path, home: FolderWriter, settings: BenchSettings, device: torch.device,
                   baselines: list[str], *, cache_dir: str | Path | None, command: str, show_progress: bool,
                   report: bool, jobs: int, records: str | Path | None) -> dict[str, Any]:
    """`run_benchmark` in ``out``, opened once as ``home``: each step (a data set, a reference's or a run's scores,
    a run's training, the summary) starts only where ``out`` is still the folder opened. Moved away and replaced by
    a link (to a folder of the user's) meanwhile, the runs were made in the folder linked."""
    what = BENCHMARK
    if records is not None and cache_dir is None:  # the study's scorer travels with its records
        cache_dir = records
    segmenter, seg_path = load_or_train_segmenter(settings.segmenter, cache_dir, device=device,
                                                  show_progress=show_progress)
    home.check_in_place(what)
    test_dir = heldout_data(out, settings)
    home.check_in_place(what)
    train_data(out, settings, "unmatched")  # a step of its own: `flip_classes` reads its manifest by its path
    home.check_in_place(what)
    flips = flip_classes(out, settings)
    segment = segmenter.segment
    # Two references: the ground truth itself (the segmenter's upper bound) and the untranslated
    # label maps (what a translator that changes nothing would score).
    references = {"upper_bound": (test_dir / "testB", UPPER_BOUND_LABEL),
                  "identity": (test_dir / "testA", "label maps, untranslated")}
    scored_by = {"segmenter": seg_path.name, "benchmark": "synthscapes"}
    for folder, (images, label) in references.items():
        if not _scored_by(RunFolder(out / folder).scores, seg_path.name):
            home.check_in_place(what)
            evaluate_images(images, RunFolder(out / folder).eval, test_dir, segment,
                            {"label": label, "method": folder, "condition": "-", **scored_by}, flips, home=out)
    data_roots, test_dirs = {}, {}
    for condition in settings.conditions:
        home.check_in_place(what)
        data_roots[condition] = train_data(out, settings, condition)
    for condition in settings.conditions:
        home.check_in_place(what)
        test_dirs[condition] = condition_heldout(out, settings, condition)
    # (condition, preset, seed, "CONDITION/PRESET-seedS"): the runs in the order of the table
    runs = [(condition, preset, seed, f"{condition}/{_run_name(preset, seed)}") for condition in settings.conditions
            for preset in settings.methods for seed in settings.seed_list]
    configs = {key: run_config(settings, preset, data_roots[condition], out / condition, Path(key).name, seed)
               for condition, preset, seed, key in runs}
    identity = {key: run_settings(settings, configs[key], condition) for condition, _, _, key in runs}
    kept = {key: record for _, _, _, key in runs
            if (record := matching_record(records, key, identity[key])) is not None}
    for _, preset, _, key in runs:  # each run here as the benchmark asks it now, scored or not
        if key not in kept:
            _check_run_of_the_same_options(out / key, configs[key], preset)
    if kept:
        log.info("%d of %d runs have a matching record in %s: not trained again", len(kept), len(runs), records)
    minutes: dict[str, float] = {}
    machine = machine_description(device)

    def work(condition: str, preset: str, seed: int, key: str, progress: bool) -> RunWork:
        return RunWork(settings, preset, condition, seed, key, str(out), str(data_roots[condition]),
                       str(test_dirs[condition]), flips, hallucinated_classes(condition),
                       None if cache_dir is None else str(cache_dir), scored_by,
                       None if records is None else str(records), identity[key], machine, progress, home.identity,
                       what)

    if jobs > 1:  # each job trains its run, scores it and writes its record
        pending = [Job(key, work(condition, preset, seed, key, False).run, ())
                   for condition, preset, seed, key in runs
                   if key not in kept and not _scored_by(RunFolder(out / key).scores, seg_path.name)]
        if pending:
            log.info("training %d runs, %d at a time", len(pending), jobs)
            # a job that found the folder moved leaves without a word: `run_benchmark` says so once
            minutes = run_jobs(pending, jobs, cuda=device.type == "cuda")
    by_row: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for condition, preset, seed, key in runs:
        scores_file = RunFolder(out / key).scores
        if key in kept:
            record = kept[key]["evaluation"]
        elif _scored_by(scores_file, seg_path.name):
            record = read_json(scores_file, "the evaluation record", limit=MAX_EVAL_RECORD_BYTES,
                               fix="delete it to score the run again")
            if records is not None and matching_record(records, key, identity[key]) is None:
                write_record(records, key, identity[key], seed, record, commit=git_commit(), version=__version__,
                             machine=machine, train_minutes=None)
        else:
            home.check_in_place(what)  # as the run does (`RunWork.run`), here naming where the folder is now
            start = time.perf_counter()
            record = work(condition, preset, seed, key, show_progress).run(segment)
            minutes[key] = (time.perf_counter() - start) / 60
        by_row.setdefault((Path(preset).stem, condition), []).append((key, record))
    upper, untranslated = (read_json(RunFolder(out / f).scores, "the evaluation record", limit=MAX_EVAL_RECORD_BYTES,
                                     fix="delete it to score the run again") for f in references)
    summary = summarize(by_row, upper, untranslated, baseline=baselines)
    summary.update({
        "command": command, "machine": machine_description(device), "srunit_version": __version__,
        "settings": settings.to_dict(), "segmenter_file": str(seg_path), "train_minutes_this_call": minutes,
    })
    if records is not None:  # relative to the benchmark folder, as the report reads it
        summary["records"] = os.path.relpath(Path(records).resolve(), out.resolve())
    home.check_in_place(what)
    home.write_json("summary.json", summary)
    home.write_bytes("table.md", (format_table(summary) + "\n").encode("utf-8"))
    if report:
        build_report([out], out / REPORT_FILE, overwrite=True)  # which stops as this does where out was moved
    return summary


@dataclass(frozen=True)
class RunWork:
    """One run of a benchmark: train it (or finish it), score it on the held-out set and write its study record.
    Picklable, so a job process (``--jobs``) does all of it on its own and a record exists as soon as its run is
    scored."""

    settings: BenchSettings
    preset: str
    condition: str
    seed: int
    key: str  # CONDITION/PRESET-seedS
    out: str
    data_root: str
    heldout: str  # the condition's held-out set (testA, testB, testLabels)
    flips: tuple[tuple[int, ...], int | None]
    hallucinated: tuple[int, ...]  # the classes the condition's test sources never hold
    cache_dir: str | None
    scored_by: dict[str, str]
    records: str | None
    identity: dict[str, Any]
    machine: str
    show_progress: bool
    out_identity: tuple[int, int]  # of ``out`` when the benchmark opened it: each step starts only where it still is
    what: str  # the command's words, for `check_folder_in_place`

    def run(self, segment: Segmenter | None = None) -> dict[str, Any]:
        """Train, score and record; returns the run's evaluation record. ``segment``: the scorer (loaded from its
        cache where None, as a job process does)."""
        method = Path(self.preset).stem
        out = Path(self.out)
        minutes = None
        if not RunFolder(out / self.key).scores.is_file():  # scored before (another scorer): trained
            self._check_in_place()
            log.info("training %s on %s data, seed %d", self.preset, self.condition, self.seed)
            start = time.perf_counter()
            try:
                train_run(self.settings, self.preset, Path(self.data_root), out / self.condition,
                          Path(self.key).name, self.seed, self.show_progress)
            except DataError as err:  # an image "does not exist": the benchmark's folder may have been moved
                self._check_in_place()
                raise _generated_data_error(err, Path(self.data_root)) from None
            minutes = (time.perf_counter() - start) / 60
        if segment is None:
            segment = load_or_train_segmenter(self.settings.segmenter, self.cache_dir)[0].segment
        self._check_in_place()
        try:
            record = score_run(out / self.key, Path(self.heldout), segment, self.settings.device, self.flips, {
                "label": f"{method} / {self.condition} / seed {self.seed}", "method": method,
                "condition": self.condition, "seed": self.seed, **self.scored_by,
            }, hallucinated=self.hallucinated, home=out)
        except DataError as err:
            self._check_in_place()
            raise _generated_data_error(err, Path(self.heldout)) from None
        if self.records is not None:
            write_record(self.records, self.key, self.identity, self.seed, record, commit=git_commit(),
                         version=__version__, machine=self.machine, train_minutes=minutes)
        return record

    def _check_in_place(self) -> None:
        """`check_folder_in_place` for the benchmark's folder, from a job process too (which has its identity, not
        the folder opened: where it is now is for the benchmark's own process to say)."""
        check_folder_in_place(Path(self.out), self.out_identity, self.what, fix=_moved_advice(Path(self.out), None))


def _generated_data_error(err: DataError, data_root: Path) -> DataError:
    """``err`` with the advice for a damaged image of the benchmark's own data (``data_root``, a training split of
    `train_data` or a held-out set of `condition_heldout`): the training loader's advice, --data.skip_bad_images, is an
    option neither demo takes nor bench synthscapes continues a folder with (another setting), and translate's
    ("remove the file, or translate a folder without it") left a label map without its image. Deleting the folder has
    it written again, the same images from the same seed."""
    message = str(err)
    hint = next((h for h in (SKIP_HINT, INPUT_FILE_FIX) if h in message), None)
    if hint is None or str(data_root) not in message:
        return err
    return DataError(message.replace(hint, f"{data_root} is this benchmark's generated data: delete that folder "
                                                f"(rm -r {shell_word(data_root)}) and run the same command again, "
                                                f"which writes it again (the same images) and continues"))


def score_run(run_dir: Path, heldout_dir: Path, segment: Segmenter, device: str,
              flips: tuple[tuple[int, ...], int | None], info: dict[str, Any], *,
              hallucinated: tuple[int, ...] = (), home: Path | None = None) -> dict[str, Any]:
    """Translate the held-out label maps with the run's latest checkpoint, score the translations and write the
    run's evaluation record (``RUN/eval/scores.json``); returns the record. A checkpoint with an unmatchability
    mask (StegoGAN) also writes the masks of its translations to ``RUN/eval/masks``. ``home``: the output folder
    that holds both the run and ``heldout_dir`` (`evaluate_images`)."""
    folder = RunFolder(run_dir)
    translated = folder.translated
    translator = Translator.from_checkpoint(run_dir, device=device)
    masks = UnmatchedMasks.from_checkpoint(run_dir, device=device)
    masks_dir = None if masks is None else folder.masks
    # RUN/eval opened once for the translations, their masks and their scores: moved away and replaced by a link
    # (to a folder of the user's) meanwhile, none of them goes through the link.
    with FolderWriter(folder.eval) as eval_dir:
        with eval_dir.subfolder(RunFolder.TRANSLATED) as into:
            translator.translate_folder(heldout_dir / "testA", translated, overwrite=True, _into=into)  # re-scoring
        if masks is not None:
            eval_dir.remove(RunFolder.MASKS)  # re-scoring: only this checkpoint's masks
            with eval_dir.subfolder(RunFolder.MASKS) as masks_writer:
                masks.write_into(translated, masks_writer)
        eval_dir.check_in_place("the scoring")  # the translations are read back by their path
        record = evaluate_images(translated, folder.eval, heldout_dir, segment, info, flips,
                                 hallucinated=hallucinated, masks_dir=masks_dir, home=home, opened=eval_dir)
    flat = flat_scores(record)
    log.info("%s: pixAcc %.2f  clsAcc %.2f  mIoU %.2f  Dist %.1f  flips A->B %.2f", info.get("label", run_dir),
             100 * flat["pixel_accuracy"], 100 * flat["class_accuracy"], 100 * flat["mean_iou"], flat["dist"],
             100 * flat.get("directed_flip_rate", float("nan")))
    if "hallucination_rate" in flat:
        log.info("%s: %.3f%% of the pixels hallucinated as %s", info.get("label", run_dir),
                 100 * flat["hallucination_rate"], ", ".join(CLASS_NAMES[c] for c in hallucinated))
    return record
