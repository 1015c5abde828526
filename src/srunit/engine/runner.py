"""One optimisation step at a time: a method with its optimizers, learning-rate schedule and loss scaler.

Per step: one shared forward pass, then each phase of the method (D, then G and F) with its own
zero-grad / backward / gradient average over the processes / optional gradient clipping / step (or
``Phase.steps`` steps on the same gradients).
Each optimizer is Adam with train.lr / beta1 / beta2 and the method's `optimizer_options` (a
learning-rate factor and weight decay). The learning rate of every
optimizer is set from the `Schedule` at the start of the step, so a phase that does not run in a
step (the public code's D-only warm-up) changes nothing about the schedule.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from srunit.config import Config
from srunit.engine.distributed import Distributed, rank_seed
from srunit.engine.method_checks import (
    check_extra_state,
    check_phase_output,
    check_phase_reached,
    check_phases,
    plugin_failure,
)
from srunit.engine.schedule import Schedule
from srunit.methods import StepContext, TranslationMethod, build_method
from srunit.methods.base import OptimizerOptions
from srunit.runtime.device import autocast

__all__ = ["StepRunner", "compile_networks"]


def compile_networks(method: TranslationMethod) -> None:
    """Wrap each network's entry points (its `compiled_methods`, else `forward`) in torch.compile.

    The wrappers are instance attributes, so parameters, state dicts and checkpoints are unchanged.
    """
    for net in method.networks().values():
        for name in getattr(net, "compiled_methods", ("forward",)):
            # Static shapes: a step sees a handful of fixed shapes, each compiled once.
            setattr(net, name, torch.compile(getattr(net, name), dynamic=False))


def _check_optimizer_state(opt: torch.optim.Optimizer, name: str) -> None:
    """ValueError unless every tensor of the loaded state of ``opt`` is a scalar or has its parameter's shape: a
    damaged state.pt (an empty tensor of a forged shape) would otherwise fail, or allocate, at the first step."""
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != p.shape:
                    raise ValueError(f"optimizer {name}: its saved {key} has shape {tuple(value.shape)}, its "
                                     f"parameter {tuple(p.shape)}")


class StepRunner:
    """A method with its optimizers, schedule and loss scaler; runs one step at a time.

    Used by the Trainer and by the speed benchmark; holds no data pipeline. In a job of several
    processes (``dist``) every process builds the same networks from ``train.seed``, then draws its
    noise from its own seed (``rank_seed``), and each phase averages the gradients it steps.
    """

    def __init__(self, config: Config, device: torch.device, schedule: Schedule,
                 dist: Distributed | None = None) -> None:
        dist = dist if dist is not None else Distributed()
        t = config.train
        self.config = config
        self.device = device
        self.schedule = schedule
        self.dist = dist
        if t.deterministic:
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(t.seed)
        self.method: TranslationMethod = build_method(config.method, config.model).to(device)
        dist.broadcast_module(self.method)  # before the layout change: collectives want plain tensors
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        self.method.to(memory_format=self.memory_format)
        if t.activation_checkpointing:
            use_activation_checkpointing(self.method)
        if dist.rank > 0:
            torch.manual_seed(rank_seed(t.seed, dist.rank))
        if t.compile:
            compile_networks(self.method)
        # One fused kernel per optimizer on CUDA; the CPU keeps the multi-tensor path whose results
        # earlier runs and checkpoints were made with.
        fused = device.type == "cuda"
        groups = self.method.optimizer_groups()
        own = self.method.optimizer_options()
        self.optimizer_options = {name: own.get(name, OptimizerOptions()) for name in groups}
        self.optimizers = {
            name: torch.optim.Adam(params, lr=t.lr * self.optimizer_options[name].lr_scale, betas=(t.beta1, t.beta2),
                                   weight_decay=self.optimizer_options[name].weight_decay, fused=fused or None)
            for name, params in groups.items()
        }
        self._params = {name: [p for group in opt.param_groups for p in group["params"]]
                         for name, opt in self.optimizers.items()}
        self.scaler = torch.amp.GradScaler(device.type, enabled=t.precision == "fp16")
        self.step = 0
        self.last_visuals: dict[str, torch.Tensor] = {}
        self._phases_reached: set[str] = set()  # phases whose backward pass was seen to reach their parameters

    @property
    def total_steps(self) -> int:
        return self.schedule.total_steps

    def learning_rate(self, step: int | None = None) -> float:
        """The learning rate of 0-based ``step`` (default: the next step to run)."""
        return self.config.train.lr * self.schedule.lr_factor(self.step if step is None else step)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the weights that an exact resume needs; "method" holds the method's
        `extra_state` (e.g. its image pools) where it has any."""
        state = {
            "step": self.step,
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng": self.rng_state(),
        }
        extra = self.method.extra_state()
        check_extra_state(self.method, extra)  # a checkpoint it could not load again (or a pickle's traceback)
        if extra:
            state["method"] = extra
        return state

    def rng_state(self) -> dict[str, Any]:
        """This process's random generator states (CPU, and its CUDA device's)."""
        return {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}

    def set_rng_state(self, rng: dict[str, Any]) -> None:
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and rng.get("cuda") is not None:
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict`; the learning rates follow from the step (checkpoints written with
        LambdaLR schedulers load too: their `schedulers` entry is not needed).

        ``state["rng"]`` is the random state of this process. The Trainer picks it: each process's
        own one when the job has as many processes as the one that saved the checkpoint, else a
        fresh seed per process from (seed, rank, step). Likewise ``state["method"]``, the method's
        extra state (absent in checkpoints of methods without one).
        """
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            _check_optimizer_state(opt, name)
        try:
            self.method.load_extra_state(state.get("method") or {})
        except Exception as err:  # a plugin's load_extra_state is the plugin's fault, not the checkpoint's
            failure = plugin_failure(err, self.method, " while its load_extra_state() read the checkpoint")
            if failure is None:
                raise
            raise failure from err
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        if state.get("rng") is not None:
            self.set_rng_state(state["rng"])
        else:
            torch.manual_seed(rank_seed(self.config.train.seed, self.dist.rank, self.step))

    def prepare(self, batches: Iterable[dict[str, Any]]) -> None:
        """Let the method derive what it needs from the data before step 0 (``TranslationMethod.prepare``):
        the batches are moved to the device one at a time, as the method asks for them."""
        def moved() -> Iterator[dict[str, torch.Tensor]]:
            # A generator function, not an expression: nothing (no loader worker) starts unless the method asks.
            for batch in batches:
                yield {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}

        with torch.no_grad():
            self.method.prepare(moved())

    def _set_learning_rate(self) -> None:
        lr = self.learning_rate()
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = lr * self.optimizer_options[name].lr_scale

    def _step_again(self, names: tuple[str, ...]) -> None:
        """Step ``names`` once more on the gradients their phase already stepped with (``Phase.steps``). The loss
        scaler has unscaled them by now; an optimizer whose step it skipped for inf or NaN gradients is skipped
        again (a host sync, in fp16 only: the scaler's own step syncs there anyway)."""
        for name in names:
            if self.scaler.is_enabled():  # the scaler decides per optimizer
                grads = [p.grad for p in self._params[name] if p.grad is not None]
                if grads and not bool(torch.stack([g.isfinite().all() for g in grads]).all()):
                    continue
            self.optimizers[name].step()

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One optimisation step; returns detached loss tensors (not synchronised)."""
        t = self.config.train
        ctx = StepContext(self.step, self.total_steps, t.seed)
        nets = self.method.networks()
        batch = {k: v.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
                 for k, v in batch.items() if torch.is_tensor(v)}
        self._set_learning_rate()
        logs: dict[str, torch.Tensor] = {}
        with autocast(self.device, t.precision):
            state = self.method.forward_step(batch, ctx)
        stepped: set[str] = set()
        # A step the trainer logs (the step after this one is a multiple of log_every) checks again that each phase
        # reached its parameters: a loss that stops doing so later (a term's start, a warm-up branch) is seen too.
        logged = (self.step + 1) % t.log_every == 0
        for phase in check_phases(self.method, self.method.phases(ctx), self.step):
            if self.scaler.is_enabled() and stepped & set(phase.optimizers):
                # The loss scaler steps an optimizer once per update: a phase that steps one again
                # (DRIT's second generator update) starts a new update.
                self.scaler.update()
                stepped.clear()
            for name in phase.frozen:
                nets[name].requires_grad_(False)
            for name in phase.optimizers:
                self.optimizers[name].zero_grad(set_to_none=True)
            with autocast(self.device, t.precision):
                out = phase.loss(state, ctx)
            # metadata only: no host sync
            loss, phase_logs = check_phase_output(self.method, phase.name, out, self.device)
            self.scaler.scale(loss).backward()
            first = phase.name not in self._phases_reached
            if first or logged:  # metadata only (grads were set to None above)
                check_phase_reached(self.method, phase.name, (p for name in phase.optimizers
                                                              for p in self._params[name]),
                                    None if first else self.step + 1)
                self._phases_reached.add(phase.name)
            self.dist.all_reduce_gradients(p for name in phase.optimizers for p in self._params[name])
            if phase.clip_grad_norm is not None or phase.steps > 1:
                # Unscaled in place (so every step of a repeated phase sees the true gradients, also where a fused
                # optimizer would otherwise unscale inside its step); a no-op without a loss scaler.
                for name in phase.optimizers:
                    self.scaler.unscale_(self.optimizers[name])
            if phase.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_([p for name in phase.optimizers for p in self._params[name]
                                                if p.grad is not None], phase.clip_grad_norm)
            for name in phase.optimizers:
                self.scaler.step(self.optimizers[name])
            for _ in range(phase.steps - 1):
                self._step_again(phase.optimizers)
            stepped.update(phase.optimizers)
            for name in phase.frozen:
                nets[name].requires_grad_(True)
            logs.update(phase_logs)
        self.scaler.update()
        self.step += 1
        # Only the (detached) images outlive the step: holding the state would keep its
        # feature maps alive into the next step's forward pass and raise peak memory.
        self.last_visuals = self.method.visuals(state)
        return logs


def use_activation_checkpointing(method: TranslationMethod) -> None:
    """Recompute activations in the backward pass (train.activation_checkpointing): the generator first (DRIT's
    refuses, naming the option), then every other network that offers it (CycleGAN's and StegoGAN's B -> A generator
    kept all its activations)."""
    networks: list[Any] = [method.generator, *method.networks().values()]  # a plain attribute, not a submodule
    networks[0].activation_checkpointing = True
    for net in networks[1:]:
        if hasattr(net, "activation_checkpointing"):
            net.activation_checkpointing = True
