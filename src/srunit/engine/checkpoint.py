"""Run checkpoints: network weights as safetensors, training state beside them, written atomically.

The layout of RUN/checkpoints/ (step_N folders of NAME.safetensors, state.pt and a KEEP marker, the
``latest`` link) is `srunit.runtime.run_folder`'s. A checkpoint folder is written under a temporary
name and renamed into place, and `latest` is switched only after that, so a crash at any moment
leaves the previous checkpoint intact; what an interrupted save leaves behind (`.tmp-*`, `.old-*`)
is tidied by `remove_partial_checkpoints` when the run is next started. Folders without a KEEP
marker are pruned once a newer checkpoint is in place.
"""

from __future__ import annotations

import errno
import io
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srunit._reading import check_regular_file
from srunit.errors import CheckpointError, process_limit
from srunit.options import MAX_COUNT
from srunit.runtime.network_files import cpu_tensors, network_bytes
from srunit.runtime.run_folder import (
    KEEP_MARKER,
    LATEST,
    OLD_PREFIX,
    STATE_FILE,
    TMP_PREFIX,
    checkpoint_folders,
    checkpoint_name,
    network_file,
)

__all__ = ["WRITE_DELAY_ENV", "load_training_state", "remove_partial_checkpoints", "save_checkpoint", "write_file"]

WRITE_DELAY_ENV = "SRUNIT_TEST_CHECKPOINT_WRITE_DELAY"
MAX_WRITE_DELAY = 3600.0  # seconds: longer than any test waits, short enough for time.sleep on every platform
log = logging.getLogger(__name__)
_warned: set[str] = set()  # the bad values of WRITE_DELAY_ENV already warned about (once, not once per file)


def write_delay() -> float:
    """The pause of ``SRUNIT_TEST_CHECKPOINT_WRITE_DELAY`` in seconds: 0 where it is unset. A value that is not a
    number from 0 to 3600 is ignored with a warning naming it: a variable meant for tests never stops a training
    run in the middle of its checkpoint (``abc`` was a ValueError traceback there, ``inf`` an OverflowError)."""
    text = os.environ.get(WRITE_DELAY_ENV, "").strip()
    if not text:
        return 0.0
    try:
        delay = float(text)
    except ValueError:
        delay = math.nan
    if not 0.0 <= delay <= MAX_WRITE_DELAY:  # also nan
        if text not in _warned:
            _warned.add(text)
            log.warning("%s=%r is not a number of seconds from 0 to %g; ignored (it is for tests only: unset it)",
                        WRITE_DELAY_ENV, text[:40], MAX_WRITE_DELAY)
        return 0.0
    return delay


def write_file(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data``, flushed to the disk (fsync): every byte of a checkpoint goes
    through here, so an OSError (a full disk) surfaces here and nowhere else.

    For tests only, ``SRUNIT_TEST_CHECKPOINT_WRITE_DELAY`` (seconds) pauses halfway through each
    file, so that a test can kill a process while a checkpoint is being written.
    """
    delay = write_delay()
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


def save_checkpoint(
    root: Path, step: int, networks: dict[str, nn.Module], state: dict[str, Any], *, keep: bool
) -> Path:
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
    tensors = {net_name: cpu_tensors(net) for net_name, net in networks.items()}
    for net_name, values in tensors.items():
        for key, value in values.items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise CheckpointError(
                    f"{net_name}.{key} holds non-finite values (inf or nan): step {step} was not saved, and {intact}"
                )
    tmp = root / f"{TMP_PREFIX}{name}-{os.getpid()}"
    old = root / f"{OLD_PREFIX}{name}-{os.getpid()}"
    link_tmp = root / f"{TMP_PREFIX}{LATEST}-{os.getpid()}"
    writing = tmp
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        for net_name, net in networks.items():
            writing = network_file(tmp, net_name)
            write_file(writing, network_bytes(tensors[net_name], type(net).__name__, getattr(net, "config", {})))
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
            raise CheckpointError(
                f"{what} {_device_of(root)} while writing {writing}; {intact}; free space "
                "there (or move the run) and continue with `srunit train --resume RUN`"
            ) from None
        if isinstance(err, OSError) and err.errno == errno.EFBIG:  # past RLIMIT_FSIZE (`ulimit -f`): not stdout's
            raise CheckpointError(
                f"the file size limit of this process, {process_limit('-f')}, was met while writing {writing}; "
                f"{intact}; raise it (`ulimit -f unlimited` in the shell, or the job's limit) and continue with "
                "`srunit train --resume RUN`"
            ) from None
        raise
    for other in checkpoint_folders(root):
        if other.name != name and not (other / KEEP_MARKER).exists():
            # Moved aside, then removed: a kill inside the removal left a step folder without some of its files
            # for good (a finished run saves no more); a .tmp-* folder is removed when the run is next started.
            doomed = root / f"{TMP_PREFIX}{other.name}-{os.getpid()}"
            try:
                os.replace(other, doomed)
            except OSError:
                doomed = other
            shutil.rmtree(doomed, ignore_errors=True)
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
        if path.name.startswith(OLD_PREFIX):
            target = root / path.name[len(OLD_PREFIX) :].rsplit("-", 1)[0]
            if target.exists():
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.replace(path, target)
            done.append(path.name)
        elif path.name.startswith(TMP_PREFIX):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink()
            done.append(path.name)
    return done


# What every state.pt holds (random states, method state and the scaler are optional: older checkpoints lack some).
STATE_KEYS = ("step",)


def load_training_state(ckpt: Path, required: tuple[str, ...] = STATE_KEYS) -> dict[str, Any]:
    """The training state of checkpoint folder ``ckpt`` (step, optimizers, random states ...).

    Raises:
        CheckpointError: state.pt is missing, damaged, or lacks one of the ``required`` keys.
    """
    check_regular_file(ckpt / STATE_FILE, "the training state", error=CheckpointError,
                       fix="use an earlier step_N checkpoint")
    try:
        state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise CheckpointError(
            f"{ckpt / STATE_FILE} could not be read ({err}); use an earlier step_N checkpoint"
        ) from None
    missing = [k for k in required if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(
            f"{ckpt / STATE_FILE} is not a training state of srunit (no {', '.join(missing)}); "
            f"use an earlier step_N checkpoint"
        )
    step = state.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_COUNT:
        raise CheckpointError(f"{ckpt / STATE_FILE}: its step must be an integer from 0 to {MAX_COUNT:,}, got "
                              f"{step!r:.40}; the file is damaged: use an earlier step_N checkpoint")
    if "optimizers" in state and not isinstance(state["optimizers"], dict):
        raise CheckpointError(f"{ckpt / STATE_FILE}: its optimizers must be a mapping of optimizer states, got "
                              f"{type(state['optimizers']).__name__}; the file is damaged: use an earlier step_N "
                              f"checkpoint")
    return state
