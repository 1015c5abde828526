"""The SynthScapes benchmark: train methods on unmatched and matched data, score against exact truth.

For every method (a preset name), data condition and seed, the benchmark trains a run on
SynthScapes, translates the test label maps, segments the translations with the cached scoring
segmenter and writes the run's evaluation record (``RUN/eval/scores.json``, translations and
predicted class maps). The summary gives mean and spread over seeds in the layout of paper
Table 1 (pixAcc, clsAcc, mIoU of the segmenter against the source labels; Dist and Acc(delta)
against the ground-truth renderings), with the segmenter's own score on the ground truth as the
upper bound. Conditions: ``unmatched`` (K-means split, mix 0) and ``matched`` (``matched_mix``
percent of the opposite cluster added to each domain, paper App. D).

Folder layout of a benchmark::

    OUT/settings.json        what was asked; a rerun with the same OUT continues the benchmark
    OUT/data/{unmatched,matched}/trainA,trainB   OUT/data/test/testA,testB,testLabels
    OUT/CONDITION/PRESET-seedS/   a trainer run folder + eval/
    OUT/upper_bound/eval/    the segmenter on the ground-truth renderings
    OUT/summary.json, OUT/table.md
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import srunit
from srunit._atomic import write_json_atomic, write_text_atomic
from srunit.config import load_config, preset_names
from srunit.data.images import load_rgb, save_png_atomic, scan_images
from srunit.data.split import load_label_map
from srunit.data.synthetic import CLASS_NAMES, PALETTE
from srunit.engine import Trainer, resolve_device
from srunit.engine.checkpoint import LATEST
from srunit.errors import ConfigError, DataError
from srunit.eval.paired import paired_scores
from srunit.eval.records import BENCH_FORMAT, EVAL_FORMAT, SEGMENTATION_KEYS, flat_scores
from srunit.eval.segmentation import ConfusionMatrix, segmentation_scores
from srunit.inference import Translator
from srunit.synthscapes.data import write_test_set, write_train_split
from srunit.synthscapes.segmenter import SegmenterSettings, load_or_train_segmenter

__all__ = [
    "CONDITIONS", "METRICS", "PROFILES", "BenchSettings", "evaluate_images", "format_table", "profile_settings",
    "run_benchmark", "summarize",
]

log = logging.getLogger(__name__)

CONDITIONS = ("unmatched", "matched")
METRICS = ("pixel_accuracy", "class_accuracy", "mean_iou", "dist", "acc_30", "acc_50")
DELTAS = (30, 50)


@dataclass(frozen=True)
class BenchSettings:
    """Everything that defines a benchmark; stored in OUT/settings.json.

    ``overrides`` are training-config overrides (``section.key=value``) applied to every run
    on top of the method preset and the size/steps set here.
    """

    methods: tuple[str, ...] = ("cut", "srunit")
    conditions: tuple[str, ...] = CONDITIONS
    seeds: int = 3
    size: int = 64
    steps: int = 600
    batch_size: int = 1
    num_pool: int = 400
    num_test: int = 64
    matched_mix: float = 100.0
    data_seed: int = 0
    device: str = "auto"
    overrides: tuple[str, ...] = ()
    segmenter: SegmenterSettings = field(default_factory=SegmenterSettings)

    def __post_init__(self) -> None:
        known = set(preset_names())
        for m in self.methods:
            if m not in known and not Path(m).is_file():
                raise ConfigError(f"--methods: unknown method preset {m!r}; choose from {', '.join(sorted(known))} "
                                  f"or give a preset YAML file")
        if not self.methods:
            raise ConfigError("--methods is empty; pass e.g. --methods cut,srunit")
        for c in self.conditions:
            if c not in CONDITIONS:
                raise ConfigError(f"--conditions: unknown condition {c!r}; choose from {', '.join(CONDITIONS)}")
        if not self.conditions:
            raise ConfigError("--conditions is empty; pass e.g. --conditions unmatched,matched")
        for name in ("seeds", "size", "steps", "batch_size", "num_pool", "num_test"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.size < 16 or self.size % 4:
            raise ConfigError(f"--size must be a multiple of 4 and at least 16, got {self.size}")
        if not 0.0 <= self.matched_mix <= 100.0:
            raise ConfigError(f"--matched-mix must be a percentage in [0, 100], got {self.matched_mix}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchSettings:
        data = dict(data)
        seg = SegmenterSettings(**data.pop("segmenter"))
        tuples = {f.name for f in fields(cls) if f.name in ("methods", "conditions", "overrides")}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()}, segmenter=seg)


# CPU: about 2 s per 10 steps of CUT at 64 px on 2 cores; GPU: full-size networks at 128 px.
PROFILES: dict[str, dict[str, Any]] = {
    "cpu": dict(size=64, steps=600, num_pool=400, num_test=64,
                overrides=("model.ngf=32", "model.ndf=32", "model.n_blocks=6", "method.num_patches=64"),
                segmenter=SegmenterSettings(size=64, steps=1200, width=24)),
    "gpu": dict(size=128, steps=10000, num_pool=2000, num_test=200, overrides=(),
                segmenter=SegmenterSettings(size=128, num_images=1024, steps=3000, width=32)),
}


def profile_settings(profile: str, *, segmenter_steps: int | None = None, segmenter_images: int | None = None,
                     **changes: Any) -> BenchSettings:
    """Settings of a named profile (``cpu`` or ``gpu``) with ``changes`` applied (None = keep).

    The segmenter always works at the benchmark's image size; ``segmenter_steps`` and
    ``segmenter_images`` change its training length and set size.
    """
    if profile not in PROFILES:
        raise ConfigError(f"--profile: unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    base = dict(PROFILES[profile])
    base.update({k: v for k, v in changes.items() if v is not None})
    seg = base["segmenter"]
    for option, value in (("--segmenter-steps", segmenter_steps), ("--segmenter-images", segmenter_images)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{option} must be a positive integer, got {value!r}")
    base["segmenter"] = replace(seg, size=base["size"], steps=segmenter_steps or seg.steps,
                                num_images=segmenter_images or seg.num_images)
    return BenchSettings(**base)


# --------------------------------------------------------------------------- evaluation

def evaluate_images(images_dir: Path, eval_dir: Path, test_dir: Path, segment: Callable[[np.ndarray], np.ndarray],
                    info: dict[str, Any]) -> dict[str, Any]:
    """Score translated test images and write the evaluation record ``eval_dir/scores.json``.

    Args:
        images_dir: translations (or, for the upper bound, the ground truth), named as testA.
        eval_dir: gets ``predicted/NAME.png`` (class ids) and ``scores.json``.
        test_dir: holds ``testA``, ``testB`` and ``testLabels``.
        segment: (H, W, 3) uint8 -> (H, W) class ids.
        info: label, method, condition, seed ... copied into the record.
    """
    labels_dir = test_dir / "testLabels"
    cm = ConfusionMatrix(len(CLASS_NAMES))
    for path in scan_images(labels_dir, "label map"):
        image_path = images_dir / path.name
        if not image_path.is_file():
            raise DataError(f"{image_path} is missing: every test label map {path.name} needs its translation")
        labels = load_label_map(path)
        pred = segment(np.asarray(load_rgb(image_path)))
        cm.update(pred, labels, source=str(image_path))
        save_png_atomic(Image.fromarray(pred.astype(np.uint8)), eval_dir / "predicted" / path.name)
    paired = paired_scores(images_dir, test_dir / "testB", DELTAS)
    record = {
        "format": EVAL_FORMAT, **info,
        "segmentation": {**segmentation_scores(cm, CLASS_NAMES).to_dict(), "ignore_index": cm.ignore_index},
        "paired": paired.to_dict(),
        "class_names": list(CLASS_NAMES), "palette": PALETTE.tolist(),
        "images": {"source": str((test_dir / "testA").resolve()), "target": str((test_dir / "testB").resolve()),
                   "labels": str(labels_dir.resolve()), "translated": str(images_dir.resolve()),
                   "predicted": "predicted"},
    }
    write_json_atomic(eval_dir / "scores.json", record)
    return record


# --------------------------------------------------------------------------- running

def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__} CPU"


def _prepare_out(out: Path, settings: BenchSettings) -> None:
    stored = out / "settings.json"
    if stored.is_file():
        try:
            previous = BenchSettings.from_dict(json.loads(stored.read_text()))
        except (ValueError, TypeError, KeyError) as e:
            raise ConfigError(f"{stored} cannot be read as benchmark settings ({e}); pass a new --out "
                              f"(nothing was changed)") from e
        # The segmenter only scores: another one re-scores the trained runs instead of refusing.
        if replace(previous, segmenter=settings.segmenter) != settings:
            raise ConfigError(f"{out} holds a benchmark with other settings ({stored}); pass a new --out, or the "
                              f"same options as before to continue it (nothing was changed)")
        if previous.segmenter != settings.segmenter:
            log.info("other segmenter settings: the runs in %s are re-scored, not retrained", out)
            write_json_atomic(stored, settings.to_dict())
        log.info("continuing the benchmark in %s", out)
        return
    if out.exists() and any(out.iterdir()):
        raise DataError(f"--out {out} exists and is not a benchmark folder; pass a new folder (nothing was changed)")
    write_json_atomic(stored, settings.to_dict())


def _data(out: Path, settings: BenchSettings, condition: str) -> Path:
    root = out / "data" / condition
    if not (root / "manifest.json").is_file():  # absent or interrupted: rebuild from scratch
        if root.exists():
            shutil.rmtree(root)
        mix = 0.0 if condition == "unmatched" else settings.matched_mix
        manifest = write_train_split(root, num_pool=settings.num_pool, size=settings.size,
                                     seed=settings.data_seed, mix=mix)
        log.info("%s data: trainA %d label maps (mean class fractions %s), trainB %d renderings (%s)", condition,
                 len(manifest["trainA"]["pool_indices"]), manifest["trainA"]["class_fractions"],
                 len(manifest["trainB"]["pool_indices"]), manifest["trainB"]["class_fractions"])
    return root


def _test_data(out: Path, settings: BenchSettings) -> Path:
    root = out / "data" / "test"
    done = root / "test.json"
    if not done.is_file():
        if root.exists():
            shutil.rmtree(root)
        summary = write_test_set(root, num_test=settings.num_test, size=settings.size, seed=settings.data_seed)
        write_json_atomic(done, summary)
    return root


def _train(settings: BenchSettings, preset: str, data_root: Path, runs_dir: Path, name: str, seed: int,
           show_progress: bool) -> Path:
    run_dir = runs_dir / name
    if (run_dir / "checkpoints" / LATEST).exists():
        trainer = Trainer.resume(run_dir, show_progress=show_progress)
        if trainer.step >= trainer.schedule.total_steps:
            return run_dir
        return trainer.fit()
    if run_dir.exists():  # started but never reached a checkpoint: nothing worth keeping
        shutil.rmtree(run_dir)
    s = settings.size
    every = max(1, settings.steps // 4)
    config = load_config(preset, [
        f"data.root={data_root}", f"data.load_size={s + s // 8}", f"data.crop_size={s}", "data.num_workers=0",
        f"train.steps={settings.steps}", "train.decay_fraction=0.5", f"train.batch_size={settings.batch_size}",
        f"train.seed={seed}", f"train.device={settings.device}", f"train.runs_dir={runs_dir}", f"train.name={name}",
        f"train.log_every={min(50, settings.steps)}", f"train.sample_every={every}",
        f"train.checkpoint_every={every}", f"train.keep_every={settings.steps}", *settings.overrides,
    ])
    return Trainer(config, show_progress=show_progress).fit()


def _scored_by(scores_file: Path, segmenter_name: str) -> bool:
    """Whether ``scores_file`` exists and was written with the segmenter file ``segmenter_name``."""
    return scores_file.is_file() and json.loads(scores_file.read_text()).get("segmenter") == segmenter_name


def _run_name(preset: str, seed: int) -> str:
    return f"{Path(preset).stem}-seed{seed}"


def run_benchmark(out: str | Path, settings: BenchSettings, *, cache_dir: str | Path | None = None,
                  command: str = "", show_progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the benchmark in ``out``; returns the summary (also in ``out/summary.json``).

    Finished runs (with ``eval/scores.json``) are reused, an interrupted run resumes from its
    latest checkpoint, so a rerun with the same settings only does what is missing. With other
    segmenter settings (only) the trained runs are translated and scored again, not retrained.
    """
    out = Path(out)
    _prepare_out(out, settings)
    device = resolve_device(settings.device)
    segmenter, seg_path = load_or_train_segmenter(settings.segmenter, cache_dir, device=device)
    test_dir = _test_data(out, settings)
    segment = segmenter.segment
    # Two references: the ground truth itself (the segmenter's upper bound) and the untranslated
    # label maps (what a translator that changes nothing would score).
    references = {"upper_bound": (test_dir / "testB", "segmenter on ground-truth renderings"),
                  "identity": (test_dir / "testA", "label maps, untranslated")}
    scored_by = {"segmenter": seg_path.name, "benchmark": "synthscapes"}
    for folder, (images, label) in references.items():
        if not _scored_by(out / folder / "eval" / "scores.json", seg_path.name):
            evaluate_images(images, out / folder / "eval", test_dir, segment,
                            {"label": label, "method": folder, "condition": "-", **scored_by})
    records: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    minutes: dict[str, float] = {}
    for condition in settings.conditions:
        data_root = _data(out, settings, condition)
        for preset in settings.methods:
            method = Path(preset).stem
            for seed in range(settings.seeds):
                name = _run_name(preset, seed)
                run_dir = out / condition / name
                scores_file = run_dir / "eval" / "scores.json"
                if not _scored_by(scores_file, seg_path.name):
                    if not scores_file.is_file():  # a run is scored only after its training finished
                        log.info("training %s on %s data, seed %d", preset, condition, seed)
                        start = time.perf_counter()
                        _train(settings, preset, data_root, out / condition, name, seed, show_progress)
                        minutes[f"{condition}/{name}"] = (time.perf_counter() - start) / 60
                    translated = run_dir / "eval" / "translated"
                    translator = Translator.from_checkpoint(run_dir, device=settings.device)
                    translator.translate_folder(test_dir / "testA", translated)
                    record = evaluate_images(translated, run_dir / "eval", test_dir, segment, {
                        "label": f"{method} / {condition} / seed {seed}", "method": method,
                        "condition": condition, "seed": seed, **scored_by,
                    })
                    flat = flat_scores(record)
                    log.info("%s / %s / seed %d: pixAcc %.2f  clsAcc %.2f  mIoU %.2f  Dist %.1f", preset, condition,
                             seed, 100 * flat["pixel_accuracy"], 100 * flat["class_accuracy"],
                             100 * flat["mean_iou"], flat["dist"])
                else:
                    record = json.loads(scores_file.read_text())
                records.setdefault((method, condition), []).append((f"{condition}/{name}", record))
    summary = summarize(records, *(json.loads((out / f / "eval" / "scores.json").read_text()) for f in references))
    summary.update({
        "command": command, "machine": _machine(device), "srunit_version": srunit.__version__,
        "settings": settings.to_dict(), "segmenter_file": str(seg_path), "train_minutes_this_call": minutes,
    })
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "table.md", format_table(summary) + "\n")
    return summary


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def summarize(records: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]],
              upper_record: dict[str, Any], identity_record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1) over seeds per (method, condition).

    ``identity_record`` (the untranslated label maps, folder ``identity``) becomes a last row
    with n = 1; ``upper_record`` (the ground truth, folder ``upper_bound``) the upper bound.
    """
    if identity_record is not None:
        records = {**records, ("label maps, untranslated", "-"): [("identity", identity_record)]}
    rows = []
    for (method, condition), runs in records.items():
        flats = [flat_scores(r) for _, r in runs]
        stats = {k: _mean_std([f[k] for f in flats]) for k in METRICS}
        rows.append({"method": method, "condition": condition, "n": len(runs),
                     "mean": {k: v[0] for k, v in stats.items()}, "std": {k: v[1] for k, v in stats.items()},
                     "runs": [path for path, _ in runs]})
    upper = flat_scores(upper_record)
    return {
        "format": BENCH_FORMAT, "benchmark": "synthscapes", "metrics": list(METRICS), "rows": rows,
        "upper_bound": {"label": "segmenter on ground-truth renderings", "run": "upper_bound",
                        **{k: upper[k] for k in SEGMENTATION_KEYS}},
    }


def format_table(summary: dict[str, Any]) -> str:
    """Markdown table in the layout of paper Table 1: percentages for accuracies, mean ± std over seeds."""
    head = "| method | data | seeds | pixAcc | clsAcc | mIoU | Dist | Acc(30) | Acc(50) |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]

    def cell(row: dict[str, Any], key: str) -> str:
        scale = 1.0 if key == "dist" else 100.0
        mean, std = row["mean"][key] * scale, row["std"][key] * scale
        return f"{mean:.2f} ± {std:.2f}" if row["n"] > 1 else f"{mean:.2f}"

    for row in summary["rows"]:
        seeds = row["n"] if row["condition"] != "-" else "-"
        lines.append(f"| {row['method']} | {row['condition']} | {seeds} | "
                     + " | ".join(cell(row, k) for k in METRICS) + " |")
    ub = summary["upper_bound"]
    lines.append(f"| ground truth (segmenter upper bound) | - | - | {100 * ub['pixel_accuracy']:.2f} | "
                 f"{100 * ub['class_accuracy']:.2f} | {100 * ub['mean_iou']:.2f} | 0.00 | 100.00 | 100.00 |")
    return "\n".join(lines)
