"""The validators every option and argument goes through, and the limits and choices they check against.

Shared by the training config (`srunit.options`) and by what runs after training (inference, export,
the app and their commands), which need the checks but not the config sections. A leaf module: it
imports nothing from the package but the errors. Each checker raises `ConfigError` naming the option,
the value, what is allowed and the fix.
"""

from __future__ import annotations

import codecs
import logging
import os
import sys
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from srunit.errors import HIDDEN_CHARACTERS, ConfigError

__all__ = ["DEFAULT_MAX_PIXELS", "DEVICE_TYPES", "MAX_BATCH", "MAX_CLASSES", "MAX_JOBS", "MAX_NAME_BYTES",
           "MAX_LABEL_ID", "MAX_PIXELS_LIMIT", "MAX_STEPS", "PRECISIONS", "Precision", "check_choice",
           "check_crop_fits", "check_crop_size", "check_ignore_index", "check_not_one",
           "check_device_name", "check_flag", "check_int", "check_path", "check_range", "check_utf8_path",
           "check_value", "check_folders_to_make", "hidden_characters", "is_folder_name", "locale_misread", "NAME_RULE",
           "try_writing_in"]

# 4096 x 4096: decoding is cheap, but translating (or resizing) an image costs memory in proportion
# to its pixels; a 12000 x 12000 PNG, under PIL's own bomb limit, took 22 GB to translate.
DEFAULT_MAX_PIXELS = 4096 * 4096

# The compute precisions of training (train.precision) and translation (--precision).
Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


def check_value(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ConfigError "KEY: invalid value VALUE; allowed: ALLOWED" unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}: invalid value {value!r}; allowed: {allowed}")


def check_not_one(value: object, where: str, allowed: str) -> None:
    """Raise TypeError when one str, bytes or path is given where a list of them belongs.

    Python iterates a str as its characters, so without this check ``"train.lr=0.1"`` would read as the
    overrides "t", "r", ... and ``"runs/a"`` as the paths "r", "u", ... ``where`` names the function and its
    argument (``"build_report: paths"``), ``allowed`` what the list holds.
    """
    if isinstance(value, (str, bytes, os.PathLike)):
        shown = os.fsdecode(value) if isinstance(value, os.PathLike) else value
        raise TypeError(f"{where} must be a list of {allowed}, got {type(value).__name__} {shown!r:.80}; "
                        f"wrap it in a list: [{shown!r:.80}]")


def check_flag(value: object, where: str) -> bool:
    """``value`` if it is True or False (numpy's bool too), else a TypeError naming ``where`` (``"build_report:
    overwrite"``): Python's ``if`` takes any non-empty text as true, so ``overwrite="no"`` replaced the outputs."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where} must be True or False, got {type(value).__name__} {value!r:.80}")
    return bool(value)


def check_path(value: object, where: str) -> Path:
    """``value`` as a Path if it is a str or an ``os.PathLike`` of text, else a TypeError naming ``where``
    (``"export_generator: output"``). Python's own error (``expected str, bytes or os.PathLike object, not int``)
    names neither the function nor the argument. An empty path is a ConfigError."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a path (a str or a pathlib.Path), got {type(value).__name__} "
                        f"{value!r:.80}")
    if not value:  # Path("") is the current folder: translate_folder(src, "") wrote its images there
        raise ConfigError(f"{where} is an empty path; give the path ('.' for the current folder)")
    return Path(value)


# The device types srunit computes on (train.device, --device): CPU and the accelerators whose torch back ends run
# its networks. Whether this torch build and machine have one is `srunit.runtime.device`'s question.
DEVICE_TYPES: tuple[str, ...] = ("cpu", "cuda", "mps", "xpu")
DEVICE_NAMES = "auto, cpu, cuda, cuda:N, mps, xpu, xpu:N"


def check_device_name(name: object, key: str) -> str:
    """``name`` if it spells a device srunit knows (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``xpu``,
    ``xpu:N``), else ConfigError. Says nothing about whether this machine has it."""
    if name == "auto":
        return name
    kind, colon, index = str(name).partition(":") if isinstance(name, str) else ("", "", "")
    indexed = kind in ("cuda", "xpu") and index.isascii() and index.isdigit()  # cuda:N, xpu:N
    if kind not in DEVICE_TYPES or (colon and not indexed):
        raise ConfigError(f"{key}: invalid value {name!r:.60}; allowed: {DEVICE_NAMES}")
    return str(name)


# Upper bounds of counts a command line can ask for (batch sizes, pixel budgets, steps, processes): far above any
# use, low enough that a typo (a few extra zeros) is refused before it allocates or starts anything.
MAX_BATCH = 65536  # images per batch (train.batch_size, --batch-size)
MAX_PIXELS_LIMIT = 2**32  # pixels of one image (data.max_pixels, --max-pixels): 65536 x 65536
MAX_STEPS = 10**12  # steps, batches and counts of work: more than any run, and within an int64
MAX_JOBS = 1024  # processes started at once (--jobs)


# The largest id a label map can hold: label maps are 8- or 16-bit single-channel images (mode L, P or I;16).
MAX_LABEL_ID = 65535


def check_ignore_index(value: object, key: str = "--ignore-index") -> int:
    """``value`` as an int if it is a label value a label map can hold (0 to 65535), else ConfigError: -1 or 10^11
    were accepted and skipped no pixel, so every unlabelled pixel counted as a class (or was an error) without a
    word. A value below the class count is allowed: that class is then never scored (void = 0 datasets)."""
    return check_int(value, key, 0, maximum=MAX_LABEL_ID,
                     fix=f"label maps hold 8- or 16-bit ids, so no pixel can hold it and {key} would skip nothing; "
                         f"pass the value your label maps give unlabelled pixels (default 255, as Cityscapes)")


# Class counts of label maps and segmenters: far above any data set's (Cityscapes 19, ADE20K 150, LVIS 1203),
# small enough that a confusion matrix (C x C int64) stays within 128 MiB.
MAX_CLASSES = 4096


def check_int(value: object, key: str, minimum: int, *, fix: str | None = None, maximum: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) from ``minimum`` to ``maximum`` (no upper bound by
    default), else ConfigError.

    ``key`` names the option as the user wrote it (``train.batch_size``, ``--num-pool``); ``fix``
    overrides the default advice "pass KEY MINIMUM or more" ("... MINIMUM to MAXIMUM").
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum \
            or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum:,}"
        # An API label (`translate_folder: max_pixels`) names the argument in the advice: "pass max_pixels ...", not
        # "pass translate_folder: max_pixels within that range".
        argument = key.rsplit(": ", 1)[-1]
        advice = fix or (f"pass {argument} {minimum} or more" if maximum is None else
                         f"pass {argument} within that range")
        raise ConfigError(f"{key} must be an integer {allowed}, got {value!r:.60}; {advice}")
    return int(value)


def check_range(value: float, key: str, low: float, high: float) -> float:
    """``value`` as a float if it is a number in [low, high], else ConfigError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not low <= value <= high:
        raise ConfigError(f"{key} must be between {low:g} and {high:g}, got {value!r}; pass a value in that range")
    return float(value)


def check_choice(value: object, key: str, choices: Collection[str]) -> None:
    """ConfigError unless ``value`` is one of ``choices``."""
    try:
        known = value in choices
    except TypeError:  # a list or a dict given where a name belongs: unhashable, so no choice
        known = False
    if not known:
        raise ConfigError(f"{key}: invalid value {value!r:.80}; allowed: {', '.join(map(str, choices))}")


# The longest run or output name: 255 bytes (NAME_MAX of common file systems) less the affix of srunit's
# temporary names (a leading '.', a '.partial-XXXXXXXX' or '.tmp' suffix).
MAX_NAME_BYTES = 230


def locale_misread(raw: bytes) -> str | None:
    """Why a name with the bytes ``raw`` reached Python undecoded when the bytes are UTF-8 after all, with the fix:
    this Python decodes names as ASCII (a C or POSIX locale with Python's UTF-8 mode turned off). None when the
    bytes are not UTF-8, where renaming (convmv) is the fix; renaming a UTF-8 name would garble it."""
    encoding = sys.getfilesystemencoding()
    if codecs.lookup(encoding).name == "utf-8":
        return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return (f"its bytes are UTF-8, but this Python decodes names as {encoding} (a C or POSIX locale with Python's "
            f"UTF-8 mode off: PYTHONUTF8=0 or -X utf8=0); run srunit with PYTHONUTF8=1 (or LANG=C.UTF-8) and "
            f"rename nothing")


def check_utf8_path(value: str | None, key: str) -> None:
    """ConfigError unless ``value`` (a path or name option) is text that UTF-8 can hold: bytes that are not UTF-8
    reach Python as lone surrogates, which the run's config, records and loggers cannot write."""
    if value is None:
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        if misread := locale_misread(os.fsencode(value)):
            raise ConfigError(f"{key} {os.fsencode(value)!r}: {misread}") from None
        raise ConfigError(f"{key} {os.fsencode(value)!r} is not valid UTF-8; srunit writes it into the run's config "
                          f"and records as text: choose a UTF-8 name (or rename the folder, e.g. with convmv)"
                          ) from None


# Characters a name may not hold: the path separators of every platform, the control characters (NUL, a newline:
# a log line or a listing would break) and the bidirectional controls, which show a name as other text than it is
# (U+202E turns "run<U+202E>gnp.exe" into "runexe.png" on screen).
_NOT_IN_NAMES = frozenset("/\\") | HIDDEN_CHARACTERS
NAME_RULE = ("a folder name: not empty, not '.' or '..', without '/', '\\', control characters (NUL, newline) or "
             "bidirectional controls (U+202E)")


def hidden_characters(text: str) -> list[str]:
    """The control and bidirectional control characters of ``text`` (as ``U+XXXX``): what shows it as other text."""
    return [f"U+{ord(c):04X}" for c in text if c in _NOT_IN_NAMES and c not in "/\\"]


def one_line(text: str) -> str:
    """``text`` with its control and bidirectional control characters written as escapes (``\\n``, ``\\u202e``):
    an error naming a file called ``evil<newline>srunit translate: ok.png`` was two lines, the second one forged."""
    if _NOT_IN_NAMES.isdisjoint(text.replace("/", "").replace("\\", "")):
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if c in _NOT_IN_NAMES and c not in "/\\" else c
                   for c in text)


class OneLineFormatter(logging.Formatter):
    """A log formatter whose messages are `one_line`: a warning naming a run folder called
    ``r<newline>srunit report: wrote ok`` was two lines, the second one forged (tracebacks are left as they are)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = one_line(record.message)
        return super().formatMessage(record)


def check_folders_to_make(path: str | os.PathLike[str], option: str) -> None:
    """ConfigError if a folder of ``path`` that does not exist yet, which srunit would make, has a name holding a
    control or bidirectional control character (as a run name may not); a folder that exists is the user's."""
    path = Path(path)
    made = [part.name for part in (path, *path.parents) if not part.exists()]
    odd = [(name, chars) for name in made if (chars := hidden_characters(name))]
    if odd:
        name, chars = odd[-1]
        raise ConfigError(f"{option} {str(path)!r} would make a folder {name!r}, whose name holds {', '.join(chars)} "
                          f"(a control or bidirectional control character: a listing or log line would show other "
                          f"text); give a folder without them, or make it yourself first (nothing was written)")


def try_writing_in(folder: str | os.PathLike[str]) -> None:
    """Make ``folder`` (the folders of it that are missing), list it and make a file in it, then remove exactly
    what this made: the first write of a command that writes there, tried before any work. A permission check
    (os.access) says yes as root where that write fails: /proc/x and /sys/x, a folder inside an immutable
    (chattr +i) one.

    Raises:
        OSError: the first step that failed, as the system reported it.
    """
    path = Path(folder)
    made: list[Path] = []  # the folders made here, removed again: the command makes them when it writes
    try:
        for part in reversed([p for p in (path, *path.parents) if not os.path.lexists(p)]):
            part.mkdir()
            made.append(part)
        os.listdir(path)
        with tempfile.TemporaryFile(dir=path):  # a file made there (unnamed where the system allows) and gone
            pass
    finally:
        for part in reversed(made):
            try:
                part.rmdir()
            except OSError:
                pass


def is_folder_name(name: str) -> bool:
    """Whether ``name`` names one folder inside its parent: not empty or blank, not '.' or '..', without a path
    separator of any platform (so PARENT/NAME can neither leave PARENT nor be PARENT) and without characters that
    hide what it is on screen (control and bidirectional control characters)."""
    return bool(name.strip()) and name not in (".", "..") and _NOT_IN_NAMES.isdisjoint(name)


def own_least_side(method: object) -> tuple[int, str] | None:
    """(the shortest image side, what takes it) where a method's own discriminators set it (its options'
    ``smallest_side()``: DRIT's); None where the patch discriminator of model.n_layers_d does."""
    own = getattr(method, "smallest_side", None)
    if not callable(own):
        return None
    side, why = own()
    return int(side), str(why)


def check_crop_size(side: int, n_layers_d: int, key: str = "data.crop_size",
                    least: tuple[int, str] | None = None) -> None:
    """ConfigError naming ``key`` unless square images of ``side`` pixels fit the networks: G down-samples twice, so
    its input side must be a multiple of 4; the PatchGAN halves it n_layers_d times and then needs at least 3 x 3
    positions for its normalised 4 x 4 conv. ``least``: (the shortest side, what takes it) where a method's own
    discriminators set it instead (DRIT's `smallest_side`, which reads no model.n_layers_d): its advice named
    model.n_layers_d and a crop of 24, both refused under DRIT."""
    if least is not None:
        smallest, why = least
        if side % 4 or side < smallest:
            fit = max(smallest + (-smallest) % 4, side + (-side) % 4)
            raise ConfigError(f"{key} {side} does not fit the networks: it must be a multiple of 4 (the generator "
                              f"down-samples twice) and at least the {smallest} pixels {why}; use e.g. {key} {fit}")
        return
    smallest = 3 * 2**n_layers_d
    if side % 4 or side < smallest:
        fit = max(smallest, side + (-side) % 4)
        fix = f"use e.g. {key} {fit}"
        if fit > side + (-side) % 4:  # the crop is too small for D: a shallower D fits it too
            crop = max(12, side - side % 4)
            depth = max(1, (crop // 3).bit_length() - 1)  # the largest n with 3 x 2^n <= crop
            fix += f", or model.n_layers_d {depth} with {key} {crop}"
        raise ConfigError(
            f"{key} {side} does not fit the networks: it must be a multiple of 4 (the generator down-samples "
            f"twice) and at least {smallest} (3 x 2^model.n_layers_d, the discriminator's depth {n_layers_d}); {fix}"
        )


def check_crop_fits(preprocess: str, load_size: int, crop_size: int) -> None:
    """In the modes that crop a resized image, the crop must fit into the resized image."""
    if preprocess in ("resize_and_crop", "scale_width_and_crop") and crop_size > load_size:
        raise ConfigError(
            f"data.crop_size {crop_size} is larger than data.load_size {load_size} with preprocess "
            f"{preprocess!r}; the crop is taken from the resized image, so set data.load_size >= data.crop_size"
        )
