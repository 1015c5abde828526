"""The typed option sections of a run: model, data and train, and the base of every method's options.

Each option is a dataclass field made with `option` (its help text is metadata, which `srunit train
--help` and the configuration reference print); each section checks its values with the validators
of `srunit.checks` when it is built. Config assembly (`srunit.config`), the methods (whose options
extend `MethodOptions`), the data pipeline and the engine import it; what runs after training does
not (it needs `srunit.checks` only).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import numpy as np

from srunit.checks import (
    DEFAULT_MAX_PIXELS,
    MAX_BATCH,
    MAX_NAME_BYTES,
    MAX_PIXELS_LIMIT,
    NAME_RULE,
    Precision,
    check_choice,
    check_crop_fits,
    check_device_name,
    check_int,
    check_utf8_path,
    check_value,
    is_folder_name,
)
from srunit.errors import ConfigError

__all__ = [
    "PreprocessMode", "PREPROCESS_MODES", "CROP_MODES", "InitType", "INIT_TYPES", "ProjectorNorm", "PROJECTOR_NORMS",
    "LOGGER_NAMES", "MethodOptions", "TermMethodOptions", "ModelConfig", "DataConfig", "TrainConfig", "option",
    "option_help", "check_pool_option", "check_option_types",
]

PreprocessMode = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
PREPROCESS_MODES: tuple[str, ...] = get_args(PreprocessMode)
# The modes that take a random crop (and so yield crop_size x crop_size images).
CROP_MODES: frozenset[str] = frozenset({"resize_and_crop", "crop", "scale_width_and_crop"})

LOGGER_NAMES: tuple[str, ...] = ("tensorboard", "wandb", "mlflow")  # experiment trackers (engine/loggers.py)

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


@functools.cache
def _field_types(cls: Any) -> dict[str, Any]:
    """The annotated types of an options class; {} (nothing checked) where a plugin's cannot be resolved."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - a name only the plugin's own module knew, under `from __future__ import annotations`
        return {}


def _allowed(tp: Any) -> tuple[Any, str] | None:
    """(test, what is allowed) for an option's annotated type; None where it is not a plain value."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [_allowed(a) for a in get_args(tp) if a is not type(None)]
        if len(inner) != 1 or inner[0] is None:
            return None
        test, what = inner[0]
        return (lambda v: v is None or test(v)), f"{what}, or null"
    if origin is Literal:
        choices = get_args(tp)
        return (lambda v: isinstance(v, str) and v in choices), ", ".join(map(str, choices))
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in (int, str):
            item = _allowed(args[0])
            assert item is not None
            return (lambda v: isinstance(v, tuple) and all(item[0](x) for x in v)), f"a tuple of {args[0].__name__}s"
        return None
    tests: dict[Any, tuple[Any, str]] = {
        bool: (lambda v: isinstance(v, (bool, np.bool_)), "true or false"),
        int: (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)), "an integer"),
        float: (lambda v: isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)), "a number"),
        str: (lambda v: isinstance(v, str), "a string"),
    }
    return tests.get(tp)


def check_option_types(options: Any, section: str) -> None:
    """ConfigError naming ``section.KEY`` for an option whose value is not of its annotated type. The config loader
    converts what it reads (``"false"`` -> False); an options object built by hand was not checked, and
    ``CUTOptions(nce_idt="false")`` trained with the identity term on, as Python's ``if`` reads any text."""
    hints = _field_types(options.__class__)
    for f in dataclasses.fields(options):
        rule = _allowed(hints.get(f.name))
        value = getattr(options, f.name)
        if rule is not None and not rule[0](value):
            raise ConfigError(f"{section}.{f.name}: invalid value {value!r:.80}; allowed: {rule[1]}")


# ----------------------------------------------------------------------------- sections

@dataclass(frozen=True)
class MethodOptions:
    """Base of every registered method's options dataclass; `name` selects the method."""

    name: str = option("", "the registered method")

    def __post_init__(self) -> None:
        check_option_types(self, "method")

    def check_data(self, data: DataConfig) -> None:
        """Raise ConfigError if the method cannot train on images that `data` yields; by default it can."""

    def needs_one_size(self) -> list[tuple[str, str, str]]:
        """(setting, why, what does without it) for each option that needs images of one size and shape, a cropping
        data.preprocess (`Config` names them all at once where data.preprocess keeps each image's own: one at a
        time, GcGAN's advice took three refusals to follow). By default an image pool (``pool_size`` > 0)."""
        pool = getattr(self, "pool_size", 0)
        if isinstance(pool, int) and not isinstance(pool, bool) and pool > 0:
            return [(f"method.pool_size {pool}", "a pool stacks images", "method.pool_size=0")]
        return []

    def search_space(self) -> tuple[Any, ...]:
        """What `srunit tune` varies for these options by default: a tuple of `srunit.search.Param` (none by
        default: the user then gives ``--space FILE``)."""
        return ()

    def void_options(self) -> dict[str, str]:
        """{key under ``method.``: why it has no effect} for the options the others leave without effect (none by
        default). A new run refuses any of them given on its command line or changed by the user's own YAML file
        (`srunit.engine.trainer.check_options_take_effect`); a packaged preset may hold them."""
        return {}

    def void_model_options(self) -> dict[str, str]:
        """{key under ``model.``: why this method's networks never read it} (none by default: CUT's and SRUNIT's
        networks read every model option). Refused as `void_options` are."""
        return {}


class FrozenTerms(dict[str, Any]):
    """The ``terms`` of a `TermMethodOptions`: a dict that refuses changes, as the frozen config around it does.

    A plain dict let ``config.method.terms.clear()`` after a `Trainer` was built write ``robust: null`` into the
    run's config.yaml while the run trained with the term (a resume would then train without it), and
    ``terms["robust"] = "x"`` reach the trainer as an AttributeError. Copies and pickles stay frozen.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a config's method.terms cannot be changed in place (a Config is frozen); build another "
                        "config: config.with_overrides(['method.robust.weight=0.001']), or "
                        "with_overrides({'method': {'robust': None}}) to switch a term off")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse

    def __hash__(self) -> int:  # type: ignore[override]  # a frozen mapping hashes, so a Config does (a dict key)
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (dict(self),)

    def __copy__(self) -> FrozenTerms:
        return self


@dataclass(frozen=True)
class TermMethodOptions(MethodOptions):
    """The options of a method that takes the added loss terms of `srunit.registry.TERMS` (CUT does).

    Besides the method's own keys, its config section takes one section per registered term, named
    as the term's options name it (``method.robust``, ``method.lipschitz``, a plugin's own): a section
    that is given switches its term on. ``terms`` holds them, section name -> the term's options, in
    the order the terms were registered; a section that is not there is off.
    """

    terms: Mapping[str, Any] = dataclasses.field(
        default_factory=dict, metadata={"help": "the added loss terms that are on: section name -> their options"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.terms:
            object.__setattr__(self, "terms", FrozenTerms())
            return
        from srunit.registry import TERMS

        ordered = {}
        for section, term in TERMS.in_order():
            if section in self.terms:
                given = self.terms[section]
                if not isinstance(given, term.Options):
                    raise ConfigError(f"method.{section}: expected the options of the term {term.__name__} "
                                      f"({term.Options.__name__}), got {type(given).__name__}")
                ordered[section] = given
        unknown = sorted(set(self.terms) - set(ordered))
        if unknown:
            raise ConfigError(f"unknown loss term section method.{unknown[0]}; known: {', '.join(TERMS.names())} (a "
                              f"term of your own is registered by a plugin: see srunit.registry)")
        object.__setattr__(self, "terms", FrozenTerms(ordered))

    def void_options(self) -> dict[str, str]:
        """The void options of the terms that are on (`RegularizerOptions.void_options`), as SECTION.KEY."""
        return {f"{section}.{key}": why for section, term in self.terms.items()
                for key, why in term.void_options().items()}


# Upper bounds of the sizes a config can ask for: far above any network or loader that trains, low enough that a
# typo (an extra few zeros) is an error here instead of an allocation of terabytes or a billion processes.
MAX_WIDTH = 4096  # model.ngf, model.ndf, model.projector_dim (the public models use 64 and 256)
MAX_BLOCKS = 128  # model.n_blocks (9 for 256-pixel images)
MAX_WORKERS = 256  # data.num_workers
MAX_COUNT = 10**12  # step and epoch counts and intervals: a trillion steps is more than any run, and fits an int64
MAX_N_LAYERS_D = 10  # 3 x 2^10 = 3072-pixel crops at least: deeper PatchGANs need crops no GPU holds
MAX_POOL = 10_000  # method.pool_size: images kept per pool (50 in the public code; 10,000 256-px images are 7.9 GB)
MAX_PATCHES = 65536  # sampled positions or patches per image (the public models use 256)
MAX_STAT_IMAGES = 10**6  # images read for statistics (DistanceGAN reads 900)


def check_pool_option(pool_size: int) -> None:
    """method.pool_size: an integer from 0 (no pool) to MAX_POOL."""
    check_value(isinstance(pool_size, int) and 0 <= pool_size <= MAX_POOL, "method.pool_size", pool_size,
                f"an integer from 0 to {MAX_POOL:,} (0: no pool; the public code keeps 50)")


@dataclass(frozen=True)
class ModelConfig:
    """Network architecture (the public CUT/SRUNIT layout, so its checkpoints load). DRIT's networks read ngf and
    ndf only; CycleGAN, GcGAN and StegoGAN have no projector (feature_layers, projector_dim, projector_norm). A run
    refuses a model option its method's networks never read, as the method's options name them in
    `MethodOptions.void_model_options` (a plugin method names its own: docs/adding-a-method.md)."""

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
        check_option_types(self, "model")
        sizes = (("ngf", MAX_WIDTH), ("ndf", MAX_WIDTH), ("n_blocks", MAX_BLOCKS), ("projector_dim", MAX_WIDTH))
        for key, top in sizes:
            value = getattr(self, key)
            check_value(1 <= value <= top, f"model.{key}", value, f"an integer from 1 to {top}")
        check_value(1 <= self.n_layers_d <= MAX_N_LAYERS_D, "model.n_layers_d", self.n_layers_d,
                    f"an integer from 1 to {MAX_N_LAYERS_D} (the training crop must be at least 3 x 2^n_layers_d "
                    f"pixels; 3 suits 256-pixel crops)")
        check_value(len(self.feature_layers) >= 1, "model.feature_layers", self.feature_layers, "at least one position")
        # A gain <= 0 draws every weight as zero or with flipped sign: a network that cannot learn.
        check_value(self.init_gain > 0, "model.init_gain", self.init_gain, "a number > 0 (0.02 is the usual gain)")


def unread_without_nce(method: str) -> dict[str, str]:
    """`MethodOptions.void_model_options` of a method without CUT's patch-contrastive loss: the model options of
    its projector F and of the generator layers F reads."""
    why = f"{method} has no patch-contrastive loss (CUT's), so no projector F and no feature layers to read"
    return {key: why for key in ("feature_layers", "projector_dim", "projector_norm")}


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
        DEFAULT_MAX_PIXELS,
        "refuse (or, with skip_bad_images, skip) larger images, as stored or as data.preprocess resizes them; "
        "read from headers",
    )

    def __post_init__(self) -> None:
        check_option_types(self, "data")
        for key in ("root", "dir_a", "dir_b"):
            check_utf8_path(getattr(self, key), f"data.{key}")
            check_value(getattr(self, key) is None or getattr(self, key).strip() != "", f"data.{key}",
                        getattr(self, key), "a folder path, not empty (an empty value would be the current folder)")
        check_value(self.load_size >= 1, "data.load_size", self.load_size, "an integer >= 1")
        check_value(self.crop_size >= 4, "data.crop_size", self.crop_size, "an integer >= 4")
        check_value(0 <= self.num_workers <= MAX_WORKERS, "data.num_workers", self.num_workers,
                    f"an integer from 0 to {MAX_WORKERS}")
        check_int(self.max_pixels, "data.max_pixels", 1, maximum=MAX_PIXELS_LIMIT)
        check_crop_fits(self.preprocess, self.load_size, self.crop_size)
        sides = [("data.crop_size", self.crop_size)] if self.crops else []
        if self.preprocess in ("resize_and_crop", "scale_width", "scale_width_and_crop"):
            sides.append(("data.load_size", self.load_size))
        # Before any image is resized to it: a side of more pixels than the larger of data.max_pixels and its default
        # is a typo, not a training size (a lower data.max_pixels only filters the files).
        limit = max(self.max_pixels, DEFAULT_MAX_PIXELS)
        for key, side in sides:
            if side * side > limit:
                raise ConfigError(f"{key} {side} is more than data.max_pixels allows ({side} x {side} pixels, the "
                                  f"limit is {limit:,}); use at most {math.isqrt(limit)}, or raise data.max_pixels")

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
    device: str = option("auto", "auto | cpu | cuda | cuda:N | mps | xpu | xpu:N")
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

    @property
    def run_dir(self) -> Path:
        """The run folder RUNS_DIR/NAME, ``~`` read as the home folder as it is in ``data.root``: a config's
        ``runs_dir: ~/runs`` made a folder named ``~`` in the working folder."""
        return Path(self.runs_dir).expanduser() / self.name

    def __post_init__(self) -> None:
        check_option_types(self, "train")
        check_utf8_path(self.name, "train.name")
        check_utf8_path(self.runs_dir, "train.runs_dir")
        check_value(self.runs_dir.strip() != "", "train.runs_dir", self.runs_dir,
                    "a folder path, not empty (give '.' for the current folder)")
        check_value(self.runs_dir != "-", "train.runs_dir", self.runs_dir,  # many tools read - as standard output
                    "a folder path; '-' is not standard output here (./- for a folder named -)")
        check_value(
            is_folder_name(self.name),
            "train.name",
            self.name,
            f"{NAME_RULE} (the run lives in RUNS_DIR/NAME)",
        )
        check_value(len(self.name.encode()) <= MAX_NAME_BYTES, "train.name", self.name,
                    f"a name of at most {MAX_NAME_BYTES} bytes (file systems allow 255; srunit's temporary names add "
                    f"a few), this one has {len(self.name.encode())}")
        for key in ("epochs", "epochs_decay", "steps"):
            check_value(0 <= getattr(self, key) <= MAX_COUNT, f"train.{key}", getattr(self, key),
                        f"an integer from 0 to {MAX_COUNT:,}")
        check_value(
            0.0 <= self.decay_fraction <= 1.0, "train.decay_fraction", self.decay_fraction, "a number in [0, 1]"
        )
        check_value(
            self.steps > 0 or self.epochs + self.epochs_decay > 0,
            "train.epochs",
            self.epochs,
            "epochs + epochs_decay > 0, or train.steps > 0",
        )
        check_value(1 <= self.batch_size <= MAX_BATCH, "train.batch_size", self.batch_size,
                    f"an integer from 1 to {MAX_BATCH}")
        for logger in self.loggers:
            check_choice(logger, "train.loggers", LOGGER_NAMES)
        # A tracker named twice started twice: two TensorBoard event files, every scalar logged twice.
        check_value(len(set(self.loggers)) == len(self.loggers), "train.loggers", list(self.loggers),
                    "each tracker once (tensorboard, wandb, mlflow)")
        check_value(0 <= self.seed < 2**64, "train.seed", self.seed, "an integer in [0, 2**64 - 1]")
        check_value(self.lr > 0, "train.lr", self.lr, "a number > 0")
        check_value(0.0 <= self.beta1 < 1.0, "train.beta1", self.beta1, "a number in [0, 1)")
        check_value(0.0 <= self.beta2 < 1.0, "train.beta2", self.beta2, "a number in [0, 1)")
        check_device_name(self.device, "train.device")
        for key in ("log_every", "sample_every", "checkpoint_every", "keep_every"):
            check_value(1 <= getattr(self, key) <= MAX_COUNT, f"train.{key}", getattr(self, key),
                        f"an integer from 1 to {MAX_COUNT:,}")
