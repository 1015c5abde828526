"""Hyper-parameter search spaces: what `srunit tune` may change in a config, declared beside the options.

A space is a tuple of ``Param``: each names the config key it sets (``method.robust.weight``) and the range
or the choices it takes. Methods declare theirs with their options (``MethodOptions.search_space``; the
paper's SRUNIT space is in `srunit.methods.terms.robustness`, CUT's in `srunit.methods.cut`), and a user gives
another as a YAML file (``srunit tune --space FILE``)::

    method.lambda_nce: {low: 0.5, high: 10, log: true}     # a float, log-uniform
    method.nce_temperature: {low: 0.03, high: 0.2}          # a float, uniform
    method.num_patches: {low: 64, high: 256, int: true}     # an integer
    train.lr: {choices: [1.0e-4, 2.0e-4]}                   # one of a list
    method.robust.layers: {leave_one_out: 5}                # layers 0 .. 4, or all but one (choices none, 0 .. 4)

A leaf module: optuna is imported by the tuner only, so declaring a space costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from srunit.errors import ConfigError

__all__ = ["Param", "LeaveOneOut", "space_from_dict", "describe_space"]

ALL_LAYERS = "none"  # the LeaveOneOut choice that keeps every layer


@dataclass(frozen=True)
class Param:
    """One tuned option: a float or integer in [low, high] (log-uniform with ``log``), or one of ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()
    help: str = ""

    def __post_init__(self) -> None:
        where = f"search space entry {self.key!r}"
        if not self.key or "." not in self.key:
            raise ConfigError(f"{where}: a search space key is a dotted config key such as method.lambda_nce")
        if self.key == "method.name":  # each trial another method, with options meant for the preset's own
            raise ConfigError(f"{where}: a study tunes one method; run a study per method and compare their best "
                              f"settings with `srunit bench`")
        if self.choices:
            if self.low is not None or self.high is not None:
                raise ConfigError(f"{where}: give either choices or low/high, not both")
            kinds = (str, int, float, type(None))  # what optuna stores (bool is an int)
            odd = [c for c in self.choices if not isinstance(c, kinds)]
            if odd:
                raise ConfigError(f"{where}: a choice must be a number, a string, true/false or null, got {odd[0]!r}; "
                                  f"a list of layers is tuned with leave_one_out")
            repeated = sorted({repr(c) for i, c in enumerate(self.choices) if _same(c, self.choices[:i])})
            if repeated:
                raise ConfigError(f"{where}: choices repeat {', '.join(repeated)}; a repeated choice is drawn more "
                                  f"often than the others; list each once")
            return
        if self.low is None or self.high is None:
            raise ConfigError(f"{where}: give low and high (or choices)")
        for name, value in (("low", self.low), ("high", self.high)):
            if isinstance(value, str):  # YAML reads 1e-5 (no dot, no sign) as text; a config file takes it as 1e-05
                try:
                    value = float(value.strip())
                except ValueError:
                    raise ConfigError(f"{where}: {name} must be a finite number, got {value!r}") from None
                object.__setattr__(self, name, value)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{where}: {name} must be a finite number, got {value!r}")
        if not self.low < self.high:
            raise ConfigError(f"{where}: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ConfigError(f"{where}: a log-uniform range needs low > 0, got {self.low}")
        if self.integer and (int(self.low) != self.low or int(self.high) != self.high):
            raise ConfigError(f"{where}: an integer range needs integer bounds, got {self.low} and {self.high}")

    def suggest(self, trial: Any) -> Any:
        """This parameter's value for an optuna trial."""
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.key, int(self.low or 0), int(self.high or 0), log=self.log)
        return trial.suggest_float(self.key, float(self.low or 0.0), float(self.high or 0.0), log=self.log)

    def distribution(self) -> Any:
        """The optuna distribution of this parameter (to add finished trials from records)."""
        import optuna

        if self.choices:
            return optuna.distributions.CategoricalDistribution(list(self.choices))
        if self.integer:
            return optuna.distributions.IntDistribution(int(self.low or 0), int(self.high or 0), log=self.log)
        return optuna.distributions.FloatDistribution(float(self.low or 0.0), float(self.high or 0.0), log=self.log)

    def overrides(self, value: Any) -> dict[str, Any]:
        """The config overrides that a value of this parameter means."""
        return {self.key: value}

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one this parameter can take (a record of another space's trial is not)."""
        if self.choices:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return float(self.low or 0.0) <= value <= float(self.high or 0.0) and (not self.integer or int(value) == value)

    def describe(self) -> str:
        if self.choices:
            return f"{self.key} in {{{', '.join(map(str, self.choices))}}}"
        kind = "log-uniform" if self.log else "uniform"
        return f"{self.key} {kind}{' integer' if self.integer else ''} in [{self.low:g}, {self.high:g}]"


def _same(value: Any, earlier: tuple[Any, ...]) -> bool:
    """Whether ``value`` is among ``earlier`` as a config would take it: 1 and 1.0 are one value; true and 1 are not."""
    return any(type(e) is type(value) and e == value or (type(e) in (int, float) and type(value) in (int, float)
                                                          and e == value) for e in earlier)


@dataclass(frozen=True)
class LeaveOneOut(Param):
    """All of ``items`` (choice ``none``) or all but one (choice ``"k"`` leaves item k out): the paper's "K = 4 or 5
    by leaving one layer out" (Sec. 5.3). Sets ``key`` to the list of the items kept, in their order."""

    items: tuple[int, ...] = ()

    def __init__(self, key: str, items: int | tuple[int, ...] | list[int], help: str = "") -> None:  # noqa: A002
        values = tuple(range(items)) if isinstance(items, int) and not isinstance(items, bool) else items
        if not isinstance(values, (tuple, list)) or len(values) < 2 or len(set(values)) != len(values) \
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ConfigError(f"search space entry {key!r}: leave_one_out takes a count of 2 or more, or a list of "
                              f"2 or more distinct integers, got {items!r}")
        object.__setattr__(self, "items", tuple(values))
        super().__init__(key, choices=(ALL_LAYERS, *(str(k) for k in values)), help=help)

    def overrides(self, value: Any) -> dict[str, Any]:
        left_out = None if value == ALL_LAYERS else int(value)
        return {self.key: [k for k in self.items if k != left_out]}

    def describe(self) -> str:
        return f"{self.key}: all of {list(self.items)} or all but one"


def space_from_dict(data: Any, source: str) -> tuple[Param, ...]:
    """A search space from its YAML form (module docstring).

    Raises:
        ConfigError: the form is wrong (named: ``source``, the entry, the fix).
    """
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(f"{source}: a search space is a mapping of config keys to ranges, e.g. "
                          f"method.lambda_nce: {{low: 0.5, high: 10, log: true}}")
    known = {"low", "high", "log", "int", "choices", "leave_one_out", "help"}
    out: list[Param] = []
    for key, spec in data.items():
        if not isinstance(spec, Mapping) or set(spec) - known:
            extra = sorted(set(spec) - known) if isinstance(spec, Mapping) else None
            raise ConfigError(f"{source}: entry {key!r} must be a mapping with low/high[/log/int], choices or "
                              f"leave_one_out{f'; unknown keys {extra}' if extra else ''}")
        help_text = str(spec.get("help", ""))
        for flag in ("log", "int"):  # bool("false") is True: a quoted word would have turned the flag on
            if flag in spec and not isinstance(spec[flag], bool):
                raise ConfigError(f"{source}: entry {key!r}: {flag} must be true or false, got {spec[flag]!r}")
        if "leave_one_out" in spec:
            out.append(LeaveOneOut(str(key), spec["leave_one_out"], help=help_text))
            continue
        choices = spec.get("choices")
        if choices is not None and (not isinstance(choices, list) or not choices):
            raise ConfigError(f"{source}: entry {key!r}: choices must be a non-empty list")
        out.append(Param(str(key), low=spec.get("low"), high=spec.get("high"), log=spec.get("log", False),
                         integer=spec.get("int", False), choices=tuple(choices or ()), help=help_text))
    return tuple(out)


def describe_space(space: tuple[Param, ...]) -> str:
    """One line per parameter."""
    return "\n".join(f"  {p.describe()}" + (f"  ({p.help})" if p.help else "") for p in space)
