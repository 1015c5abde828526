"""Where and in which precision a run computes: device names, autocast, compute dtypes."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from srunit.checks import PRECISIONS, Precision, check_choice
from srunit.errors import ConfigError

__all__ = ["PRECISION_DTYPES", "resolve_device", "precision_dtype", "autocast"]

PRECISION_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
assert tuple(PRECISION_DTYPES) == PRECISIONS, "every precision of srunit.checks needs its dtype"


def resolve_device(name: str, option: str = "train.device") -> torch.device:
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` -> a torch device.

    ``option`` names the setting in error messages (``train.device``, ``--device``).
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{option}: invalid value {name!r}; allowed: auto, cpu, cuda, cuda:N, mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{option} is {name!r} but CUDA is not available here; use {option} cpu or auto")
    return device


def precision_dtype(precision: str, option: str = "train.precision") -> torch.dtype:
    """The compute dtype of a precision name (fp32, bf16, fp16)."""
    check_choice(precision, option, PRECISIONS)
    return PRECISION_DTYPES[precision]


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[Any]:
    """Autocast to the precision's dtype on ``device``; nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision_dtype(precision))
