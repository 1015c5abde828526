"""The network file: a network's weights as safetensors, its class and constructor config in the header.

Every network srunit saves (a checkpoint's G.safetensors, D.safetensors, ...) is such a file. Its
metadata holds ``format: srunit``, ``network``: the class name, and ``config``: the keyword arguments
that build an empty network of the right shape. ``load_network(path)`` looks the class up in
``srunit.registry.NETWORKS`` and builds it, so a file loads without naming its class; a class of
your own loads once it is registered (see the registry's plugins).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from srunit._atomic import write_bytes_atomic
from srunit._reading import open_regular, parse_json
from srunit.errors import CheckpointError
from srunit.runtime.device import check_torch_defaults

__all__ = ["cpu_tensors", "network_bytes", "save_network", "read_network_metadata", "build_network", "load_network",
           "empty_network", "load_network_weights", "check_finite_weights", "check_weight_dtypes", "REWRITE"]

# The way on from a damaged or missing network file; "point at another checkpoint" said no how (round thirty-five (C)).
REWRITE = ("restore it from a copy, or use an earlier checkpoint: give RUN/checkpoints/step_N where a command takes a "
           "checkpoint, or resume from it (ln -sfn step_N RUN/checkpoints/latest)")

# Bounds of a network file that the file itself cannot raise: srunit's networks have a few hundred tensors
# (a header of some 50 kB), and every integer of their constructor config (a width, a depth, a count, a layer
# position) is at most a few thousand (srunit.options.MAX_WIDTH is 4096).
MAX_HEADER_BYTES = 16 * 2**20
MAX_TENSORS = 100_000
MAX_CONFIG_INT = 2**16


def cpu_tensors(net: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of ``net`` as contiguous CPU tensors, detached."""
    return {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}


def network_bytes(tensors: dict[str, torch.Tensor], kind: str, config: dict[str, Any]) -> bytes:
    """A safetensors file of ``tensors``, the network's class and constructor config in its metadata."""
    meta = {"format": "srunit", "network": kind, "config": json.dumps(config, sort_keys=True)}
    return _sorted_header(safetensors_bytes(tensors, metadata=meta))


def save_network(net: nn.Module, path: Path, kind: str | None = None) -> None:
    """Weights of `net` to a safetensors file; its class name (or ``kind``) and constructor config
    (``net.config``) go into the metadata.

    The same weights always give the same bytes (the header's keys are sorted: safetensors writes
    its metadata in hash order), and the file is written atomically with mode 0644 like every other
    file of a run.
    """
    write_bytes_atomic(path, network_bytes(cpu_tensors(net), kind or type(net).__name__, getattr(net, "config", {})))


def _sorted_header(data: bytes) -> bytes:
    """A safetensors file with its JSON header re-written with sorted keys (offsets are relative to the
    data section, so the tensors' bytes stay as they are); padded with spaces to 8 bytes as the format does."""
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + data[8 + n :]


def read_network_metadata(path: Path) -> dict[str, Any]:
    """{'network': class name, 'config': constructor kwargs, 'shapes': tensor name -> shape} of a file
    written by `save_network`, from its header only (no tensor is read).

    Raises:
        CheckpointError: the file is missing, not a safetensors file, truncated, or without readable
            srunit metadata; naming the file and the fix.
    """
    _check_header(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist; {REWRITE}") from None
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error type for any damaged header
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}); it is damaged or of another "
                              f"format: {REWRITE}") from None
    if meta.get("format") != "srunit":
        raise CheckpointError(f"{path} is a safetensors file but not an srunit network (no srunit metadata)")
    config = parse_json(meta.get("config", "{}"), f"{path}: its metadata 'config'", error=CheckpointError,
                        fix=REWRITE)
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: its metadata 'config' must be a JSON object, got {type(config).__name__}; "
                              f"{REWRITE}")
    return {"network": meta.get("network"), "config": config, "shapes": shapes}


def _check_header(path: Path) -> None:
    """The safetensors header of ``path`` read within bounds the file cannot raise: a regular file, a header
    of at most `MAX_HEADER_BYTES` inside the file, UTF-8 JSON nested a few levels, at most `MAX_TENSORS`
    tensors. CheckpointError naming the file otherwise."""
    fd = open_regular(path, "network file", error=CheckpointError, fix=REWRITE)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        first = f.read(8)
        n = int.from_bytes(first, "little") if len(first) == 8 else -1
        if n < 0 or n > MAX_HEADER_BYTES or 8 + n > size:
            why = (f"it is {size:,} bytes, too short for the 8 that give the header's size" if n < 0 else
                   f"its header size of {n:,} bytes does not fit a file of {size:,} bytes and a header of at most "
                   f"{MAX_HEADER_BYTES:,}")
            raise CheckpointError(f"{path} is not a readable safetensors file ({why}); it is damaged or of another "
                                  f"format: {REWRITE}")
        raw = f.read(n)
    header = parse_json(raw, f"{path}: its safetensors header", error=CheckpointError, fix=REWRITE)
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: its safetensors header is not a JSON object; {REWRITE}")
    count = len(header) - ("__metadata__" in header)
    if count > MAX_TENSORS:
        raise CheckpointError(f"{path}: its header lists {count:,} tensors, more than the {MAX_TENSORS:,} any "
                              f"network of srunit has; {REWRITE}")


def build_network(cls: type[nn.Module], path: Path,
                  hint: str = "give the generator's file (G.safetensors) or the run folder") -> nn.Module:
    """The network of class ``cls`` stored at ``path``, built from its metadata and loaded with its weights.

    The network is first built on the meta device (nothing allocated) and its parameter shapes are
    compared with the file's, so damaged metadata asking for an absurd size fails with a message
    instead of an allocation of terabytes.

    Raises:
        CheckpointError: the file is unreadable, holds another network (``hint`` says what to give
            instead), or does not match its metadata.
    """
    meta = read_network_metadata(path)
    if meta["network"] != cls.__name__:
        raise CheckpointError(f"{path} holds a {meta['network']}, not a {cls.__name__}; {hint}")
    return _built(cls, path, meta)


def load_network(path: Path) -> nn.Module:
    """The network stored at ``path``, of the class its metadata names (``srunit.registry.NETWORKS``).

    Raises:
        CheckpointError: as `build_network`, or the file names a class no registry entry has.
        ConfigError: a plugin of ``$SRUNIT_PLUGINS`` (or an entry point) cannot be loaded.
    """
    meta = read_network_metadata(path)
    return _built(network_class(path, meta), path, meta)


def network_class(path: Path, meta: dict[str, Any]) -> type[nn.Module]:
    """The registered class that the metadata ``meta`` of the network file ``path`` names, plugins loaded first.

    Raises:
        CheckpointError: no registry entry has that name.
        ConfigError: a plugin of ``$SRUNIT_PLUGINS`` (or an entry point) cannot be loaded: its own line, not "the
            file's class is not registered" (which `load_translator` still said of the built-in ResnetGenerator).
    """
    from srunit.errors import ConfigError
    from srunit.registry import NETWORKS, load_plugins

    load_plugins()
    try:
        return NETWORKS.get(str(meta["network"]))
    except ConfigError as err:
        raise CheckpointError(f"{path} holds a network of class {meta['network']!r}, which is not registered ({err}); "
                              "if it is a network of your own, name its module in $SRUNIT_PLUGINS") from None


def _check_sizes(path: Path, meta: dict[str, Any]) -> None:
    """Every integer of the metadata config (a width, a depth, a block count, a layer position) is bounded by
    what the file itself holds, before anything is built: a width is at most the largest tensor dimension, a
    count at most a few modules per tensor. Damaged metadata would otherwise build a billion modules (hours even
    on the meta device) or overflow torch's sizes."""
    # Only tensors that hold values count (their bytes are in the file); empty tensors (a dimension of 0, as
    # large as a header line can spell) and the tensor count are free to forge, so MAX_CONFIG_INT caps all.
    held = [shape for shape in meta["shapes"].values() if 0 not in shape]
    limit = min(MAX_CONFIG_INT, max([16, 8 * len(held), *(d for shape in held for d in shape)]))

    def check(key: str, value: Any) -> None:
        if isinstance(value, (list, tuple)):
            for v in value:
                check(key, v)
        elif isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise CheckpointError(f"{path}: {key} = {value} in its metadata config is below 0; the metadata is "
                                      f"damaged: {REWRITE}")
            if value > limit:
                raise CheckpointError(f"{path}: {key} = {value} in its metadata config is more than the file's "
                                      f"tensors can hold (at most {limit}); the metadata is damaged: {REWRITE}")

    for key, value in meta["config"].items():
        check(str(key), value)


def _built(cls: type[nn.Module], path: Path, meta: dict[str, Any]) -> nn.Module:
    check_torch_defaults()  # a default dtype of float64 built float64 weights that an export called fp32
    _check_sizes(path, meta)
    try:
        with torch.device("meta"):
            skeleton = cls(**meta["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its metadata does not describe a {cls.__name__} ({err}); {REWRITE}") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    if expected != meta["shapes"]:
        differ = sorted(k for k in expected.keys() | meta["shapes"].keys() if expected.get(k) != meta["shapes"].get(k))
        raise CheckpointError(
            f"{path}: the tensors do not match the {cls.__name__} its metadata describes ({len(differ)} "
            f"differ, e.g. {differ[0]}: file {meta['shapes'].get(differ[0])}, metadata "
            f"{expected.get(differ[0])}); {REWRITE}"
        )
    net = empty_network(cls, meta["config"], skeleton)
    load_network_weights(net, path)
    return net


def empty_network(cls: type[nn.Module], config: Mapping[str, Any], skeleton: nn.Module | None = None) -> nn.Module:
    """``cls(**config)`` on the CPU, for weights that a strict ``load_state_dict`` fills in next, built without
    drawing from torch's global random generator: a translation or an export (or a Trainer resumed) leaves the
    random state of a run that fits in this process (in another thread too) as it was.

    Where every tensor of the network is a parameter or a persistent buffer (every network of srunit), the network
    built on the meta device (``skeleton``, if already built) is given storage and no initialisation. Any other
    network (a plugin's, holding a tensor the file does not) is built for real, torch's random state put back after;
    that one cannot keep a fit in another thread on its seed."""
    if skeleton is None:
        with torch.device("meta"):
            skeleton = cls(**config)
    if _held_by_its_state_dict(skeleton):
        return skeleton.to_empty(device="cpu")
    with torch.random.fork_rng(devices=[]):
        return cls(**config)


def _held_by_its_state_dict(net: nn.Module) -> bool:
    """Whether every tensor of ``net`` is one its state dict holds (no buffer left out of it, no tensor kept as a
    plain attribute), so that loading a state dict leaves nothing of it unset."""
    def tensors(value: Any) -> bool:
        if isinstance(value, torch.Tensor):
            return True
        if isinstance(value, (list, tuple, set)):
            return any(tensors(v) for v in value)
        return isinstance(value, dict) and any(tensors(v) for v in value.values())

    return all(not module._non_persistent_buffers_set
               and not any(tensors(value) for key, value in vars(module).items()
                           if key not in ("_parameters", "_buffers"))
               for module in net.modules())


def load_network_weights(net: nn.Module, path: Path) -> None:
    """Load ``path`` (a safetensors file) into ``net``, every key and shape matching.

    Raises:
        CheckpointError: the file is missing, damaged, or does not match the network.
    """
    _check_header(path)
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist; {REWRITE}") from None
    except Exception as err:  # noqa: BLE001 - a damaged or truncated file
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({err}); it is damaged or truncated: {REWRITE}"
        ) from None
    check_weight_dtypes(net, state, path)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError:
        raise CheckpointError(f"{path} does not match the network built from the run config: "
                              f"{_first_mismatch(net, state)}; the config's model options (or the file) changed "
                              f"since the checkpoint was written: restore the run's config.yaml (a backup, git) "
                              f"or give the checkpoint of this config") from None


def _first_mismatch(net: nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    """The first difference between ``net`` and ``state`` in one line, with a count of the others (torch's own
    message lists every tensor, one line each)."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if shapes:
        key = shapes[0]
        first = (f"tensor {key} has shape {list(state[key].shape)} in the file, {list(own[key].shape)} in the "
                 f"network")
    elif missing:
        first = f"tensor {missing[0]} of the network is missing from the file"
    elif unexpected:
        first = f"the file holds tensor {unexpected[0]}, which the network lacks"
    else:
        return "the tensors do not fit"
    others = len(shapes) + len(missing) + len(unexpected) - 1
    return first + (f" ({others} more tensor(s) differ)" if others else "")


def check_weight_dtypes(net: nn.Module, state: Mapping[str, torch.Tensor], source: str | Path) -> None:
    """CheckpointError naming ``source`` and the first tensor of ``state`` that is not floating point where ``net``
    holds a floating-point one: loading would cast integers or booleans into weights without a word (a quantized
    or foreign file, or one written by other code), and every output would be garbage."""
    own = net.state_dict()
    for name, tensor in state.items():
        if name in own and own[name].is_floating_point() and not tensor.is_floating_point():
            raise CheckpointError(f"{source}: the weight {name} is stored as {str(tensor.dtype).removeprefix('torch.')}"
                                  f", not as floating point; this file does not hold the weights of a trained "
                                  f"network (quantized, or written by other code): {REWRITE}")


def check_finite_weights(net: nn.Module, source: str | Path) -> None:
    """CheckpointError naming ``source`` and the first tensor of ``net`` that holds NaN or inf: such weights come
    from a damaged file or a diverged run, and every output of the network would be garbage."""
    for name, tensor in net.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{source}: the weights hold NaN or inf values (first in {name}); the checkpoint is "
                                  f"damaged or from a diverged run: {REWRITE}")
