"""Translation with a trained generator: load a checkpoint, translate PIL images, tensors or folders.

Accepted checkpoints: a run folder (runs/NAME), a checkpoint folder (step_N or latest), a
G.safetensors file written by srunit, or a `*_net_G.pth` state dict saved by the public CUT or
SRUNIT code, or a `*_net_G_A.pth` / `*_net_G_B.pth` one saved by the public CycleGAN code (read
with weights_only=True, so loading never runs code from the file). From a run or checkpoint folder,
direction "BtoA" loads the B -> A generator of a two-sided method (CycleGAN's G_BA.safetensors).
A file written by `srunit export` (.onnx, run through onnxruntime; a torch.export program .pt2; or
TorchScript .ts) is accepted too (see `srunit.export`).

A checkpoint's generator file names its network class, which says how to load it as a translator
(`srunit.runtime.translation`): DRIT's G.safetensors is assembled with the encoders beside it.
A multimodal translator (DRIT) makes each output depend also on an attribute code z_a, drawn from
N(0, I) with a seed (default 0) or encoded from a reference image of domain B (the `attribute`
argument).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from srunit._atomic import FolderWriter, check_umask
from srunit._outputs import (
    OutputLock,
    check_name_lengths,
    check_no_link_loop,
    disk_full,
    guard_output,
    remove_leftovers,
)
from srunit._progress import progress_bar
from srunit._reading import check_regular_file, path_kind
from srunit.checks import DEFAULT_MAX_PIXELS, MAX_BATCH, MAX_PIXELS_LIMIT, check_flag, check_int, check_path
from srunit.data import load_rgb, pil_to_tensor, png_bytes, scan_images, tensor_to_pil
from srunit.data.images import PixelLimitTally, TooManyPixels, image_header
from srunit.errors import CheckpointError, ConfigError, DataError
from srunit.exported import ExportedGenerator, load_exported
from srunit.runtime.device import PRECISION_DTYPES, precision_dtype, resolve_device
from srunit.runtime.network_files import check_weight_dtypes, empty_network
from srunit.runtime.run_folder import DIRECTIONS, CheckpointSource, RunFolder
from srunit.runtime.translation import (
    MultimodalTranslator,
    TranslatorModule,
    attribute_from_seed,
    check_seed,
    is_multimodal,
    load_translator,
)

__all__ = ["Attribute", "DIRECTIONS", "CheckpointSource", "Translator", "load_generator",
           "official_state_dict_to_generator"]

# What picks the attribute code of a multimodal (DRIT) translation: a seed of z_a ~ N(0, I), a
# domain-B reference image (a PIL image or its file), a code tensor of shape (nz,), or None (seed 0).
Attribute = int | str | Path | Image.Image | torch.Tensor | None

log = logging.getLogger(__name__)


def official_state_dict_to_generator(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
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
        raise CheckpointError(
            "not a ResnetGenerator state dict from the public CUT/SRUNIT/CycleGAN code (no 'model.1.weight')"
        )
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    if not blocks:
        raise CheckpointError(
            "not a ResnetGenerator state dict from the public CUT/SRUNIT/CycleGAN code: it has no "
            "residual blocks (no 'model.N.conv_block.*' keys); give a *_net_G.pth generator file"
        )
    first = blocks[0]
    antialias = first == 12  # 4 layers per down stage with the blur-pool, 3 without
    up_start = blocks[-1] + 1
    antialias_up = f"model.{up_start}.filt" in state
    kwargs = dict(
        in_channels=state["model.1.weight"].shape[1],
        ngf=state["model.1.weight"].shape[0],
        n_blocks=len(blocks),
        antialias=antialias,
        antialias_up=antialias_up,
        out_channels=state[max((k for k in state if k.endswith(".weight")), key=lambda k: int(k.split(".")[1]))].shape[
            0
        ],
    )
    mapped = {re.sub(r"^model\.", "layers.", k): v for k, v in state.items()}
    return mapped, kwargs


def load_generator(checkpoint: str | Path, direction: str | None = "AtoB") -> nn.Module:
    """Build the translator stored at `checkpoint` (see module docstring for the accepted forms): the
    network its generator file names, as `srunit.runtime.translation.load_translator` assembles it.

    ``direction`` picks the generator of a run or checkpoint folder (None: AtoB); a file is the generator
    itself, and BtoA is accepted for a file only if it holds the B -> A generator (`CheckpointSource`).
    """
    return _load(CheckpointSource.resolve(check_path(checkpoint, "load_generator: checkpoint"), direction))


def _load(source: CheckpointSource) -> nn.Module:
    """The translator of a resolved checkpoint source."""
    if source.kind == "exported":
        generator = load_exported(source.path)[0]
        source.check_held_direction(generator.metadata.get("direction") or None)
        return generator
    if source.kind == "public":
        return _public_generator(source.file)
    if source.kind == "network":
        return _checked_translator(load_translator(source.file), source.file)
    return _load_from_folder(source)


def _refuse_a_run_outside_its_eval(output: Path) -> None:
    """DataError where ``output`` is a run folder or lies inside one other than in its eval/ folder (where the
    benchmark and `srunit eval --run` record): what training wrote there (checkpoints, samples) stays as it was."""
    check_no_link_loop(output, "output")
    out = output.expanduser().resolve()
    for folder in (out, *out.parents):
        if folder.is_dir() and RunFolder(folder).is_run():
            run = RunFolder(folder)
            if out != run.eval.resolve() and run.eval.resolve() not in out.parents:
                inside = "is the run folder" if out == folder else f"lies inside the run folder {folder}"
                raise DataError(f"output {output} {inside}, whose files only its training, eval --run and report "
                                f"write (its checkpoints above all); translate into a folder outside it")
            return


def _public_generator(path: Path) -> nn.Module:
    """The generator of a public ``*_net_G.pth`` state dict, as our ResnetGenerator (tensors only, never code)."""
    check_regular_file(path, "generator file", error=CheckpointError)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - weights_only refuses pickled code; report it
        raise CheckpointError(
            f"{path} could not be read as a plain state dict ({err}); "
            "only tensors are loaded from .pth files, never code"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict (got {type(state).__name__})")
    from srunit.networks.generator import ResnetGenerator  # the public code's generator, as ours

    try:
        mapped, kwargs = official_state_dict_to_generator(state)
        generator = empty_network(ResnetGenerator, kwargs)  # every tensor is loaded below
        check_weight_dtypes(generator, mapped, path)
        generator.load_state_dict(mapped, strict=True)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    except (RuntimeError, KeyError, IndexError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a complete ResnetGenerator of the public CUT/SRUNIT/CycleGAN code "
            f"({type(err).__name__}: {str(err)[:300]}); give a *_net_G.pth generator file"
        ) from None
    return generator


def _load_from_folder(source: CheckpointSource) -> nn.Module:
    """The generator of a checkpoint folder, read from one step folder. ``latest`` is resolved once, so every file
    comes from that step; if a running training's rotation deletes that step while it is read, the new ``latest``
    is read instead (once)."""
    path = source.path
    for attempt in range(2):
        assert source.folder is not None and source.direction is not None  # a checkpoint folder's source
        weights = source.file
        try:
            if not weights.is_file() and source.folder.is_dir():
                if source.direction != "AtoB" and (source.folder / "E_c.safetensors").is_file():
                    # DRIT trains both decoders, but its translator (E_c + G's domain-B decoder) is A -> B only
                    raise CheckpointError(
                        f"{source.folder} is a DRIT checkpoint: srunit translates DRIT runs from A to B only (its "
                        f"B -> A decoder trains but is not offered for translation); leave out --direction BtoA")
                which = ("generator" if source.direction == "AtoB"
                         else "B -> A generator (only two-sided methods such as cyclegan train one)")
                raise CheckpointError(f"{weights} is missing; this checkpoint has no {which}")
            return _checked_translator(load_translator(weights), weights)
        except CheckpointError:
            if source.folder.is_dir():  # the folder is there: the error is about its files, not a race
                raise
            log.info("checkpoint %s was removed while it was read (checkpoint rotation); reading the newest",
                     source.folder)
            if not path.is_symlink() and source.folder == path.resolve():  # a step folder the user named
                raise CheckpointError(
                    f"checkpoint {source.folder} was deleted while it was read (a training still running keeps only "
                    f"its newest checkpoints); give the run folder to read its latest checkpoint, or copy the step "
                    f"folder elsewhere first and give the copy") from None
            if attempt == 1:
                raise CheckpointError(
                    f"the latest checkpoint of {path} was deleted twice while it was read (a training still running "
                    f"rotates its checkpoints); run the command again") from None
            source = CheckpointSource.resolve(path, source.direction)
    raise AssertionError("unreachable")


def _checked_translator(translator: nn.Module, weights: Path) -> nn.Module:
    if not hasattr(translator, "size_multiple"):
        raise CheckpointError(
            f"{weights} holds a {type(translator).__name__}, which does not translate images; give "
            "the generator's file (G.safetensors) or the run folder"
        )
    return translator


@dataclass
class Translator:
    """Translate domain-A images to domain B at their native resolution.

    Images are padded (reflection) to a multiple of the generator's `size_multiple` (4 for the built-in
    generators; a plugin's generator sets its own), and to at least twice it a side (reflection in steps,
    replication for a side of 1 pixel), and cropped back after translation: any H, W >= 1 is accepted. An
    output holding NaN or inf (damaged weights) is a CheckpointError, never an image. For a multimodal (DRIT)
    checkpoint every method takes an `attribute` (see `Attribute`); one code serves every image of the call,
    so a seed gives the same style to all of them. For other checkpoints `attribute` must be left out.
    """

    generator: nn.Module  # a translator (srunit.runtime.translation): a method's generator, or an exported file
    device: torch.device
    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        """Built from its fields (not `from_checkpoint`): a float64 dtype made `precision` a bare StopIteration, a
        string dtype or device, or a module without `size_multiple`, failed inside torch at the first translation."""
        if not isinstance(self.generator, nn.Module) or not isinstance(getattr(self.generator, "size_multiple", None),
                                                                       int):
            raise TypeError(f"Translator: generator must be a translator module (one with a size_multiple, as "
                            f"srunit.load_generator returns), got {type(self.generator).__name__}; or build it with "
                            f"Translator.from_checkpoint(checkpoint, device, precision)")
        check_device_and_dtype("Translator", self.device, self.dtype)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, device: str = "auto", precision: str | None = None, direction: str | None = None
    ) -> Translator:
        """A translator for the generator at ``checkpoint`` (run folder, checkpoint folder, G.safetensors
        or a public ``*_net_G.pth`` / ``*_net_G_A.pth``) on ``device`` (auto, cpu, cuda, cuda:N, mps, xpu)
        computing in ``precision`` (fp32, bf16, fp16; None: fp32); ``direction`` BtoA takes a two-sided run's B -> A
        generator (None: AtoB for a folder, the file's own direction for a file; given for an exported file, it
        must be the direction it was exported in). An exported file computes in the precision it was exported
        in: a ``precision`` other than that one is refused."""
        checkpoint = check_path(checkpoint, "Translator.from_checkpoint: checkpoint")
        dtype = precision_dtype("fp32" if precision is None else precision, "--precision")
        source = CheckpointSource.resolve(checkpoint, direction)
        if source.kind == "exported":
            exported, dev = load_exported(source.path, device)
            source.check_held_direction(exported.metadata.get("direction") or None, exact=True,
                                        method=exported.metadata.get("method") or None,
                                        exportable=exported.metadata.get("directions") or None)
            # An fp16 file asked for fp32 computed in fp16 without a word (and the app said fp32).
            if precision is not None and precision != exported.precision:
                raise ConfigError(
                    f"--precision {precision}: {checkpoint} is an exported file whose precision was fixed at "
                    f"export ({exported.precision}; srunit export --precision); leave --precision out, or translate "
                    "the run folder to choose the precision"
                )
            return cls(exported, dev)
        dev = resolve_device(device, "--device")
        generator = _load(source).to(dev).eval()
        return cls(generator, dev, dtype)

    @property
    def precision(self) -> str:
        """The precision the translations are computed in (fp32, bf16, fp16): an exported file's own."""
        if isinstance(self.generator, ExportedGenerator):
            return self.generator.precision
        return next(name for name, dtype in PRECISION_DTYPES.items() if dtype == self.dtype)

    @property
    def multimodal(self) -> bool:
        """Whether outputs depend on an attribute code (a DRIT checkpoint, or a DRIT generator exported)."""
        return is_multimodal(self.generator)

    @torch.no_grad()
    def attribute_code(self, attribute: Attribute = None, option: str = "attribute") -> torch.Tensor | None:
        """The attribute code (nz,) float32 on the device that `attribute` selects, or None for a
        unimodal checkpoint. ``option`` names the setting in errors (``--attribute-seed``, ``--reference``).

        An int is a seed >= 0 of z_a ~ N(0, I) (`attribute_from_seed`: the same on every device); an
        image (PIL or a file) gives the mean of its code under E^a_B at its own size (at least 16x16).
        """
        if not self.multimodal:
            if attribute is not None:
                raise ConfigError(
                    f"{option}: this checkpoint's generator ({type(self.generator).__name__}) gives one output per "
                    f"image; attribute codes apply to multimodal (DRIT) checkpoints only; leave {option} out"
                )
            return None
        translator = cast(MultimodalTranslator, self.generator)
        if attribute is None:
            attribute = 0
        if isinstance(attribute, (str, Path)):
            # Named as the option: a folder was "image file DIR is a folder ...; replace or delete the file".
            check_regular_file(attribute, option, error=ConfigError, fix="give one domain-B image file")
            if image_header(Path(attribute)).several_frames:  # as translate warns of its inputs
                log.warning("%s %s holds several frames; its first frame is the reference", option, attribute)
            attribute = load_rgb(Path(attribute))
        if isinstance(attribute, Image.Image):
            w, h = attribute.size
            least = int(getattr(translator, "attribute_min_size", 1))
            if min(w, h) < least:
                raise ConfigError(
                    f"{option}: the reference image is {w}x{h} pixels; the attribute encoder needs at "
                    f"least {least}x{least}; give a larger domain-B image"
                )
            # As every file is read (`to_rgb`): a PIL convert("RGB") clipped 16-bit images to white and dropped alpha.
            x = pil_to_tensor(attribute)[None].to(self.device)
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
                code = translator.encode_attribute(x)[0].float()
            if not torch.isfinite(code).all():
                raise CheckpointError(f"{option}: the attribute encoder turned the reference image into NaN or inf "
                                      f"values: its weights are damaged; restore the checkpoint from a copy, or use a "
                                      f"seed")
            return code
        if torch.is_tensor(attribute):
            no_values = _no_real_values(attribute, "attribute")
            if no_values:  # the meta device was torch's RuntimeError; a complex code lost its imaginary part
                raise ConfigError(f"{option}: the attribute code {no_values}")
            if attribute.shape != (translator.nz,):
                raise ConfigError(
                    f"{option}: an attribute code of this checkpoint has shape ({translator.nz},), "
                    f"got {tuple(attribute.shape)}"
                )
            if not torch.isfinite(attribute).all():
                raise ConfigError(f"{option}: the attribute code holds NaN or inf values; give a finite code (a "
                                  f"draw of N(0, I)) or a seed")
            return attribute.to(self.device, torch.float32)
        seed = check_int(attribute, option, 0, fix=(f"pass a seed >= 0 as {option}, or a domain-B image as --reference"
                                                   if option.startswith("--") else
                                                   f"pass a seed >= 0 as {option}, a domain-B image or a code tensor"))
        return attribute_from_seed(check_seed(seed, option), translator.nz).to(self.device)

    @torch.no_grad()
    def translate_tensor(self, x: torch.Tensor, attribute: Attribute = None) -> torch.Tensor:
        """x: (B, 3, H, W) in [-1, 1], any H and W -> (B, 3, H, W) in [-1, 1] (float32, on x's device).

        Raises:
            TypeError: ``x`` is not a torch tensor (a numpy array: ``torch.from_numpy(a)``).
            ValueError: another shape, a sparse, MKL-DNN or meta tensor, 8-bit, complex or non-finite values, values
                outside [-1, 1], or images of more than
                MAX_PIXELS_LIMIT pixels (an expanded tensor claims any size without holding it).
        """
        check_image_tensor(x, "translate_tensor", "x")
        code = self.attribute_code(attribute)
        h, w = x.shape[-2:]
        m = cast(TranslatorModule, self.generator).size_multiple
        # The network's own padding and down-sampling need a few pixels: smaller images are padded up to it.
        least = int(getattr(self.generator, "min_size", 2 * m))
        inp = _pad_to(x.to(self.device, torch.float32), max(h + (-h) % m, least), max(w + (-w) % m, least))
        args = (inp,) if code is None else (inp, code)
        if self.dtype != torch.float32:
            with torch.autocast(self.device.type, dtype=self.dtype):
                out = self.generator(*args)
        else:
            out = self.generator(*args)
        out = out[..., :h, :w].float()
        if not torch.isfinite(out).all():  # tanh never gives them: the weights do (a damaged checkpoint)
            raise CheckpointError(
                f"the generator's output holds NaN or inf values for finite input ({type(self.generator).__name__}): "
                f"its weights are damaged (NaN or inf); nothing was written. Restore the checkpoint from a copy, or "
                f"translate with an earlier one"
            )
        return out.to(x.device)

    def translate_images(
        self, images: Sequence[Image.Image], batch_size: int = 8, attribute: Attribute = None
    ) -> list[Image.Image]:
        """Translate PIL images (any mode, any size); images of equal size are batched together.

        Raises:
            TypeError: ``images`` is not a list (or tuple) of PIL images.
        """
        check_pil_images(images, "translate_images", "translate_tensor", ", or use translate_folder for files")
        check_int(batch_size, "--batch-size", 1, maximum=MAX_BATCH)
        code = self.attribute_code(attribute)
        # As every file is read (`to_rgb`): a PIL convert("RGB") clipped 16-bit images to white and dropped alpha.
        tensors = [pil_to_tensor(img) for img in images]
        results: list[Image.Image | None] = [None] * len(tensors)
        for idx, batch in _batches_by_size(tensors, batch_size):
            out = self.translate_tensor(torch.stack(batch), code)
            for i, t in zip(idx, out):
                results[i] = tensor_to_pil(t)
        return [r for r in results if r is not None]

    def translate_folder(
        self,
        inputs: str | Path,
        output: str | Path,
        batch_size: int = 8,
        attribute: Attribute = None,
        *,
        overwrite: bool = False,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        show_progress: bool = False,
        _into: FolderWriter | None = None,
    ) -> list[Path]:
        """Translate an image file or every image under a folder; mirrors sub-folders into `output` as PNG.

        Every output path is checked before the first image is translated: sources are never
        written (an `output` equal to or inside a folder `inputs` is refused), two inputs that would
        give one output name (``a.png`` and ``a.jpg``) are an error, and existing outputs are
        replaced only with ``overwrite``. Each output is written atomically (a temporary file, then
        a rename). Images of more than ``max_pixels`` pixels are refused from their headers.
        ``attribute``: the attribute code of a multimodal (DRIT) checkpoint (see ``Attribute``). ``show_progress``:
        a progress bar of the images written, with the time left, where standard error is a terminal.
        ``_into`` (srunit's own callers): ``output`` as a writer its caller opened already, relative to a folder it
        opened once (the benchmark's RUN/eval), so that no path is looked up again between the two.
        """
        check_int(batch_size, "--batch-size", 1, maximum=MAX_BATCH)
        overwrite = check_flag(overwrite, "translate_folder: overwrite")
        show_progress = check_flag(show_progress, "translate_folder: show_progress")
        check_umask("translate_folder")
        inputs = check_path(inputs, "translate_folder: inputs")
        output = check_path(output, "translate_folder: output")
        if max_pixels is not None:  # 1.5 was taken as a limit, True as 1, a list was Python's TypeError from '>'
            check_int(max_pixels, "translate_folder: max_pixels", 1, maximum=MAX_PIXELS_LIMIT)
        code = self.attribute_code(attribute)
        # ~ expanded here as scan_images expands it: a literal '~/in' (quoted) was a ValueError from relative_to.
        inputs, output = Path(inputs).expanduser(), Path(output).expanduser()
        if inputs.is_file():
            files, base = [inputs], inputs.parent
        elif not inputs.exists():  # "input folder ... does not exist" was said of a missing image file too
            raise DataError(f"--input {inputs} does not exist (neither an image file nor a folder is there); "
                            f"{_INPUT_HINT}")
        elif not inputs.is_dir():  # a FIFO, a device: it said "not a folder", as if a file were
            raise DataError(f"--input {inputs} is {path_kind(inputs)}, neither an image file nor a folder; srunit "
                            f"reads only regular files (a pipe or a device would block or never end): {_INPUT_HINT}")
        else:
            files, base = scan_images(inputs, role="input", hint=_INPUT_HINT), inputs
        # Run folders are checked by `srunit translate`: the benchmark records translations into its runs (RUN/eval);
        # the rest of a run (its checkpoints above all) is refused to every caller.
        _refuse_a_run_outside_its_eval(output)
        guard_output(output, "--output", inputs=[("--input", inputs)], folder=True, run_folders=False)
        with OutputLock(output, "--output"):  # a second command writing here is refused until this one ends
            targets = _output_paths(files, base, output, overwrite)
            check_name_lengths(targets, "--output")
            remove_leftovers(targets)  # the half-written files of a translation that was killed
            several = []  # every header before any work: a too-large image fails up front
            tally = PixelLimitTally()  # ... naming the --max-pixels that lets every input through
            for path in files:
                try:
                    if image_header(path, fix=INPUT_FILE_FIX, max_pixels=max_pixels,
                                    limit_option="--max-pixels").several_frames:
                        several.append(path)
                except TooManyPixels as error:
                    tally.check(error)
            tally.raise_if_any()
            if several:  # translated from their first frame only (load_rgb); they were without a word
                log.warning("%d input file(s) hold several frames (e.g. %s); each is translated from its first "
                            "frame only", len(several), several[0])
            written: list[Path] = []
            # Opened once: moving --output away and linking another folder (the inputs) in its place while
            # this runs cannot redirect a single file there.
            bar = progress_bar(len(targets), "image", show_progress)
            with (nullcontext(_into) if _into is not None else FolderWriter(output)) as writer, bar:
                for chunk, chunk_targets in zip(
                    _chunks(files, max(batch_size * 8, 1)), _chunks(targets, max(batch_size * 8, 1))
                ):
                    images = [load_rgb(p, max_pixels=max_pixels, limit_option="--max-pixels", fix=INPUT_FILE_FIX)
                              for p in chunk]
                    for dst, img in zip(chunk_targets, self.translate_images(images, batch_size, code)):
                        with disk_full(dst, "--output", f"{len(written)} of {len(targets)} images were written"):
                            writer.write_bytes(dst, png_bytes(img))
                        written.append(dst)
                        bar.update(1)
                now = writer.now_at()
            if now is not None and now != output.resolve():  # `translated 300 image(s) into tout` named another folder
                log.warning("--output %s was moved while srunit wrote into it: the %d translation(s) are in %s, "
                            "where the folder is now", output, len(written), now)
        return written


_INPUT_HINT = "pass --input an image file or a folder of images"
RANGE_SLACK = 1e-2  # rounding of a user's own normalisation: values a little past [-1, 1] are still images
INPUT_FILE_FIX = "replace or remove the file, or translate a folder without it"  # a damaged input's advice


def check_device_and_dtype(who: str, device: object, dtype: object) -> None:
    """The ``device`` and ``dtype`` fields of ``who`` (`Translator`, `UnmatchedMasks`) built from its fields rather
    than with its ``from_checkpoint``: a torch.device, and the dtype of one of the precisions (PRECISION_DTYPES).

    Raises:
        TypeError: naming the field, what it takes and ``who.from_checkpoint``.
    """
    way = f"or build it with {who}.from_checkpoint(checkpoint, device, precision)"
    if not isinstance(device, torch.device):  # a string failed at its first autocast ('str' has no attribute 'type')
        raise TypeError(f"{who}: device must be a torch.device, got {type(device).__name__} {device!r:.40}; pass "
                        f"torch.device({device!r:.40}), {way}")
    if dtype not in PRECISION_DTYPES.values():
        allowed = ", ".join(str(d) for d in PRECISION_DTYPES.values())
        raise TypeError(f"{who}: dtype must be one of {allowed}, got {type(dtype).__name__} {dtype!r:.40}; {way}")


def check_pil_images(images: object, who: str, for_tensors: str, for_files: str = "") -> None:
    """Refuse what is not a list (or tuple) of PIL images, naming ``who`` (the function), ``for_tensors`` (its twin
    for tensors) and, after "open files with PIL.Image.open", ``for_files`` (another way for files).

    Raises:
        TypeError: one image or another object where the list belongs, or an item that is not a PIL image.
    """
    if not isinstance(images, (list, tuple)):
        raise TypeError(f"{who}: images must be a list of PIL images, got {type(images).__name__}; "
                        f"wrap one image in a list, or use {for_tensors} for tensors")
    for i, img in enumerate(images):
        if not isinstance(img, Image.Image):
            raise TypeError(f"{who}: images[{i}] must be a PIL image, got {type(img).__name__} "
                            f"{img!r:.60}; open files with PIL.Image.open{for_files}")


def check_image_tensor(x: object, who: str, name: str) -> None:
    """Refuse what is not a batch of images (B, 3, H, W) of finite floats in [-1, 1] before anything is allocated for
    it: ``who`` (the function) and ``name`` (its argument) are named in the error.

    Raises:
        TypeError: ``x`` is not a torch tensor (a numpy array: ``torch.from_numpy(a)``).
        ValueError: another shape, a sparse, MKL-DNN or meta tensor, 8-bit, complex or non-finite values, values
            outside [-1, 1], or images of more than
            MAX_PIXELS_LIMIT pixels (an expanded tensor claims any size without holding it).
    """
    if not isinstance(x, torch.Tensor):  # a numpy array was `'numpy.ndarray' object has no attribute 'dim'`
        raise TypeError(f"{who}: {name} must be a torch tensor of shape (B, 3, H, W), got "
                        f"{type(x).__name__}; convert a numpy array with torch.from_numpy(a)")
    no_values = _no_real_values(x, name)
    if no_values:
        raise ValueError(f"{who}: {name} {no_values}")
    if x.dim() != 4 or x.shape[1] != 3 or 0 in x.shape:
        raise ValueError(f"{who}: {name} must be images of shape (B, 3, H, W), B, H, W >= 1, got {tuple(x.shape)}")
    if x.shape[-2] * x.shape[-1] > MAX_PIXELS_LIMIT:  # checked before anything is allocated for them
        raise ValueError(f"{who}: images of {x.shape[-2]} x {x.shape[-1]} = "
                         f"{x.shape[-2] * x.shape[-1]:,} pixels, more than srunit translates "
                         f"({MAX_PIXELS_LIMIT:,}); translate it in tiles")
    if not x.is_floating_point():  # 8-bit pixels (0..255) gave a translation of garbage without a word
        raise ValueError(f"{who}: {name} is {x.dtype}; images are floating-point values in [-1, 1]: "
                         f"convert 8-bit pixels with {name}.float() / 127.5 - 1")
    if not torch.isfinite(x).all():
        raise ValueError(f"{who}: {name} holds NaN or inf values; images are finite values in [-1, 1]")
    low, high = (float(v) for v in torch.aminmax(x.detach()))
    if low < -1 - RANGE_SLACK or high > 1 + RANGE_SLACK:
        raise ValueError(f"{who}: {name} holds values from {low:.4g} to {high:.4g}; images are values in "
                         f"[-1, 1] (pixel / 127.5 - 1): scale them first")


def _no_real_values(t: torch.Tensor, name: str) -> str:
    """Why the tensor ``t`` (the argument ``name``) holds no real numbers srunit can read, or "": a layout other than
    strided (sparse, MKL-DNN: torch's own "Could not run 'aten::...' with arguments from the 'SparseCPU' backend"),
    the meta device (no values: "Tensor.item() cannot be called on meta tensors") or complex numbers (torch dropped
    their imaginary part with a warning)."""
    if t.is_meta:
        return ("is a tensor on the meta device, which holds no values; give one on a real device (cpu, cuda, ...) "
                "holding the numbers")
    if t.layout != torch.strided:
        return f"is a {t.layout} tensor; give a dense one: {name}.to_dense()"
    if t.is_complex():
        return f"is {t.dtype}; give real numbers: {name}.real, or {name}.abs()"
    return ""


def _output_paths(files: Sequence[Path], base: Path, output: Path, overwrite: bool) -> list[Path]:
    """output / (file relative to base) as .png for every file, checked (see ``translate_folder``)."""
    targets = [(output / src.relative_to(base)).with_suffix(".png") for src in files]
    by_target: dict[Path, list[Path]] = {}
    for src, dst in zip(files, targets):
        by_target.setdefault(dst, []).append(src)
    clashes = [(dst, srcs) for dst, srcs in by_target.items() if len(srcs) > 1]
    if clashes:
        listed = "; ".join(f"{' and '.join(str(s) for s in srcs)} -> {dst}" for dst, srcs in clashes[:5])
        raise DataError(
            f"{len(clashes)} output name(s) would be written by several inputs ({listed}); outputs are "
            f"PNG files named after their input without its extension: rename the inputs so that their "
            f"names differ without the extension (nothing was written)"
        )
    sources = {src.resolve() for src in files}
    onto_source = [(src, dst) for src, dst in zip(files, targets) if dst.resolve() in sources]
    if onto_source:
        # It named the source the output replaces as the one translated (tq/in/0000.png for tq/in/in/0000.png).
        src, dst = onto_source[0]
        replaced = "itself" if dst.resolve() == src.resolve() else f"the source file {dst}"
        raise DataError(f"the translation of {src} would replace {replaced}; choose another --output (nothing was "
                        f"written)")
    _refuse_outputs_that_are_folders(files, targets, output)
    existing = [dst for dst in targets if dst.exists() or dst.is_symlink()]
    if existing and not overwrite:
        raise DataError(
            f"{len(existing)} output file(s) exist already (first: {existing[0]}); pass --overwrite to "
            f"replace them, or choose another --output (nothing was written)"
        )
    return targets


def _refuse_outputs_that_are_folders(files: Sequence[Path], targets: Sequence[Path], output: Path) -> None:
    """An output file must not be a folder, nor stand where a mirrored sub-folder goes (``a.jpg`` gives ``a.png``,
    ``a.png/b.png`` needs a folder ``a.png``), nor may a file or link stand where a sub-folder goes: each was found
    only when that image was written, after the ones before it, even with --overwrite (which replaces files only)."""
    folders = {parent for dst in targets for parent in dst.relative_to(output).parents if parent != Path(".")}
    for src, dst in zip(files, targets):
        if dst.relative_to(output) in folders:
            inside = next(s for s, d in zip(files, targets) if dst in d.parents)
            raise DataError(f"the translation of {src} is the file {dst}, and that of {inside} needs a folder of "
                            f"that name (sub-folders are mirrored, outputs are named after their input without "
                            f"its extension): rename one of them (nothing was written)")
        if dst.is_dir() and not dst.is_symlink():
            raise DataError(f"the translation of {src} is {dst}, which is a folder; --overwrite replaces files only: "
                            f"move that folder away, or choose another --output (nothing was written)")
    for folder in sorted(folders):
        path = output / folder
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise DataError(f"{path} is {path_kind(path)}, where sub-folder {folder} of the input is mirrored; "
                            f"srunit writes only into real folders: move it away, or choose another --output "
                            f"(nothing was written)")


def _pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """x (B, C, h, w) padded at the bottom and right to (B, C, height, width): by reflection, in steps where the
    padding exceeds the image (reflection adds at most side - 1 pixels at once), by replication for a side of 1."""
    while x.shape[-2] < height or x.shape[-1] < width:
        h, w = x.shape[-2:]
        if (h == 1 and height > 1) or (w == 1 and width > 1):
            return F.pad(x, (0, width - w, 0, height - h), mode="replicate")
        x = F.pad(x, (0, min(width - w, w - 1), 0, min(height - h, h - 1)), mode="reflect")
    return x


def _chunks(items: Sequence[Path], n: int) -> Iterator[Sequence[Path]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _batches_by_size(
    tensors: Sequence[torch.Tensor], batch_size: int
) -> Iterable[tuple[list[int], list[torch.Tensor]]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(tuple(t.shape), []).append(i)
    for idx in groups.values():
        for j in range(0, len(idx), batch_size):
            part = idx[j : j + batch_size]
            yield part, [tensors[i] for i in part]
