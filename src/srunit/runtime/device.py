"""Where and in which precision a run computes: device names, autocast, compute dtypes."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from srunit.checks import PRECISIONS, Precision, check_choice, check_device_name
from srunit.errors import ConfigError

__all__ = ["PRECISION_DTYPES", "device_available", "resolve_device", "precision_dtype", "autocast"]

PRECISION_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
assert tuple(PRECISION_DTYPES) == PRECISIONS, "every precision of srunit.checks needs its dtype"


def device_available(kind: str) -> bool:
    """Whether this torch build and machine have a device of type ``kind`` (cpu, cuda, mps, xpu)."""
    if kind == "cpu":
        return True
    if kind == "mps":
        backend = getattr(torch.backends, "mps", None)
        return bool(backend is not None and backend.is_available())
    module = getattr(torch, kind, None)  # torch.cuda; torch.xpu from torch 2.4 on
    try:
        return bool(module is not None and module.is_available())
    except (RuntimeError, AssertionError):  # a build without the back end can raise instead of answering
        return False


def resolve_device(name: str, option: str = "train.device") -> torch.device:
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``xpu`` or ``xpu:N`` -> a
    torch device that this torch build and machine have.

    ``option`` names the setting in error messages (``train.device``, ``--device``).
    """
    check_device_name(name, option)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    device = torch.device(name)
    if not device_available(device.type):
        what = {"cuda": "CUDA", "mps": "MPS (Apple GPUs)", "xpu": "XPU (Intel GPUs)"}[device.type]
        raise ConfigError(f"{option} is {name!r} but {what} is not available here; use {option} cpu or auto")
    if device.index is not None and device.type in ("cuda", "xpu"):
        count = getattr(torch, device.type).device_count()
        if device.index >= count:
            raise ConfigError(f"{option} is {name!r} but this machine has {count} {device.type} device(s), "
                              f"numbered from 0; use {option} {device.type}:0 to {device.type}:{count - 1} or auto")
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
