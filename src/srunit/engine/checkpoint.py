"""Run checkpoints: network weights as safetensors, training state beside them, written atomically.

Layout of RUN/checkpoints/:
    step_00001000/   G.safetensors D.safetensors F.safetensors state.pt [KEEP]
    latest -> step_00001000      (a symlink, replaced atomically)

A checkpoint folder is written under a temporary name and renamed into place, and `latest` is
switched only after that, so a crash at any moment leaves the previous checkpoint intact.
Folders without a KEEP marker are pruned once a newer checkpoint is in place.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from srunit._atomic import write_bytes_atomic
from srunit.errors import CheckpointError

STATE_FILE = "state.pt"
KEEP_MARKER = "KEEP"
LATEST = "latest"


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


def save_network(net: nn.Module, path: Path, kind: str) -> None:
    """Weights of `net` to a safetensors file; its constructor config goes into the metadata.

    The same weights always give the same bytes (the header's keys are sorted: safetensors writes
    its metadata in hash order), and the file is written atomically with mode 0644 like every other
    file of a run.
    """
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    config = getattr(net, "config", {})
    meta = {"format": "srunit", "network": kind, "config": json.dumps(config, sort_keys=True)}
    write_bytes_atomic(path, _sorted_header(safetensors_bytes(tensors, metadata=meta)))


def _sorted_header(data: bytes) -> bytes:
    """A safetensors file with its JSON header re-written with sorted keys (offsets are relative to the
    data section, so the tensors' bytes stay as they are); padded with spaces to 8 bytes as the format does."""
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + data[8 + n :]


def read_network_metadata(path: Path) -> dict[str, Any]:
    """{'network': class name, 'config': constructor kwargs} of a file written by `save_network`."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != "srunit":
        raise CheckpointError(f"{path} is a safetensors file but not an srunit network (no srunit metadata)")
    return {"network": meta.get("network"), "config": json.loads(meta.get("config", "{}"))}


def load_network_weights(net: nn.Module, path: Path) -> None:
    state = load_file(str(path))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path} does not match the network built from the run config: {err}") from None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(root: Path, step: int, networks: dict[str, nn.Module], state: dict[str, Any], *, keep: bool) -> Path:
    """Write RUN/checkpoints/step_N atomically, point `latest` at it, prune unkept older ones."""
    root.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(step)
    final = root / name
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for net_name, net in networks.items():
        save_network(net, tmp / f"{net_name}.safetensors", type(net).__name__)
    torch.save(state, tmp / STATE_FILE)
    if keep:
        (tmp / KEEP_MARKER).touch()
    for f in tmp.iterdir():
        with open(f, "rb+") as fh:
            os.fsync(fh.fileno())
    if final.exists():  # the same step saved again (e.g. the final step was also a periodic one)
        old = root / f".old-{name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    link_tmp = root / f".tmp-latest-{os.getpid()}"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(name, link_tmp)
    os.replace(link_tmp, root / LATEST)
    _fsync_dir(root)
    for other in root.glob("step_*"):
        if other.name != name and other.is_dir() and not (other / KEEP_MARKER).exists():
            shutil.rmtree(other, ignore_errors=True)
    return final


def resolve_checkpoint(path: Path) -> Path:
    """A run folder, a checkpoints folder or one checkpoint folder -> the checkpoint folder."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint path {path} does not exist; give a run folder (runs/NAME) or a checkpoint folder")
    for candidate in (path, path / LATEST, path / "checkpoints" / LATEST):
        if candidate.is_dir() and (candidate / STATE_FILE).exists():
            return candidate.resolve()
    raise CheckpointError(
        f"no checkpoint found at {path}: expected RUN/checkpoints/latest/, a step_N folder holding {STATE_FILE}, "
        "or (for translation) a G.safetensors / *_net_G.pth file"
    )


def load_training_state(ckpt: Path) -> dict[str, Any]:
    try:
        return torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise CheckpointError(f"{ckpt / STATE_FILE} could not be read ({err}); use an earlier step_N checkpoint") from None
