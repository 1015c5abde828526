"""Typed configuration: frozen dataclasses, YAML presets and dotted command-line overrides.

A config is built from a preset (a packaged name such as `srunit` or a YAML path), then
overrides such as `train.batch_size=4`. Every key is checked: an unknown key or a bad value
raises ConfigError naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import math
import os
import types
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from srunit._outputs import check_no_link_loop
from srunit._reading import MAX_CONFIG_BYTES, read_text
from srunit._yaml import read_yaml
from srunit.checks import check_crop_size, check_not_one, own_least_side
from srunit.errors import ConfigError
from srunit.options import DataConfig, MethodOptions, ModelConfig, TermMethodOptions, TrainConfig, option_help
from srunit.registry import METHODS, TERMS

__all__ = ["Config", "OptionRow", "check_crop_size", "preset_names", "read_preset", "parse_overrides",
           "refuse_overrides_of", "load_config", "config_from_dict", "method_options", "option_rows",
           "method_option_rows"]


@dataclass(frozen=True)
class Config:
    """Everything a training run needs. `method` is the options dataclass of a registered method."""

    method: MethodOptions
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        sections = (("method", MethodOptions), ("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig))
        for name, cls in sections:
            value = getattr(self, name)
            if not isinstance(value, cls):  # Config(method=None) was an AttributeError from inside the checks below
                raise TypeError(f"Config: {name} must be a {cls.__name__}, got {type(value).__name__} {value!r:.80}; "
                                f"build a Config with srunit.load_config(preset, overrides)")
        d, t, m = self.data, self.train, self.model
        if d.crops:
            check_crop_size(d.crop_size, m.n_layers_d, least=own_least_side(self.method))
        needs = self.method.needs_one_size() if not d.crops else []
        if not d.crops and t.batch_size > 1:
            needs.insert(0, (f"train.batch_size {t.batch_size}", "a batch stacks images", "train.batch_size=1"))
        if len(needs) > 1:  # each named at once: one at a time, each refusal's advice met the next
            raise ConfigError(
                f"data.preprocess {d.preprocess!r} keeps each image's own size and shape, which {len(needs)} settings "
                f"cannot take: {'; '.join(f'{name} ({why})' for name, why, _ in needs)}; use a cropping mode such as "
                f"resize_and_crop, or give {', '.join(fix for _, _, fix in needs[:-1])} and {needs[-1][2]}"
            )
        if not d.crops and t.batch_size > 1:
            raise ConfigError(
                f"data.preprocess {d.preprocess!r} keeps each image's own size, so images cannot be batched "
                f"(train.batch_size {t.batch_size}); use train.batch_size=1 or a cropping mode such as resize_and_crop"
            )
        self.method.check_data(d)

    def with_overrides(self, overrides: Sequence[str] | Mapping[str, Any]) -> Config:
        """A copy with dotted overrides (``["train.steps=10"]`` or ``{"train.steps": 10}``) applied and checked."""
        _check_overrides_type(overrides, "Config.with_overrides")  # one string was iterated: override 't' ...
        data, given = self.to_dict(), _overrides_dict(overrides)
        switch = given.get("method")
        if isinstance(switch, Mapping) and isinstance(switch.get("name"), str) \
                and switch["name"] != data["method"].get("name"):
            # A whole config holds its switched-off terms as None, which no file or override gave: as load_config's
            # switch does, the new method's defaults decide them (cut -> srunit left Eq. 3 off, a CUT run recorded
            # as srunit, without a word), and a refusal names only what the config sets.
            data["method"] = {k: v for k, v in data["method"].items() if v is not None or k in switch}
        _check_method_switch("this config", data, given)
        _deep_update(data, given)
        return config_from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The config as nested dicts, as config.yaml holds it: the ``method`` section lists the sections of its
        added loss terms after its own keys (see `method_dict`)."""
        data = _plain(dataclasses.asdict(self))
        data["method"] = method_dict(self.method)
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ----------------------------------------------------------------------------- building

PRESET_DIR = "presets"


def preset_names() -> list[str]:
    """The names of the packaged presets (src/srunit/presets/*.yaml), sorted."""
    files = resources.files("srunit").joinpath(PRESET_DIR).iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def _is_path(preset: str | Path) -> bool:
    """A YAML file is named by a path (``.yaml``/``.yml`` suffix or a folder separator); a bare name
    is always a packaged preset, so a file called ``cut`` in the working folder cannot replace it."""
    text = str(preset)
    return isinstance(preset, Path) or text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text


def read_preset(preset: str | Path, *, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A packaged preset by name, or a YAML file by path (see ``_is_path``).

    A ``base:`` that is a path is resolved against the folder of the file that names it, not the
    working folder; a chain of bases that comes back to a file already in it is an error.
    """
    if _is_path(preset):
        path = Path(preset).expanduser()
        check_no_link_loop(path, "config file")
        if not os.path.lexists(path):
            if isinstance(preset, Path) and str(preset) in preset_names():  # a Path is a file, a preset is a str
                raise ConfigError(f"config file {path} does not exist; the preset {preset} is named by a str "
                                  f"(load_config({str(preset)!r})), a YAML file by a path")
            raise ConfigError(
                f"config file {path} does not exist; give a YAML file or one of: {', '.join(preset_names())}"
            )
        if path.resolve() in _chain:
            cycle = " -> ".join(str(p) for p in (*_chain, path.resolve()))
            raise ConfigError(f"{path}: its base: chain comes back to itself ({cycle}); remove the cycle")
        text = read_text(path, "config file", limit=MAX_CONFIG_BYTES, error=ConfigError,
                         fix="give a YAML file saved as UTF-8")
        origin = str(path)
        chain = (*_chain, path.resolve())
        folder: Path | None = path.parent
    else:
        name = str(preset)
        if name not in preset_names():
            raise ConfigError(
                f"unknown preset {name!r}; known: {', '.join(preset_names())} (or a path to a YAML file, "
                f"e.g. ./{name}.yaml)"
            )
        text = resources.files("srunit").joinpath(PRESET_DIR).joinpath(f"{name}.yaml").read_text()
        origin = f"preset {name}"
        chain, folder = _chain, None
    document = read_yaml(text, origin)
    data = document.data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin} must hold a mapping of sections, got {type(data).__name__}")
    found = _FILE_KEYS.get()
    if found is not None and folder is None:
        found.base = found.base or str(preset)  # the nearest packaged preset: its own base is read after it
    elif found is not None:  # a file, read before its base: the first to name a key sets it
        for key, value in dotted({k: v for k, v in data.items() if k != "base"}).items():
            found.keys.setdefault(key, (value, origin))
    words = _WORDS.get()
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str) or not base:
            raise ConfigError(f"{origin}: base must be a preset name or a YAML file path, got {base!r}")
        if folder is not None and _is_path(base) and not Path(base).expanduser().is_absolute():
            base = str(folder / base)
        if folder is None and base == str(preset):
            raise ConfigError(f"{origin}: its base is itself; remove the cycle")
        merged = read_preset(base, _chain=chain)
        _check_method_switch(f"base {base} of {origin}", merged, data)
        _deep_update(merged, data)
        data = merged
    if words is not None:  # after the base's: this file's values win, and so do its words
        booleans, numbers = document.booleans, document.numbers
        words.booleans.update(booleans)
        words.numbers.update(numbers)
        words.files.update(dict.fromkeys([*booleans, *numbers], origin))
    return data


@dataclasses.dataclass
class _Words:
    """How the YAML files of the `load_config` under way wrote their unquoted booleans (yes, on, true, ...) and numbers
    (0x1f, 1.50, .NaN, ...), by dotted key: an error quotes the user's own word, and a number an option takes as text
    is refused where its text is not the string it becomes."""

    booleans: dict[str, str] = dataclasses.field(default_factory=dict)
    numbers: dict[str, str] = dataclasses.field(default_factory=dict)
    files: dict[str, str] = dataclasses.field(default_factory=dict)  # the file (of a base: chain) each word is in

    def where(self, key: str) -> str:
        """``"FILE: "`` for the file that wrote ``key``'s word, so an error names the file of a chain to edit."""
        return f"{self.files[key]}: " if key in self.files else ""


_WORDS: ContextVar[_Words | None] = ContextVar("srunit_yaml_words", default=None)


@dataclasses.dataclass
class _FileKeys:
    """What `keys_changed_by_files` collects while `read_preset` reads a chain of files."""

    keys: dict[str, tuple[Any, str]] = dataclasses.field(default_factory=dict)  # dotted key -> (value, file)
    base: str | None = None  # the packaged preset the chain ends in


_FILE_KEYS: ContextVar[_FileKeys | None] = ContextVar("srunit_file_keys", default=None)


def keys_set_by_files(preset: str | Path | None) -> dict[str, tuple[Any, str]]:
    """{"section.key": (value, the YAML file that sets it)} for every key the user's own files set in ``preset`` (the
    file and the files its ``base:`` chain names, the nearest file winning), whatever its value: a key set to the value
    it would have anyway is set all the same (see `keys_changed_by_files`). {} for a packaged preset or None."""
    return _read_file_keys(preset)[0]


def set_in_base_files(preset: str | Path | None, keys: Iterable[str]) -> dict[str, str]:
    """{key: " (set in FILE)"} for those of ``keys`` that a file of ``preset``'s ``base:`` chain other than ``preset``
    itself sets: a message about an edited value names the file to look at. {} where the chain cannot be read (the
    message is about something else)."""
    own = str(preset)
    try:
        found = keys_set_by_files(preset)
    except ConfigError:
        return {}
    return {key: f" (set in {found[key][1]})" for key in keys if key in found and found[key][1] != own}


def keys_changed_by_files(preset: str | Path | None) -> dict[str, tuple[Any, str]]:
    """`keys_set_by_files`, less the keys set to the value the packaged preset the chain ends in gives (or the
    method's defaults where it ends in none): what the user changed, as the command line's overrides are. A copy of a
    run's config.yaml names every key, defaults included; a key it names at the value it would have anyway changes
    nothing. {} for a packaged preset or None."""
    keys, data, base = _read_file_keys(preset)
    if not keys:
        return {}
    method = data.get("method")
    name = method.get("name") if isinstance(method, dict) else None
    try:
        reference = (load_config(base) if base is not None
                     else load_config(None, {"method.name": name}) if isinstance(name, str) else None)
    except ConfigError:
        reference = None
    values = dotted(reference.to_dict()) if reference is not None else {}
    try:  # each value as the config reads it: YAML 1.1 reads 7e-2 as a string, which the config takes as 0.07
        read = dotted(config_from_dict(data).to_dict())
    except ConfigError:
        read = {}
    return {key: (value, origin) for key, (value, origin) in keys.items()
            if key not in values or values[key] != read.get(key, value)}


def _read_file_keys(preset: str | Path | None) -> tuple[dict[str, tuple[Any, str]], dict[str, Any], str | None]:
    """(the keys the user's files of ``preset`` set, with value and file; the merged data; the packaged preset the
    chain ends in), read by `read_preset`; ({}, {}, None) for a packaged preset or None."""
    if preset is None or not _is_path(preset):
        return {}, {}, None
    found = _FileKeys()
    token = _FILE_KEYS.set(found)
    try:
        data = read_preset(preset)
    finally:
        _FILE_KEYS.reset(token)
    return found.keys, data, found.base


def dotted(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"method": {"robust": {"weight": 1}}} -> {"method.robust.weight": 1}: the leaves of nested mappings."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def changed_keys(a: Any, b: Any, prefix: str = "") -> set[str]:
    """The dotted keys ("section.key") whose values differ between ``a`` and ``b``, mappings nested or already
    dotted; a key on one side only differs, and so does a section against a value."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for k in set(a) | set(b):
            out |= changed_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return set() if a == b else {prefix.rstrip(".")}


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """['train.batch_size=4', 'data.root=DIR'] -> nested dict of strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.batch_size=4")
        _deep_update(out, _nest(key.strip(), value))
    return out


def refuse_overrides_of(overrides: Sequence[str], owned: Mapping[str, str], command: str) -> None:
    """ConfigError for an override (``section.key=value``) of a key that ``command`` sets in every run itself.

    ``owned`` maps each such key to what sets it (the command's own option). An override of one was either
    dropped without a word or put every run on one value: `bench synthscapes --train.seed 7` trained every
    "seed" as seed 7, so its n runs were one run n times and its 95% intervals had no width.
    """
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in owned:
            raise ConfigError(f"--{key}: {command} sets {key} of each run itself ({owned[key]}); leave --{key} out")


def load_config(preset: str | Path | None = "srunit", overrides: Sequence[str] | Mapping[str, Any] = ()) -> Config:
    """Resolve a preset plus overrides into a validated Config.

    Args:
        preset: a packaged preset's name (``"srunit"``, ``"cut"``, ... see `preset_names`), a YAML file (a path,
            or a name ending in .yaml/.yml; it may start with ``base: PRESET``), or None for the built-in defaults
            alone (``method.name`` must then come from ``overrides``).
        overrides: ``["section.key=value", ...]`` as on the command line (``"model.feature_layers=0,4,8"``), or a
            mapping ``{"section.key": value}`` with typed values; applied after the preset, in order.

    Returns:
        The checked Config: every key known, every value of its type and range.

    Raises:
        TypeError: ``preset`` is not a str, a Path or None, or ``overrides`` not a sequence of strings or a mapping.
        ConfigError: an unknown preset or key, or a bad value.
    """
    if preset is not None and not isinstance(preset, (str, Path)):
        raise TypeError(f"load_config: preset must be a preset name, a path to a YAML file or None, got "
                        f"{type(preset).__name__} {preset!r}")
    _check_overrides_type(overrides)
    words = _Words()
    token = _WORDS.set(words)
    try:
        data = read_preset(preset) if preset is not None else {}
        given = _overrides_dict(overrides)
        for found in (words.booleans, words.numbers):  # a value given as an override is not the file's word
            for key in list(found):
                if _has_key(given, key.split(".")):
                    del found[key]
        if preset is not None:
            _check_method_switch(f"preset {preset}", data, given)
        _deep_update(data, given)
        method = data.get("method")
        if preset is not None and _is_path(preset) and not (isinstance(method, Mapping) and "name" in method):
            # "method.name is missing" named neither the file nor its base:
            if "method" in data and method is None:
                raise ConfigError(f"{preset}: its chain sets method: null (or an empty method:), which clears the "
                                  f"method section its base: gives, the method's name with it; remove that line, or "
                                  f"give method: {{name: METHOD}} there, or method.name (--method.name)")
            raise ConfigError(f"{preset} names no method: neither a base: preset nor a method: {{name: ...}} in its "
                              f"chain; add base: PRESET (one of {', '.join(preset_names())}) or method: {{name: "
                              f"METHOD}} to it, or give method.name (--method.name)")
        return config_from_dict(data)
    finally:
        _WORDS.reset(token)


def _check_method_switch(source: str, data: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    """ConfigError where ``given`` switches the method of ``data`` (read from ``source``: "preset cut", a file's base)
    to one without an option ``data`` sets: `--preset cut --method.name cyclegan` said "unknown key
    method.flip_equivariance", a key the user never typed, without naming the preset or the fix."""
    section, switch = data.get("method"), given.get("method")
    if not isinstance(section, Mapping) or not isinstance(switch, Mapping):
        return
    old, new = section.get("name"), switch.get("name")
    if not isinstance(new, str) or new == old or new not in METHODS:
        return
    allowed = set(_allowed_keys(METHODS.get(new).Options))
    foreign = [key for key in section if key not in allowed and not _has_key(switch, [key])]
    if foreign:
        keys = ", ".join(f"method.{key}" for key in foreign)
        raise ConfigError(f"{source} is a {old} config and sets {keys}, which method.name {new} does not take; "
                          f"start from preset {new} (or a YAML file with base: {new}) and give the other changes "
                          f"as overrides")


def _has_key(data: Mapping[str, Any], parts: Sequence[str]) -> bool:
    for part in parts:
        if not isinstance(data, Mapping) or part not in data:
            return False
        data = data[part]
    return True


def _check_overrides_type(overrides: object, where: str = "load_config") -> None:
    if isinstance(overrides, Mapping):  # a key of another type was Python's "argument of type 'int' is not iterable"
        for key in overrides:
            if not isinstance(key, str):
                raise TypeError(f"{where}: overrides' keys must be 'section.key' strings (or section names holding "
                                f"mappings), got {type(key).__name__} {key!r:.80}")
        return
    allowed = "'section.key=value' strings or a mapping"
    check_not_one(overrides, f"{where}: overrides", allowed)
    if not isinstance(overrides, Sequence):
        raise TypeError(f"{where}: overrides must be a list of {allowed}, got {type(overrides).__name__} {overrides!r}")
    for i, item in enumerate(overrides):
        if not isinstance(item, str):
            raise TypeError(f"{where}: overrides must hold strings, got {type(item).__name__} {item!r} at position {i}")


def _overrides_dict(overrides: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    return _nest_mapping(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    data = dict(data)
    unknown = set(data) - {"method", "model", "data", "train"}
    if unknown:
        raise ConfigError(f"unknown config section(s) {sorted(unknown)}; allowed: method, model, data, train")
    def section(name: str) -> Any:  # absent or null: the defaults. `data: []` (or 0, '') was taken as empty too
        value = data.get(name)
        return {} if value is None else value

    return Config(
        method=method_options(section("method")),
        model=_build(ModelConfig, section("model"), "model"),
        data=_build(DataConfig, section("data"), "data"),
        train=_build(TrainConfig, section("train"), "train"),
    )


def method_options(section: Any) -> MethodOptions:
    """The options of the ``method`` section of a config (a mapping with ``name``), checked.

    A variant's name (``srunit``) builds its base method's options with the variant's defaults under the
    section's own keys, and keeps its name; the sections of added loss terms (``robust``, ...) of a method
    that takes them become its ``terms`` (a section given as null is off).
    """
    if dataclasses.is_dataclass(section) and isinstance(section, MethodOptions):
        return section
    if not isinstance(section, Mapping):
        raise ConfigError(f"method: expected a mapping of keys, got {section!r}")
    name = section.get("name")
    if name is None:
        raise ConfigError(f"method.name is missing; known methods: {', '.join(METHODS.names())}")
    if isinstance(name, bool):
        raise _a_boolean("method.name", name, f"a method name ({', '.join(METHODS.names())})")
    data = METHODS.defaults(str(name))
    _deep_update(data, section)
    options_cls = METHODS.get(str(name)).Options
    if not issubclass(options_cls, TermMethodOptions):
        return _build(options_cls, data, "method")
    terms = {}
    for key in TERMS.names():
        given = data.pop(key, None)
        if given is not None:
            terms[key] = _build(TERMS.get(key).Options, given, f"method.{key}")
    if "terms" in data:  # the field that holds them: never a key of a config
        _unknown_key(options_cls, "terms", "method")
    return _build(options_cls, {**data, "terms": terms}, "method")


def method_dict(options: MethodOptions) -> dict[str, Any]:
    """``options`` as the ``method`` section of config.yaml: its own keys, then, for a method that takes added
    loss terms, a section per term: its options, or null where it is off. Every term of srunit itself is
    listed (so the file shows what can be switched on, as before terms became pluggable); a plugin's term
    only where it is on, so a config written without it on loads where the plugin is not installed."""
    data = _plain(dataclasses.asdict(options))
    if not isinstance(options, TermMethodOptions):
        return data
    data.pop("terms")
    for section, _ in TERMS.in_order():
        if section in options.terms:
            data[section] = _plain(dataclasses.asdict(options.terms[section]))
        elif TERMS.provided(section):
            data[section] = None
    return data


def _allowed_keys(cls: type) -> list[str]:
    names = {f.name for f in dataclasses.fields(cls)}
    if issubclass(cls, TermMethodOptions):
        names = (names - {"terms"}) | set(TERMS.names())
    return sorted(names)


def _unknown_key(cls: type, key: str, path: str) -> None:
    raise ConfigError(f"unknown key {path}.{key}; allowed keys in {path}: {', '.join(_allowed_keys(cls))}")


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """The annotated types of an options class, resolved once: `get_type_hints` evaluates every annotation (text under
    ``from __future__ import annotations``) at each call. Read only."""
    return get_type_hints(cls)


def _build(cls: type, data: Any, path: str) -> Any:
    if dataclasses.is_dataclass(data):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of keys, got {data!r}")
    hints = _type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        _unknown_key(cls, sorted(unknown)[0], path)
    kwargs = {key: value if key == "terms" and issubclass(cls, TermMethodOptions)
              else _convert(value, hints[key], f"{path}.{key}") for key, value in data.items()}
    return cls(**kwargs)


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _a_boolean(key: str, value: bool, allowed: str) -> ConfigError:
    words, word = ("true, yes, on", "on") if value else ("false, no, off", "off")
    found = _WORDS.get() or _Words()
    word = found.booleans.get(key, word)  # the user's own word, where a YAML file wrote it
    where = found.where(key) if key in found.booleans else ""
    return ConfigError(f"{where}{key}: got the boolean {str(value).lower()}, but {key} takes {allowed}: YAML reads an "
                       f"unquoted {words} (any case) as a boolean; quote the word ('{word}') if you mean it as {key}")


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
        if isinstance(value, bool) and value not in allowed:
            raise _a_boolean(key, value, f"allowed: {', '.join(map(str, allowed))}")
        if value not in allowed:
            raise ConfigError(f"{key}: invalid value {value!r}; allowed: {', '.join(map(str, allowed))}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
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
        except ValueError:  # also more digits than Python converts (4300)
            shown = repr(value) if len(repr(value)) <= 60 else f"{repr(value)[:40]}... ({len(str(value))} characters)"
            raise ConfigError(f"{key}: invalid value {shown}; allowed: an integer") from None
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(str(value))
            except ValueError:
                raise ConfigError(f"{key}: invalid value {value!r}; allowed: a number") from None
        # One check for every float option of every section and method: inf or nan in a weight or a
        # learning rate would only show up as non-finite losses, possibly hours into a run.
        if not math.isfinite(number):
            raise ConfigError(f"{key}: invalid value {number!r}; allowed: a finite number (not inf or nan)")
        return number
    if tp is str:
        if isinstance(value, bool):  # `name: on` in a YAML file: YAML 1.1 reads on/off/yes/no as booleans
            raise _a_boolean(key, value, "a name or a path")
        if value is None:  # `name: null` (or `name:`) named the run 'None'
            raise ConfigError(f"{key}: invalid value null; allowed: a string (leave the key out for its default)")
        if isinstance(value, os.PathLike) and isinstance(os.fspath(value), str):  # the API's Path("data/x")
            return os.fspath(value)
        if not isinstance(value, (str, int, float, datetime.date)):  # !!binary named the run "b'hello'"
            raise ConfigError(f"{key}: invalid value {value!r:.80}; allowed: a string")
        found = _WORDS.get() or _Words()
        word = found.numbers.get(key)
        if isinstance(value, (int, float)) and word is not None and word != str(value):
            # `name: 0x1f` trained into runs/31; `1.50` became 1.5, `.NaN` nan (`007` is refused as YAML reads it)
            raise ConfigError(f"{found.where(key)}{key}: {word} is the number {value!r} in YAML, which {key} would "
                              f"take as the text {str(value)!r}; quote it ('{word}') where a name is meant, or "
                              f"write {str(value)}")
        if isinstance(value, datetime.date) and word is not None and word != str(value):
            # `name: 2026-12-07T10:00:00Z` trained into `runs/2026-12-07 10:00:00+00:00` (a date alone is its text)
            raise ConfigError(f"{found.where(key)}{key}: {word} is a time in YAML, which {key} would take as the "
                              f"text {str(value)!r}; quote it ('{word}') where a name is meant")
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


def _deep_update(base: dict[str, Any], extra: Mapping[str, Any], where: str = "") -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value, f"{where}{key}.")
        elif isinstance(value, Mapping) and base.get(key) is not None:
            # `data: []` in a YAML file, then `--data.root X`: the keys would silently replace what the file
            # holds, which is refused without them (`config_from_dict`'s check of a section)
            raise ConfigError(f"{where}{key}: expected a mapping of keys, got {base[key]!r}")
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- describing the options


@dataclass(frozen=True)
class OptionRow:
    """One config option as `srunit train --help` and the documentation list it."""

    key: str  # dotted, e.g. "method.robust.weight"
    type: str  # e.g. "float", "int | None", "lsgan | vanilla | hinge"
    default: Any
    help: str
    section: str = ""  # the help of the optional section it belongs to ("" for options always present)
    choices: tuple[str, ...] = ()  # the values a Literal option takes, e.g. ("fp32", "bf16", "fp16")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(str(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(get_args(tp)[0])}"
    return "None" if tp is type(None) else getattr(tp, "__name__", str(tp))


def option_rows(cls: type, prefix: str, section: str = "", defaults: Any = None) -> list[OptionRow]:
    """Every option of the options dataclass ``cls`` under ``prefix`` (e.g. ``"train."``), sections
    expanded: an option section (a dataclass field) lists its own options, and a method that takes added
    loss terms lists each term's section after its own options; a section that is off by default (None,
    or a term not on) has ``section`` set to its help. ``defaults``: an instance of ``cls`` whose values
    are the defaults to show (a variant's options, see `method_option_rows`); the fields' own by default."""
    rows: list[OptionRow] = []
    hints = _type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "terms" and issubclass(cls, TermMethodOptions):
            continue
        tp = hints[f.name]
        candidates = get_args(tp) if get_origin(tp) in (Union, types.UnionType) else (tp,)
        inner = [a for a in candidates if isinstance(a, type) and dataclasses.is_dataclass(a)]
        default: Any = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        if defaults is not None:
            default = getattr(defaults, f.name)
        if inner:
            on = default is not None
            why = section or ("" if on else f"{prefix}{f.name}: {option_help(f)}; off unless this section is given")
            rows += option_rows(inner[0], f"{prefix}{f.name}.", why, default)
            continue
        choices = tuple(str(a) for a in get_args(tp)) if get_origin(tp) is Literal else ()
        rows.append(OptionRow(f"{prefix}{f.name}", _type_name(tp), default, option_help(f), section, choices))
    if issubclass(cls, TermMethodOptions):
        on_by_default = defaults.terms if defaults is not None else {}
        for name, term in TERMS.in_order():
            why = section or ("" if name in on_by_default else
                              f"{prefix}{name}: {term.summary}; off unless this section is given")
            rows += option_rows(term.Options, f"{prefix}{name}.", why, on_by_default.get(name))
    return rows


def method_option_rows(name: str) -> list[OptionRow]:
    """The options of method (or variant) ``name`` under ``method.``, with its defaults: a variant's term
    section is on by default, and its rows show the variant's values."""
    options = method_options({"name": name})
    return option_rows(type(options), "method.", defaults=options)
