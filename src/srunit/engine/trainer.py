"""The training loop: one run folder, its data, the step runner, logging, samples, checkpoints and resume.

Loss values stay on the device and are summed there; they are read (one host sync) only every
`train.log_every` steps. Started by torchrun, every process runs this same loop on its shard of
each global batch (see `srunit.engine.distributed`); only rank 0 writes the run folder.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from srunit._atomic import write_json_atomic, write_text_atomic
from srunit.config import Config, config_from_dict, parse_overrides
from srunit.data import UnalignedDataset, epoch_loader, make_grid, save_png_atomic, tensor_to_pil
from srunit.engine.checkpoint import (
    LATEST,
    load_network_weights,
    load_training_state,
    resolve_checkpoint,
    save_checkpoint,
)
from srunit.engine import distributed
from srunit.engine.device import resolve_device
from srunit.engine.provenance import software_versions
from srunit.engine.runner import StepRunner
from srunit.engine.schedule import Schedule
from srunit.errors import CheckpointError, ConfigError
from srunit.methods import TranslationMethod

__all__ = ["Trainer"]

log = logging.getLogger("srunit.train")


class Trainer:
    """Owns one run folder. `Trainer(config).fit()` trains; `Trainer.resume(run_dir).fit()` continues."""

    def __init__(self, config: Config, *, run_dir: Path | None = None, _resuming: bool = False,
                 show_progress: bool = True) -> None:
        self.config = config
        t = config.train
        self.run_dir = Path(run_dir) if run_dir is not None else Path(t.runs_dir) / t.name
        if not _resuming and (self.run_dir / "checkpoints").exists():
            raise ConfigError(
                f"run folder {self.run_dir} already holds a run; continue it with `srunit train --resume "
                f"{self.run_dir}`, or pick a new train.name (nothing was changed)"
            )
        self.dist, self.device = distributed.setup(resolve_device(t.device))
        self.show_progress = show_progress and self.dist.is_main
        self.dataset = UnalignedDataset.from_config(config.data, seed=t.seed)
        self.schedule = Schedule.from_config(t, len(self.dataset), self.dist.world_size)
        self.runner = StepRunner(config, self.device, self.schedule, self.dist)
        self._writer: Any = None
        self.dist.barrier()  # every process has checked the run folder before rank 0 writes to it

    @property
    def global_batch_size(self) -> int:
        """Images per domain in one step, over all processes."""
        return self.config.train.batch_size * self.dist.world_size

    @property
    def method(self) -> TranslationMethod:
        return self.runner.method

    @property
    def step(self) -> int:
        return self.runner.step

    # ------------------------------------------------------------------ resume
    @classmethod
    def resume(cls, run_dir: Path, overrides: list[str] | None = None, show_progress: bool = True) -> Trainer:
        """Reload a run folder (config, weights, optimizers, RNG, step) to continue it exactly."""
        run_dir = Path(run_dir)
        config_file = run_dir / "config.yaml"
        if not config_file.is_file():
            raise CheckpointError(f"{run_dir} is not a run folder (no config.yaml); give runs/NAME of an earlier run")
        data = yaml.safe_load(config_file.read_text())
        extra = parse_overrides(overrides or [])
        if set(extra) - {"train"}:
            raise ConfigError(f"--resume accepts only train.* overrides (got {sorted(set(extra) - {'train'})}); "
                              "the model, method and data of a run are fixed")
        data.setdefault("train", {}).update(extra.get("train", {}))
        config = config_from_dict(data)
        trainer = cls(config, run_dir=run_dir, _resuming=True, show_progress=show_progress)
        ckpt = resolve_checkpoint(run_dir / "checkpoints" / LATEST)
        for name, net in trainer.method.networks().items():
            load_network_weights(net, ckpt / f"{name}.safetensors")
        state = load_training_state(ckpt)
        trainer.runner.load_state_dict({**state, "rng": trainer._saved_rng(state)})
        if trainer.dist.is_main:
            log.info("resumed %s at step %d from %s", run_dir, trainer.step, ckpt.name)
        return trainer

    def _saved_rng(self, state: dict[str, Any]) -> dict[str, Any] | None:
        """This process's random state in a checkpoint, or None when the checkpoint was written by a
        job of another size (each process then draws from a fresh seed of (seed, rank, step))."""
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.dist.world_size:
            if self.dist.is_main:
                log.warning("the checkpoint was written by %d process(es), this job has %d: weights, optimizer "
                            "states and the step continue, the data order and noise follow the new job size",
                            saved_world, self.dist.world_size)
            return None
        return state["rng_per_rank"][self.dist.rank] if self.dist.enabled else state["rng"]

    # ------------------------------------------------------------------ run folder
    def _prepare_run_dir(self) -> None:
        (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.run_dir / "config.yaml", self.config.to_yaml())
        write_json_atomic(self.run_dir / "run.json", {
            **software_versions(), "device": str(self.device), "seed": self.config.train.seed,
            "dataset_size": len(self.dataset), "total_steps": self.schedule.total_steps,
            "skipped_images": self.dataset.num_skipped, "world_size": self.dist.world_size,
            "batch_size_per_process": self.config.train.batch_size, "global_batch_size": self.global_batch_size,
        })

    @property
    def writer(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        return self._writer

    def save(self, *, keep: bool) -> Path | None:
        """Write a checkpoint of the current step (rank 0; the other processes hand it their random
        states). Returns its folder on rank 0, None on the others."""
        state = self.runner.state_dict()
        rngs = self.dist.gather_object(state["rng"])
        if not self.dist.is_main:
            return None
        state.update(world_size=self.dist.world_size, rng_per_rank=rngs if self.dist.enabled else None)
        return save_checkpoint(self.run_dir / "checkpoints", self.step, self.method.networks(), state, keep=keep)

    # ------------------------------------------------------------------ loop
    def _loader(self, epoch: int, start: int) -> DataLoader:
        t = self.config.train
        return epoch_loader(self.dataset, self.config.data, epoch=epoch, start=start, batch_size=t.batch_size,
                            seed=t.seed, rank=self.dist.rank, world_size=self.dist.world_size,
                            pin_memory=self.device.type == "cuda")

    def fit(self, stop_at: int | None = None) -> Path:
        """Train to the end of the schedule, or only up to step ``stop_at`` (logged and checkpointed
        there like an interrupted run that `resume` continues); returns the run folder."""
        t = self.config.train
        main = self.dist.is_main
        if self.step == 0:
            if main:
                self._prepare_run_dir()
            # Epoch 0 unsharded: every process derives the same values. The loader has its own
            # generator, so this leaves the random state of training untouched.
            self.runner.prepare(epoch_loader(self.dataset, self.config.data, epoch=0, start=0,
                                             batch_size=t.batch_size, seed=t.seed))
        total = self.schedule.total_steps
        stop = total if stop_at is None else min(stop_at, total)
        if main and self.dist.enabled:
            log.info("%d processes x batch %d = global batch %d; steps %d..%d of %d", self.dist.world_size,
                     t.batch_size, self.global_batch_size, self.step, stop, total)
        self.method.train()
        bar = tqdm(total=total, initial=self.step, disable=not self.show_progress, unit="step", dynamic_ncols=True)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        tick, images = time.perf_counter(), 0
        metrics_file = open(self.run_dir / "metrics.jsonl", "a") if main else None
        try:
            while self.step < stop:
                epoch, offset = divmod(self.step, self.schedule.steps_per_epoch)
                for batch in self._loader(epoch, offset * self.global_batch_size):
                    logs = self.runner.train_step(batch)
                    for k, v in logs.items():
                        sums[k] = sums[k] + v.float() if k in sums else v.float().clone()
                        counts[k] = counts.get(k, 0) + 1
                    images += self.global_batch_size
                    bar.update(1)
                    last = self.step == stop
                    if self.step % t.log_every == 0 or last:
                        self.dist.all_reduce_mean_(list(sums.values()))  # the mean over all processes
                        values = {k: float(v) / counts[k] for k, v in sums.items()}  # the host sync
                        now = time.perf_counter()
                        values["images_per_s"] = images / max(now - tick, 1e-9)
                        values["lr"] = self.runner.learning_rate()
                        if metrics_file is not None:
                            self._log_scalars(values, metrics_file)
                        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items() if k != "lr"}, refresh=False)
                        sums, counts, tick, images = {}, {}, now, 0
                    if (self.step % t.sample_every == 0 or last) and main:
                        self._write_samples()
                    if self.step % t.checkpoint_every == 0 or self.step % t.keep_every == 0 or last:
                        self.save(keep=self.step % t.keep_every == 0 or self.step == total)
                    if last:
                        break
        finally:
            bar.close()
            if metrics_file is not None:
                metrics_file.close()
            if self._writer is not None:
                self._writer.close()
        self.dist.barrier()  # rank 0's last checkpoint is complete when any process returns
        return self.run_dir

    def _log_scalars(self, values: dict[str, float], metrics_file: Any) -> None:
        for k, v in values.items():
            self.writer.add_scalar(f"train/{k}", v, self.step)
        metrics_file.write(json.dumps({"step": self.step, **values}) + "\n")
        metrics_file.flush()

    def _write_samples(self) -> None:
        visuals = self.runner.last_visuals
        n = min(4, next(iter(visuals.values())).shape[0])
        # One row per image: real_A | fake_B | real_B (| idt_B); the same grid goes to PNG and TensorBoard.
        cells = torch.stack([img[i].float().cpu() for i in range(n) for img in visuals.values()])
        grid = make_grid(cells, ncol=len(visuals))
        save_png_atomic(tensor_to_pil(grid), self.run_dir / "samples" / f"step_{self.step:08d}.png")
        self.writer.add_image("samples/" + "|".join(visuals), (grid + 1) / 2, self.step)


