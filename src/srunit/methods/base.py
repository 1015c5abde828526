"""The contract between a translation method and the generic trainer.

A method owns its networks (registered sub-modules; each becomes a checkpoint file), says which
parameters each optimizer updates, runs the shared forward pass of a step, and lists the
optimisation phases of the step as data: a loss function, the optimizers it steps and the
networks frozen while it runs. The trainer runs the phases in order; it knows nothing else about
the method, so a new method is a new file plus `@METHODS.register` (named by its `Options.name`). A method that needs
statistics of the data before training (DistanceGAN's self-distances, ablation E1) computes them
in `prepare`, which the trainer calls once at the start of a new run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from srunit.networks import PatchDiscriminator, ResnetGenerator
from srunit.options import MethodOptions, ModelConfig

Logs = dict[str, torch.Tensor]
LossFn = Callable[[Any, "StepContext"], tuple[torch.Tensor, Logs]]


def resnet_generator(model: ModelConfig) -> ResnetGenerator:
    """The ResNet generator that the model section describes (CUT, SRUNIT, CycleGAN, GcGAN)."""
    return ResnetGenerator(ngf=model.ngf, n_blocks=model.n_blocks, antialias=model.antialias,
                           antialias_up=model.antialias_up, feature_layers=model.feature_layers,
                           init_gain=model.init_gain, init_type=model.init_type)


def patch_discriminator(model: ModelConfig) -> PatchDiscriminator:
    """The PatchGAN discriminator that the model section describes."""
    return PatchDiscriminator(ndf=model.ndf, n_layers=model.n_layers_d, antialias=model.antialias,
                              init_gain=model.init_gain, init_type=model.init_type)


def flip_where(x: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
    """Mirror left-right the images whose `flip` is True: x (B, C, H, W), flip (B,) bool or None.

    Its own inverse, so it both applies FastCUT's per-image flip and undoes it.
    """
    if flip is None:
        return x
    return torch.where(flip[:, None, None, None], x.flip(3), x)


@dataclass(frozen=True)
class StepContext:
    """Where a step stands in training; host-side integers only (no device sync)."""

    step: int  # 0-based index of this optimisation step
    total_steps: int
    seed: int

    @property
    def progress(self) -> float:
        return self.step / max(self.total_steps, 1)


@dataclass(frozen=True)
class Phase:
    """One optimisation phase of a step: minimise `loss` with `optimizers`, `frozen` nets fixed."""

    name: str
    loss: LossFn
    optimizers: tuple[str, ...]
    frozen: tuple[str, ...] = ()
    clip_grad_norm: float | None = None  # if set, the stepped parameters' total gradient norm is clipped to it
    steps: int = 1  # optimizer steps on the phase's gradients (StegoGAN's public code steps G's twice)


@dataclass(frozen=True)
class OptimizerOptions:
    """An optimizer's own settings beside train.lr / beta1 / beta2 (see `optimizer_options`)."""

    lr_scale: float = 1.0  # its learning rate is train.lr * lr_scale, on the run's schedule
    weight_decay: float = 0.0  # Adam's L2 weight decay


class TranslationMethod(nn.Module):
    """Base class of the registered methods. Sub-classes set `Options` to their options dataclass."""

    Options: ClassVar[type[MethodOptions]]

    def __init__(self, options: MethodOptions, model: ModelConfig) -> None:
        super().__init__()
        self.options = options
        self.model_config = model

    @property
    def generator(self) -> nn.Module:
        """The module that translates domain A to domain B at inference: (B, 3, H, W) -> (B, 3, H, W) for
        H and W multiples of its `size_multiple` (a ResnetGenerator for the CUT family)."""
        raise NotImplementedError

    def networks(self) -> dict[str, nn.Module]:
        """Name -> network; each is saved as NAME.safetensors in a checkpoint (buffers included, so a
        module of buffers only carries state such as statistics from `prepare` into checkpoints)."""
        return dict(self.named_children())

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Optimizer name -> parameters; by default one Adam per network that has parameters."""
        groups = {name: list(net.parameters()) for name, net in self.networks().items()}
        return {name: params for name, params in groups.items() if params}

    def prepare(self, batches: Iterator[dict[str, torch.Tensor]]) -> None:
        """Compute what the method needs from the data before its first step; nothing by default.

        Called once by the trainer before step 0 of a new run, never on resume, with the
        training batches of epoch 0 in order (at most one epoch, the same on every process of a
        job, already on the method's device, augmented as in training), under ``torch.no_grad``;
        take as many as needed. What is derived must live in buffers of `networks()`, so that
        checkpoints carry it and a resumed run continues with the same values.
        """

    def optimizer_options(self) -> dict[str, OptimizerOptions]:
        """Optimizer name -> its own settings; an optimizer not listed gets `OptimizerOptions()`."""
        return {}

    def forward_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> Any:
        """The forward pass shared by the phases of a step; returns the method's state object."""
        raise NotImplementedError

    def phases(self, ctx: StepContext) -> list[Phase]:
        raise NotImplementedError

    def visuals(self, state: Any) -> dict[str, torch.Tensor]:
        """Images to show in sample grids: name -> (B, 3, H, W) in [-1, 1]."""
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        """Training state outside the networks that an exact resume needs (e.g. image pools), as host
        numbers and CPU tensors; {} if none. Saved in state.pt beside the optimizers, per process."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `extra_state` returned. Checkpoints written without it pass {}."""
        if state:
            raise ValueError(f"{type(self).__name__} keeps no extra state, got {sorted(state)}")


def describe_value(value: Any) -> str:
    """What a method, a phase or a loss term returned, for a message that it broke its contract: a tensor's dtype and
    shape, or any other value's type and the start of its repr."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a value of type {type(value).__name__} ({value!r:.40})"
