"""Dotted config overrides on the command line and their --help listing."""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

import srunit.methods  # noqa: F401  (registers the built-in methods, whose options --help lists)
from srunit.errors import ConfigError
from srunit.options import DataConfig, ModelConfig, TrainConfig
from srunit.registry import METHODS


def comma_list(text: str) -> tuple[str, ...]:
    """argparse type for 'a,b, c' -> ('a', 'b', 'c'); empty items are dropped."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def split_overrides(tokens: list[str]) -> list[str]:
    """['--train.batch_size', '4', '--data.root=DIR'] -> ['train.batch_size=4', 'data.root=DIR']."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--") or "." not in tok.split("=", 1)[0]:
            raise ConfigError(
                f"unrecognized argument {tok!r}; config overrides look like --section.key VALUE "
                "(e.g. --train.batch_size 4); see --help for the keys"
            )
        key = tok[2:]
        if "=" in key:
            out.append(key)
            i += 1
            continue
        if i + 1 >= len(tokens):
            raise ConfigError(f"override {tok} needs a value, e.g. {tok} VALUE")
        out.append(f"{key}={tokens[i + 1]}")
        i += 2
    return out


def _field_comments(cls: type) -> dict[str, str]:
    """The trailing `# comment` of each field in a dataclass's source (single source of truth)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^\s+(\w+): [^=\n]+=[^#\n]*#\s*(.+)$", source, re.MULTILINE):
            docs[m.group(1)] = m.group(2).strip()
    return docs


def _describe(prefix: str, cls: type, lines: list[str]) -> None:
    docs = _field_comments(cls)
    for f in dataclasses.fields(cls):
        default: Any = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            if dataclasses.is_dataclass(value):
                _describe(f"{prefix}{f.name}.", type(value), lines)
                continue
            default = value
        text = docs.get(f.name, "")
        key = f"--{prefix}{f.name}"
        lines.append(f"  {key:<34} default {default!r:<16} {text}")


def config_help() -> str:
    lines = ["config keys (override any of them as --section.key VALUE):"]
    for section, cls in (("model.", ModelConfig), ("data.", DataConfig), ("train.", TrainConfig)):
        _describe(section, cls, lines)
    for name in METHODS.names():
        lines.append(f"method options when method.name is {name!r}:")
        _describe("method.", METHODS.get(name).Options, lines)
    return "\n".join(lines)
