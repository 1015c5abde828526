"""Lazy package attributes: a package names what it offers, and each name imports its module on first use.

    __getattr__, __dir__ = lazy_exports(__name__, {"Trainer": "srunit.engine.trainer", ...})

so importing a package costs nothing beyond its ``__init__``, and a tool that needs one module of
it does not import the rest.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose attribute NAME lives in module ``exports[NAME]``
    (a sub-module itself when the name equals its last component)."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(exports[name])
        value = module if exports[name].rsplit(".", 1)[-1] == name and not hasattr(module, name) else \
            getattr(module, name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
