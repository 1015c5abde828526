"""The translator interface: what inference, export and the web app need of a trained network.

A *translator* is an ``nn.Module`` called as ``translator(image)`` with images (B, 3, H, W) in
[-1, 1], H and W multiples of its ``size_multiple``, returning (B, 3, H, W) in [-1, 1]. It says
whether it is *multimodal*: then each output also depends on an attribute code, passed as
``translator(image, attribute)`` with ``attribute`` (nz,) for every image or (B, nz) (None: the code
of seed 0), and it offers

- ``nz``: the size of a code;
- ``encode_attribute(reference)``: the code of domain-B images (B, 3, H, W) -> (B, nz);
- ``attribute_min_size``: the smallest side a reference image may have.

Every method's translator follows it: CUT's generator is one as it is; DRIT's is assembled from its
content encoder, generator and attribute encoder; an exported file (`srunit.exported`) is one too.
A network class whose file does not hold its translator alone says how to assemble it: a classmethod
``translator_from_file(path)`` (DRIT's generator loads the encoders saved beside it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

__all__ = ["MAX_SEED", "MultimodalTranslator", "TranslatorModule", "attribute_from_seed", "attribute_batch",
           "check_seed", "is_multimodal", "load_translator"]


class TranslatorModule(Protocol):
    """The interface of a translator (for type checking; translators are ``nn.Module``\\ s)."""

    size_multiple: int
    multimodal: bool

    def __call__(self, image: torch.Tensor, *attribute: torch.Tensor | None) -> torch.Tensor: ...


class MultimodalTranslator(TranslatorModule, Protocol):
    """A translator whose outputs also depend on an attribute code."""

    nz: int
    attribute_min_size: int

    def encode_attribute(self, reference: torch.Tensor) -> torch.Tensor: ...


MAX_SEED = 2**64 - 1  # torch's generators take 64-bit seeds


def check_seed(seed: object, option: str = "seed") -> int:
    """``seed`` as an int if it is an integer (not a bool) from 0 to `MAX_SEED`, else ConfigError naming ``option``."""
    from srunit.errors import ConfigError

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{option} must be an integer from 0 to 2**64 - 1 ({MAX_SEED}), got {seed!r}; pass a seed "
                          f"in that range")
    return int(seed)


def attribute_from_seed(seed: int, nz: int) -> torch.Tensor:
    """An attribute code z_a ~ N(0, I) drawn from `seed` alone: (nz,) float32 on the CPU, the same on
    every machine and device.

    Raises:
        ConfigError: ``seed`` is not an integer from 0 to 2**64 - 1.
    """
    return torch.randn(nz, generator=torch.Generator().manual_seed(check_seed(seed)))


def attribute_batch(attribute: torch.Tensor | None, x: torch.Tensor, nz: int) -> torch.Tensor:
    """The (B, nz) float32 codes on x's device for the images x (B, ...): ``attribute`` (nz,) for
    every image or (B, nz), or None for the code of seed 0."""
    z = attribute_from_seed(0, nz) if attribute is None else attribute
    z = z.to(x.device, torch.float32)
    if z.dim() == 1:
        z = z.expand(x.shape[0], -1)
    if z.shape != (x.shape[0], nz):
        raise ValueError(f"attribute must have shape ({nz},) or ({x.shape[0]}, {nz}), got {tuple(z.shape)}")
    return z


def is_multimodal(translator: Any) -> bool:
    """Whether ``translator``'s outputs depend on an attribute code."""
    return bool(getattr(translator, "multimodal", False))


def load_translator(path: Path) -> nn.Module:
    """The translator whose network file is ``path``: the network itself, or what its class's
    ``translator_from_file`` assembles around it."""
    from srunit.runtime.network_files import load_network, network_class, read_network_metadata

    cls = network_class(path, read_network_metadata(path))
    assemble = getattr(cls, "translator_from_file", None)
    return assemble(Path(path)) if assemble is not None else load_network(path)
