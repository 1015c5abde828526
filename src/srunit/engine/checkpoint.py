"""Run checkpoints: network weights as safetensors, training state beside them, written atomically.

Layout of RUN/checkpoints/:
    step_00001000/   G.safetensors D.safetensors F.safetensors state.pt [KEEP]
    latest -> step_00001000      (a symlink, replaced atomically)

A checkpoint folder is written under a temporary name and renamed into place, and `latest` is
switched only after that, so a crash at any moment leaves the previous checkpoint intact; what an
interrupted save leaves behind (`.tmp-*`, `.old-*`) is tidied by `remove_partial_checkpoints`
when the run is next started. Folders without a KEEP marker are pruned once a newer checkpoint is
in place.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from srunit._atomic import write_bytes_atomic
from srunit.errors import CheckpointError

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
KEEP_MARKER = "KEEP"
LATEST = "latest"
WRITE_DELAY_ENV = "SRUNIT_TEST_CHECKPOINT_WRITE_DELAY"


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


def write_file(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data``, flushed to the disk (fsync): every byte of a checkpoint goes
    through here, so an OSError (a full disk) surfaces here and nowhere else.

    For tests only, ``SRUNIT_TEST_CHECKPOINT_WRITE_DELAY`` (seconds) pauses halfway through each
    file, so that a test can kill a process while a checkpoint is being written.
    """
    delay = float(os.environ.get(WRITE_DELAY_ENV) or 0)
    view = memoryview(data)
    with open(path, "wb") as f:
        if delay > 0:
            f.write(view[: len(view) // 2])
            f.flush()
            time.sleep(delay)
            view = view[len(view) // 2:]
        f.write(view)
        f.flush()
        os.fsync(f.fileno())


def _cpu_tensors(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}


def _network_bytes(tensors: dict[str, torch.Tensor], kind: str, config: dict[str, Any]) -> bytes:
    """A safetensors file of ``tensors``, the network's class and constructor config in its metadata."""
    meta = {"format": "srunit", "network": kind, "config": json.dumps(config, sort_keys=True)}
    return _sorted_header(safetensors_bytes(tensors, metadata=meta))


def save_network(net: nn.Module, path: Path, kind: str) -> None:
    """Weights of `net` to a safetensors file; its constructor config goes into the metadata.

    The same weights always give the same bytes (the header's keys are sorted: safetensors writes
    its metadata in hash order), and the file is written atomically with mode 0644 like every other
    file of a run.
    """
    write_bytes_atomic(path, _network_bytes(_cpu_tensors(net), kind, getattr(net, "config", {})))


def _sorted_header(data: bytes) -> bytes:
    """A safetensors file with its JSON header re-written with sorted keys (offsets are relative to the
    data section, so the tensors' bytes stay as they are); padded with spaces to 8 bytes as the format does."""
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + data[8 + n :]


_REWRITE = "restore it from a copy, or point at another checkpoint"


def read_network_metadata(path: Path) -> dict[str, Any]:
    """{'network': class name, 'config': constructor kwargs, 'shapes': tensor name -> shape} of a file
    written by `save_network`, from its header only (no tensor is read).

    Raises:
        CheckpointError: the file is missing, not a safetensors file, truncated, or without readable
            srunit metadata; naming the file and the fix.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist; {_REWRITE}") from None
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error type for any damaged header
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}); it is damaged or of another "
                              f"format: {_REWRITE}") from None
    if meta.get("format") != "srunit":
        raise CheckpointError(f"{path} is a safetensors file but not an srunit network (no srunit metadata)")
    try:
        config = json.loads(meta.get("config", "{}"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: its metadata 'config' is not valid JSON ({err}); {_REWRITE}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: its metadata 'config' must be a JSON object, got {type(config).__name__}; "
                              f"{_REWRITE}")
    return {"network": meta.get("network"), "config": config, "shapes": shapes}


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
    try:
        with torch.device("meta"):
            skeleton = cls(**meta["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its metadata does not describe a {cls.__name__} ({err}); {_REWRITE}") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    if expected != meta["shapes"]:
        differ = sorted(k for k in expected.keys() | meta["shapes"].keys() if expected.get(k) != meta["shapes"].get(k))
        raise CheckpointError(f"{path}: the tensors do not match the {cls.__name__} its metadata describes ({len(differ)} "
                              f"differ, e.g. {differ[0]}: file {meta['shapes'].get(differ[0])}, metadata "
                              f"{expected.get(differ[0])}); {_REWRITE}")
    net = cls(**meta["config"])
    load_network_weights(net, path)
    return net


def load_network_weights(net: nn.Module, path: Path) -> None:
    """Load ``path`` (a safetensors file) into ``net``, every key and shape matching.

    Raises:
        CheckpointError: the file is missing, damaged, or does not match the network.
    """
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist; {_REWRITE}") from None
    except Exception as err:  # noqa: BLE001 - a damaged or truncated file
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}); it is damaged or truncated: "
                              f"{_REWRITE}") from None
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
    """Write RUN/checkpoints/step_N atomically, point `latest` at it, prune unkept older ones.

    Weights holding inf or nan are refused before anything is written (CheckpointError), so neither
    `latest` nor the pruning of older checkpoints can ever replace finite weights with them. A full
    disk is reported as such (CheckpointError); whatever fails, the partial folder is removed and
    the previous checkpoint is left as it was.
    """
    root.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(step)
    final = root / name
    latest = root / LATEST
    previous = os.readlink(latest) if latest.is_symlink() else None
    intact = f"the previous checkpoint is intact ({previous})" if previous else "no earlier checkpoint exists"
    tensors = {net_name: _cpu_tensors(net) for net_name, net in networks.items()}
    for net_name, values in tensors.items():
        for key, value in values.items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise CheckpointError(f"{net_name}.{key} holds non-finite values (inf or nan): step {step} was not "
                                      f"saved, and {intact}")
    tmp = root / f".tmp-{name}-{os.getpid()}"
    old = root / f".old-{name}-{os.getpid()}"
    link_tmp = root / f".tmp-latest-{os.getpid()}"
    writing = tmp
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        for net_name, net in networks.items():
            writing = tmp / f"{net_name}.safetensors"
            write_file(writing, _network_bytes(tensors[net_name], type(net).__name__, getattr(net, "config", {})))
        buffer = io.BytesIO()
        torch.save(state, buffer)
        writing = tmp / STATE_FILE
        write_file(writing, buffer.getvalue())
        if keep:
            writing = tmp / KEEP_MARKER
            write_file(writing, b"")
        _fsync_dir(tmp)
        writing = final
        if final.exists():  # the same step saved again: move the old one aside, then replace it
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        writing = latest
        if link_tmp.is_symlink() or link_tmp.exists():
            link_tmp.unlink()
        os.symlink(name, link_tmp)
        os.replace(link_tmp, latest)
        _fsync_dir(root)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if link_tmp.is_symlink():
            link_tmp.unlink()
        if old.exists() and not final.exists():
            os.replace(old, final)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            what = "no space left on" if err.errno == errno.ENOSPC else "disk quota exceeded on"
            raise CheckpointError(f"{what} {_device_of(root)} while writing {writing}; {intact}; free space "
                                  "there (or move the run) and continue with `srunit train --resume RUN`") from None
        raise
    for other in root.glob("step_*"):
        if other.name != name and other.is_dir() and not (other / KEEP_MARKER).exists():
            shutil.rmtree(other, ignore_errors=True)
    return final


def _device_of(path: Path) -> str:
    """'/dev/sda1 (mounted at /data)', or the mount point alone where the mount table is unknown."""
    mount = Path(os.path.abspath(path))
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 1 and fields[1] == str(mount):
                    return f"{fields[0]} (mounted at {mount})"
    except OSError:
        pass
    return f"the file system mounted at {mount}"


def has_checkpoint(root: Path) -> bool:
    """Whether RUN/checkpoints holds a checkpoint (temporary folders of an interrupted save do not count)."""
    return (root / LATEST).is_symlink() or any(p.is_dir() for p in root.glob("step_*"))


def remove_partial_checkpoints(root: Path) -> list[str]:
    """Tidy what an interrupted save leaves in RUN/checkpoints; returns what it removed or restored.

    Only for a process that holds the run's lock (no other process is saving): temporary folders and
    links (`.tmp-*`) are removed, and a step folder moved aside to be replaced (`.old-step_N-PID`)
    is put back if its replacement never arrived, else removed.
    """
    done: list[str] = []
    if not root.is_dir():
        return done
    for path in sorted(root.iterdir()):
        if path.name.startswith(".old-"):
            target = root / path.name[len(".old-"):].rsplit("-", 1)[0]
            if target.exists():
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.replace(path, target)
            done.append(path.name)
        elif path.name.startswith(".tmp-"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink()
            done.append(path.name)
    return done


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


def checkpoint_origin(path: Path) -> tuple[Path, Path | None, int | None]:
    """Where a checkpoint comes from: (its folder, its run folder, its step).

    ``path`` is what `resolve_checkpoint` takes, or a weights file (whose folder is then the checkpoint
    folder). The run folder is RUN when the checkpoint folder is RUN/checkpoints/step_N (or latest)
    and RUN/config.yaml exists, else None; the step is N of a step_N folder, else None.
    """
    path = Path(path)
    folder = path.resolve().parent if path.is_file() else resolve_checkpoint(path)
    name = folder.name
    step = int(name[len("step_"):]) if name.startswith("step_") and name[len("step_"):].isdigit() else None
    run = folder.parent.parent
    return folder, run if folder.parent.name == "checkpoints" and (run / "config.yaml").is_file() else None, step


def read_run_config(run: Path) -> dict[str, Any]:
    """RUN/config.yaml as a dict; {} (with a warning naming the file) where it cannot be read."""
    config_file = run / "config.yaml"
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        log.warning("%s could not be read (%s); the checkpoint is described without it", config_file, err)
        return {}
    return config if isinstance(config, dict) else {}


def run_method(config: dict[str, Any]) -> str | None:
    """The method name of a run's config (None where it names none)."""
    section = config.get("method")
    return str(section["name"]) if isinstance(section, dict) and "name" in section else None


# What every state.pt holds (random states, method state and the scaler are optional: older checkpoints lack some).
STATE_KEYS = ("step",)


def load_training_state(ckpt: Path, required: tuple[str, ...] = STATE_KEYS) -> dict[str, Any]:
    """The training state of checkpoint folder ``ckpt`` (step, optimizers, random states ...).

    Raises:
        CheckpointError: state.pt is missing, damaged, or lacks one of the ``required`` keys.
    """
    try:
        state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise CheckpointError(f"{ckpt / STATE_FILE} could not be read ({err}); use an earlier step_N checkpoint") from None
    missing = [k for k in required if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{ckpt / STATE_FILE} is not a training state of srunit (no {', '.join(missing)}); "
                              f"use an earlier step_N checkpoint")
    return state
