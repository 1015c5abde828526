"""Where and in which precision a run computes: device names, autocast, compute dtypes."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from srunit.checks import PRECISIONS, Precision, check_choice, check_device_name
from srunit.errors import ConfigError, first_line

__all__ = ["PRECISION_DTYPES", "device_available", "resolve_device", "precision_dtype", "autocast",
           "check_torch_defaults"]

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


def check_torch_defaults() -> None:
    """Refuse process-wide torch defaults a caller of the Python API set that srunit cannot compute under.

    srunit builds its networks and images with torch's defaults (float32, on the CPU, then moved to the device
    asked for); a default dtype of float64 made networks whose weights met float32 images in torch's own error,
    and a default device of ``meta`` networks without data.

    Raises:
        ConfigError: torch's default dtype is not float32, or its default device is not the CPU.
    """
    dtype = torch.get_default_dtype()
    if dtype != torch.float32:
        raise ConfigError(f"torch's default dtype is {dtype} (torch.set_default_dtype), but srunit builds its "
                          f"networks and images in float32 and chooses its compute dtype by its precision option: "
                          f"call torch.set_default_dtype(torch.float32) before srunit")
    try:
        device = torch.get_default_device()
    except (AssertionError, RuntimeError) as err:  # set to a device this torch build lacks ("cuda" on a CPU build)
        raise ConfigError(f"torch's default device (torch.set_default_device) is one this torch build cannot use "
                          f"({first_line(err)}): call torch.set_default_device('cpu') before srunit") from None
    if device.type != "cpu":
        raise ConfigError(f"torch's default device is {device} (torch.set_default_device), but srunit builds on the "
                          f"CPU and moves to the device its option names (train.device, --device): call "
                          f"torch.set_default_device('cpu') before srunit")


def resolve_device(name: str, option: str = "train.device") -> torch.device:
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``xpu`` or ``xpu:N`` -> a
    torch device that this torch build and machine have.

    ``option`` names the setting in error messages (``train.device``, ``--device``). The process's torch defaults
    are checked here too (`check_torch_defaults`): every command that computes resolves its device first.
    """
    check_torch_defaults()
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
