"""What a checkpoint treats as unmatched: the unmatchability mask of its B -> A generator (StegoGAN).

StegoGAN's G_BA decides, for every position of a domain-B image, whether its content has a counterpart in
domain A; what has none it holds back (`srunit.networks.stegogan`). Its mask (1: unmatched) of a translation
G(x) marks the regions of the output that G_BA finds without a counterpart in domain A: where the translation
shows domain-B-only content (a hallucination, for a source that holds none). `srunit app`, `srunit eval seg
--run` and the SynthScapes benchmark show these masks beside the translations.

A checkpoint offers masks when its B -> A generator file (``G_BA.safetensors`` beside ``G.safetensors``)
holds a network class with an ``unmatched_mask(y)`` method, (B, 3, H, W) in [-1, 1] -> (B, 1, H, W) in [0, 1];
`UnmatchedMasks.from_checkpoint` returns None for every other checkpoint (and for exported files, which hold
the A -> B generator alone).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from srunit._atomic import FolderWriter, check_umask
from srunit._outputs import guard_output, require_empty_output
from srunit.checks import check_flag, check_path
from srunit.data import load_rgb, pil_to_tensor, scan_images
from srunit.data.images import png_bytes
from srunit.errors import CheckpointError
from srunit.inference import _pad_to, check_device_and_dtype, check_image_tensor, check_pil_images
from srunit.runtime.device import precision_dtype, resolve_device
from srunit.runtime.run_folder import DIRECTIONS, NETWORK_SUFFIX, is_exported_file, network_file, resolve_checkpoint

__all__ = ["UnmatchedMasks", "mask_file"]

SIZE_MULTIPLE = 4  # G_BA's two stride-2 stages


def mask_file(checkpoint: str | Path) -> Path | None:
    """The B -> A generator file of ``checkpoint`` (a run or checkpoint folder, or a G.safetensors in one) if it
    holds a network with an unmatchability mask, else None. A B -> A generator given as the checkpoint
    (G_BA.safetensors) has none: its translations lie in domain A, where the mask, which finds what a domain-B
    image holds without a counterpart in A, means nothing (the app showed one for it)."""
    from srunit.registry import NETWORKS
    from srunit.runtime.network_files import read_network_metadata

    path = Path(checkpoint)
    if is_exported_file(path) or (path.is_file() and path.suffix != NETWORK_SUFFIX):
        return None
    if path.is_file() and path.name == network_file(path.parent, DIRECTIONS["BtoA"]).name:
        return None
    folder = path.parent if path.is_file() else resolve_checkpoint(path)
    candidate = network_file(folder, DIRECTIONS["BtoA"])
    if not os.path.lexists(candidate):
        return None
    # A B -> A generator that is there but cannot be read (a FIFO, a dangling link, a damaged header, no network
    # named in its metadata) is an error naming it: it used to drop a StegoGAN run's masks without a word.
    name = read_network_metadata(candidate)["network"]
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{candidate} names no network in its srunit metadata; it is damaged: restore it from "
                              f"a copy, or point at another checkpoint")
    return candidate if name in NETWORKS and hasattr(NETWORKS.get(name), "unmatched_mask") else None


@dataclass
class UnmatchedMasks:
    """A B -> A generator that masks what it finds unmatched, on a device, computing in ``dtype``."""

    network: nn.Module
    device: torch.device
    dtype: torch.dtype = torch.float32
    source: Path | None = None  # the file the network was loaded from, named where its masks are damaged

    def __post_init__(self) -> None:
        """Built from its fields: a string device was an AttributeError at the first mask, as for `Translator`."""
        if not isinstance(self.network, nn.Module) or not callable(getattr(self.network, "unmatched_mask", None)):
            raise TypeError(f"UnmatchedMasks: network must be a module with unmatched_mask (a StegoGAN mask "
                            f"generator), got {type(self.network).__name__}; or build it with "
                            f"UnmatchedMasks.from_checkpoint(checkpoint, device, precision)")
        check_device_and_dtype("UnmatchedMasks", self.device, self.dtype)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, device: str = "auto",
                        precision: str = "fp32") -> UnmatchedMasks | None:
        """The masks of ``checkpoint`` (see `mask_file`), or None where it has none."""
        from srunit.runtime.network_files import load_network

        path = mask_file(check_path(checkpoint, "UnmatchedMasks.from_checkpoint: checkpoint"))
        if path is None:
            return None
        dtype = precision_dtype(precision, "--precision")
        dev = resolve_device(device, "--device")
        return cls(load_network(path).to(dev).eval(), dev, dtype, path)

    @torch.no_grad()
    def mask_tensor(self, y: torch.Tensor) -> torch.Tensor:
        """y: (B, 3, H, W) in [-1, 1], any H and W >= 1 -> (B, 1, H, W) float32 in [0, 1] on y's device (padded by
        reflection to a multiple of 4 and cropped back, as translations are).

        Raises:
            TypeError: ``y`` is not a torch tensor (a numpy array: ``torch.from_numpy(a)``).
            ValueError: another shape, 8-bit or non-finite values, values outside [-1, 1], or images of more than
                MAX_PIXELS_LIMIT pixels (checked before anything is allocated), as `Translator.translate_tensor`.
        """
        check_image_tensor(y, "mask_tensor", "y")
        h, w = y.shape[-2:]
        inp = _pad_to(y.to(self.device, torch.float32), max(h + (-h) % SIZE_MULTIPLE, 2 * SIZE_MULTIPLE),
                      max(w + (-w) % SIZE_MULTIPLE, 2 * SIZE_MULTIPLE))
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            mask = self.network.unmatched_mask(inp)  # type: ignore[operator]
        mask = mask[..., :h, :w].float()
        if not torch.isfinite(mask).all():
            where = f"{self.source}, " if self.source is not None else ""
            raise CheckpointError(f"the unmatchability mask holds NaN or inf values ({where}"
                                  f"{type(self.network).__name__}): its weights are damaged; restore the checkpoint "
                                  f"from a copy")
        return mask.to(y.device)

    def mask_images(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        """One grey (mode L) mask per image, its size: white (255) where the content is unmatched. Images of any mode
        are read as every file is (`srunit.data.to_rgb`: 16-bit scaled, alpha composited), as `translate_images` reads
        them.

        Raises:
            TypeError: ``images`` is not a list (or tuple) of PIL images.
        """
        check_pil_images(images, "mask_images", "mask_tensor")
        out = []
        for img in images:
            # A PIL convert("RGB") clipped 16-bit images to white and dropped alpha, unlike every file read.
            mask = self.mask_tensor(pil_to_tensor(img)[None])[0, 0]
            out.append(Image.fromarray(np.asarray((mask * 255).round().to(torch.uint8).cpu())))
        return out

    def write_folder(self, images: str | Path, out: str | Path, *, overwrite: bool = False) -> list[Path]:
        """The mask of every image under ``images`` as ``out/<relative name>.png``.

        ``out`` must be absent or an empty folder, unless ``overwrite`` (files of the same names are then
        replaced), and may not be ``images`` or lie inside it: `masks.write_folder("photos", "photos")` wrote the
        masks over the photos of the same names."""
        check_umask("UnmatchedMasks.write_folder")
        images = check_path(images, "UnmatchedMasks.write_folder: images")
        out = check_path(out, "UnmatchedMasks.write_folder: out")
        overwrite = check_flag(overwrite, "UnmatchedMasks.write_folder: overwrite")
        guard_output(out, "UnmatchedMasks.write_folder: out", inputs=[("images", images)], folder=True,
                     run_folders=False)  # its callers write into runs (RUN/eval/masks)
        if not overwrite:
            require_empty_output(out, "UnmatchedMasks.write_folder: out")
        with FolderWriter(out) as writer:
            return self.write_into(images, writer)

    def write_into(self, images: Path, writer: FolderWriter) -> list[Path]:
        """The mask of every image under ``images`` as ``<relative name>.png`` in the folder ``writer`` opened
        (`write_folder`, or RUN/eval/masks opened once by an evaluation). Returns the paths written."""
        written = []
        for path in scan_images(images, "translated image"):
            target = writer.folder / path.relative_to(images).with_suffix(".png")
            writer.write_bytes(target, png_bytes(self.mask_images([load_rgb(path)])[0]))
            written.append(target)
        return written
