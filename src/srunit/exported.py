"""Exported generator files (written by `srunit export`, see `srunit.export` for their conventions) as
modules that translate: ONNX files through onnxruntime, torch.export programs (.pt2) and TorchScript files
(read for the files earlier exports wrote) on a torch device.

``image`` float32 (N, 3, H, W) in [-1, 1], H and W multiples of the file's ``size_multiple`` (4 for the built-in
generators) and at least its ``min_size`` (8 for them), [``attribute`` (N, nz) for DRIT]
-> ``translation`` float32 (N, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srunit._reading import MAX_RECORD_BYTES, check_regular_file, parse_json
from srunit.checks import PRECISIONS
from srunit.errors import CheckpointError, ConfigError
from srunit.runtime.device import resolve_device
from srunit.runtime.run_folder import PROGRAM_SUFFIX, TORCHSCRIPT_SUFFIXES, is_exported_file
from srunit.runtime.translation import attribute_batch

__all__ = ["EXTRA_FILE", "PROGRAM_SUFFIX", "SIZE_MULTIPLE", "TORCHSCRIPT_SUFFIXES", "ExportedGenerator",
           "OnnxGenerator", "ProgramGenerator", "TorchScriptGenerator", "is_exported_file", "load_exported",
           "load_program", "load_torchscript", "onnx_session", "quiet", "require"]

SIZE_MULTIPLE = 4
EXTRA_FILE = "srunit.json"  # the extra file of a .pt2 or TorchScript archive holding the export's metadata
_EXTRA_HINT = "pip install 'srunit[onnx]' (onnx and onnxruntime)"


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporters' and TorchScript's deprecation and tracer warnings (the export's check is the test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# Bounds of the sizes an exported file's metadata gives, checked before anything is padded or drawn to them.
MAX_SIZE_MULTIPLE = 256
MAX_NZ = 4096


def _bounded(path: Path, key: str, value: object, top: int) -> int:
    """``value`` (from the file's metadata) as an int from 1 to ``top``, else a CheckpointError naming the file."""
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if not 1 <= number <= top:
        raise CheckpointError(f"{path}: its metadata {key!r} {value!r:.40} is not an integer from 1 to {top}; the file "
                              f"is damaged: export it again with srunit export")
    return number


class ExportedGenerator(nn.Module):
    """An exported generator file as a module: ``forward(image, attribute=None)`` like the generators.

    ``multimodal`` files (DRIT) take an attribute code (nz,) for every image or (N, nz); without one
    they use the code of seed 0, as `DRITTranslator` does. ``metadata`` is what the export wrote.
    """

    def __init__(self, path: Path, metadata: dict[str, str], nz: int | None) -> None:
        super().__init__()
        self.path = path
        self.metadata = metadata
        self.nz = nz if nz is None else _bounded(path, "nz", nz, MAX_NZ)
        # What the exported generator's sides must be multiples of (files of srunit <= 0.1 record none: 4).
        self.size_multiple = _bounded(path, "size_multiple", metadata.get("size_multiple") or SIZE_MULTIPLE,
                                      MAX_SIZE_MULTIPLE)
        # The least side it translates (`srunit.export.least_side`), what `Translator` pads smaller images up to; files
        # of srunit <= 0.1 record none: twice the multiple, the Translator's default.
        self.min_size = _bounded(path, "min_size", metadata.get("min_size") or 2 * self.size_multiple,
                                 MAX_SIZE_MULTIPLE * 16)

    @property
    def multimodal(self) -> bool:
        return self.nz is not None

    @property
    def precision(self) -> str:
        """The precision the file computes in, as its export recorded it (fp32 for a file without that record)."""
        value = self.metadata.get("precision", "fp32")
        return value if value in PRECISIONS else "fp32"

    def encode_attribute(self, reference: torch.Tensor) -> torch.Tensor:
        raise ConfigError(f"--reference: {self.path} holds the generator only, not DRIT's attribute encoder that "
                          f"turns a reference image into a code; use --attribute-seed, or translate with the run "
                          f"folder to use reference images")

    def _inputs(self, image: torch.Tensor, attribute: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        m = self.size_multiple
        if image.dim() != 4 or image.shape[1] != 3 or image.shape[2] % m or image.shape[3] % m:
            raise ValueError(f"{self.path} takes images of shape (N, 3, H, W) with H and W multiples of "
                             f"{m}, got {tuple(image.shape)}")
        if not self.multimodal:
            if attribute is not None:
                raise ValueError(f"{self.path} is not multimodal: it takes no attribute code")
            return (image.float(),)
        assert self.nz is not None
        return image.float(), attribute_batch(attribute, image, self.nz)


class OnnxGenerator(ExportedGenerator):
    """An ONNX generator run by onnxruntime (tensors go in and come out on the CPU)."""

    def __init__(self, path: Path, session: Any) -> None:
        inputs = session.get_inputs()
        props = dict(session.get_modelmeta().custom_metadata_map)
        nz = None
        if len(inputs) == 2:
            dim = inputs[1].shape[-1]
            nz = _bounded(path, "nz", props.get("nz", dim if isinstance(dim, int) else 0), MAX_NZ) \
                if props.get("nz") or isinstance(dim, int) else None
            if nz is None:
                raise CheckpointError(f"{path}: its second input {inputs[1].name!r} has no fixed size and the file "
                                      f"has no srunit metadata 'nz'; export it with srunit export")
        elif len(inputs) != 1:
            raise CheckpointError(f"{path} takes {len(inputs)} inputs; an exported generator takes an image (and, "
                                  f"for DRIT, an attribute code); export it with srunit export")
        super().__init__(path, props, nz)
        self.session = session
        self.names = [i.name for i in inputs]

    def forward(self, image: torch.Tensor, attribute: torch.Tensor | None = None) -> torch.Tensor:
        args = self._inputs(image, attribute)
        feed = {name: a.detach().cpu().contiguous().numpy() for name, a in zip(self.names, args)}
        return torch.from_numpy(np.asarray(self.session.run(None, feed)[0])).to(image.device)


class TorchScriptGenerator(ExportedGenerator):
    """A TorchScript generator (written by srunit export) on a torch device."""

    def __init__(self, path: Path, module: torch.jit.ScriptModule, metadata: dict[str, str]) -> None:
        nz = _bounded(path, "nz", metadata["nz"], MAX_NZ) if metadata.get("nz") else None
        if not metadata:  # a file from elsewhere: the arguments of forward say whether it takes a code
            args = [a for a in module.forward.schema.arguments if a.name != "self"]  # type: ignore[attr-defined]
            if len(args) == 2:
                raise CheckpointError(f"{path} takes an attribute code but has no srunit metadata (srunit.json) "
                                      f"giving its size; export it with srunit export")
        super().__init__(path, metadata, nz)
        self.module = module

    def forward(self, image: torch.Tensor, attribute: torch.Tensor | None = None) -> torch.Tensor:
        return self.module(*self._inputs(image, attribute)).float()


class ProgramGenerator(ExportedGenerator):
    """A torch.export program (``.pt2``, written by srunit export) on a torch device."""

    def __init__(self, path: Path, module: nn.Module, metadata: dict[str, str]) -> None:
        if not metadata:
            raise CheckpointError(f"{path} has no srunit metadata ({EXTRA_FILE}); it was not written by srunit export, "
                                  f"which records the conventions of its inputs: export it with srunit export")
        nz = _bounded(path, "nz", metadata["nz"], MAX_NZ) if metadata.get("nz") else None
        super().__init__(path, metadata, nz)
        self.module = module

    def forward(self, image: torch.Tensor, attribute: torch.Tensor | None = None) -> torch.Tensor:
        return self.module(*self._inputs(image, attribute)).float()


def require(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        raise ConfigError(f"exported ONNX files need the {name} package, which is not installed; "
                          f"{_EXTRA_HINT}") from None


def onnx_session(path: Path, providers: list[str]) -> Any:
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types for invalid models
        raise CheckpointError(f"{path} could not be loaded by onnxruntime ({str(err)[:300]}); it is damaged or not "
                              f"an ONNX model; export it again with srunit export") from None


def _onnx_providers(device: str) -> list[str]:
    ort = require("onnxruntime")
    available = ort.get_available_providers()
    kind = str(device).split(":")[0]
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    if kind in ("cuda", "auto"):
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if kind == "auto":
            return ["CPUExecutionProvider"]
        raise ConfigError(f"--device {device}: this onnxruntime has no CUDA provider (it has {', '.join(available)}); "
                          f"pip install onnxruntime-gpu, or pass --device cpu")
    raise ConfigError(f"--device {device}: exported ONNX files run on cpu or cuda (onnxruntime); pass --device cpu")


def load_torchscript(path: Path, device: torch.device) -> tuple[torch.jit.ScriptModule, dict[str, str]]:
    extra = {EXTRA_FILE: ""}
    try:
        with quiet():
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as err:  # noqa: BLE001 - TorchScript raises RuntimeError and others for damaged archives
        raise CheckpointError(f"{path} could not be loaded as TorchScript ({str(err)[:300]}); it is damaged or not "
                              f"a TorchScript file; export it again with srunit export") from None
    return module.eval(), _metadata_of(path, extra[EXTRA_FILE])


def _metadata_of(path: Path, text: str) -> dict[str, str]:
    if len(text) > MAX_RECORD_BYTES:
        raise CheckpointError(f"{path}: its {EXTRA_FILE} holds {len(text):,} characters, more than srunit's "
                              f"metadata ever does ({MAX_RECORD_BYTES:,}); export it again")
    metadata = parse_json(text, f"{path}: its {EXTRA_FILE}", error=CheckpointError,
                          fix="export it again") if text else {}
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: its {EXTRA_FILE} must hold a JSON object, got {type(metadata).__name__}; "
                              f"export it again")
    return {str(k): str(v) for k, v in metadata.items()}


def load_program(path: Path, device: torch.device) -> tuple[nn.Module, dict[str, str]]:
    """A torch.export program file (``.pt2``) as a module on ``device``, and the metadata srunit export wrote."""
    extra = {EXTRA_FILE: ""}
    # torch.export.load logs the traceback of a damaged archive (a warning of 20 lines) before raising in its
    # fallback: the error below says it in one line.
    logger = logging.getLogger("torch.export")
    muted, logger.disabled = logger.disabled, True
    try:
        with quiet(), open(path, "rb") as file:  # a file object: any name (an export's temporary one) loads
            program = torch.export.load(file, extra_files=extra)
        module = program.module()
    except Exception as err:  # noqa: BLE001 - torch.export raises many types for damaged or foreign archives
        raise CheckpointError(f"{path} could not be loaded as a torch.export program ({str(err)[:300]}); it is "
                              f"damaged, not a .pt2 program, or from a newer torch than this one "
                              f"({torch.__version__}); export it again with srunit export") from None
    finally:
        logger.disabled = muted
    return module.to(device), _metadata_of(path, extra[EXTRA_FILE])


def load_exported(path: str | Path, device: str = "cpu") -> tuple[ExportedGenerator, torch.device]:
    """An exported file as a generator module, and the torch device its inputs should be on.

    ONNX files run through onnxruntime (``device`` cpu, cuda or auto: the CUDA provider where the
    installed onnxruntime has it); their tensors live on the CPU. torch.export programs (.pt2) and TorchScript
    files run on ``device``.
    """
    path = check_regular_file(path, "exported file", error=CheckpointError)
    if path.suffix.lower() == ".onnx":
        session = onnx_session(path, _onnx_providers(device))
        return OnnxGenerator(path, session), torch.device("cpu")
    dev = resolve_device(device, "--device")
    if path.suffix.lower() == PROGRAM_SUFFIX:
        program, metadata = load_program(path, dev)
        return ProgramGenerator(path, program, metadata), dev
    module, metadata = load_torchscript(path, dev)
    return TorchScriptGenerator(path, module, metadata), dev
