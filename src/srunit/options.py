"""The typed option sections of a run and the validators every option goes through.

A leaf module: it imports nothing from the package but the errors, so config assembly
(`srunit.config`), the methods (whose options extend `MethodOptions`), the data pipeline and the
engine can all import it without a cycle. Each checker raises `ConfigError` naming the option, the
value, what is allowed and the fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from srunit.errors import ConfigError

__all__ = [
    "PreprocessMode", "PREPROCESS_MODES", "CROP_MODES", "Precision", "PRECISIONS", "InitType", "INIT_TYPES",
    "ProjectorNorm", "PROJECTOR_NORMS",
    "DEFAULT_MAX_PIXELS", "LOGGER_NAMES", "check_value", "check_int", "check_range", "check_choice", "check_crop_fits",
    "is_folder_name",
    "MethodOptions", "ModelConfig", "DataConfig", "TrainConfig", "option", "option_help",
]

PreprocessMode = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
PREPROCESS_MODES: tuple[str, ...] = get_args(PreprocessMode)
# The modes that take a random crop (and so yield crop_size x crop_size images).
CROP_MODES: frozenset[str] = frozenset({"resize_and_crop", "crop", "scale_width_and_crop"})

# 4096 x 4096: decoding is cheap, but translating (or resizing) an image costs memory in proportion
# to its pixels; a 12000 x 12000 PNG, under PIL's own bomb limit, took 22 GB to translate.
DEFAULT_MAX_PIXELS = 4096 * 4096

LOGGER_NAMES: tuple[str, ...] = ("tensorboard", "wandb", "mlflow")  # experiment trackers (engine/loggers.py)

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)

InitType = Literal["xavier", "normal"]
INIT_TYPES: tuple[str, ...] = get_args(InitType)

ProjectorNorm = Literal["cut", "shifted"]
PROJECTOR_NORMS: tuple[str, ...] = get_args(ProjectorNorm)


# ----------------------------------------------------------------------------- option fields


def option(default: Any = dataclasses.MISSING, help: str = "", *,  # noqa: A002 - argparse's name for it
           default_factory: Any = dataclasses.MISSING) -> Any:
    """A config option: a dataclass field whose help text is metadata (``field.metadata["help"]``),
    which `srunit train --help` and the documentation's configuration reference print."""
    if not help:
        raise ValueError("every option needs a help text")
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def option_help(f: dataclasses.Field[Any]) -> str:
    """The help text of a config option field ('' for a field made without `option`)."""
    return str(f.metadata.get("help", ""))


# ----------------------------------------------------------------------------- validators

def check_value(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ConfigError "KEY: invalid value VALUE; allowed: ALLOWED" unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}: invalid value {value!r}; allowed: {allowed}")


def check_int(value: object, key: str, minimum: int, *, fix: str | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``minimum``, else ConfigError.

    ``key`` names the option as the user wrote it (``train.batch_size``, ``--num-pool``); ``fix``
    overrides the default advice "pass KEY MINIMUM or more".
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        advice = fix or f"pass {key} {minimum} or more"
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}; {advice}")
    return int(value)


def check_range(value: float, key: str, low: float, high: float) -> float:
    """``value`` as a float if it is a number in [low, high], else ConfigError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not low <= value <= high:
        raise ConfigError(f"{key} must be between {low:g} and {high:g}, got {value!r}; pass a value in that range")
    return float(value)


def check_choice(value: object, key: str, choices: Collection[str]) -> None:
    """ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{key}: invalid value {value!r}; allowed: {', '.join(map(str, choices))}")


def is_folder_name(name: str) -> bool:
    """Whether ``name`` names one folder inside its parent: not empty or blank, not '.' or '..', and
    without a path separator of any platform, so PARENT/NAME can neither leave PARENT nor be PARENT."""
    return bool(name.strip()) and name not in (".", "..") and not any(c in name for c in "/\\\0")


def check_crop_fits(preprocess: str, load_size: int, crop_size: int) -> None:
    """In the modes that crop a resized image, the crop must fit into the resized image."""
    if preprocess in ("resize_and_crop", "scale_width_and_crop") and crop_size > load_size:
        raise ConfigError(
            f"data.crop_size {crop_size} is larger than data.load_size {load_size} with preprocess "
            f"{preprocess!r}; the crop is taken from the resized image, so set data.load_size >= data.crop_size"
        )


# ----------------------------------------------------------------------------- sections

@dataclass(frozen=True)
class MethodOptions:
    """Base of every registered method's options dataclass; `name` selects the method."""

    name: str = option("", "the registered method")

    def check_data(self, data: DataConfig) -> None:
        """Raise ConfigError if the method cannot train on images that `data` yields; by default it can."""


@dataclass(frozen=True)
class ModelConfig:
    """Network architecture (the public CUT/SRUNIT layout, so its checkpoints load)."""

    ngf: int = option(64, "generator width of the first conv")
    ndf: int = option(64, "discriminator width of the first conv")
    n_blocks: int = option(9, "residual blocks in the generator (9 for 256 px, 6 for 128 px)")
    n_layers_d: int = option(3, "PatchGAN depth (3 -> 70x70 receptive field)")
    antialias: bool = option(True, "blur-pool down-sampling in G and D (else strided convs)")
    antialias_up: bool = option(True, "blur up-sampling in G (else transposed convs)")
    feature_layers: tuple[int, ...] = option((0, 4, 8, 12, 16), "positions of the K feature layers in G")
    projector_dim: int = option(256, "output size of each F_k")
    projector_norm: ProjectorNorm = option("cut", "how F_k's output is made unit length: cut = x / (||x|| + 1e-7), "
                                                  "as the public CUT code; shifted = (x + 1e-12) / ||x + 1e-12||, as "
                                                  "the public SRUNIT code (its CUT path too)")
    init_gain: float = option(0.02, "gain of the init: xavier-normal gain, or the std of `normal`")
    init_type: InitType = option("xavier", "xavier: xavier-normal (CUT, SRUNIT, GcGAN); normal: N(0, gain) (CycleGAN)")

    def __post_init__(self) -> None:
        check_value(self.ngf >= 1, "model.ngf", self.ngf, "an integer >= 1")
        check_value(self.ndf >= 1, "model.ndf", self.ndf, "an integer >= 1")
        check_value(self.n_blocks >= 1, "model.n_blocks", self.n_blocks, "an integer >= 1")
        check_value(self.n_layers_d >= 1, "model.n_layers_d", self.n_layers_d, "an integer >= 1")
        check_value(len(self.feature_layers) >= 1, "model.feature_layers", self.feature_layers, "at least one position")
        check_value(self.projector_dim >= 1, "model.projector_dim", self.projector_dim, "an integer >= 1")
        check_choice(self.init_type, "model.init_type", INIT_TYPES)
        check_choice(self.projector_norm, "model.projector_norm", PROJECTOR_NORMS)


@dataclass(frozen=True)
class DataConfig:
    """Where the two unpaired image sets are and how they are augmented."""

    root: str | None = option(None, "folder holding trainA/ and trainB/ (CycleGAN/CUT layout)")
    dir_a: str | None = option(None, "explicit domain-A folder (overrides root/trainA)")
    dir_b: str | None = option(None, "explicit domain-B folder (overrides root/trainB)")
    preprocess: PreprocessMode = option("resize_and_crop",
                                        "resize_and_crop | crop | scale_width | scale_width_and_crop | none")
    load_size: int = option(286, "resize target before cropping")
    crop_size: int = option(256, "training crop")
    flip: bool = option(True, "random horizontal flip")
    serial_batches: bool = option(False, "pair A[i] with B[i] instead of a random B")
    skip_bad_images: bool = option(False, "drop unreadable/truncated files (reported) instead of failing")
    num_workers: int = option(2, "DataLoader worker processes")
    max_pixels: int = option(
        DEFAULT_MAX_PIXELS, "refuse (or, with skip_bad_images, skip) larger images, read from headers"
    )

    def __post_init__(self) -> None:
        check_choice(self.preprocess, "data.preprocess", PREPROCESS_MODES)
        check_value(self.load_size >= 1, "data.load_size", self.load_size, "an integer >= 1")
        check_value(self.crop_size >= 4, "data.crop_size", self.crop_size, "an integer >= 4")
        check_value(self.num_workers >= 0, "data.num_workers", self.num_workers, "an integer >= 0")
        check_int(self.max_pixels, "data.max_pixels", 1)
        check_crop_fits(self.preprocess, self.load_size, self.crop_size)

    @property
    def crops(self) -> bool:
        """Whether every image becomes crop_size x crop_size (so images of any size can be batched)."""
        return self.preprocess in CROP_MODES

    def domain_dirs(self) -> tuple[Path, Path]:
        """(folder A, folder B), from dir_a/dir_b or root/trainA and root/trainB."""
        if self.root is None and (self.dir_a is None or self.dir_b is None):
            raise ConfigError(
                "no training data given: set data.root (a folder with trainA/ and trainB/) "
                "or both data.dir_a and data.dir_b"
            )
        root = Path(self.root) if self.root is not None else None
        a = Path(self.dir_a) if self.dir_a is not None else root / "trainA"  # type: ignore[operator]
        b = Path(self.dir_b) if self.dir_b is not None else root / "trainB"  # type: ignore[operator]
        return a, b


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, run folder and logging cadence."""

    name: str = option("srunit", "run folder: RUNS_DIR/NAME")
    runs_dir: str = option("runs", "parent folder of the run folders")
    epochs: int = option(200, "epochs at the initial learning rate")
    epochs_decay: int = option(200, "epochs of linear decay to zero")
    steps: int = option(0, "if > 0, a step budget that replaces epochs/epochs_decay")
    decay_fraction: float = option(0.5, "with `steps`: the final share of steps with linear decay")
    batch_size: int = option(1, "images per domain per step")
    lr: float = option(2e-4, "Adam, for G, D and F")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    seed: int = option(0, "initialisation, data order, augmentation and noise")
    device: str = option("auto", "auto | cpu | cuda | cuda:N | mps")
    precision: Precision = option("fp32", "autocast dtype for the forward passes")
    compile: bool = option(False, "torch.compile the networks")
    channels_last: bool = option(
        False, "keep images and weights in channels-last memory format (pays on GPU tensor cores)"
    )
    activation_checkpointing: bool = option(
        False, "recompute residual blocks in the backward pass: less memory, more time"
    )
    log_every: int = option(50, "steps between scalar logs (the only host syncs)")
    sample_every: int = option(500, "steps between image grids")
    checkpoint_every: int = option(500, "steps between `latest` checkpoints")
    keep_every: int = option(5000, "steps between checkpoints that are kept")
    deterministic: bool = option(False, "torch.use_deterministic_algorithms")
    loggers: tuple[str, ...] = option(
        ("tensorboard",), "experiment trackers: tensorboard, wandb, mlflow (optional extras)"
    )

    def __post_init__(self) -> None:
        check_value(
            is_folder_name(self.name),
            "train.name",
            self.name,
            "a folder name: not empty, not '.' or '..', without '/', '\\' or NUL (the run lives in RUNS_DIR/NAME)",
        )
        for key in ("epochs", "epochs_decay", "steps"):
            check_value(getattr(self, key) >= 0, f"train.{key}", getattr(self, key), "an integer >= 0")
        check_value(
            0.0 <= self.decay_fraction <= 1.0, "train.decay_fraction", self.decay_fraction, "a number in [0, 1]"
        )
        check_value(
            self.steps > 0 or self.epochs + self.epochs_decay > 0,
            "train.epochs",
            self.epochs,
            "epochs + epochs_decay > 0, or train.steps > 0",
        )
        check_value(self.batch_size >= 1, "train.batch_size", self.batch_size, "an integer >= 1")
        for logger in self.loggers:
            check_choice(logger, "train.loggers", LOGGER_NAMES)
        check_value(0 <= self.seed < 2**64, "train.seed", self.seed, "an integer in [0, 2**64 - 1]")
        check_value(self.lr > 0, "train.lr", self.lr, "a number > 0")
        check_value(0.0 <= self.beta1 < 1.0, "train.beta1", self.beta1, "a number in [0, 1)")
        check_value(0.0 <= self.beta2 < 1.0, "train.beta2", self.beta2, "a number in [0, 1)")
        check_choice(self.precision, "train.precision", PRECISIONS)
        for key in ("log_every", "sample_every", "checkpoint_every", "keep_every"):
            check_value(getattr(self, key) >= 1, f"train.{key}", getattr(self, key), "an integer >= 1")
