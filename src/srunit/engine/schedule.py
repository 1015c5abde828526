"""The step budget of a run and its learning-rate schedule: constant, then linear decay to zero."""

from __future__ import annotations

from dataclasses import dataclass

from srunit.errors import ConfigError
from srunit.options import TrainConfig

__all__ = ["Schedule"]


@dataclass(frozen=True)
class Schedule:
    """Step counts of a run: constant learning rate, then linear decay towards zero."""

    steps_per_epoch: int
    total_steps: int
    decay_steps: int

    @classmethod
    def from_config(cls, train: TrainConfig, dataset_len: int, world_size: int = 1) -> Schedule:
        """The schedule of ``train`` (epochs, or a step budget) on a dataset of ``dataset_len`` images.

        A step consumes ``train.batch_size`` images in each of ``world_size`` processes.
        """
        global_batch = train.batch_size * world_size
        spe = dataset_len // global_batch
        if spe < 1:
            across = f" x {world_size} processes = {global_batch}" if world_size > 1 else ""
            if dataset_len < world_size:  # no batch size fits: even batch 1 needs an image per process
                fix = (f"start at most {dataset_len} process{'es' if dataset_len != 1 else ''} "
                       f"(torchrun --nproc-per-node), or add images" if dataset_len else "add images")
            elif world_size > 1:
                fix = (f"lower train.batch_size to {dataset_len // world_size} or less, or start fewer processes "
                       f"(torchrun --nproc-per-node)")
            else:
                fix = f"lower train.batch_size to {dataset_len} or less"
            raise ConfigError(
                f"train.batch_size {train.batch_size}{across} is larger than the dataset ({dataset_len} images); {fix}"
            )
        if train.steps > 0:
            return cls(spe, train.steps, int(round(train.decay_fraction * train.steps)))
        return cls(spe, (train.epochs + train.epochs_decay) * spe, train.epochs_decay * spe)

    @classmethod
    def constant(cls, total_steps: int) -> Schedule:
        """``total_steps`` at the base learning rate (benchmarks and tests without a dataset)."""
        return cls(max(total_steps, 1), total_steps, 0)

    def lr_factor(self, step: int) -> float:
        """Multiplier of the base learning rate at 0-based `step`."""
        decay_start = self.total_steps - self.decay_steps
        if step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start + 1) / (self.decay_steps + 1))
