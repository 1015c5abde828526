"""The training loop: data, optimizers, schedule, phases, logging, checkpoints and resume.

Per step: one shared forward pass, then each phase of the method (D, then G and F) with its own
zero-grad / backward / step. Loss values stay on the device and are summed there; they are read
(one host sync) only every `train.log_every` steps.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import platform
import re
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

import srunit
from srunit.config import Config, config_from_dict, parse_overrides
from srunit.data import EpochSampler, Preprocess, UnalignedDataset, make_grid, save_png_atomic, tensor_to_pil
from srunit.engine.checkpoint import (
    LATEST,
    load_network_weights,
    load_training_state,
    resolve_checkpoint,
    save_checkpoint,
)
from srunit.errors import CheckpointError, ConfigError
from srunit.methods import StepContext, TranslationMethod, build_method

log = logging.getLogger("srunit.train")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: invalid value {name!r}; allowed: auto, cpu, cuda, cuda:N, mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but CUDA is not available here; use train.device=cpu or auto")
    return device


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass(frozen=True)
class Schedule:
    """Step counts of a run: constant learning rate, then linear decay towards zero."""

    steps_per_epoch: int
    total_steps: int
    decay_steps: int

    @classmethod
    def from_config(cls, config: Config, dataset_len: int) -> Schedule:
        t = config.train
        spe = dataset_len // t.batch_size
        if t.steps > 0:
            return cls(spe, t.steps, int(round(t.decay_fraction * t.steps)))
        return cls(spe, (t.epochs + t.epochs_decay) * spe, t.epochs_decay * spe)

    def lr_factor(self, step: int) -> float:
        """Multiplier of the base learning rate at 0-based `step`."""
        decay_start = self.total_steps - self.decay_steps
        if step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start + 1) / (self.decay_steps + 1))


@functools.cache
def git_commit() -> str | None:
    """The source tree's HEAD commit, or None outside a git checkout.

    Read once per process, when the first run starts: a long benchmark that outlives a new
    commit keeps recording the commit its code was loaded from.
    """
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def compile_networks(method: TranslationMethod) -> None:
    """Wrap each network's entry points (its `compiled_methods`, else `forward`) in torch.compile.

    The wrappers are instance attributes, so parameters, state dicts and checkpoints are unchanged.
    """
    for net in method.networks().values():
        for name in getattr(net, "compiled_methods", ("forward",)):
            # Static shapes: a step sees a handful of fixed shapes, each compiled once.
            setattr(net, name, torch.compile(getattr(net, name), dynamic=False))


class StepRunner:
    """A method with its optimizers, learning-rate schedulers and loss scaler; runs one step at a time.

    Used by the Trainer and by `srunit bench`; holds no data pipeline.
    """

    def __init__(self, config: Config, device: torch.device, total_steps: int,
                 lr_factor: Callable[[int], float]) -> None:
        t = config.train
        self.config = config
        self.device = device
        self.total_steps = total_steps
        if t.deterministic:
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(t.seed)
        self.method: TranslationMethod = build_method(config).to(device)
        if t.compile:
            compile_networks(self.method)
        self.optimizers = {
            name: torch.optim.Adam(params, lr=t.lr, betas=(t.beta1, t.beta2))
            for name, params in self.method.optimizer_groups().items()
        }
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, lr_factor) for name, opt in self.optimizers.items()
        }
        self.scaler = torch.amp.GradScaler(device.type, enabled=t.precision == "fp16")
        self.step = 0
        self.last_visuals: dict[str, torch.Tensor] = {}

    def learning_rate(self) -> float:
        return next(iter(self.optimizers.values())).param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        """Everything but the weights that an exact resume needs."""
        return {
            "step": self.step,
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.step = int(state["step"])

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One optimisation step; returns detached loss tensors (not synchronised)."""
        t = self.config.train
        ctx = StepContext(self.step, self.total_steps, t.seed)
        nets = self.method.networks()
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
        logs: dict[str, torch.Tensor] = {}
        with autocast(self.device, t.precision):
            state = self.method.forward_step(batch, ctx)
        for phase in self.method.phases(ctx):
            for name in phase.frozen:
                nets[name].requires_grad_(False)
            for name in phase.optimizers:
                self.optimizers[name].zero_grad(set_to_none=True)
            with autocast(self.device, t.precision):
                loss, phase_logs = phase.loss(state, ctx)
            self.scaler.scale(loss).backward()
            for name in phase.optimizers:
                self.scaler.step(self.optimizers[name])
            for name in phase.frozen:
                nets[name].requires_grad_(True)
            logs.update(phase_logs)
        self.scaler.update()
        with warnings.catch_warnings():
            # A phase list without G (the public code's warm-up) leaves some optimizers unstepped;
            # the schedule still follows the global step.
            warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
            for sched in self.schedulers.values():
                sched.step()
        self.step += 1
        # Only the (detached) images outlive the step: holding the state would keep its
        # feature maps alive into the next step's forward pass and raise peak memory.
        self.last_visuals = self.method.visuals(state)
        return logs


class Trainer:
    """Owns one run folder. `Trainer(config).fit()` trains; `Trainer.resume(run_dir).fit()` continues."""

    def __init__(self, config: Config, *, run_dir: Path | None = None, _resuming: bool = False,
                 show_progress: bool = True) -> None:
        self.config = config
        t = config.train
        self.run_dir = Path(run_dir) if run_dir is not None else Path(t.runs_dir) / t.name
        self.show_progress = show_progress
        if not _resuming and (self.run_dir / "checkpoints").exists():
            raise ConfigError(
                f"run folder {self.run_dir} already holds a run; continue it with `srunit train --resume "
                f"{self.run_dir}`, or pick a new train.name (nothing was changed)"
            )
        self.device = resolve_device(t.device)

        d = config.data
        if d.preprocess in ("none", "scale_width") and t.batch_size > 1:
            raise ConfigError(
                f"data.preprocess {d.preprocess!r} keeps each image's own size, so images cannot be batched "
                f"(train.batch_size {t.batch_size}); use train.batch_size=1 or a cropping mode such as resize_and_crop"
            )
        preprocess = Preprocess(d.preprocess, d.load_size, d.crop_size, d.flip)
        options = dict(seed=t.seed, skip_bad_images=d.skip_bad_images, serial_batches=d.serial_batches)
        if d.root is not None and d.dir_a is None and d.dir_b is None:
            self.dataset = UnalignedDataset.from_root(d.root, preprocess, **options)
        else:
            dir_a, dir_b = d.domain_dirs()
            self.dataset = UnalignedDataset(dir_a, dir_b, preprocess, **options)
        if len(self.dataset) < t.batch_size:
            raise ConfigError(
                f"train.batch_size {t.batch_size} is larger than the dataset ({len(self.dataset)} images); "
                "lower train.batch_size"
            )
        self.schedule = Schedule.from_config(config, len(self.dataset))

        self.runner = StepRunner(config, self.device, self.schedule.total_steps, self.schedule.lr_factor)
        self._writer: Any = None

    @property
    def method(self) -> TranslationMethod:
        return self.runner.method

    @property
    def step(self) -> int:
        return self.runner.step

    # ------------------------------------------------------------------ resume
    @classmethod
    def resume(cls, run_dir: Path, overrides: list[str] | None = None, show_progress: bool = True) -> Trainer:
        """Reload a run folder (config, weights, optimizers, schedulers, RNG, step) to continue it exactly."""
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
        trainer.runner.load_state_dict(state)
        log.info("resumed %s at step %d from %s", run_dir, trainer.step, ckpt.name)
        return trainer

    # ------------------------------------------------------------------ run folder
    def _prepare_run_dir(self) -> None:
        (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(self.config.to_yaml())
        meta = {
            "srunit_version": srunit.__version__, "git_commit": git_commit(), "torch": torch.__version__,
            "python": platform.python_version(), "device": str(self.device), "seed": self.config.train.seed,
            "dataset_size": len(self.dataset), "total_steps": self.schedule.total_steps,
            "skipped_images": self.dataset.num_skipped,
        }
        with open(self.run_dir / "run.json", "w") as f:
            json.dump(meta, f, indent=2)

    @property
    def writer(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        return self._writer

    def save(self, *, keep: bool) -> Path:
        return save_checkpoint(self.run_dir / "checkpoints", self.step, self.method.networks(),
                               self.runner.state_dict(), keep=keep)

    # ------------------------------------------------------------------ loop
    def _loader(self, epoch: int, start: int) -> DataLoader:
        t, d = self.config.train, self.config.data
        self.dataset.set_epoch(epoch)
        sampler = EpochSampler(len(self.dataset), seed=t.seed, epoch=epoch, start=start,
                               shuffle=not d.serial_batches)
        return DataLoader(
            self.dataset, batch_size=t.batch_size, sampler=sampler, drop_last=True, num_workers=d.num_workers,
            pin_memory=self.device.type == "cuda",
            # Its own generator: creating an iterator must not consume the global RNG, or a
            # resumed run would draw different noise than an uninterrupted one.
            generator=torch.Generator().manual_seed(t.seed),
        )

    def fit(self) -> Path:
        """Train to the end of the schedule; returns the run folder."""
        t = self.config.train
        if self.step == 0:
            self._prepare_run_dir()
        total = self.schedule.total_steps
        self.method.train()
        bar = tqdm(total=total, initial=self.step, disable=not self.show_progress, unit="step", dynamic_ncols=True)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        tick, images = time.perf_counter(), 0
        metrics_file = open(self.run_dir / "metrics.jsonl", "a")
        try:
            while self.step < total:
                epoch, offset = divmod(self.step, self.schedule.steps_per_epoch)
                for batch in self._loader(epoch, offset * t.batch_size):
                    logs = self.runner.train_step(batch)
                    for k, v in logs.items():
                        sums[k] = sums[k] + v.float() if k in sums else v.float().clone()
                        counts[k] = counts.get(k, 0) + 1
                    images += t.batch_size
                    bar.update(1)
                    last = self.step == total
                    if self.step % t.log_every == 0 or last:
                        values = {k: float(v) / counts[k] for k, v in sums.items()}  # the host sync
                        now = time.perf_counter()
                        values["images_per_s"] = images / max(now - tick, 1e-9)
                        values["lr"] = self.runner.learning_rate()
                        self._log_scalars(values, metrics_file)
                        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items() if k != "lr"}, refresh=False)
                        sums, counts, tick, images = {}, {}, now, 0
                    if self.step % t.sample_every == 0 or last:
                        self._write_samples()
                    if self.step % t.checkpoint_every == 0 or self.step % t.keep_every == 0 or last:
                        self.save(keep=self.step % t.keep_every == 0 or last)
                    if last:
                        break
        finally:
            bar.close()
            metrics_file.close()
            if self._writer is not None:
                self._writer.close()
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


