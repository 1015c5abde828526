"""`srunit train --dry-run`: everything a run needs, checked without training or leaving anything behind.

Builds the method's networks, scans the data folders (and every image header), and runs one
forward pass and every phase's loss on one batch of real training images, so a crop size the
networks cannot take or an unreadable folder fails here, in seconds, rather than at step 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from srunit.checks import try_writing_in
from srunit.config import Config
from srunit.data import UnalignedDataset
from srunit.engine.distributed import rendezvous_timeout
from srunit.engine.loggers import check_loggers
from srunit.engine.method_checks import check_phases
from srunit.engine.runner import use_activation_checkpointing
from srunit.engine.schedule import Schedule
from srunit.engine.trainer import check_new_run_folder, run_folder_error, warn_if_one_folder
from srunit.methods import StepContext, build_method
from srunit.runtime.device import resolve_device

__all__ = ["DryRun", "dry_run"]


@dataclass(frozen=True)
class DryRun:
    """What a dry run found: image counts, parameters per network and the losses of one batch."""

    num_a: int
    num_b: int
    parameters: dict[str, int]
    losses: dict[str, float]

    def describe(self) -> str:
        nets = ", ".join(f"{name} {count / 1e6:.2f}M" for name, count in self.parameters.items())
        losses = ", ".join(f"{k} {v:.4g}" for k, v in self.losses.items())
        return (f"data: {self.num_a} domain-A and {self.num_b} domain-B images\n"
                f"networks (parameters): {nets}\none batch, no update: {losses}")


def dry_run(config: Config) -> DryRun:
    """Check ``config`` end to end on one batch (see the module docstring); nothing is left behind (the run folder
    is made, a file tried in it, and both removed again).

    Raises:
        ConfigError / DataError: as training would, naming the option or file.
    """
    check_new_run_folder(config, config.train.run_dir)  # what `train` checks first
    _check_run_folder_takes_files(config, config.train.run_dir)
    check_loggers(config.train.loggers)
    rendezvous_timeout()
    device = resolve_device(config.train.device)
    dataset = UnalignedDataset.for_training(config)
    warn_if_one_folder(dataset.dir_a, dataset.dir_b)
    # train refuses a batch larger than the dataset before step 0 (one process: a dry run is not distributed)
    Schedule.from_config(config.train, len(dataset))
    torch.manual_seed(config.train.seed)
    method = build_method(config.method, config.model).to(device)
    if config.train.activation_checkpointing:  # as training sets it: DRIT's generator refuses it, naming the option
        use_activation_checkpointing(method)
    size = config.train.batch_size

    def batches() -> Iterator[dict[str, torch.Tensor]]:  # epoch 0 in order, read only as far as asked
        for start in range(0, len(dataset), size):
            items = [dataset[i] for i in range(start, min(start + size, len(dataset)))]
            yield {k: torch.stack([item[k] for item in items]).to(device) for k in ("A", "B")}

    stream = batches()
    batch = next(stream)
    with torch.no_grad():  # what a method derives from the data before step 0 (ablation E1's statistics)
        method.prepare(itertools.chain([batch], stream))
    # Step 0, where every network trains (DRIT's later steps update D_content alone), and a late step, where every
    # loss term has started (a term's start and warm-up).
    total = max(config.train.steps, 1) * 2
    losses: dict[str, float] = {}
    for step in (0, config.train.steps or 1):
        ctx = StepContext(step=step, total_steps=total, seed=config.train.seed)
        # Autograd on (a phase may differentiate inside its loss, as ablation E6's gradient penalty does); no update.
        state = method.forward_step(batch, ctx)
        for phase in check_phases(method, method.phases(ctx), step):
            _, logs = phase.loss(state, ctx)
            losses.update({k: float(v) for k, v in logs.items()})
    parameters = {name: sum(p.numel() for p in net.parameters()) for name, net in method.networks().items()}
    return DryRun(len(dataset.files_a), len(dataset.files_b), parameters, losses)


def _check_run_folder_takes_files(config: Config, run_dir: Path) -> None:
    """ConfigError where `train` would fail making the run folder or its first file, in `train`'s words
    (`run_folder_error`): /proc/x or /sys/x, or a folder inside an immutable one, pass every permission check as
    root; a read-only file system passed here too. Nothing is left behind."""
    try:
        try_writing_in(run_dir)
    except OSError as err:
        raise run_folder_error(err, config, run_dir) from None
