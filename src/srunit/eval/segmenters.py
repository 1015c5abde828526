"""Loading the fixed segmenter used for the segmentation scores (paper Sec. 5.1.1, App. B).

A segmenter is a callable ``(H, W, 3) uint8 RGB array -> (H, W) int64 array of class ids``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from srunit._reading import check_regular_file
from srunit.checks import MAX_CLASSES, check_int
from srunit.errors import ConfigError, SrunitError, first_line

__all__ = ["SEGMENTER_FORMS", "Segmenter", "load_segmenter"]

log = logging.getLogger(__name__)

Segmenter = Callable[[np.ndarray], np.ndarray]

TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".torchscript")

SEGMENTER_FORMS = (
    "accepted --segmenter forms: synthscapes (the package's own SynthScapes scorer, `srunit eval seg`); "
    "PATH.pt / PATH.ts / PATH.torchscript (a TorchScript module) or "
    "PATH.onnx (an ONNX model), both taking a float32 tensor (1, 3, H, W) of RGB values in [0, 1] "
    "and returning logits (1, C, H, W) that are argmax-ed over C; or MODULE:FUNCTION where MODULE "
    "is an importable module or a path to a .py file and FUNCTION maps an (H, W, 3) uint8 RGB "
    "array to an (H, W) integer array of class ids"
)


def _run(spec: str, image: np.ndarray, call: Callable[[], object]) -> object:
    """``call()``, the user's segmenter applied to ``image``: what it raises (a TypeError of a wrong signature, a
    RuntimeError of the model, even SystemExit) is one ConfigError naming the segmenter, not a traceback or a
    silent exit; ``srunit -v`` logs the traceback for whoever debugs the segmenter."""
    try:
        return call()
    except SrunitError:
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's code may raise anything
        log.debug("segmenter %s failed", spec, exc_info=True)
        first = first_line(e, 300)
        raise ConfigError(f"segmenter {spec} failed on a {image.shape[0]}x{image.shape[1]} image: "
                          f"{type(e).__name__}{': ' + first if first else ''}; fix the segmenter (srunit -v logs the "
                          f"traceback); {SEGMENTER_FORMS}") from None


def _to_input(image: np.ndarray) -> np.ndarray:
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8, image.shape
    # (H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1]; any normalisation is the model's job.
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)


def _logits_to_ids(logits: np.ndarray, spec: str, hw: tuple[int, int], num_classes: int | None) -> np.ndarray:
    if logits.ndim != 4 or logits.shape[0] != 1 or tuple(logits.shape[2:]) != hw:
        raise ConfigError(f"segmenter {spec} returned shape {tuple(logits.shape)} for a {hw[0]}x{hw[1]} "
                          f"image; expected logits (1, C, {hw[0]}, {hw[1]}) (upsample inside the model); "
                          f"{SEGMENTER_FORMS}")
    if num_classes is not None and logits.shape[1] != num_classes:
        # The argmax of C != --classes channels is a class id of another numbering: scores of garbage, no error.
        raise ConfigError(f"segmenter {spec} outputs {logits.shape[1]} channels (classes) but --classes is "
                          f"{num_classes}; pass --classes {logits.shape[1]} if the model's classes are the label "
                          f"maps' ids, or use the segmenter trained on these {num_classes} classes")
    finite = np.isfinite(logits)
    if not finite.all():
        # argmax over NaN logits is channel 0 (or the NaN's own channel): every pixel scored as one class, no error.
        raise ConfigError(f"segmenter {spec} returned {int(finite.size - finite.sum())} NaN or inf logits of "
                          f"{finite.size} for a {hw[0]}x{hw[1]} image; its class ids are undefined there, so "
                          f"nothing is scored: fix the model (check its weights and its normalisation of the input)")
    return logits[0].argmax(axis=0).astype(np.int64)


def _torchscript(spec: str, path: Path, num_classes: int | None) -> Segmenter:
    try:
        with warnings.catch_warnings():  # torch deprecates TorchScript; the user's file is read all the same
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # torch raises RuntimeError/ValueError variants for non-TorchScript files
        raise ConfigError(f"cannot load TorchScript segmenter {spec}: {type(e).__name__}: {e}; "
                          f"save it with torch.jit.script(model).save(...) or torch.jit.trace; "
                          f"{SEGMENTER_FORMS}") from e
    module.eval()

    def segment(image: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = _run(spec, image, lambda: module(torch.from_numpy(_to_input(image))))
        if not isinstance(out, torch.Tensor):
            raise ConfigError(f"segmenter {spec} returned {type(out).__name__}, expected one logits tensor "
                              f"(1, C, H, W); {SEGMENTER_FORMS}")
        return _logits_to_ids(out.float().numpy(), spec, image.shape[:2], num_classes)

    return segment


def _onnx(spec: str, path: Path, num_classes: int | None) -> Segmenter:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ConfigError(f"segmenter {spec} is an ONNX model but onnxruntime is not installed; "
                          f"pip install onnxruntime, or export the model to TorchScript") from e
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for invalid models
        raise ConfigError(f"cannot load ONNX segmenter {spec}: {e}; {SEGMENTER_FORMS}") from e
    input_name = session.get_inputs()[0].name

    def segment(image: np.ndarray) -> np.ndarray:
        out = _run(spec, image, lambda: session.run(None, {input_name: _to_input(image)})[0])
        return _logits_to_ids(np.asarray(out), spec, image.shape[:2], num_classes)

    return segment


def _import_function(spec: str) -> Callable[[np.ndarray], np.ndarray]:
    # rsplit so that a Windows drive letter ("C:\\x\\seg.py:fn") stays in the module part.
    module_part, _, func_name = spec.rpartition(":")
    if not module_part or not func_name:
        raise ConfigError(f"segmenter {spec!r} is not of the form MODULE:FUNCTION; {SEGMENTER_FORMS}")
    try:
        if module_part.endswith(".py"):
            path = Path(module_part).expanduser()
            check_regular_file(path, f"segmenter {spec}: Python file", error=ConfigError, fix=SEGMENTER_FORMS)
            name = f"srunit_user_segmenter_{abs(hash(str(path.resolve())))}"
            loader_spec = importlib.util.spec_from_file_location(name, path)
            assert loader_spec is not None and loader_spec.loader is not None
            module = importlib.util.module_from_spec(loader_spec)
            # Registered before exec so dataclasses/pickling inside the file can find the module.
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_part)
    except ConfigError:
        raise
    except (Exception, SystemExit) as e:  # any error raised while importing user code; sys.exit() ended the command
        raise ConfigError(f"segmenter {spec}: importing {module_part} failed: {type(e).__name__}: {e}; "
                          f"{SEGMENTER_FORMS}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(f"segmenter {spec}: {module_part} has no function {func_name!r}; {SEGMENTER_FORMS}")
    return func


def _python(spec: str) -> Segmenter:
    func = _import_function(spec)

    def segment(image: np.ndarray) -> np.ndarray:
        out = _run(spec, image, lambda: func(image))
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
        out = np.asarray(out)
        if out.shape != image.shape[:2] or not np.issubdtype(out.dtype, np.integer):
            raise ConfigError(f"segmenter {spec} returned {out.dtype} array of shape {out.shape} for a "
                              f"{image.shape[0]}x{image.shape[1]} image; expected an integer (H, W) array "
                              f"of class ids; {SEGMENTER_FORMS}")
        return out.astype(np.int64, copy=False)

    return segment


def load_segmenter(spec: str, num_classes: int | None = None) -> Segmenter:
    """Load a segmenter from a spec string.

    Forms (tensor convention for model files: input float32 (1, 3, H, W), RGB in [0, 1], no
    mean/std normalisation applied here; output logits (1, C, H, W) at the input resolution,
    argmax over C gives the class ids):

    - ``PATH.pt`` / ``PATH.ts`` / ``PATH.torchscript``: TorchScript, run on CPU.
    - ``PATH.onnx``: ONNX model run with onnxruntime on the CPU provider (first input, first output).
    - ``MODULE:FUNCTION``: ``MODULE`` importable or a path to a ``.py`` file; ``FUNCTION`` maps an
      (H, W, 3) uint8 RGB array to an (H, W) integer array of class ids.

    ``num_classes`` (``--classes``): where given, a model file must output that many channels, checked on
    the first image (an argmax over another number of channels gives ids of another numbering).

    Returns:
        A callable (H, W, 3) uint8 -> (H, W) int64.

    Raises:
        ConfigError: unknown form, missing file, load/import failure (the message names the spec
            and lists the accepted forms); also raised by the callable for outputs of the wrong shape
            or number of channels.
    """
    if not isinstance(spec, str):  # a Path, a list: AttributeError ('... has no attribute lower')
        raise TypeError(f"load_segmenter: spec must be a str (synthscapes, PATH.pt, PATH.onnx or MODULE:FUNCTION), "
                        f"got {type(spec).__name__} {spec!r:.80}; a path: str(path)")
    if num_classes is not None:  # 1.5 or "8" was taken, and a module's segmenter never checked it
        check_int(num_classes, "load_segmenter: num_classes", 1, maximum=MAX_CLASSES)
    lower = spec.lower()
    if lower.endswith(TORCHSCRIPT_SUFFIXES) or lower.endswith(".onnx"):
        path = Path(spec).expanduser()
        check_regular_file(path, "segmenter file", error=ConfigError,
                           fix=f"pass an existing model file; {SEGMENTER_FORMS}")
        return _onnx(spec, path, num_classes) if lower.endswith(".onnx") else _torchscript(spec, path, num_classes)
    if ":" in spec:
        return _python(spec)
    if spec == "synthscapes":  # SEGMENTER_FORMS lists it: say where it is taken rather than "of no known form"
        raise ConfigError("--segmenter synthscapes (the package's SynthScapes scorer) is taken by `srunit eval seg`; "
                          "`srunit tune data` needs a model file (PATH.pt, PATH.ts, PATH.onnx) or MODULE:FUNCTION, "
                          "and `srunit tune synthscapes` tunes on SynthScapes with that scorer")
    raise ConfigError(f"segmenter {spec!r} is of no known form; {SEGMENTER_FORMS}")
