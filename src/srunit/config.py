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

import srunit.methods  # noqa: F401  (registers the built-in methods)
from srunit.errors import ConfigError
from srunit.options import DataConfig, MethodOptions, ModelConfig, TrainConfig
from srunit.registry import METHODS

__all__ = ["Config", "preset_names", "read_preset", "parse_overrides", "load_config", "config_from_dict"]


@dataclass(frozen=True)
class Config:
    """Everything a training run needs. `method` is the options dataclass of a registered method."""

    method: MethodOptions
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        d, t = self.data, self.train
        if not d.crops and t.batch_size > 1:
            raise ConfigError(
                f"data.preprocess {d.preprocess!r} keeps each image's own size, so images cannot be batched "
                f"(train.batch_size {t.batch_size}); use train.batch_size=1 or a cropping mode such as resize_and_crop"
            )
        self.method.check_data(d)

    def with_overrides(self, overrides: Sequence[str] | Mapping[str, Any]) -> Config:
        """A copy with dotted overrides (``["train.steps=10"]`` or ``{"train.steps": 10}``) applied and checked."""
        data = self.to_dict()
        _deep_update(data, _overrides_dict(overrides))
        return config_from_dict(data)

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
    _deep_update(data, _overrides_dict(overrides))
    return config_from_dict(data)


def _overrides_dict(overrides: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    return _nest_mapping(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    data = dict(data)
    unknown = set(data) - {"method", "model", "data", "train"}
    if unknown:
        raise ConfigError(f"unknown config section(s) {sorted(unknown)}; allowed: method, model, data, train")
    method = dict(data.get("method") or {})
    name = method.get("name")
    if name is None:
        raise ConfigError(f"method.name is missing; known methods: {', '.join(METHODS.names())}")
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
