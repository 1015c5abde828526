"""Data-parallel training on torch.distributed: one process per device, started by torchrun.

The same training loop serves one process and many. Rank, world size and local rank come from the
environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK); without it a run is one process of world
size 1 and nothing here talks to another process.

Gradients are averaged phase by phase rather than by a DistributedDataParallel wrapper: after a
phase's backward pass, exactly the gradients of the networks that phase steps are all-reduced (one
flat buffer per dtype), so the D phase never reduces G's or F's gradients and the G/F phase never
reduces D's, and no `find_unused_parameters` bookkeeping is needed whatever a method's phases
freeze or skip. The networks use InstanceNorm, which normalises each image on its own, so no
normalisation statistics need synchronising.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from srunit.errors import ConfigError, JobLost, first_line

__all__ = ["Distributed", "JobLost", "RENDEZVOUS_TIMEOUT_ENV", "StopVote", "from_environment", "rendezvous_timeout",
           "setup", "shutdown", "rank_seed"]

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")

# How long the processes of a job started without torchrun's agent (RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set
# by hand or by a scheduler) wait for each other before the job fails with a message: as long as torchrun's own
# rendezvous waits by default. Collectives after the start keep the longer timeout of `setup`.
RENDEZVOUS_TIMEOUT_ENV = "SRUNIT_RENDEZVOUS_TIMEOUT"
DEFAULT_RENDEZVOUS_TIMEOUT_S = 600.0


@contextmanager
def _collective(job: Distributed) -> Iterator[None]:
    """Turn the failure of a collective (a process of the job killed or crashed, its connection lost, a collective
    timeout: gloo and NCCL raise RuntimeError's) into `JobLost`, one line instead of a traceback in every process."""
    try:
        yield
    except torch.cuda.OutOfMemoryError:  # a RuntimeError too, but this process's own: said as torch says it
        raise
    except RuntimeError as err:
        first = first_line(err, 300) or type(err).__name__
        raise JobLost(f"rank {job.rank} of {job.world_size} lost the job: another process ended or its connection "
                      f"broke ({first})") from None


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job. ``Distributed()`` is a single process (world size 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process takes part, so collectives are needed."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes the run folder."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            with _collective(self):
                dist.barrier()

    def all_reduce_mean_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Average ``tensors`` over the processes, in place; one collective per dtype and device."""
        if not self.enabled or not tensors:
            return
        groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        for t in tensors:
            groups.setdefault((t.dtype, t.device), []).append(t)
        for group in groups.values():
            flat = torch.cat([t.reshape(-1) for t in group])
            with _collective(self):
                dist.all_reduce(flat)
            flat.div_(self.world_size)
            for t, part in zip(group, flat.split([t.numel() for t in group])):
                t.copy_(part.view_as(t))

    def all_reduce_max_(self, tensor: torch.Tensor) -> None:
        """The element-wise maximum of ``tensor`` over the processes, in place."""
        if self.enabled:
            with _collective(self):
                dist.all_reduce(tensor, op=dist.ReduceOp.MAX)

    def all_reduce_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        """Average the gradients of ``parameters`` (those that have one) over the processes."""
        if self.enabled:
            self.all_reduce_mean_([p.grad for p in parameters if p.grad is not None])

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every process."""
        if self.enabled:
            with _collective(self):
                for t in [*module.parameters(), *module.buffers()]:
                    dist.broadcast(t.data, src=0)

    def gather_object(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (in rank order), None on the other ranks."""
        if not self.enabled:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        with _collective(self):
            dist.gather_object(obj, out, dst=0)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        with _collective(self):
            dist.broadcast_object_list(box, src=0)
        return box[0]


class StopVote:
    """Every process of a job agrees to stop at the same step boundary, without a device sync.

    At each boundary a process hands in its own request (a signal number, 0 for none) and gets back
    the job's decision: on one process its own request; in a job, the largest request of any
    process at the previous boundary. That comes from an all-reduce of one CPU integer started in
    the background at the previous boundary (on a gloo group, whatever the training backend), long
    finished by the time it is read; every process reads the same result at the same boundary.
    """

    def __init__(self, job: Distributed) -> None:
        self.job = job
        self._group: Any = None
        if job.enabled and dist.get_backend() != "gloo":
            self._group = dist.new_group(backend="gloo")
        self._pending: tuple[Any, torch.Tensor] | None = None

    def __call__(self, request: int) -> int:
        if not self.job.enabled:
            return request
        decided = self.close()
        box = torch.tensor([request], dtype=torch.int64)
        with _collective(self.job):
            self._pending = (dist.all_reduce(box, op=dist.ReduceOp.MAX, group=self._group, async_op=True), box)
        return decided

    def close(self) -> int:
        """Wait for the vote in flight (every process started it) and return its result."""
        if self._pending is None:
            return 0
        work, box = self._pending
        self._pending = None
        with _collective(self.job):
            work.wait()
        return int(box[0])


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer; it is set by torchrun, "
                          f"start the job with `torchrun ... -m srunit train ...`") from None


def from_environment() -> Distributed:
    """The job as torchrun describes it in the environment, or a single process."""
    if "WORLD_SIZE" not in os.environ:
        return Distributed()
    missing = [name for name in _ENV if name not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE is set but {', '.join(missing)} not; start the job with torchrun, "
                          f"which sets all of {', '.join(_ENV)}")
    rank, world_size, local_rank = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if world_size < 1:
        raise ConfigError(f"environment variable WORLD_SIZE={world_size} must be 1 or more (the number of processes "
                          f"of the job); start the job with torchrun, which sets it")
    if not 0 <= rank < world_size:
        raise ConfigError(f"environment variable RANK={rank} is out of range for WORLD_SIZE={world_size}: ranks are "
                          f"0 to {world_size - 1}; start the job with torchrun, which numbers the processes")
    if not 0 <= local_rank < world_size:
        raise ConfigError(f"environment variable LOCAL_RANK={local_rank} is out of range for WORLD_SIZE={world_size}; "
                          f"start the job with torchrun, which numbers the processes")
    return Distributed(rank, world_size, local_rank)


def rendezvous_timeout() -> float:
    """Seconds the processes of a job wait for each other at its start: ``$SRUNIT_RENDEZVOUS_TIMEOUT``, or 600."""
    value = os.environ.get(RENDEZVOUS_TIMEOUT_ENV)
    if value is None:
        return DEFAULT_RENDEZVOUS_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= 86400:
        raise ConfigError(f"environment variable {RENDEZVOUS_TIMEOUT_ENV}={value!r} must be a number of seconds above "
                          f"0 and at most 86400 (default {DEFAULT_RENDEZVOUS_TIMEOUT_S:g})")
    return seconds


def _master_address() -> tuple[str, int]:
    host, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"MASTER_ADDR={host!r} and MASTER_PORT={port!r} must name the host and a port (1 to 65535) "
                          f"where rank 0 waits for the other processes; start the job with torchrun, which sets them")
    return host, int(port)


# How long past its own timeout the start of a job may take before a watchdog ends the process (see `_join`).
_RENDEZVOUS_GRACE_S = 10.0


@contextmanager
def _deadline(seconds: float, message: Callable[[], str]) -> Iterator[None]:
    """End the process with status 2 and ``srunit: error: MESSAGE`` when the block has not finished after ``seconds``.

    For a wait inside torch's C++ code, which neither returns nor lets a Python signal handler run: a thread
    watches the clock and leaves the process from outside.
    """
    done = threading.Event()

    def watch() -> None:
        if not done.wait(seconds):
            sys.stderr.write(f"srunit: error: {message()}\n")
            sys.stderr.flush()
            os._exit(2)

    threading.Thread(target=watch, name="srunit-rendezvous-deadline", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def _join(ctx: Distributed, timeout: timedelta, kwargs: dict[str, Any]) -> None:
    """Start the process group. Under torchrun's agent, whose rendezvous has gathered every process already, as
    torch does; otherwise through a store that waits at most `rendezvous_timeout` for every process to come."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        dist.init_process_group(**kwargs)
        return
    host, port = _master_address()
    wait = rendezvous_timeout()
    role = "rank 0 waited for the other processes" if ctx.rank == 0 else f"rank {ctx.rank} waited for rank 0"

    def failure(reason: str) -> str:
        return (f"the job did not start: {role} at {host}:{port} for {wait:g} s ({reason}); start all "
                f"{ctx.world_size} processes of WORLD_SIZE with the same MASTER_ADDR and MASTER_PORT "
                f"(torchrun does), or give them longer with {RENDEZVOUS_TIMEOUT_ENV}=SECONDS")

    # The store's client waits without a limit for the answer to its first message: a MASTER_PORT where something
    # else accepts connections and never answers (another service, a stale proxy) held the process for ever.
    with _deadline(wait + _RENDEZVOUS_GRACE_S, lambda: failure("the server at that port accepted the connection and "
                                                               "never answered; is it another program's port?")):
        try:
            store = dist.TCPStore(host, port, ctx.world_size, ctx.rank == 0, timedelta(seconds=wait),
                                  wait_for_workers=True, multi_tenant=True)
        except (RuntimeError, OSError, ValueError) as err:  # DistStoreError / DistNetworkError: RuntimeError's
            raise ConfigError(failure(first_line(err) or type(err).__name__)) from None
    store.set_timeout(timeout)  # collectives after the start: the job's own timeout
    dist.init_process_group(**kwargs, store=store, rank=ctx.rank, world_size=ctx.world_size)


def setup(device: torch.device, timeout_minutes: float = 30.0) -> tuple[Distributed, torch.device]:
    """Join the job torchrun started (NCCL on CUDA devices, gloo otherwise) and pick this process's device.

    With CUDA, process ``LOCAL_RANK`` gets ``cuda:LOCAL_RANK`` unless ``device`` names an index.
    Returns (the job, the device); a single process is returned unchanged.
    """
    ctx = from_environment()
    rendezvous_timeout()  # a bad value is refused in a single process too, not only where a job would wait
    if not ctx.enabled:
        return ctx, device
    if device.type == "cuda" and device.index is None:
        if ctx.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"process LOCAL_RANK={ctx.local_rank} has no GPU: this node has "
                              f"{torch.cuda.device_count()}; start at most that many processes per node "
                              f"(torchrun --nproc-per-node)")
        device = torch.device("cuda", ctx.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"backend": backend, "timeout": timedelta(minutes=timeout_minutes)}
        if device.type == "cuda":
            kwargs["device_id"] = device
        _join(ctx, kwargs["timeout"], kwargs)
    if dist.get_world_size() != ctx.world_size or dist.get_rank() != ctx.rank:
        raise ConfigError(f"the process group (rank {dist.get_rank()} of {dist.get_world_size()}) does not match "
                          f"the environment (RANK={ctx.rank}, WORLD_SIZE={ctx.world_size})")
    return ctx, device


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The noise seed of process ``rank`` of a run with ``seed``, started (or re-seeded) at ``step``.

    Rank 0 of a run that starts at step 0 keeps ``seed`` itself, so a single process draws exactly
    what it drew before distributed training existed.
    """
    if rank == 0 and step == 0:
        return seed
    state = np.random.SeedSequence([seed, rank, step, 0x7A5]).generate_state(1, np.uint64)[0]
    return int(state & ((1 << 63) - 1))
