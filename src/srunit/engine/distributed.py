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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from srunit.errors import ConfigError

__all__ = ["Distributed", "StopVote", "from_environment", "setup", "shutdown", "rank_seed"]

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


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
            dist.all_reduce(flat)
            flat.div_(self.world_size)
            for t, part in zip(group, flat.split([t.numel() for t in group])):
                t.copy_(part.view_as(t))

    def all_reduce_max_(self, tensor: torch.Tensor) -> None:
        """The element-wise maximum of ``tensor`` over the processes, in place."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)

    def all_reduce_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        """Average the gradients of ``parameters`` (those that have one) over the processes."""
        if self.enabled:
            self.all_reduce_mean_([p.grad for p in parameters if p.grad is not None])

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every process."""
        if self.enabled:
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, src=0)

    def gather_object(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (in rank order), None on the other ranks."""
        if not self.enabled:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
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
        self._pending = (dist.all_reduce(box, op=dist.ReduceOp.MAX, group=self._group, async_op=True), box)
        return decided

    def close(self) -> int:
        """Wait for the vote in flight (every process started it) and return its result."""
        if self._pending is None:
            return 0
        work, box = self._pending
        self._pending = None
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
    return Distributed(_env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK"))


def setup(device: torch.device, timeout_minutes: float = 30.0) -> tuple[Distributed, torch.device]:
    """Join the job torchrun started (NCCL on CUDA devices, gloo otherwise) and pick this process's device.

    With CUDA, process ``LOCAL_RANK`` gets ``cuda:LOCAL_RANK`` unless ``device`` names an index.
    Returns (the job, the device); a single process is returned unchanged.
    """
    ctx = from_environment()
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
        dist.init_process_group(**kwargs)
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
