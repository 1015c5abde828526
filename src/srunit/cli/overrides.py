"""Dotted config overrides on the command line and their --help listing."""

from __future__ import annotations

from srunit.config import option_rows
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


def _describe(prefix: str, cls: type, lines: list[str]) -> None:
    for row in option_rows(cls, prefix):
        key = f"--{row.key}"
        lines.append(f"  {key:<34} default {row.default!r:<16} {row.help}")


def config_help() -> str:
    lines = ["config keys (override any of them as --section.key VALUE):"]
    for section, cls in (("model.", ModelConfig), ("data.", DataConfig), ("train.", TrainConfig)):
        _describe(section, cls, lines)
    for name in METHODS.names():
        lines.append(f"method options when method.name is {name!r}:")
        _describe("method.", METHODS.get(name).Options, lines)
    return "\n".join(lines)
