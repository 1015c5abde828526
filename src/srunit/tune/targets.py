"""What a tuning trial trains on and is scored on: SynthScapes (its validation split), or the user's own data.

A target builds a trial's training config, says what defines the run (its study-record settings), and scores a
trained run on images that the final comparison never uses: SynthScapes' validation layouts (a seed stream of
their own, sharing no image with the test set), or the user's validation images with their label maps and
segmenter. Targets are plain picklable dataclasses: each worker process of a study gets a copy and loads its
segmenter on first use.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from srunit._atomic import FolderWriter
from srunit.checks import MAX_CLASSES, check_ignore_index, check_int
from srunit.config import Config, load_config
from srunit.errors import ConfigError, DataError
from srunit.eval.flips import class_ids
from srunit.eval.records import EVAL_FORMAT, stored_folder, update_run_record
from srunit.eval.study_records import canonical_run_settings
from srunit.runtime.run_folder import RunFolder

__all__ = ["Target", "SynthScapesTarget", "FolderTarget", "target_from_dict", "stored_target", "scores_of",
           "SYNTHSCAPES_SCORES", "FOLDER_SCORES"]


class Target:
    """The interface of a trial target (see the module docstring)."""

    kind: str = ""
    scores: tuple[str, ...] = ()  # the flat score keys it gives (objectives it can serve)

    def check(self) -> None:
        """Refuse what would fail every trial (a wrong segmenter spec) before the tuning folder is made."""

    def prepare(self, out: Path) -> None:
        """Write whatever the trials need before the first one (data), in the tuning folder ``out``."""

    def config(self, preset: str, user: Sequence[str], trial: dict[str, Any], runs_dir: Path, name: str,
               seed: int) -> Config:
        """The training config of one run of a trial: ``preset`` with the target's own settings, then the user's
        overrides (``["section.key=value"]``), then the trial's parameters (``{"section.key": value}``)."""
        raise NotImplementedError

    def identity(self, config: Config) -> dict[str, Any]:
        raise NotImplementedError

    def score(self, run_dir: Path) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in {"kind": self.kind, **asdict(self)}.items()  # type: ignore[call-overload]
                if k != "scores" and not k.startswith("_")}



# The flat score keys each kind of target gives (the objectives it can serve): SynthScapes' validation split has paired
# ground truth (dist, acc_*); a folder of the user's has label maps only.
SYNTHSCAPES_SCORES = ("mean_iou", "pixel_accuracy", "class_accuracy", "directed_flip_rate", "flip_rate", "dist",
                      "acc_30", "acc_50")
FOLDER_SCORES = ("mean_iou", "pixel_accuracy", "class_accuracy", "flip_rate", "directed_flip_rate")

@dataclass
class SynthScapesTarget(Target):
    """Trials train on a SynthScapes condition (default: unmatched) of a profile and are scored on its validation
    split, with the benchmark's scorer (cached in ``cache_dir``). The data lie in the tuning folder ``out``, which
    is where the study is now, never stored: a tuning folder renamed or moved continues where it lies."""

    settings: dict[str, Any]  # BenchSettings.to_dict()
    out: str
    condition: str = "unmatched"
    cache_dir: str | None = None
    kind: str = field(default="synthscapes", init=False)
    scores: tuple[str, ...] = field(default=SYNTHSCAPES_SCORES, init=False, repr=False)

    def __post_init__(self) -> None:
        from srunit.synthscapes.settings import CONDITIONS

        if self.condition not in CONDITIONS:
            raise ConfigError(f"--condition: unknown condition {self.condition!r}; choose from unmatched or matched")
        if self.condition == "nonbijective":  # its class lies in domain B only: the validation layouts hold it
            raise ConfigError("--condition nonbijective cannot be tuned: trials are scored by segmenting validation "
                              "layouts, which hold the class domain A of that condition never shows (`bench "
                              "synthscapes` scores it by the hallucination rate on test layouts without it); tune "
                              "on unmatched or matched")
        self._segment: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_segment"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._segment = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().to_dict().items() if k != "out"}

    @property
    def bench(self) -> Any:
        from srunit.synthscapes.settings import BenchSettings

        return BenchSettings.from_dict(self.settings)

    def prepare(self, out: Path) -> None:
        from srunit.synthscapes.benchmark import heldout_data, train_data

        train_data(Path(self.out), self.bench, self.condition)
        train_data(Path(self.out), self.bench, "unmatched")  # the directed flip rate's classes come from it
        heldout_data(Path(self.out), self.bench, "validation")
        self._segmenter()

    def _segmenter(self) -> Any:
        if self._segment is None:
            from srunit.runtime.device import resolve_device
            from srunit.synthscapes.scorer import load_or_train_segmenter

            bench = self.bench
            device = resolve_device(bench.device, "--device")
            net, path = load_or_train_segmenter(bench.segmenter, self.cache_dir, device=device)
            self._segment = (net.segment, path.name)
        return self._segment

    def config(self, preset: str, user: Sequence[str], trial: dict[str, Any], runs_dir: Path, name: str,
               seed: int) -> Config:
        from srunit.synthscapes.benchmark import run_config

        root = Path(self.out) / "data" / self.condition
        return run_config(self.bench, preset, root, runs_dir, name, seed, user, trial)

    def identity(self, config: Config) -> dict[str, Any]:
        from srunit.synthscapes.benchmark import run_settings

        return run_settings(self.bench, config, self.condition, split="validation")

    def score(self, run_dir: Path) -> dict[str, Any]:
        from srunit.synthscapes.benchmark import flip_classes, score_run

        segment, segmenter_name = self._segmenter()
        bench = self.bench
        info = {"label": run_dir.name, "method": None, "condition": self.condition, "split": "validation",
                "segmenter": segmenter_name, "benchmark": "synthscapes"}
        return score_run(run_dir, Path(self.out) / "data" / "validation", segment, bench.device,
                         flip_classes(Path(self.out), bench), info, home=Path(self.out))


@dataclass
class FolderTarget(Target):
    """Trials train on the user's data (``data_root`` with trainA/trainB, or the preset's layout) and are scored on
    validation images of domain A (``images``) against their label maps (``labels``) with ``segmenter``."""

    data_root: str
    images: str
    labels: str
    segmenter: str
    classes: int
    ignore_index: int = 255
    class_names: list[str] | None = None
    flip_from: list[str] = field(default_factory=list)
    flip_to: str | None = None
    kind: str = field(default="folders", init=False)
    scores: tuple[str, ...] = field(default=FOLDER_SCORES, init=False, repr=False)

    def __post_init__(self) -> None:
        from srunit.eval.segmentation import class_name_list

        # Checked before the study starts: --classes 0 or --ignore-index -7 began training the first trial.
        check_int(self.classes, "--classes", 1, maximum=MAX_CLASSES,
                  fix="pass the number of classes the segmenter predicts (19 for Cityscapes)")
        check_ignore_index(self.ignore_index)
        for option, path in (("--data", self.data_root), ("--val-images", self.images),
                             ("--val-labels", self.labels)):
            if not Path(path).is_dir():
                raise DataError(f"{option} {path} is not a folder; give the folder of {_FOLDERS[option]}")
        names = class_name_list(self.class_names, self.classes)
        self._flips = (class_ids(self.flip_from, names, "--flip-from") if self.flip_from else (),
                       class_ids(self.flip_to, names, "--flip-to")[0] if self.flip_to else None)
        if bool(self._flips[0]) != (self._flips[1] is not None):
            raise ConfigError("the directed flip rate needs both --flip-from and --flip-to; give both or neither")
        self._segment: Any = None
        self._digests: dict[str, str] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_segment", "_digests")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._segment = None
        self._digests = None

    def check(self) -> None:
        self._segmenter()  # a wrong spec fails before the tuning folder is made and any training
        # The folders' images, as every trial reads them: a run folder, a folder without images (or --data without
        # trainA/ and trainB/) failed the first trial, after OUT was made, and the corrected command into the same
        # --out was then refused as "a tuning study with other settings".
        self._contents()
        for domain in ("trainA", "trainB"):
            if not (Path(self.data_root) / domain).is_dir():
                raise DataError(f"--data {self.data_root} has no {domain}/ folder; give the folder of "
                                f"{_FOLDERS['--data']}")
        # Each validation image needs its label map: the first trial trained, then its scoring named the trial's own
        # translated copy of an image without one, and removing that copy as advised trained and failed another trial.
        from srunit.data.files import pair_by_stem, scan_images

        hint = "give --val-images and --val-labels folders whose files pair by name stem"
        images, labels = Path(self.images).expanduser(), Path(self.labels).expanduser()
        pair_by_stem((scan_images(images, "--val-images image", hint=hint), images, "--val-images image"),
                     (scan_images(labels, "--val-labels label", hint=hint), labels, "--val-labels label map"))

    def prepare(self, out: Path) -> None:
        self._segmenter()

    def _segmenter(self) -> Any:
        if self._segment is None:
            from srunit.eval.segmenters import load_segmenter

            self._segment = load_segmenter(self.segmenter, self.classes)
        return self._segment

    def config(self, preset: str, user: Sequence[str], trial: dict[str, Any], runs_dir: Path, name: str,
               seed: int) -> Config:
        config = load_config(preset, user).with_overrides(trial)
        return config.with_overrides({"data.root": self.data_root, "train.runs_dir": str(runs_dir),
                                      "train.name": name, "train.seed": seed})

    def _contents(self) -> dict[str, str]:
        """Digests of the folders' images (and of the segmenter's file, where it is one), computed once: a study's
        records name its data by content, so a study moved to another machine, where the same data lies under
        another path, still finds them (`image_set_digest`)."""
        if self._digests is not None:
            return self._digests
        from srunit._reading import file_digest
        from srunit.eval.records import image_set_digest

        digests = {option: image_set_digest(path, _FOLDERS[option])
                   for option, path in (("--data", self.data_root), ("--val-images", self.images),
                                        ("--val-labels", self.labels))}
        segmenter = Path(self.segmenter)
        digests["segmenter"] = file_digest(segmenter, "--segmenter") if segmenter.is_file() else self.segmenter
        self._digests = digests
        return digests

    def identity(self, config: Config) -> dict[str, Any]:
        digests = self._contents()
        data = {"images": digests["--data"]}
        evaluation = {"images": digests["--val-images"], "labels": digests["--val-labels"],
                      "segmenter": digests["segmenter"], "classes": self.classes, "ignore_index": self.ignore_index,
                      "flip_from": list(self.flip_from), "flip_to": self.flip_to}
        return canonical_run_settings(config.to_dict(), data=data, evaluation=evaluation)

    def score(self, run_dir: Path) -> dict[str, Any]:
        from srunit.eval.scoring import score_segmentation
        from srunit.inference import Translator

        folder = RunFolder(run_dir)
        translated = folder.translated
        if translated.exists():
            shutil.rmtree(translated)
        Translator.from_checkpoint(run_dir).translate_folder(self.images, translated, overwrite=True)
        # The run's own folder, opened as its evaluation writes it (a path there is refused as inside a run folder)
        with FolderWriter(folder.predicted) as predicted:
            result = score_segmentation(translated, self.labels, self._segmenter(), self.classes,
                                        ignore_index=self.ignore_index, class_names=self.class_names,
                                        predicted=predicted)
        part = {"format": EVAL_FORMAT, "label": run_dir.name, "split": "validation", "segmenter": self.segmenter,
                "segmentation": result.to_dict(*self._flips), "class_names": list(result.scores.class_names),
                "images": {role: stored_folder(path, folder.eval, run_dir)
                           for role, path in (("translated", translated), ("labels", self.labels),
                                              ("source", self.images), ("predicted", folder.predicted))}}
        return update_run_record(folder.eval, part, replace=True)


_FOLDERS = {"--data": "the training data (trainA/ and trainB/)",
            "--val-images": "validation images of domain A (never used for training)",
            "--val-labels": "the label maps of the validation images (same name stems)"}


def scores_of(kind: object) -> tuple[str, ...] | None:
    """The score keys a target of ``kind`` ("synthscapes", "folders") gives; None for another kind."""
    return {"synthscapes": SYNTHSCAPES_SCORES, "folders": FOLDER_SCORES}.get(kind) if isinstance(kind, str) else None


def stored_target(data: dict[str, Any]) -> dict[str, Any]:
    """A target's settings as a tuning folder stores them: a SynthScapes target's folder is the tuning folder,
    wherever it now lies (tune.json of earlier versions recorded its path, and a renamed folder's study could not
    be continued: "target differ")."""
    if data.get("kind") == "synthscapes":
        return {k: v for k, v in data.items() if k != "out"}
    return data


def target_from_dict(data: dict[str, Any], out: str | Path) -> Target:
    """The target stored in a tuning folder's settings (``Target.to_dict``), for the tuning folder ``out``."""
    data = dict(data)
    kind = data.pop("kind", None)
    data.pop("scores", None)
    if kind == "synthscapes":
        return SynthScapesTarget(**{**data, "out": str(out)})
    if kind == "folders":
        return FolderTarget(**data)
    raise DataError(f"unknown tuning target {kind!r} in the stored settings; pass a new --out")
