"""Round five: no silent garbage. Inputs that would give numbers without meaning are refused or warned about:
weights that are not floating point, label maps in a lossy format, images whose EXIF orientation turns them,
YAML 1.1 booleans where a name belongs, and a Python API writing into a run's checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from srunit.errors import CheckpointError
from srunit.networks import ResnetGenerator
from srunit.runtime.network_files import load_network, save_network


def _rewrite_as(path: Path, key: str, dtype: torch.dtype) -> None:
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    tensors[key] = (tensors[key] * 100).to(dtype)
    save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int8, torch.bool])
def test_weights_that_are_not_floating_point_are_refused(dtype: torch.dtype, tmp_path: Path) -> None:
    path = tmp_path / "G.safetensors"
    save_network(ResnetGenerator(ngf=4, n_blocks=1), path, "ResnetGenerator")
    key = next(k for k in load_file(str(path)) if k.endswith("weight"))
    _rewrite_as(path, key, dtype)
    with pytest.raises(CheckpointError, match=rf"the weight {key} is stored as {str(dtype)[6:]}, not as floating "
                                              rf"point"):
        load_network(path)


def test_a_label_map_in_jpeg_is_refused(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from srunit.data.labels import load_label_map
    from srunit.errors import DataError

    ids = np.zeros((16, 16), np.uint8)
    ids[:, 8:] = 7
    Image.fromarray(ids, mode="L").save(tmp_path / "a.jpg", quality=75)
    Image.fromarray(ids, mode="L").save(tmp_path / "jpeg-named.png", format="JPEG")  # the format, not the name
    for name in ("a.jpg", "jpeg-named.png"):
        with pytest.raises(DataError, match=r"is a JPEG file, whose lossy compression changes class ids along every "
                                            r"edge; save label maps losslessly as PNG"):
            load_label_map(tmp_path / name)
    Image.fromarray(ids, mode="L").save(tmp_path / "a.png")
    assert (load_label_map(tmp_path / "a.png") == ids).all()


@pytest.mark.parametrize(("orientation", "turn"), [(1, None), (3, 180), (6, 270), (8, 90)])
def test_the_exif_orientation_is_applied_where_an_image_is_read(orientation: int, turn: int | None,
                                                                tmp_path: Path) -> None:
    """A camera stores a portrait photo as landscape pixels with an orientation tag; every viewer shows it turned.
    The one image loader (training data, translate, eval, the app) does the same, and the header size agrees."""
    import numpy as np
    from PIL import Image

    from srunit.data.images import image_size, load_rgb

    stored = np.zeros((8, 12, 3), np.uint8)  # 12 wide, 8 high; a marker in the top-left corner
    stored[:2, :3] = 255
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(tmp_path / "photo.png", exif=exif)
    loaded = np.asarray(load_rgb(tmp_path / "photo.png"))
    # PIL's transposes are counter-clockwise rotations: orientation 6 (viewer turns 90 clockwise) is ROTATE_270.
    expected = stored if turn is None else np.rot90(stored, k=turn // 90)
    assert loaded.shape == expected.shape and (loaded == expected).all()
    assert image_size(tmp_path / "photo.png") == (loaded.shape[1], loaded.shape[0])


@pytest.mark.parametrize(("section", "key", "word"), [("train", "name", "on"), ("method", "name", "off"),
                                                     ("train", "loggers", "[no]"), ("data", "preprocess", "yes")])
def test_yaml_booleans_are_not_taken_as_names(section: str, key: str, word: str, tmp_path: Path) -> None:
    """`name: on` in a YAML 1.1 file is the boolean true; it was a run named 'True' (or a method 'False' unknown)."""
    from srunit.config import load_config
    from srunit.errors import ConfigError

    preset = tmp_path / "mine.yaml"
    preset.write_text(f"base: cut\n{section}:\n  {key}: {word}\n")
    with pytest.raises(ConfigError, match=rf"{section}\.{key}: got the boolean (true|false), but {section}\.{key} "
                                          rf"takes .*; quote the word"):
        load_config(str(preset))
    preset.write_text("base: cut\ntrain:\n  name: 'on'\n  activation_checkpointing: yes\n")
    config = load_config(str(preset))
    assert config.train.name == "on" and config.train.activation_checkpointing is True


def test_the_python_api_refuses_to_translate_into_a_run_outside_its_eval_folder(tiny_runs: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    """What `srunit translate` refuses, Translator.translate_folder refuses too: the run's checkpoints (or any place
    of the run but RUN/eval, where the benchmark records its translations) stay as training wrote them."""
    from PIL import Image

    from srunit.errors import DataError
    from srunit.inference import Translator
    from srunit.runtime.run_folder import RunFolder

    run = tiny_runs["cut"]
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    Image.new("RGB", (8, 8)).save(image)
    translator = Translator.from_checkpoint(run, device="cpu")
    checkpoints = RunFolder(run).checkpoints
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    for out in (checkpoints, checkpoints / "mine", run):
        with pytest.raises(DataError, match="run folder.*translate into a folder outside it"):
            translator.translate_folder(image.parent, out)
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
