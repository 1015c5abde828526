"""Property tests: whatever a user feeds srunit, the answer is a clear error or a correct result, never a
traceback, and nothing is written outside the output.

Hypothesis generates image files (sizes 1..48, every mode and format Pillow writes and reads here,
truncated or not), tensors of any size, config values for every option and whole YAML config files,
and feeds them through the command line (`srunit translate`, `srunit train --dry-run`) and the Python
API (`Translator`, `load_config`). An exception other than srunit's own errors fails the test with the
example that raised it. The examples are derandomized, so CI sees the same ones on every run.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from srunit.cli.main import main
from srunit.config import Config, load_config, option_rows
from srunit.errors import SrunitError
from srunit.inference import Translator
from srunit.options import DataConfig, ModelConfig, TrainConfig
from srunit.registry import METHODS

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif", "WEBP": ".webp",
              "PPM": ".ppm", "TGA": ".tga"}
MODES = ("1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LA", "PA", "I", "I;16", "F", "HSV", "LAB", "RGBX")


def _make(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    """A random image of ``mode`` (random RGB pixels, converted; via L where Pillow converts only from L)."""
    rgb = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    try:
        return rgb.convert(mode)
    except ValueError:
        return rgb.convert("L").convert(mode)


def _writable_pairs() -> list[tuple[str, str]]:
    """(mode, format) pairs that this Pillow writes and reads back."""
    pairs = []
    for fmt in EXTENSIONS:
        for mode in MODES:
            try:
                buffer = io.BytesIO()
                with warnings.catch_warnings():  # Pillow deprecates writing some modes (I as PNG) it still reads
                    warnings.simplefilter("ignore", DeprecationWarning)
                    _make(mode, (3, 2), 0).save(buffer, format=fmt)
                buffer.seek(0)
                Image.open(buffer).load()
            except (OSError, ValueError, KeyError, TypeError):
                continue
            pairs.append((mode, fmt))
    return pairs


PAIRS = _writable_pairs()


@st.composite
def image_files(draw: st.DrawFn) -> tuple[str, bytes, tuple[int, int], bool]:
    """(file name, file bytes, (W, H), truncated)."""
    mode, fmt = draw(st.sampled_from(PAIRS))
    size = (draw(st.integers(1, 48)), draw(st.integers(1, 48)))
    buffer = io.BytesIO()
    _make(mode, size, draw(st.integers(0, 2**16))).save(buffer, format=fmt)
    data = buffer.getvalue()
    cut = draw(st.one_of(st.none(), st.floats(0.0, 0.98)))
    if cut is not None:
        data = data[: int(len(data) * cut)]
    return f"image{EXTENSIONS[fmt]}", data, size, cut is not None


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file under ``root``."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            stat = path.lstat()
            out[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return out


def _cli(*argv: str) -> tuple[int, str]:
    """(exit status, stderr) of ``srunit ARGV`` run in this process; any other exception propagates."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


@contextlib.contextmanager
def _workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def _assert_clear_error(code: int, stderr: str, command: str) -> None:
    assert code == 2, f"exit status {code}: {stderr}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith(f"srunit {command}: error: "), stderr
    assert "Traceback" not in stderr and "None" not in lines[-1].split("error: ", 1)[1].split(), stderr


# ----------------------------------------------------------------------------------------------- images


@SETTINGS
@given(image=image_files())
def test_any_image_file_translates_whole_or_is_a_clear_error(tiny_runs: dict[str, Path], image) -> None:
    name, data, (width, height), truncated = image
    run = tiny_runs["cut"]
    run_before = _tree(run)
    with _workspace() as root:
        inputs = root / "in"
        inputs.mkdir()
        (inputs / name).write_bytes(data)
        before = _tree(root)
        code, stderr = _cli("translate", "--checkpoint", str(run), "--input", str(inputs), "--output",
                            str(root / "out"))
        written = {k: v for k, v in _tree(root).items() if before.get(k) != v}
        assert all(k.startswith("out" + os.sep) for k in written), f"written outside the output: {sorted(written)}"
        if code == 0:
            with Image.open(root / "out" / Path(name).with_suffix(".png")) as out:
                assert out.size == (width, height) and out.mode == "RGB"
        else:
            _assert_clear_error(code, stderr, "translate")
            assert name in stderr or str(inputs) in stderr, f"the message names the file or its folder: {stderr}"
            assert not written, f"a failed translation wrote {sorted(written)}"
        # The Python API gives the same answer for the same file.
        translator = Translator.from_checkpoint(run)
        try:
            outputs = translator.translate_folder(inputs, root / "api")
        except SrunitError:
            assert code != 0, "the command translated what the API refused"
        else:
            assert code == 0, f"the API translated what the command refused: {stderr}"
            assert [p.name for p in outputs] == [Path(name).with_suffix(".png").name]
        assert not truncated or code != 0 or data, "an empty file cannot be an image"
    assert _tree(run) == run_before, "the run folder changed"


@SETTINGS
@given(batch=st.integers(1, 3), height=st.integers(1, 40), width=st.integers(1, 40))
def test_any_tensor_size_translates_to_the_same_size(tiny_runs: dict[str, Path], batch: int, height: int,
                                                     width: int) -> None:
    translator = Translator.from_checkpoint(tiny_runs["cut"])
    x = torch.rand(batch, 3, height, width) * 2 - 1
    try:
        y = translator.translate_tensor(x)
    except SrunitError as err:
        assert str(height) in str(err) or str(width) in str(err), f"the error names the size: {err}"
        return
    assert y.shape == x.shape and torch.isfinite(y).all() and y.abs().max() <= 1


# ----------------------------------------------------------------------------------------------- config


def _option_keys() -> list[str]:
    rows = []
    for prefix, cls in (("model.", ModelConfig), ("data.", DataConfig), ("train.", TrainConfig)):
        rows += option_rows(cls, prefix)
    rows += option_rows(METHODS.get("cut").Options, "method.")
    return sorted(row.key for row in rows)


VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(-3, 12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
    st.sampled_from(["true", "false", "null", "~", "[]", "{}", "[1, 2]", "{a: 1}", "1e400", "-0", "0x10", "'",
                     "..", "/", "", " ", "a: b", "*x", "!!python/object:os.system", "9" * 5000,
                     "[[[[[[[[[[1]]]]]]]]]]"]),
)


TINY_TRAIN = ["--model.ngf", "4", "--model.ndf", "4", "--model.n_blocks", "2", "--model.projector_dim", "8",
              "--method.num_patches", "16", "--data.load_size", "36", "--data.crop_size", "32",
              "--data.num_workers", "0", "--train.device", "cpu"]


@pytest.mark.parametrize("override", [None, "--train.lr=0.001", "--model.n_blocks=3", "--method.nce_temperature=0.1"])
def test_the_config_property_starts_from_a_valid_run(tiny_data: Path, override: str | None) -> None:
    """Guard the guard: without a bad value the dry run succeeds, so an error below comes from the value."""
    code, stderr = _cli("train", "--preset", "cut", "--data.root", str(tiny_data), *TINY_TRAIN,
                        *([override] if override else []), "--dry-run")
    assert code == 0, stderr


@settings(SETTINGS, max_examples=30)
@given(key=st.sampled_from(_option_keys()), value=VALUES)
def test_any_config_value_is_a_valid_run_or_a_clear_error(tiny_data: Path, key: str, value: str) -> None:
    data_before = _tree(tiny_data)
    with _workspace() as root:
        cwd = Path.cwd()
        os.chdir(root)
        try:
            before = _tree(root)
            code, stderr = _cli("train", "--preset", "cut", "--data.root", str(tiny_data), *TINY_TRAIN,
                                f"--{key}={value}", "--dry-run")
            assert _tree(root) == before, "a dry run wrote files"
        finally:
            os.chdir(cwd)
        if code != 0:
            _assert_clear_error(code, stderr, "train")
        # The Python API: a Config or a ConfigError, never another exception.
        try:
            config = load_config("cut", [f"{key}={value}"])
        except SrunitError:
            pass
        else:
            assert isinstance(config, Config)
    assert _tree(tiny_data) == data_before


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**66), 2**66), st.floats(),
                    st.text(max_size=8))
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                         max_leaves=12)
SECTIONS = st.dictionaries(
    st.sampled_from(["model", "data", "train", "method", "extra"]),
    st.one_of(DOCUMENTS, st.dictionaries(st.sampled_from(_option_keys()), SCALARS, max_size=3)),
    max_size=3,
)


@SETTINGS
@given(document=st.one_of(DOCUMENTS, SECTIONS), raw=st.one_of(st.none(), st.text(max_size=40)))
def test_any_yaml_config_file_is_a_config_or_a_clear_error(document, raw: str | None) -> None:
    with _workspace() as root:
        path = root / "config.yaml"
        path.write_text(raw if raw is not None else yaml.safe_dump(document), encoding="utf-8")
        try:
            config = load_config(path)
        except SrunitError as err:
            assert str(err).strip(), "an empty message"
        else:
            assert isinstance(config, Config)


def test_the_generated_images_cover_the_formats_and_modes() -> None:
    """Guard the guard: the image strategy draws from at least the usual formats and modes."""
    formats = {fmt for _, fmt in PAIRS}
    modes = {mode for mode, _ in PAIRS}
    assert {"PNG", "JPEG", "BMP", "TIFF", "GIF"} <= formats
    assert {"1", "L", "P", "RGB", "RGBA", "CMYK", "I", "F", "LA"} <= modes


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
