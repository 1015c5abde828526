"""Round nineteen (B): the advice of recent error messages followed as printed, real dataset layouts, and reports
seen in a browser. Each test reproduced a defect first."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.config import Config, load_config
from srunit.data.transforms import Preprocess
from srunit.data.unaligned import UnalignedDataset
from srunit.errors import ConfigError, DataError
from srunit.eval.run_records import evaluate_run_paired
from srunit.inference import Translator
from srunit.networks.generator import ResnetGenerator


def _save(path: Path, width: int, height: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(path)


@pytest.mark.parametrize("text, word", [
    ("train:\n  name: yes\n", "yes"),
    ("train:\n  runs_dir: No\n", "No"),
    ("train:\n  runs_dir: FALSE\n", "FALSE"),
    ("data:\n  dir_a: true\n", "true"),
])
def test_a_yaml_boolean_where_a_name_belongs_is_quoted_as_the_user_wrote_it(tmp_path: Path, text: str,
                                                                          word: str) -> None:
    """`name: yes` in a YAML preset: the message said `quote the word ('on')`, a word the user never wrote;
    followed as printed, the run was named `on` (and `runs_dir: No` advised 'off')."""
    preset = tmp_path / "p.yaml"
    preset.write_text("base: cut\n" + text)
    key = text.split(":")[0] + "." + text.split("\n")[1].strip().split(":")[0]
    with pytest.raises(ConfigError, match=rf"{key}: got the boolean .*quote the word \('{word}'\) if you mean it"):
        load_config(str(preset), [])
    # followed as printed: the quoted word is the value
    section, name = key.split(".")
    preset.write_text(f"base: cut\n{section}:\n  {name}: '{word}'\n")
    assert getattr(getattr(load_config(str(preset), []), section), name) == word


def test_a_yaml_boolean_of_a_base_file_is_quoted_as_the_file_that_set_it_wrote_it(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("base: cut\ntrain:\n  name: yes\n  runs_dir: Off\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\ntrain:\n  name: ON\n")
    with pytest.raises(ConfigError, match=r"train\.name: .*quote the word \('ON'\)"):
        load_config(str(tmp_path / "child.yaml"), [])
    with pytest.raises(ConfigError, match=r"train\.runs_dir: .*quote the word \('Off'\)"):  # the base's own word
        load_config(str(tmp_path / "child.yaml"), ["train.name=x"])
    # an override given as a Python boolean is not the file's word: the generic one stays
    with pytest.raises(ConfigError, match=r"train\.name: .*quote the word \('on'\)"):
        load_config(str(tmp_path / "child.yaml"), {"train.name": True, "train.runs_dir": "runs"})


def test_max_pixels_advice_lets_every_input_of_translate_through(tmp_path: Path) -> None:
    """Two inputs over --max-pixels: the message advised `--max-pixels 60000` for the first; followed as
    printed, the command was refused again for the second (120,000 pixels), with another value."""
    _save(tmp_path / "in" / "a.png", 200, 300)
    _save(tmp_path / "in" / "b.png", 300, 400)
    _save(tmp_path / "in" / "c.png", 32, 32)
    translator = Translator(ResnetGenerator(3, 3, ngf=4, n_blocks=1).eval(), torch.device("cpu"))
    with pytest.raises(DataError) as err:
        translator.translate_folder(tmp_path / "in", tmp_path / "out", max_pixels=10_000)
    message = str(err.value)
    assert "a.png is 200 x 300 = 60,000 pixels" in message and "1 more file is over it" in message
    assert "pass --max-pixels 120000 to allow them all" in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    translator.translate_folder(tmp_path / "in", tmp_path / "out", max_pixels=120_000)  # as printed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]
    # one file over the limit: the message as before
    with pytest.raises(DataError, match=r"b\.png is 300 x 400 = 120,000 pixels, more than the limit of 100,000; "
                                        r"shrink it, or pass --max-pixels 120000 to allow it \("):
        translator.translate_folder(tmp_path / "in", tmp_path / "out2", max_pixels=100_000)


def test_data_max_pixels_advice_covers_both_domains(tmp_path: Path) -> None:
    """Training: the advice named the value for the first file of domain A; a larger file of domain B was refused
    at the next try."""
    _save(tmp_path / "trainA" / "a.png", 200, 300)
    _save(tmp_path / "trainA" / "s.png", 32, 32)
    _save(tmp_path / "trainB" / "b.png", 300, 400)
    _save(tmp_path / "trainB" / "s.png", 32, 32)
    preprocess = Preprocess("resize_and_crop", 32, 32, True)
    with pytest.raises(DataError, match=r"trainA/a\.png is 200 x 300 = 60,000 pixels, more than the limit of 10,000, "
                                        r"and 1 more file is over it \(the largest: .*trainB/b\.png, 120,000 "
                                        r"pixels\); shrink them, or pass data\.max_pixels 120000 to allow them all"):
        UnalignedDataset.from_root(tmp_path, preprocess, max_pixels=10_000)
    dataset = UnalignedDataset.from_root(tmp_path, preprocess, max_pixels=120_000)  # as printed
    assert len(dataset.files_a) == 2 and len(dataset.files_b) == 2


def test_evaluating_into_a_copy_of_the_run_as_advised_works(tiny_runs: dict[str, Path], tiny_data: Path,
                                                             tmp_path: Path) -> None:
    """`eval paired --run RUN` of other images: the message advised `evaluate into a copy of the run`; a copy
    (cp -r) holds the same record and was refused the same way. The advice now says how to copy it."""
    run = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    evaluate_run_paired(run, tiny_data / "testB", tiny_data / "testA", (30, 50))
    with pytest.raises(DataError) as err:
        evaluate_run_paired(run, tiny_data / "testA", tiny_data / "testA", (30, 50))
    command = re.search(r"\((cp -r .*? && rm -r .*?), then --run (\S+)\)", str(err.value))
    assert command is not None, str(err.value)
    subprocess.run(command.group(1), shell=True, check=True)  # noqa: S602 - the advice, as printed
    copy = Path(command.group(2))
    assert copy == tmp_path / "run-2"
    _, record = evaluate_run_paired(copy, tiny_data / "testA", tiny_data / "testA", (30, 50))
    assert record["paired"]["dist"] == 0.0
    # a plain copy, as the advice said before: refused as the run was
    shutil.copytree(run, tmp_path / "plain", symlinks=True)
    with pytest.raises(DataError, match="holds paired scores of other images"):
        evaluate_run_paired(tmp_path / "plain", tiny_data / "testA", tiny_data / "testA", (30, 50))


def test_a_linked_eval_folder_advises_a_copy_that_is_then_taken(tiny_runs: dict[str, Path], tiny_data: Path,
                                                               tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    (run / "eval").mkdir(exist_ok=True)
    (run / "eval" / "translated").symlink_to(tiny_data / "testB", target_is_directory=True)
    with pytest.raises(DataError) as err:
        evaluate_run_paired(run, tiny_data / "testA", tiny_data / "testA", (30, 50))
    command = re.search(r"\((cp -r .*? && rm -r .*?), then --run (\S+)\)", str(err.value))
    assert command is not None, str(err.value)
    subprocess.run(command.group(1), shell=True, check=True)  # noqa: S602 - the advice, as printed
    evaluate_run_paired(Path(command.group(2)), tiny_data / "testA", tiny_data / "testA", (30, 50))
    assert (tiny_data / "testB").is_dir() and any((tiny_data / "testB").iterdir())


def _cityscapes(root: Path, ids: dict[str, np.ndarray]) -> None:
    """A Cityscapes download as unpacked (leftImg8bit/, gtFine/ with the four label files of each image), small."""
    rng = np.random.default_rng(0)
    for key, label_ids in ids.items():
        split, city, name = key.split("/")
        h, w = label_ids.shape
        photos, labels = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
        photos.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(photos / f"{name}_leftImg8bit.png")
        Image.fromarray(label_ids, "L").save(labels / f"{name}_gtFine_labelIds.png")
        colour = np.zeros((h, w, 4), np.uint8)
        colour[..., 3] = 255
        colour[..., 0] = label_ids * 7  # any colour per id: the colour image is resized, never read as ids
        Image.fromarray(colour, "RGBA").save(labels / f"{name}_gtFine_color.png")
        Image.fromarray(label_ids.astype(np.uint16) * 1000).save(labels / f"{name}_gtFine_instanceIds.png")
        (labels / f"{name}_gtFine_polygons.json").write_text('{"objects": []}')


def test_cityscapes_builds_train_ids_pixel_for_pixel_and_refuses_a_second_copy_of_an_image(tmp_path: Path) -> None:
    """A real layout (aachen, bochum, frankfurt, a test split of 'unlabeled' maps, instanceIds and polygons beside):
    train ids as cityscapesScripts' table gives them. A copy of a city folder beside it (aachen_old) was taken
    without a word, one of the two label files picked by the order the file system lists them."""
    from srunit.datasets.cityscapes import prepare_cityscapes  # noqa: PLC0415

    table = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
             27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
    ids = np.arange(34, dtype=np.uint8).repeat(2)[None].repeat(4, 0)  # 4 x 68: every id, two columns each
    _cityscapes(tmp_path / "cs", {"train/aachen/aachen_000000_000019": ids,
                                  "val/frankfurt/frankfurt_000000_000019": ids[:, ::-1].copy(),
                                  "test/berlin/berlin_000000_000019": np.zeros_like(ids)})
    counts = prepare_cityscapes(tmp_path / "cs", tmp_path / "out", size=(34, 4))
    assert counts == {"train": 1, "val": 1}
    expected = np.array([[table.get(int(v), 255) for v in np.arange(34)]] * 4, np.uint8)  # nearest: every 2nd column
    got = np.asarray(Image.open(tmp_path / "out" / "train_labels" / "aachen_000000_000019.png"))
    assert np.array_equal(got, expected)
    got = np.asarray(Image.open(tmp_path / "out" / "val_labels" / "frankfurt_000000_000019.png"))
    assert np.array_equal(got, expected[:, ::-1])
    labels = tmp_path / "cs" / "gtFine" / "train"
    shutil.copytree(labels / "aachen", labels / "aachen_old")
    with pytest.raises(DataError, match=r"Cityscapes files .*aachen/aachen_000000_000019_gtFine_color\.png and "
                                        r".*aachen_old/aachen_000000_000019_gtFine_color\.png have the same name"):
        prepare_cityscapes(tmp_path / "cs", tmp_path / "out2", size=(34, 4))
    assert not (tmp_path / "out2").exists()


def test_images_kept_at_their_size_shorter_than_the_discriminator_takes_are_refused_with_advice_that_works(
        tmp_path: Path, tiny_config: Callable[..., Config]) -> None:
    """Cityscapes converted at 32 x 16 and trained with `data.preprocess none`: torch's traceback ("Kernel size
    can't be greater than actual input size") at the first step, with the run folder half made. Now refused from
    the headers before the run folder, and each way the message gives trains."""
    from srunit.engine.trainer import Trainer  # noqa: PLC0415

    for domain in ("trainA", "trainB"):
        _save(tmp_path / "data" / domain / "0.png", 32, 16)
    runs = tmp_path / "runs"
    base = [f"data.root={tmp_path / 'data'}", "data.preprocess=none", f"train.runs_dir={runs}", "train.steps=1"]
    config = tiny_config("cut", *base, "train.name=refused")
    with pytest.raises(DataError, match=r"0\.png is 32 x 16; data\.preprocess none keeps it at 32 x 16, a side "
                                        r"shorter than the 24 pixels the discriminator takes .*data\.crop_size of at "
                                        r"least 24, a multiple of 4\), or a shallower discriminator "
                                        r"\(model\.n_layers_d 2\)"):
        Trainer(config)
    assert not (runs / "refused").exists()
    Trainer(tiny_config("cut", *base, "train.name=shallow", "model.n_layers_d=2")).fit()
    assert (runs / "shallow" / "checkpoints" / "latest").exists()
    Trainer(tiny_config("cut", *base, "train.name=cropped", "data.preprocess=resize_and_crop", "data.load_size=24",
                        "data.crop_size=24", "train.batch_size=1")).fit()
    assert (runs / "cropped" / "checkpoints" / "latest").exists()
