"""What the trainer checks of a method's outputs while it trains, and how it names a plugin that fails.

A method of a plugin (docs/adding-a-method.md) runs through the same trainer as the built-in ones. What it returns
is checked where checking costs no host-device sync: the types, shapes, dtypes and device of its phases' losses and
logs (tensor metadata, every step), that a step has phases at all, that a phase's backward pass reached a parameter
it steps (whether gradients exist, at the phase's first step and at every step the trainer logs), and the extra state
it asks a checkpoint to hold (at checkpoints only). Its values (inf, nan) are the trainer's usual non-finite check, as
for every method. An exception raised in a plugin's code while it trains is reported in one line naming the plugin
(`plugin_of`), with the run's last checkpoint.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Iterable
from typing import Any

import torch

from srunit.errors import MethodError, SrunitError, first_line
from srunit.methods.base import Phase, describe_value

__all__ = ["check_extra_state", "check_phase_output", "check_phase_reached", "check_phases", "method_label",
           "plugin_failure", "plugin_of"]

CONTRACT = ("a phase's loss function returns (loss, logs): loss a floating-point tensor of one element that "
            "requires grad, on the run's device and computed from the networks its optimizers step, logs a dict of "
            "str names to one-element tensors (docs/adding-a-method.md)")
# What a checkpoint's state.pt holds, read back with torch.load(weights_only=True).
_LEAVES = (torch.Tensor, int, float, bool, str, bytes, type(None), torch.dtype, torch.device)
_CONTAINERS = (dict, collections.OrderedDict, list, tuple, torch.Size)


def method_label(method: Any) -> str:
    cls = type(method)
    name = getattr(getattr(method, "options", None), "name", None) or cls.__name__
    return f"method {name!r} ({cls.__module__}.{cls.__qualname__})"


def check_phases(method: Any, phases: Any, step: int) -> list[Phase]:
    """``phases``, what ``method.phases()`` returned for 0-based ``step``, as a list; MethodError where it holds no
    phase (or is not a list of them): that step would train nothing, and a run of them "trained" to the end, status
    0, its checkpoints holding untrained networks."""
    if isinstance(phases, (list, tuple)) and phases and all(isinstance(p, Phase) for p in phases):
        return list(phases)
    what = ("an empty list" if isinstance(phases, (list, tuple)) and not phases
            else describe_value(phases) if not isinstance(phases, (list, tuple))
            else f"{describe_value(next(p for p in phases if not isinstance(p, Phase)))} among its phases")
    raise MethodError(f"{method_label(method)}: phases() returned {what} at step {step + 1}, so the step would train "
                      f"nothing; phases() returns the step's phases, a list of at least one srunit.methods.Phase (a "
                      f"loss function and the optimizers it steps; docs/adding-a-method.md)")


def check_phase_output(method: Any, phase: str, out: Any, device: torch.device | None = None
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``out`` of phase ``phase``'s loss function, checked (metadata only: no host sync); MethodError otherwise.
    ``device``: the run's device, which the loss must be on (a loss on the meta device trained nothing, unsaid)."""
    def refuse(what: str) -> MethodError:
        return MethodError(f"{method_label(method)}: phase {phase!r} returned {what}; {CONTRACT}")

    if not isinstance(out, tuple) or len(out) != 2:
        raise refuse(f"{describe_value(out)}" if not isinstance(out, tuple) else f"a tuple of {len(out)} items")
    loss, logs = out
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.is_floating_point():
        raise refuse(f"as its loss {describe_value(loss)}")
    if not loss.requires_grad:
        raise refuse(f"as its loss {describe_value(loss)} that does not require grad (computed without the "
                     f"networks, or detached)")
    if device is not None and not _on(loss.device, device):
        raise refuse(f"as its loss a tensor on the device {loss.device}, not on the run's device {device} (computed "
                     f"apart from the networks)")
    if not isinstance(logs, dict):
        raise refuse(f"as its logs {describe_value(logs)}")
    for key, value in logs.items():
        if not isinstance(key, str) or not key:
            raise refuse(f"a log named {key!r}")
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise refuse(f"as its log {key!r} {describe_value(value)}")
    return loss, logs


def _on(where: torch.device, device: torch.device) -> bool:
    """Whether a tensor on ``where`` is on the run's ``device`` ("cuda" is any CUDA device's index)."""
    return where.type == device.type and (device.index is None or where.index in (None, device.index))


def check_phase_reached(method: Any, phase: str, params: Iterable[torch.nn.Parameter], later: int | None = None
                        ) -> None:
    """MethodError where the backward pass of phase ``phase``'s loss left every parameter it steps (``params``)
    without a gradient: a loss that requires grad but was not computed from the networks (a new leaf tensor) trained
    "successfully", its optimizers stepping on nothing. Whether a gradient exists is metadata (no host sync); the
    trainer asks at the first step of each phase and at every step it logs (``later``: that 1-based step, where it
    is not the phase's first), so a loss that changes its form later (a term's start, a warm-up) is seen too."""
    if any(p.grad is not None for p in params):
        return
    never = "never update them" if later is None else f"stop updating them at step {later}"
    raise MethodError(f"{method_label(method)}: phase {phase!r} returned a loss whose backward pass reached none of "
                      f"the parameters its optimizers step (a tensor that requires grad but was not computed from "
                      f"the networks), so training would {never}; {CONTRACT}")


def check_extra_state(method: Any, state: Any, where: str = "extra_state()") -> None:
    """MethodError where ``state`` (a method's `extra_state`) holds what a checkpoint cannot hold: it was saved (or
    failed to pickle, a traceback), and no step of the run could be resumed from it."""
    if isinstance(state, _LEAVES):
        return
    if type(state) in _CONTAINERS:
        items = state.items() if isinstance(state, dict) else enumerate(state)
        for key, value in items:
            if isinstance(state, dict) and not isinstance(key, (str, int)):
                raise _state_error(method, where, f"a key {describe_value(key)}")
            check_extra_state(method, value, f"{where}[{key!r}]")
        return
    raise _state_error(method, where, describe_value(state))


def _state_error(method: Any, where: str, what: str) -> MethodError:
    return MethodError(f"{method_label(method)}: its {where} is {what}, which a checkpoint cannot hold (state.pt is "
                       f"read back with torch.load(weights_only=True)): return tensors, numbers, strings, None, and "
                       f"lists, tuples and dicts of them")


def plugin_of(err: BaseException, method: Any) -> str | None:
    """The plugin module whose code raised ``err`` while ``method`` trained, or None where srunit's own code did.

    The innermost frame of a module of ``$SRUNIT_PLUGINS`` or an ``srunit.plugins`` entry point (a term's plugin
    under a built-in method), else the module of the method's class where it is not srunit's (a method's plugin,
    which may call modules it imports)."""
    from srunit.registry import plugin_modules

    plugins = {name.split(":")[0] for name in plugin_modules()}
    found = None
    tb = err.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if any(module == p or module.startswith(p + ".") for p in plugins):
            found = module
        tb = tb.tb_next
    if found is not None:
        return found
    own = type(method).__module__
    if own != "srunit" and not own.startswith("srunit.") and own in sys.modules:
        return own
    return None


def plugin_failure(err: BaseException, method: Any, doing: str = "") -> MethodError | None:
    """The one-line error for ``err`` raised in a plugin's code while ``method`` ran (``doing``: what it was doing,
    e.g. " while its load_extra_state() read the checkpoint"), or None where srunit's own code raised it (its own
    errors keep their messages, its own defects their tracebacks)."""
    if isinstance(err, SrunitError):
        return None
    plugin = plugin_of(err, method)
    if plugin is None:
        return None
    first = first_line(err)
    return MethodError(f"{method_label(method)} failed in plugin module {plugin!r}{doing}: {type(err).__name__}"
                       + (f": {first}" if first else ""))
