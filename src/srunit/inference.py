"""Translation with a trained generator: load a checkpoint, translate PIL images, tensors or folders.

Accepted checkpoints: a run folder (runs/NAME), a checkpoint folder (step_N or latest), a
G.safetensors file written by srunit, or a `*_net_G.pth` state dict saved by the public CUT or
SRUNIT code, or a `*_net_G_A.pth` / `*_net_G_B.pth` one saved by the public CycleGAN code (read
with weights_only=True, so loading never runs code from the file). From a run or checkpoint folder,
direction "BtoA" loads the B -> A generator of a two-sided method (CycleGAN's G_BA.safetensors).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from srunit.data import image_size, load_rgb, pil_to_tensor, save_png_atomic, scan_images, tensor_to_pil
from srunit.engine.checkpoint import load_network_weights, read_network_metadata, resolve_checkpoint
from srunit.engine.device import precision_dtype, resolve_device
from srunit.errors import CheckpointError, ConfigError, DataError
from srunit.networks import ResnetGenerator
from srunit.options import DEFAULT_MAX_PIXELS, check_choice, check_int

__all__ = ["DIRECTIONS", "Translator", "load_generator", "official_state_dict_to_generator"]

# The generator file of each translation direction in a checkpoint folder.
DIRECTIONS = {"AtoB": "G", "BtoA": "G_BA"}


def official_state_dict_to_generator(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """Map a public CUT/SRUNIT/CycleGAN ResnetGenerator state dict (`model.N...`) to ours (`layers.N...`).

    Returns (state dict, generator kwargs) with the architecture read off the keys: ngf from the
    first conv, the number of residual blocks, and whether anti-aliased down/up-sampling is used.
    Running statistics of instance norms without weights (some CycleGAN checkpoints carry them;
    that code drops them when loading) are dropped too: instance norm does not use them.
    """
    state = {re.sub(r"^module\.", "", k): v for k, v in state.items()}
    stats = (".running_mean", ".running_var", ".num_batches_tracked")
    state = {k: v for k, v in state.items()
             if not (k.endswith(stats) and f"{k.rsplit('.', 1)[0]}.weight" not in state)}
    if "model.1.weight" not in state:
        raise CheckpointError("not a ResnetGenerator state dict from the public CUT/SRUNIT/CycleGAN code (no 'model.1.weight')")
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    first = blocks[0]
    antialias = first == 12  # 4 layers per down stage with the blur-pool, 3 without
    up_start = blocks[-1] + 1
    antialias_up = f"model.{up_start}.filt" in state
    kwargs = dict(
        in_channels=state["model.1.weight"].shape[1], ngf=state["model.1.weight"].shape[0],
        n_blocks=len(blocks), antialias=antialias, antialias_up=antialias_up,
        out_channels=state[max((k for k in state if k.endswith(".weight")), key=lambda k: int(k.split(".")[1]))].shape[0],
    )
    mapped = {re.sub(r"^model\.", "layers.", k): v for k, v in state.items()}
    return mapped, kwargs


def load_generator(checkpoint: str | Path, direction: str = "AtoB") -> ResnetGenerator:
    """Build the generator stored at `checkpoint` (see module docstring for the accepted forms).

    ``direction`` picks the generator of a run or checkpoint folder; a file is the generator itself.
    """
    check_choice(direction, "--direction", DIRECTIONS)
    path = Path(checkpoint)
    if path.is_file() and direction != "AtoB":
        raise ConfigError(f"--direction {direction} picks a generator in a run or checkpoint folder, but {path} is "
                          "a file, which is used as it is; give the folder, or the B -> A generator's file "
                          "(G_BA.safetensors, *_net_G_B.pth) without --direction")
    if path.is_file() and path.suffix in (".pth", ".pt"):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - weights_only refuses pickled code; report it
            raise CheckpointError(f"{path} could not be read as a plain state dict ({err}); "
                                  "only tensors are loaded from .pth files, never code") from None
        if not isinstance(state, dict):
            raise CheckpointError(f"{path} does not hold a state dict (got {type(state).__name__})")
        mapped, kwargs = official_state_dict_to_generator(state)
        generator = ResnetGenerator(**kwargs)
        generator.load_state_dict(mapped, strict=True)
        return generator
    if path.is_file():
        if path.suffix != ".safetensors":
            raise CheckpointError(f"{path}: unknown checkpoint file type; give G.safetensors, a *_net_G.pth or a run folder")
        weights = path
    else:
        name = DIRECTIONS[direction]
        weights = resolve_checkpoint(path) / f"{name}.safetensors"
        if not weights.is_file():
            which = "generator" if direction == "AtoB" else "B -> A generator (only two-sided methods such as cyclegan train one)"
            raise CheckpointError(f"{weights} is missing; this checkpoint has no {which}")
    meta = read_network_metadata(weights)
    generator = ResnetGenerator(**meta["config"])
    load_network_weights(generator, weights)
    return generator


@dataclass
class Translator:
    """Translate domain-A images to domain B at their native resolution.

    Images are reflection-padded to a multiple of 4 and cropped back after translation.
    """

    generator: ResnetGenerator
    device: torch.device
    dtype: torch.dtype = torch.float32

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, device: str = "auto", precision: str = "fp32",
                        direction: str = "AtoB") -> Translator:
        """A translator for the generator at ``checkpoint`` (run folder, checkpoint folder, G.safetensors
        or a public ``*_net_G.pth`` / ``*_net_G_A.pth``) on ``device`` (auto, cpu, cuda, cuda:N, mps)
        computing in ``precision`` (fp32, bf16, fp16); ``direction`` BtoA takes a two-sided run's B -> A
        generator."""
        dtype = precision_dtype(precision, "--precision")
        dev = resolve_device(device, "--device")
        generator = load_generator(checkpoint, direction).to(dev).eval()
        return cls(generator, dev, dtype)

    @torch.no_grad()
    def translate_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [-1, 1], any H and W -> (B, 3, H, W) in [-1, 1] (float32, on x's device)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = self.generator.size_multiple
        pad_h, pad_w = (-h) % m, (-w) % m
        inp = x.to(self.device, torch.float32)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            inp = F.pad(inp, (0, pad_w, 0, pad_h), mode=mode)
        if self.dtype != torch.float32:
            with torch.autocast(self.device.type, dtype=self.dtype):
                out = self.generator(inp)
        else:
            out = self.generator(inp)
        return out[..., :h, :w].float().to(x.device)

    def translate_images(self, images: Sequence[Image.Image], batch_size: int = 8) -> list[Image.Image]:
        """Translate PIL images (any mode, any size); images of equal size are batched together."""
        check_int(batch_size, "--batch-size", 1)
        tensors = [pil_to_tensor(img.convert("RGB")) for img in images]
        results: list[Image.Image | None] = [None] * len(tensors)
        for idx, batch in _batches_by_size(tensors, batch_size):
            out = self.translate_tensor(torch.stack(batch))
            for i, t in zip(idx, out):
                results[i] = tensor_to_pil(t)
        return [r for r in results if r is not None]

    def translate_folder(self, inputs: str | Path, output: str | Path, batch_size: int = 8, *,
                         overwrite: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> list[Path]:
        """Translate an image file or every image under a folder; mirrors sub-folders into `output` as PNG.

        Every output path is checked before the first image is translated: sources are never
        written (an `output` equal to or inside a folder `inputs` is refused), two inputs that would
        give one output name (``a.png`` and ``a.jpg``) are an error, and existing outputs are
        replaced only with ``overwrite``. Each output is written atomically (a temporary file, then
        a rename). Images of more than ``max_pixels`` pixels are refused from their headers.
        """
        check_int(batch_size, "--batch-size", 1)
        inputs, output = Path(inputs), Path(output)
        if inputs.is_file():
            files, base = [inputs], inputs.parent
        else:
            files, base = scan_images(inputs, role="input", hint=_INPUT_HINT), inputs
            if output.resolve() == inputs.resolve() or inputs.resolve() in output.resolve().parents:
                raise DataError(f"--output {output} is inside --input {inputs}: the translations would be written "
                                f"among the sources; choose an output folder outside {inputs}")
        targets = _output_paths(files, base, output, overwrite)
        for path in files:  # every header before any work: a too-large image fails the run up front
            image_size(path, fix=_FILE_FIX, max_pixels=max_pixels, limit_option="--max-pixels")
        written: list[Path] = []
        for chunk, chunk_targets in zip(_chunks(files, max(batch_size * 8, 1)),
                                        _chunks(targets, max(batch_size * 8, 1))):
            images = [load_rgb(p, max_pixels=max_pixels, limit_option="--max-pixels", fix=_FILE_FIX) for p in chunk]
            for dst, img in zip(chunk_targets, self.translate_images(images, batch_size)):
                save_png_atomic(img, dst)
                written.append(dst)
        return written


_INPUT_HINT = "pass --input an image file or a folder of images"
_FILE_FIX = "replace or remove the file, or translate a folder without it"


def _output_paths(files: Sequence[Path], base: Path, output: Path, overwrite: bool) -> list[Path]:
    """output / (file relative to base) as .png for every file, checked (see ``translate_folder``)."""
    targets = [(output / src.relative_to(base)).with_suffix(".png") for src in files]
    by_target: dict[Path, list[Path]] = {}
    for src, dst in zip(files, targets):
        by_target.setdefault(dst, []).append(src)
    clashes = [(dst, srcs) for dst, srcs in by_target.items() if len(srcs) > 1]
    if clashes:
        listed = "; ".join(f"{' and '.join(str(s) for s in srcs)} -> {dst}" for dst, srcs in clashes[:5])
        raise DataError(f"{len(clashes)} output name(s) would be written by several inputs ({listed}); outputs are "
                        f"PNG files named after their input without its extension: rename the inputs so that their "
                        f"names differ without the extension (nothing was written)")
    sources = {src.resolve() for src in files}
    onto_source = [dst for dst in targets if dst.resolve() in sources]
    if onto_source:
        raise DataError(f"the translation of {onto_source[0]} would replace that source file; choose another --output "
                        f"(nothing was written)")
    existing = [dst for dst in targets if dst.exists() or dst.is_symlink()]
    if existing and not overwrite:
        raise DataError(f"{len(existing)} output file(s) exist already (first: {existing[0]}); pass --overwrite to "
                        f"replace them, or choose another --output (nothing was written)")
    return targets


def _chunks(items: Sequence[Path], n: int) -> Iterator[Sequence[Path]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _batches_by_size(tensors: Sequence[torch.Tensor], batch_size: int) -> Iterable[tuple[list[int], list[torch.Tensor]]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(tuple(t.shape), []).append(i)
    for idx in groups.values():
        for j in range(0, len(idx), batch_size):
            part = idx[j : j + batch_size]
            yield part, [tensors[i] for i in part]
