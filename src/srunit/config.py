"""Typed configuration: frozen dataclasses, YAML presets and dotted command-line overrides.

A config is built from a preset (a packaged name such as `srunit` or a YAML path), then
overrides such as `train.batch_size=4`. Every key is checked: an unknown key or a bad value
raises ConfigError naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from srunit.errors import ConfigError
from srunit.registry import METHODS

Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
Precision = Literal["fp32", "bf16", "fp16"]


def check_value(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: invalid value {value!r}; allowed: {allowed}")


@dataclass(frozen=True)
class ModelConfig:
    """Network architecture (the public CUT/SRUNIT layout, so its checkpoints load)."""

    ngf: int = 64  # generator width of the first conv
    ndf: int = 64  # discriminator width of the first conv
    n_blocks: int = 9  # residual blocks in the generator (9 for 256 px, 6 for 128 px)
    n_layers_d: int = 3  # PatchGAN depth (3 -> 70x70 receptive field)
    antialias: bool = True  # blur-pool down-sampling in G and D (else strided convs)
    antialias_up: bool = True  # blur up-sampling in G (else transposed convs)
    feature_layers: tuple[int, ...] = (0, 4, 8, 12, 16)  # positions of the K feature layers in G
    projector_dim: int = 256  # output size of each F_k
    init_gain: float = 0.02  # xavier-normal gain

    def __post_init__(self) -> None:
        check_value(self.ngf >= 1, "model.ngf", self.ngf, "an integer >= 1")
        check_value(self.ndf >= 1, "model.ndf", self.ndf, "an integer >= 1")
        check_value(self.n_blocks >= 1, "model.n_blocks", self.n_blocks, "an integer >= 1")
        check_value(self.n_layers_d >= 1, "model.n_layers_d", self.n_layers_d, "an integer >= 1")
        check_value(len(self.feature_layers) >= 1, "model.feature_layers", self.feature_layers, "at least one position")
        check_value(self.projector_dim >= 1, "model.projector_dim", self.projector_dim, "an integer >= 1")


@dataclass(frozen=True)
class DataConfig:
    """Where the two unpaired image sets are and how they are augmented."""

    root: str | None = None  # folder holding trainA/ and trainB/ (CycleGAN/CUT layout)
    dir_a: str | None = None  # explicit domain-A folder (overrides root/trainA)
    dir_b: str | None = None  # explicit domain-B folder (overrides root/trainB)
    preprocess: Preprocess = "resize_and_crop"  # resize_and_crop | crop | scale_width | scale_width_and_crop | none
    load_size: int = 286  # resize target before cropping
    crop_size: int = 256  # training crop
    flip: bool = True  # random horizontal flip
    serial_batches: bool = False  # pair A[i] with B[i] instead of a random B
    skip_bad_images: bool = False  # drop unreadable/truncated files (reported) instead of failing
    num_workers: int = 2  # DataLoader worker processes

    def __post_init__(self) -> None:
        check_value(self.load_size >= 1, "data.load_size", self.load_size, "an integer >= 1")
        check_value(self.crop_size >= 4, "data.crop_size", self.crop_size, "an integer >= 4")
        check_value(self.num_workers >= 0, "data.num_workers", self.num_workers, "an integer >= 0")
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise ConfigError(
                f"data.crop_size {self.crop_size} is larger than data.load_size {self.load_size} with "
                f"preprocess {self.preprocess!r}; set data.load_size >= data.crop_size"
            )

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

    name: str = "srunit"  # run folder: RUNS_DIR/NAME
    runs_dir: str = "runs"  # parent folder of the run folders
    epochs: int = 200  # epochs at the initial learning rate
    epochs_decay: int = 200  # epochs of linear decay to zero
    steps: int = 0  # if > 0, a step budget that replaces epochs/epochs_decay
    decay_fraction: float = 0.5  # with `steps`: the final share of steps with linear decay
    batch_size: int = 1  # images per domain per step
    lr: float = 2e-4  # Adam, for G, D and F
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    seed: int = 0  # initialisation, data order, augmentation and noise
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: Precision = "fp32"  # autocast dtype for the forward passes
    compile: bool = False  # torch.compile the networks
    log_every: int = 50  # steps between scalar logs (the only host syncs)
    sample_every: int = 500  # steps between image grids
    checkpoint_every: int = 500  # steps between `latest` checkpoints
    keep_every: int = 5000  # steps between checkpoints that are kept
    deterministic: bool = False  # torch.use_deterministic_algorithms

    def __post_init__(self) -> None:
        check_value(bool(self.name) and "/" not in self.name, "train.name", self.name, "a non-empty folder name without '/'")
        for key in ("epochs", "epochs_decay", "steps"):
            check_value(getattr(self, key) >= 0, f"train.{key}", getattr(self, key), "an integer >= 0")
        check_value(0.0 <= self.decay_fraction <= 1.0, "train.decay_fraction", self.decay_fraction, "a number in [0, 1]")
        check_value(self.steps > 0 or self.epochs + self.epochs_decay > 0, "train.epochs", self.epochs,
               "epochs + epochs_decay > 0, or train.steps > 0")
        check_value(self.batch_size >= 1, "train.batch_size", self.batch_size, "an integer >= 1")
        check_value(self.lr > 0, "train.lr", self.lr, "a number > 0")
        check_value(0.0 <= self.beta1 < 1.0, "train.beta1", self.beta1, "a number in [0, 1)")
        check_value(0.0 <= self.beta2 < 1.0, "train.beta2", self.beta2, "a number in [0, 1)")
        for key in ("log_every", "sample_every", "checkpoint_every", "keep_every"):
            check_value(getattr(self, key) >= 1, f"train.{key}", getattr(self, key), "an integer >= 1")


@dataclass(frozen=True)
class Config:
    """Everything a training run needs. `method` is the options dataclass of a registered method."""

    method: Any
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ----------------------------------------------------------------------------- building

PRESET_DIR = "presets"


def preset_names() -> list[str]:
    files = resources.files("srunit").joinpath(PRESET_DIR).iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def read_preset(preset: str | Path) -> dict[str, Any]:
    """A packaged preset by name, or a YAML file by path."""
    path = Path(preset)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; give a YAML file or one of: {', '.join(preset_names())}")
        text = path.read_text()
        origin = str(path)
    else:
        name = str(preset)
        if name not in preset_names():
            raise ConfigError(f"unknown preset {name!r}; known: {', '.join(preset_names())} (or a path to a YAML file)")
        text = resources.files("srunit").joinpath(PRESET_DIR, f"{name}.yaml").read_text()
        origin = f"preset {name}"
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{origin} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin} must hold a mapping of sections, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is not None:
        merged = read_preset(base)
        _deep_update(merged, data)
        data = merged
    return data


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """['train.batch_size=4', 'data.root=DIR'] -> nested dict of strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.batch_size=4")
        _deep_update(out, _nest(key.strip(), value))
    return out


def load_config(preset: str | Path | None = "srunit", overrides: Sequence[str] | Mapping[str, Any] = ()) -> Config:
    """Resolve a preset plus overrides into a validated Config."""
    data = read_preset(preset) if preset is not None else {}
    extra = parse_overrides(overrides) if not isinstance(overrides, Mapping) else _nest_mapping(overrides)
    _deep_update(data, extra)
    return config_from_dict(data)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    data = dict(data)
    unknown = set(data) - {"method", "model", "data", "train"}
    if unknown:
        raise ConfigError(f"unknown config section(s) {sorted(unknown)}; allowed: method, model, data, train")
    method = dict(data.get("method") or {})
    name = method.get("name")
    if name is None:
        raise ConfigError(f"method.name is missing; known methods: {', '.join(METHODS.names())}")
    import srunit.methods  # noqa: F401  (registers the built-in methods)

    options_cls = METHODS.get(str(name)).Options
    return Config(
        method=_build(options_cls, method, "method"),
        model=_build(ModelConfig, data.get("model") or {}, "model"),
        data=_build(DataConfig, data.get("data") or {}, "data"),
        train=_build(TrainConfig, data.get("train") or {}, "train"),
    )


def _build(cls: type, data: Any, path: str) -> Any:
    if dataclasses.is_dataclass(data):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of keys, got {data!r}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"unknown key {path}.{key}; allowed keys in {path}: {', '.join(sorted(names))}")
    kwargs = {key: _convert(value, hints[key], f"{path}.{key}") for key, value in data.items()}
    return cls(**kwargs)


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "~")):
            return None
        return _convert(value, args[0], key)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{key}: invalid value {value!r}; allowed: {', '.join(map(str, allowed))}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"{key}: invalid value {value!r}; allowed: true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(f"{key}: invalid value {value!r}; allowed: an integer") from None
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise ConfigError(f"{key}: invalid value {value!r}; allowed: a number") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: invalid value {value!r}; allowed: a string")
        return str(value)
    if origin is tuple:
        (item_type, *_rest) = get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.strip("[]() ").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: invalid value {value!r}; allowed: a comma-separated list")
        return tuple(_convert(v.strip() if isinstance(v, str) else v, item_type, key) for v in value)
    raise TypeError(f"{key}: unsupported config type {tp}")  # a programming error, not user input


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    parts = dotted.split(".")
    out: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        out = {part: out}
    return out


def _nest_mapping(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        _deep_update(out, _nest(key, value) if "." in key else {key: value})
    return out


def _deep_update(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
