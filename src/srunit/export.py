"""Export a trained generator to ONNX or a torch.export program (.pt2); TorchScript, which torch deprecates, stays
for the runtimes that still read only it.

An exported file is the A -> B (or, for two-sided methods, B -> A) generator alone:

- input ``image``: float32 (N, 3, H, W), RGB in [-1, 1] (pixel / 127.5 - 1); N, H and W are dynamic;
  H and W must be multiples of the generator's ``size_multiple`` (4 for the built-in generators, whose two
  stride-2 stages give an output of another size for other sides; written into the file's metadata), and at
  least its least side, found by translating images of growing sides at export time (``min_size`` in the
  metadata: 8 for the built-in generators, whose bottleneck of a quarter side is reflection-padded by 1 and so
  needs 2 pixels). ``srunit translate`` pads other sizes by reflection and crops back.
- input ``attribute`` (multimodal DRIT generators only): float32 (N, nz), the attribute code z_a
  (z_a ~ N(0, I) gives a random style).
- output ``translation``: float32 (N, 3, H, W), RGB in [-1, 1].

Inputs and outputs stay float32 whatever the precision: an fp16 or bf16 file casts inside. ONNX
defines convolutions for float16, float32 and float64 only, so bf16 is a precision of the torch formats.
Every export is checked before the file is kept: the exported file itself (through onnxruntime, or
loaded back with torch.export.load or torch.jit.load) translates random images of two sizes, and its
largest absolute difference from the fp32 PyTorch generator must stay within a tolerance set by the
precision. The conventions above, the opset, the precision and where the weights came from are
written into the file: ONNX metadata_props, or the extra file ``srunit.json`` of a .pt2 or
TorchScript archive. A .pt2 program keeps batch, height and width dynamic (height and width as
multiples of the generator's size multiple).
"""

from __future__ import annotations

import copy
import errno
import inspect
import io
import json
import logging
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from srunit._atomic import FolderWriter, check_umask
from srunit._outputs import OutputLock, check_name_lengths, guard_output
from srunit._version import __version__
from srunit.checks import DEFAULT_MAX_PIXELS, check_choice, check_flag, check_path, check_utf8_path, one_line
from srunit.errors import ConfigError, shell_word
from srunit.exported import (
    EXTRA_FILE,
    PROGRAM_SUFFIX,
    TORCHSCRIPT_SUFFIXES,
    load_program,
    load_torchscript,
    onnx_session,
    quiet,
    require,
)
from srunit.inference import load_generator
from srunit.runtime.device import precision_dtype
from srunit.runtime.network_files import check_finite_weights
from srunit.runtime.run_folder import DIRECTIONS, NETWORK_SUFFIX, CheckpointSource, network_file
from srunit.runtime.translation import MultimodalTranslator, TranslatorModule, is_multimodal

__all__ = ["DEFAULT_CHECK_SIZES", "DEFAULT_OPSET", "FORMAT_NAMES", "FORMATS", "MAX_CHECKS", "TOLERANCES",
           "ExportReport", "check_sizes_of", "export_generator", "least_side", "parse_size"]

FORMATS = {"onnx": ".onnx", "export": PROGRAM_SUFFIX, "torchscript": ".ts"}
FORMAT_NAMES = {"onnx": "ONNX", "export": "torch.export program", "torchscript": "TorchScript"}
log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
MIN_OPSET = 11  # reflection padding with sizes known only at run time (Pad with mode=reflect)
# (batch, height, width) of the two checks at export time: two batch sizes, a square and a wide image.
DEFAULT_CHECK_SIZES: tuple[tuple[int, int, int], ...] = ((2, 128, 128), (1, 96, 160))
# Largest absolute difference (outputs lie in [-1, 1]; one 8-bit level is 2/255 = 0.0078) allowed
# between the exported file and the fp32 PyTorch generator, by precision.
TOLERANCES = {"fp32": 1e-3, "fp16": 3e-2, "bf16": 1e-1}

# {multiple}: the exported generator's own `size_multiple` (a plugin's may be 1, 2, 8 ...), never a fixed 4;
# {least}: ", at least S" for its least side S (`least_side`) where that is more than the multiple.
IMAGE_CONVENTION = ("image: float32 (N, 3, H, W), RGB in [-1, 1] (pixel / 127.5 - 1); N, H and W dynamic; "
                    "H and W multiples of {multiple}{least}")
ATTRIBUTE_CONVENTION = "attribute: float32 (N, {nz}), the attribute code z_a (z_a ~ N(0, I) for a random style)"
OUTPUT_CONVENTION = "translation: float32 (N, 3, H, W), RGB in [-1, 1] ((x + 1) * 127.5 gives 8-bit pixels)"


# ----------------------------------------------------------------------------- the exported module


class _Unimodal(nn.Module):
    """image -> translation, computing in ``dtype``; float32 in and out."""

    def __init__(self, generator: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.generator = generator
        self.dtype = dtype

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.generator(image.to(self.dtype)).float()


class _Multimodal(nn.Module):
    """(image, attribute (N, nz)) -> translation of a multimodal translator, computing in ``dtype``."""

    def __init__(self, translator: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.translator = translator
        self.dtype = dtype

    def forward(self, image: torch.Tensor, attribute: torch.Tensor) -> torch.Tensor:
        return self.translator(image.to(self.dtype), attribute.to(self.dtype)).float()


def _exportable(generator: nn.Module, dtype: torch.dtype) -> nn.Module:
    net = copy.deepcopy(generator).eval().to(device="cpu", dtype=dtype)
    for p in net.parameters():
        p.requires_grad_(False)
    return _Multimodal(net, dtype) if is_multimodal(net) else _Unimodal(net, dtype)


# ----------------------------------------------------------------------------- export


@dataclass
class ExportReport:
    """What `export_generator` wrote and how its check went."""

    path: Path
    format: str
    precision: str
    metadata: dict[str, str]
    tolerance: float
    # (N, 3, H, W) of each check -> largest absolute difference from the fp32 PyTorch generator
    checks: list[tuple[tuple[int, ...], float]] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max(d for _, d in self.checks)

    def describe(self) -> str:
        size = self.path.stat().st_size / 1e6
        kind = f"ONNX opset {self.metadata['opset']}" if self.format == "onnx" else FORMAT_NAMES[self.format]
        method = self.metadata["method"]
        whose = "the generator" if method == "unknown" else f"the {method} generator"
        lines = [f"exported {one_line(str(self.path))} ({kind}, {self.precision}, {size:.1f} MB): {whose} "
                 f"({self.metadata['direction']}) of {one_line(self.metadata['checkpoint'])}",
                 f"  input  {self.metadata['input']}"]
        if "attribute" in self.metadata:
            lines.append(f"  input  {self.metadata['attribute']}")
        lines.append(f"  output {self.metadata['output']}")
        checks = "; ".join(f"{'x'.join(map(str, s))} max abs diff {d:.2e}" for s, d in self.checks)
        lines.append(f"  checked against the fp32 PyTorch generator: {checks} (tolerance {self.tolerance:g})")
        return "\n".join(lines)


MAX_CHECKS = 8  # sizes an export is checked on: each translates a random batch through both networks
MAX_CHECK_PIXELS = 2 * DEFAULT_MAX_PIXELS  # the pixels of one check's batch: the command checks its first size twice


def check_sizes_of(check_sizes: object) -> list[tuple[int, int, int]]:
    """``check_sizes`` of `export_generator` as (batch, height, width) triples, each batch within the pixel limit.

    Raises:
        TypeError: not a list of three integers each (``[(64, 64)]`` or ``"128x128"`` were ValueError tracebacks).
        ConfigError: no size, more than `MAX_CHECKS`, a size `parse_size` refuses, or a batch of more pixels than
            `DEFAULT_MAX_PIXELS` (a batch of 10**6 allocated 49 GB).
    """
    shape = "a list of (batch, height, width) triples of integers, e.g. [(2, 128, 128), (1, 96, 160)]"
    if isinstance(check_sizes, (str, bytes)) or not isinstance(check_sizes, Sequence):
        raise TypeError(f"export_generator: check_sizes must be {shape}, got {type(check_sizes).__name__} "
                        f"{check_sizes!r:.60}")
    sizes = []
    for size in check_sizes:
        if isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 3 or not all(
                isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in size):
            raise TypeError(f"export_generator: check_sizes must be {shape}, got the entry {size!r:.60}")
        sizes.append((int(size[0]), int(size[1]), int(size[2])))
    if not sizes:
        raise ConfigError("give at least one size to check the exported file on (--check-size HxW)")
    if len(sizes) > MAX_CHECKS:
        raise ConfigError(f"--check-size is given {len(sizes)} times, more than {MAX_CHECKS}: each check translates a "
                          f"random batch through the exported file and the generator; give at most {MAX_CHECKS} sizes")
    for n, h, w in sizes:
        parse_size(f"{h}x{w}")
        if n < 1 or n * h * w > MAX_CHECK_PIXELS:  # the check allocates and translates n images of h x w
            raise ConfigError(f"check batch size {n} of {h}x{w} images must be from 1 to "
                              f"{MAX_CHECK_PIXELS // (h * w):,} ({MAX_CHECK_PIXELS:,} pixels in all: two images of "
                              f"the largest size --check-size takes); give a smaller batch")
    return sizes


def parse_size(text: str, option: str = "--check-size") -> tuple[int, int]:
    """'HxW' -> (H, W), both at least 16. What the sides must be multiples of is the generator's own
    `size_multiple`, which `export_generator` checks once it has loaded the generator."""
    parts = str(text).lower().split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not HxW (e.g. 128x128)") from None
    if h < 16 or w < 16:
        raise ConfigError(f"{option} {text!r}: height and width must be at least 16 (and multiples of the "
                          f"generator's size multiple, 4 for the built-in generators); e.g. 128x128")
    if h * w > DEFAULT_MAX_PIXELS:  # the check allocates and translates a batch of this size
        raise ConfigError(f"{option} {text!r} is {h * w:,} pixels, more than {DEFAULT_MAX_PIXELS:,} (4096x4096, "
                          f"what srunit translate takes by default); check at a smaller size, e.g. 1024x1024")
    return h, w


EXPORT = "the export"  # `FolderWriter.check_in_place`'s words for what stopped


def export_generator(checkpoint: str | Path, output: str | Path, format: str | None = None, *,
                     precision: str = "fp32", direction: str = "AtoB", opset: int | None = None,
                     check_sizes: Sequence[tuple[int, int, int]] | None = None,
                     tolerance: float | None = None, overwrite: bool = False) -> ExportReport:
    """Export the generator at ``checkpoint`` (anything `srunit.inference.load_generator` takes) to ``output``.

    ``format`` is ``onnx``, ``export`` (a torch.export program, ``.pt2``) or ``torchscript`` (default: from the
    suffix of ``output``); ``opset`` the ONNX opset (ONNX only; default `DEFAULT_OPSET`); ``precision`` fp32,
    fp16 or bf16 (not ONNX) is the dtype the file computes in. The
    written file is checked on random images of each (batch, height, width) in ``check_sizes`` (default
    `DEFAULT_CHECK_SIZES`, each side rounded up to a multiple of the generator's ``size_multiple``) against the fp32
    PyTorch generator; a difference above ``tolerance`` (default `TOLERANCES`) is an error and
    nothing is written. ``output`` is written atomically and replaced only with ``overwrite``.
    """
    overwrite = check_flag(overwrite, "export_generator: overwrite")
    check_umask("export_generator")  # its own output, unreadable, was called damaged
    checkpoint = check_path(checkpoint, "export_generator: checkpoint")
    output = check_path(output, "export_generator: output")
    if output.is_dir():
        raise ConfigError(f"--output {output} is a folder; give the file to write, e.g. "
                          f"{shell_word(output / 'generator.onnx')}")
    fmt = _format_of(output, format)
    check_choice(precision, "--precision", TOLERANCES)
    check_choice(direction, "--direction", DIRECTIONS)  # None exported AtoB and wrote direction None into the file
    if fmt == "onnx" and precision == "bf16":
        # It advised `--format export`, which the .onnx name then contradicted (and that refusal advised ONNX again).
        pt2 = output.with_suffix(".pt2")
        raise ConfigError(f"--precision bf16 cannot be exported to ONNX, whose convolutions are defined for float16, "
                          f"float32 and float64 only; export fp16 ONNX (--precision fp16), or a bf16 torch.export "
                          f"program: --output {shell_word(pt2)}{' without --format onnx' if format == 'onnx' else ''}")
    if opset is not None and fmt != "onnx":  # it changed nothing, without a word
        raise ConfigError(f"--opset {opset!r} applies to ONNX files only, and this export writes a {FORMAT_NAMES[fmt]} "
                          f"({output.name}); leave --opset out, or export to .onnx")
    opset = DEFAULT_OPSET if opset is None else opset
    if fmt == "onnx" and (isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET):
        raise ConfigError(f"--opset {opset!r}: the generators need opset {MIN_OPSET} or newer (reflection padding "
                          f"of run-time sizes); default {DEFAULT_OPSET}")
    number = isinstance(tolerance, (int, float, np.number)) and not isinstance(tolerance, (bool, np.bool_))
    tol = TOLERANCES[precision] if tolerance is None else float(tolerance) if number else math.nan
    if not (math.isfinite(tol) and tol > 0):
        raise ConfigError(f"--tolerance {tolerance!r:.40} must be a finite number > 0 (default "
                          f"{TOLERANCES[precision]} for {precision})")
    sizes = None if check_sizes is None else check_sizes_of(check_sizes)
    source = CheckpointSource.resolve(checkpoint, direction)
    if source.kind == "exported":
        raise ConfigError(f"{checkpoint} is an exported file already; export from the run folder, the checkpoint "
                          f"folder or its {network_file(Path(), DIRECTIONS['AtoB'])}")
    _check_output(output, source, overwrite)

    # The checkpoint resolved above, which the metadata names: `latest` read again could be a newer step by now.
    resolved = source.folder if source.kind == "checkpoint" and source.folder is not None else checkpoint
    generator = load_generator(resolved, direction).eval()
    check_finite_weights(generator, checkpoint)  # an export of NaN weights would translate every image to garbage
    m = cast(TranslatorModule, generator).size_multiple
    if sizes is None:  # a plugin's generator of multiple 64 was refused the default 96x160, which no one gave
        sizes = check_sizes_of([(n, h + (-h) % m, w + (-w) % m) for n, h, w in DEFAULT_CHECK_SIZES])
    for _, h, w in sizes:
        if h % m or w % m:
            raise ConfigError(f"--check-size {h}x{w}: this generator takes sides that are multiples of {m}; give "
                              f"a size such as {h - h % m or m}x{w - w % m or m}")
    multimodal = is_multimodal(generator)
    least = least_side(generator, min(min(h, w) for _, h, w in sizes))
    # The direction of the generator exported: a file's own (G_BA.safetensors, *_net_G_B.pth are B -> A), which the
    # default --direction AtoB, "the file as it is", does not say; the file claimed A -> B for a B -> A generator.
    metadata = _metadata(source, generator, fmt, precision, source.direction or direction, opset, least)
    dtype = precision_dtype(precision, "--precision")
    module = _exportable(generator, dtype)
    rng = torch.Generator().manual_seed(0)
    inputs = [_random_inputs(size, generator, rng) for size in sizes]

    # The output's folder opened once: the partial file is written, checked and renamed into it, wherever it is
    # moved meanwhile; by its path, a folder swapped for a link sent the export into the folder linked to.
    home = FolderWriter(output.parent)
    partial = output.with_name(f".{output.name}.partial-{os.getpid()}")
    lock = OutputLock(output, "--output")  # held until the file is in place
    try:
        if precision != "fp32":
            _trace_guard(lambda: module(*inputs[0]), precision)
        if fmt == "onnx":
            _write_onnx(module, inputs[0], partial, opset, multimodal, metadata, into=home)
            home.check_in_place(EXPORT)  # the check reads the file by its path
            run = _onnx_runner(partial)
        elif fmt == "export":
            # torch.export takes a size of 1 (or two equal sides) in its example as a constant: the example has a
            # batch of 2 and sides that differ, whatever the first check size is.
            b, h, w = sizes[0]
            example = _random_inputs((max(b, 2), h, w if w != h else w + m), generator,
                                     torch.Generator().manual_seed(1))
            _write_program(module, example, partial, metadata, multimodal, m, into=home)
            home.check_in_place(EXPORT)
            run = _program_runner(partial)
        else:
            _write_torchscript(module, inputs[0], partial, metadata, into=home)
            home.check_in_place(EXPORT)
            run = _torchscript_runner(partial)
        checks = []
        for args in inputs:
            with torch.no_grad():
                expected = generator(*args)
            got = run(*args)
            if got.shape != expected.shape:
                raise ConfigError(f"the exported file gives an output of shape {tuple(got.shape)} for an input of "
                                  f"shape {tuple(args[0].shape)} (expected {tuple(expected.shape)}); nothing was "
                                  "written")
            diff = float((got - expected).abs().max())
            checks.append((tuple(args[0].shape), diff))
            if not diff <= tol:
                raise ConfigError(
                    f"the exported file does not reproduce the generator: on images of shape {tuple(args[0].shape)} "
                    f"its output differs from the fp32 PyTorch generator by up to {diff:.3g} (tolerance {tol:g} for "
                    f"{precision}); nothing was written. Export in a wider precision, or pass a larger --tolerance "
                    f"if this difference is acceptable")
        home.check_in_place(EXPORT)  # the report names the output by its path
        home.replace(partial.name, output.name)
    finally:
        home.remove(partial.name)
        home.close()
        lock.release()
    return ExportReport(output, fmt, precision, metadata, tol, checks)


def _implied_format(suffix: str) -> str | None:
    if suffix == ".onnx":
        return "onnx"
    if suffix == PROGRAM_SUFFIX:
        return "export"
    return "torchscript" if suffix in TORCHSCRIPT_SUFFIXES else None


def _format_of(output: Path, format: str | None) -> str:
    suffix = output.suffix.lower()
    implied = _implied_format(suffix)
    if format is not None:
        check_choice(format, "--format", FORMATS)
    if implied is None:
        # translate, app and Translator.from_checkpoint know an exported file by its suffix: an ONNX file written
        # as xo.png (--format onnx) was refused there as an unknown checkpoint file type.
        onnx, program, script = (output.with_suffix(s) for s in FORMATS.values())
        names = output.with_suffix(FORMATS[format]) if format is not None else f"{onnx}, {program} or {script}"
        raise ConfigError(f"--output {output}: cannot tell the format from the suffix {suffix or '(none)'}, and "
                          f"srunit reads an exported file by its suffix (.onnx, .pt2, or .ts/.torchscript/.pt); "
                          f"name the file {names}")
    if format is not None:
        if implied != format:
            raise ConfigError(f"--format {format} contradicts --output {output}, whose suffix {suffix} names "
                              f"{implied}; name the file {output.with_suffix(FORMATS[format])} or pass --format "
                              f"{implied}")
        return format
    return implied


def _check_output(output: Path, source: CheckpointSource, overwrite: bool) -> None:
    """The shared output guard, with the checkpoint (and the network files beside a loose weights file) as inputs."""
    inputs: list[tuple[str, Path | None]] = [("the checkpoint", source.path)]
    if source.kind != "checkpoint":
        beside = source.path.parent.glob(f"*{NETWORK_SUFFIX}")
        inputs += [("a network file beside the checkpoint", p) for p in beside]
    guard_output(output, "--output", inputs=inputs, overwrite=overwrite)
    check_name_lengths([output], "--output", extra=len(f"..partial-{os.getpid()}"))


def _random_inputs(size: tuple[int, ...], generator: nn.Module, rng: torch.Generator) -> tuple[torch.Tensor, ...]:
    n, h, w = size
    image = torch.rand(n, 3, h, w, generator=rng) * 2 - 1
    if is_multimodal(generator):
        return image, torch.randn(n, cast(MultimodalTranslator, generator).nz, generator=rng)
    return (image,)


def _trace_guard(forward: Any, precision: str) -> None:
    """Run the reduced-precision module once on the CPU, where tracing runs it; a dtype the CPU lacks is named."""
    try:
        with torch.no_grad():
            forward()
    except (RuntimeError, NotImplementedError) as err:
        raise ConfigError(f"--precision {precision}: this torch ({torch.__version__}) cannot run the generator in "
                          f"{precision} on the CPU, where export traces it ({str(err)[:200]}); export fp32, or "
                          f"another precision") from None


def least_side(generator: nn.Module, largest: int) -> int:
    """The least side of the images ``generator`` (a translator, on the CPU, in eval mode) translates: the least
    multiple S of its ``size_multiple`` for which a (1, 3, S, S) image gives an output of its size. Its padding
    needs pixels at its bottleneck that the multiple does not give: the built-in generators' is a quarter of the
    side, reflection-padded by 1, which needs 2 (S = 8, not the multiple 4: a 4x4 image failed in every exported
    format). Sides are tried doubling, then halving the gap (a side that works, any larger multiple does);
    ``largest``, a side known to work (the export checks it), is returned where no smaller one does."""
    m = cast(TranslatorModule, generator).size_multiple
    rng = torch.Generator().manual_seed(0)

    def works(k: int) -> bool:
        side = k * m
        try:
            with torch.no_grad():
                out = generator(*_random_inputs((1, side, side), generator, rng))
        except Exception:  # noqa: BLE001 - a network too small for its padding fails as its layers do
            return False
        return isinstance(out, torch.Tensor) and tuple(out.shape[-2:]) == (side, side)

    failed, top = 0, max(largest // m, 1)  # failed: the largest k known to fail; top: one known (or taken) to work
    k = 1
    while k < top and not works(k):
        failed, k = k, 2 * k
    top = min(k, top)
    while top - failed > 1:
        mid = (failed + top) // 2
        failed, top = (failed, mid) if works(mid) else (mid, top)
    return top * m


def _metadata(source: CheckpointSource, generator: nn.Module, fmt: str, precision: str, direction: str,
              opset: int, least: int) -> dict[str, str]:
    method, step, origin = "unknown", "", str(source.path)
    # The directions the checkpoint holds a generator of: a file asked for the other one is then told whether there
    # is one to export (a CUT file was told to export the B -> A generator, which a CUT run does not have).
    held = "" if source.kind != "checkpoint" or source.folder is None else ",".join(
        d for d, name in DIRECTIONS.items() if network_file(source.folder, name).is_file())
    if source.kind in ("checkpoint", "network"):
        origin = str(source.folder if source.kind == "checkpoint" else source.path.resolve())
        method = source.method or "unknown"
        step = "" if source.step is None else str(source.step)
    elif source.kind == "public":
        method = "public CUT/SRUNIT/CycleGAN code"
    multiple = cast(TranslatorModule, generator).size_multiple
    check_utf8_path(origin, "the checkpoint")  # the metadata holds it as text (ONNX's as UTF-8)
    meta = {
        "format": "srunit-export", "format_version": "1", "producer": f"srunit {__version__}",
        "torch": torch.__version__, "network": type(generator).__name__, "method": method, "checkpoint": origin,
        "step": step, "direction": direction, "directions": held, "precision": precision,
        "size_multiple": str(multiple), "min_size": str(least),
        "input": IMAGE_CONVENTION.format(multiple=multiple, least=f", at least {least}" if least > multiple else ""),
        "output": OUTPUT_CONVENTION,
    }
    if fmt == "onnx":
        meta["opset"] = str(opset)
    if is_multimodal(generator):
        nz = cast(MultimodalTranslator, generator).nz
        meta["nz"] = str(nz)
        meta["attribute"] = ATTRIBUTE_CONVENTION.format(nz=nz)
    return meta


def _write_onnx(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path, opset: int, multimodal: bool,
                metadata: dict[str, str], *, into: FolderWriter | None = None) -> None:
    onnx = require("onnx")
    names = ["image", "attribute"] if multimodal else ["image"]
    axes: dict[str, dict[int, str]] = {"image": {0: "batch", 2: "height", 3: "width"},
                                       "translation": {0: "batch", 2: "height", 3: "width"}}
    if multimodal:
        axes["attribute"] = {0: "batch"}
    kwargs: dict[str, Any] = dict(input_names=names, output_names=["translation"], dynamic_axes=axes,
                                  opset_version=opset, do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript-based exporter: no onnxscript needed, the same on torch 2.4+
    buffer = io.BytesIO()  # in memory, then written by Python: a refused write is an OSError naming the file
    try:
        with quiet(), _exporter_output_to_debug_log():
            torch.onnx.export(module, example, buffer, **kwargs)  # type: ignore[arg-type]  # its stubs omit file objects
    except Exception as err:  # noqa: BLE001 - the exporter raises many types; name the option that caused it
        raise _onnx_failure(err, path, opset) from None
    model = onnx.load_model_from_string(buffer.getvalue())
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = f"srunit generator. {metadata['input']}. {OUTPUT_CONVENTION}."
    onnx.checker.check_model(model)
    _write_bytes(path, model.SerializeToString(), into)


@contextmanager
def _exporter_output_to_debug_log() -> Iterator[None]:
    """Hold back what the exporter's C++ side prints (on a failure, the whole Torch IR graph: a hundred lines and
    more, on standard output, `_jit_onnx_log`; warnings on standard error) and pass it to the debug log (`srunit -v`
    shows it); the error itself stays one line. Standard error alone was held: the graph reached standard output."""
    with _held_fd(1, sys.stdout), _held_fd(2, sys.stderr):
        yield


@contextmanager
def _held_fd(fd: int, stream: Any) -> Iterator[None]:
    try:
        saved = os.dup(fd)
    except OSError:  # no such stream to redirect
        yield
        return
    with tempfile.TemporaryFile() as held:
        if stream is not None:
            stream.flush()
        os.dup2(held.fileno(), fd)
        try:
            yield
        finally:
            if stream is not None:
                stream.flush()
            os.dup2(saved, fd)
            os.close(saved)
            held.seek(0)
            text = held.read().decode(errors="replace").strip()
            if text:
                log.debug("ONNX exporter output (fd %d):\n%s", fd, text)


def _onnx_failure(err: Exception, path: Path, opset: int) -> Exception:
    """The error to raise for a failed ``torch.onnx.export``: a full disk as an OSError naming the file (reported as
    such, never as an opset problem); otherwise a short ConfigError with the first line of the cause, advising
    another opset only when one other than the default was used."""
    full = _disk_full(err, path)
    if full is not None:
        return full
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    first = (lines[0] if lines else "")[:300]
    more = " (run srunit -v export ... for the exporter's full output)" if len(lines) > 1 or lines[:1] != [first] \
        else ""
    if opset != DEFAULT_OPSET:
        fix = f"try the default --opset {DEFAULT_OPSET}, or --format export"
    else:
        fix = "the generator uses an operation this exporter cannot write; export with --format export instead"
    log.debug("ONNX export failed", exc_info=err)
    return ConfigError(f"ONNX export with opset {opset} failed: {type(err).__name__}: {first}{more}; {fix}")


def _write_torchscript(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path,
                       metadata: dict[str, str], *, into: FolderWriter | None = None) -> None:
    with quiet():
        traced = torch.jit.trace(module, example, check_trace=False)
    buffer = io.BytesIO()
    with quiet():
        torch.jit.save(traced, buffer, _extra_files={EXTRA_FILE: json.dumps(metadata, indent=1)})
    _write_bytes(path, buffer.getbuffer(), into)


def _write_bytes(path: Path, data: bytes | memoryview, into: FolderWriter | None = None) -> None:
    """Write an archive that was built in memory. torch's archive writer (TorchScript, .pt2) aborts the process
    (a C++ exception in a destructor, SIGABRT) when the disk refuses a write; Python's write raises an OSError,
    which names the file here (a full disk, a quota, a file size limit). ``into``: the folder of ``path`` opened
    once (`FolderWriter`), written relative to it."""
    if into is not None:
        into.write_bytes(path.name, bytes(data))  # an OSError names the file
        return
    try:
        with open(path, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except OSError as err:
        raise OSError(err.errno, err.strerror or os.strerror(err.errno or 0), str(path)) from None


def _write_program(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path, metadata: dict[str, str],
                   multimodal: bool, multiple: int, *, into: FolderWriter | None = None) -> None:
    """``module`` as a torch.export program: batch, height and width dynamic (height and width multiples of
    ``multiple``), the metadata in its extra file."""
    from torch.export import Dim

    batch = Dim("batch", min=1, max=65536)
    # Sides from `multiple` to 65536 pixels, written as multiples so the program's shape guards hold for every size
    # srunit translate feeds it (it pads to a multiple).
    height, width = Dim("height", min=1, max=65536 // multiple), Dim("width", min=1, max=65536 // multiple)
    shapes: dict[str, Any] = {"image": {0: batch, 2: multiple * height, 3: multiple * width}}
    if multimodal:
        shapes["attribute"] = {0: batch}
    try:
        with quiet():
            program = torch.export.export(module, example, dynamic_shapes=shapes)
    except Exception as err:  # noqa: BLE001 - torch.export raises many types; the disk is the caller's report
        raise _program_failure(err, path) from None
    try:
        buffer = io.BytesIO()
        torch.export.save(program, buffer, extra_files={EXTRA_FILE: json.dumps(metadata, indent=1)})
    except Exception as err:  # noqa: BLE001 - torch.export raises many types
        raise _program_failure(err, path) from None
    _write_bytes(path, buffer.getbuffer(), into)


def _program_failure(err: Exception, path: Path) -> Exception:
    """A full disk as an OSError naming the file (as `_onnx_failure`); else a ConfigError with the first line."""
    full = _disk_full(err, path)
    if full is not None:
        return full
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    log.debug("torch.export failed", exc_info=err)
    first = (lines[0] if lines else "")[:300]
    return ConfigError(f"torch.export of the generator failed: {type(err).__name__}: {first}; export with --format "
                       f"onnx, or --format torchscript for runtimes that read only it")


def _disk_full(err: BaseException, path: Path) -> OSError | None:
    """The OSError(ENOSPC) behind ``err`` (an exporter may wrap it, or only say so in its message), naming ``path``."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return OSError(cause.errno, cause.strerror or os.strerror(cause.errno), cause.filename or str(path))
        if "No space left on device" in str(cause) or "Disk quota exceeded" in str(cause):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        cause = cause.__cause__ or cause.__context__
    return None


def _program_runner(path: Path) -> Any:
    module, _ = load_program(path, torch.device("cpu"))

    def run(*args: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return cast(torch.Tensor, module(*args)).float()

    return run


def _onnx_runner(path: Path) -> Any:
    session = onnx_session(path, ["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(*args: torch.Tensor) -> torch.Tensor:
        feed = {name: a.detach().cpu().float().contiguous().numpy() for name, a in zip(names, args)}
        return torch.from_numpy(np.asarray(session.run(None, feed)[0]))

    return run


def _torchscript_runner(path: Path) -> Any:
    module, _ = load_torchscript(path, torch.device("cpu"))

    def run(*args: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(*args).float()

    return run
