"""What produced a result: package and git version, torch, Python and the machine."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from srunit._version import __version__

__all__ = ["git_commit", "device_name", "machine_description", "software_versions"]


@functools.cache
def git_commit() -> str | None:
    """The source tree's HEAD commit, or None outside a git checkout.

    Read once per process, when it is first needed: a long benchmark that outlives a new
    commit keeps recording the commit its code was loaded from.
    """
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


@functools.cache
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """The GPU's name for a CUDA device, else the CPU model (from /proc/cpuinfo where it exists)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model()


def machine_description(device: torch.device) -> str:
    """One line naming the hardware and torch, e.g. 'Intel Xeon ..., 2 threads, torch 2.13.0 CPU'."""
    if device.type == "cuda":
        return f"{device_name(device)}, torch {torch.__version__}"
    return f"{device_name(device)}, {torch.get_num_threads()} threads, torch {torch.__version__} CPU"


def software_versions() -> dict[str, Any]:
    """srunit version, git commit, torch and Python versions (the head of every run.json)."""
    return {"srunit_version": __version__, "git_commit": git_commit(), "torch": torch.__version__,
            "python": platform.python_version()}
