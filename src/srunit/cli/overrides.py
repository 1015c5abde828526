"""Dotted config overrides on the command line and their --help listing."""

from __future__ import annotations

import re
import shlex
import textwrap
from collections.abc import Sequence
from typing import Any

from srunit.config import Config, OptionRow, load_config, option_rows
from srunit.errors import ConfigError
from srunit.options import DataConfig, ModelConfig, TrainConfig
from srunit.registry import METHODS


def comma_list(text: str) -> tuple[str, ...]:
    """argparse type for 'a,b, c' -> ('a', 'b', 'c'); empty items are dropped."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def split_overrides(tokens: list[str]) -> list[str]:
    """['--train.batch_size', '4', '--data.root=DIR'] -> ['train.batch_size=4', 'data.root=DIR']. The error of
    another token points at `srunit train --help`, which lists the keys: the --help of `bench` and `tune`, which
    take the same overrides, lists none (it said "see --help for the keys")."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--") or "." not in tok.split("=", 1)[0]:
            _refuse_a_split_list(out, tokens[i:])
            raise ConfigError(
                f"unrecognized argument {tok!r}; config overrides look like --section.key VALUE "
                "(e.g. --train.batch_size 4); `srunit train --help` lists the keys (`srunit train --preset NAME "
                "--help` a preset's method's)"
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


def _refuse_a_split_list(done: list[str], rest: list[str]) -> None:
    """A stray word after a value that reads as a list cut at its spaces (``--model.feature_layers [0, 4, 8]``,
    ``0, 4, 8``): the error names the one word the list is. It said only "unrecognized argument '4,'" and sent the
    user to the help the list was copied from."""
    if not done:
        return
    key, _, value = done[-1].partition("=")
    if not (value.endswith(",") or value.startswith(("[", "(")) or rest[0].startswith(",")):
        return
    words = [value]
    for word in rest:
        if word.startswith("--"):
            break
        words.append(word)
    items = [item.strip("[]() ") for item in ",".join(words).split(",")]
    raise ConfigError(f"unrecognized argument {rest[0]!r} after --{key} {value}: a list is one word, its items "
                      f"separated by commas without spaces, e.g. --{key} {','.join(i for i in items if i)}")


_UNSET = object()


def _value(tree: Any, key: str) -> Any:
    """The value at dotted ``key`` in the nested dict ``tree`` (``_UNSET`` where an optional section is off)."""
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return _UNSET
        tree = tree[part]
    return tree


def _describe(prefix: str, cls: type, lines: list[str], values: dict[str, Any], unread: Sequence[str] = ()) -> None:
    for row in option_rows(cls, prefix):
        if row.key in unread:
            continue
        key = f"--{row.key}"
        value = _value(values, row.key)
        shown = f"{typed(row.default)} (off)" if value is _UNSET else typed(value)
        lines.append(f"  {key:<34} {shown:<22} {_with_choices(row)}")


def typed(value: Any) -> str:
    """``value`` as one types it after ``--section.key`` in a shell, which reads it back as the same value:
    ``true``/``false``, ``null``, a list as one comma-separated word (``0,4,8``), a string bare (quoted where the
    shell would split it). The help showed Python's reprs (``None``, ``'cut'``, ``[0, 4, 8]``), and a list copied
    from it was three words, of which the second was refused."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return shlex.quote(",".join(typed(v) for v in value))
    return shlex.quote(str(value))


def _with_choices(row: OptionRow) -> str:
    """The help of ``row``, followed by its values where the help does not name each (the configuration reference
    lists them in a column of their own): `train.precision`'s "autocast dtype for the forward passes" gave no way to
    know that it takes fp32, bf16 or fp16."""
    named = all(re.search(rf"(?<![\w-]){re.escape(choice)}(?![\w-])", row.help) for choice in row.choices)
    return row.help if named else f"{row.help} ({' | '.join(row.choices)})"


def config_help(config: Config | None = None, header: str | None = None) -> str:
    """The option listing of `srunit train --help`: the values ``config`` (default: the srunit preset's) trains
    with, and the options of its method only; a section off in it shows its default with "(off)". ``header``: the
    line above the listing, which says where the values come from and which of them may be overridden."""
    if config is None:
        config = load_config("srunit")
    values = config.to_dict()
    method = values["method"]["name"]
    lines = [header or "config keys and the values of --preset srunit (override any of them as --section.key VALUE):",
             "  (values as typed: true or false, null for none, a list as one comma-separated word, e.g. 0,4,8)"]
    # The model options the method's networks never read are left out (DRIT's read model.ngf and model.ndf only).
    unread = [f"model.{key}" for key in config.method.void_model_options()]
    _describe("model.", ModelConfig, lines, values, unread)
    if unread:
        lines.append(textwrap.fill(f"(not read by {method}'s networks, so not listed: {', '.join(unread)})", 118,
                                   initial_indent="  ", subsequent_indent="   "))
    for section, cls in (("data.", DataConfig), ("train.", TrainConfig)):
        _describe(section, cls, lines, values)
    lines.append(f"method options (method.name {method!r}):")
    _describe("method.", type(config.method), lines, values)
    others = ", ".join(n for n in METHODS.names() if n != method)
    lines.append(f"other methods ({others}) have their own options: srunit train --method.name NAME --help, "
                 f"or --preset NAME --help")
    return "\n".join(lines)
