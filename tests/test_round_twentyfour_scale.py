"""Round twenty-four (B): scale: many files, long names, deep trees, big run folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.cli.main import main
from srunit.errors import DataError
from srunit.inference import Translator
from srunit.networks import ResnetGenerator
from srunit.runtime.network_files import save_network


@pytest.fixture
def translator(tmp_path: Path) -> Translator:
    torch.manual_seed(0)
    weights = tmp_path / "G.safetensors"
    save_network(ResnetGenerator(ngf=4, n_blocks=1).eval(), weights, "ResnetGenerator")
    return Translator.from_checkpoint(weights, device="cpu")


def _image(path: Path, colour: tuple[int, int, int] = (10, 200, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)
    return path


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("file_name", ["a.jpg", "a.tif"])  # sorted before and after the folder's image
def test_an_output_file_where_a_mirrored_folder_goes_is_refused_before_any_write(
        translator: Translator, tmp_path: Path, file_name: str) -> None:
    """`a.jpg` gives `a.png`, and `a.png/b.png` needs a folder `a.png`: one output name is a file and a folder.
    translate wrote the first image, then failed on the second with "a folder on its way ... is a symbolic link or a
    file ... remove it, or choose another output (nothing was written there)" (or "a.png: Is a directory; check the
    path, its permissions and the free space"): advice that, followed, failed the same way."""
    src, out = tmp_path / "in", tmp_path / "out"
    _image(src / file_name)
    _image(src / "a.png" / "b.png")
    with pytest.raises(DataError) as err:
        translator.translate_folder(src, out)
    assert str(err.value) == (
        f"the translation of {src / file_name} is the file {out / 'a.png'}, and that of {src / 'a.png' / 'b.png'} "
        "needs a folder of that name (sub-folders are mirrored, outputs are named after their input without its "
        "extension): rename one of them (nothing was written)")
    assert _tree(out) == []


def test_an_existing_folder_or_file_in_the_way_is_refused_before_any_write_even_with_overwrite(
        translator: Translator, tmp_path: Path) -> None:
    """An output name held by a folder, or a mirrored sub-folder's name held by a file: `--overwrite` (the advice of
    the first refusal) wrote the images before it, then failed with "Is a directory"."""
    src, out = tmp_path / "in", tmp_path / "out"
    for name in ("0.png", "1.png", "2.png", "sub/3.png"):
        _image(src / name)
    (out / "1.png").mkdir(parents=True)
    for overwrite in (False, True):  # without --overwrite, the refusal advised it
        with pytest.raises(DataError) as err:
            translator.translate_folder(src, out, overwrite=overwrite)
        assert str(err.value) == (
            f"the translation of {src / '1.png'} is {out / '1.png'}, which is a folder; --overwrite replaces files "
            "only: move that folder away, or choose another --output (nothing was written)")
    assert _tree(out) == ["1.png"]
    (out / "1.png").rmdir()
    (out / "sub").write_bytes(b"mine")
    with pytest.raises(DataError) as err:
        translator.translate_folder(src, out, overwrite=True)
    assert str(err.value).startswith(f"{out / 'sub'} is a regular file, where sub-folder sub of the input is mirrored")
    assert _tree(out) == ["sub"] and (out / "sub").read_bytes() == b"mine"
    (out / "sub").unlink()
    assert len(translator.translate_folder(src, out)) == 4  # the refusals' advice followed: it works


def test_a_mirrored_sub_folder_may_have_a_name_as_long_as_the_file_system_takes(
        translator: Translator, tmp_path: Path) -> None:
    """A folder is made under its own name (only files go through a temporary name 14 bytes longer): a sub-folder
    of 250 bytes, which training reads, was refused by translate as "250 bytes long ... srunit writes through a
    temporary name 14 bytes longer"."""
    folder = "g" * 250
    src, out = tmp_path / "in", tmp_path / "out"
    _image(src / folder / "a.png")
    assert translator.translate_folder(src, out) == [out / folder / "a.png"]
    assert Image.open(out / folder / "a.png").size == (8, 8)
    # a file name is still counted with its temporary name: 244 + 17 > 255, refused before anything is written
    _image(src / ("n" * 240 + ".jpg"))
    with pytest.raises(Exception, match="bytes long; this file system takes names of 255 bytes, and srunit writes "
                                        "through a temporary name 17 bytes longer"):
        translator.translate_folder(src, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def _label_set(root: Path, n: int = 8) -> tuple[Path, Path, Path]:
    labels, a, b = root / "labels", root / "a", root / "b"
    for folder in (labels, a, b):
        folder.mkdir(parents=True)
    for i in range(n):
        ids = np.zeros((8, 8), np.uint8)
        ids[: 2 + 4 * (i % 2)] = 1  # two kinds of histogram, for K-means' two clusters
        Image.fromarray(ids).save(labels / f"{i}.png")
        _image(a / f"{i}.png")
        _image(b / f"{i}.png", (200, 10, 30))
    return labels, a, b


@pytest.mark.parametrize("length", [238, 241])
def test_a_data_out_name_too_long_for_its_partial_folder_is_refused_naming_the_option(
        tmp_path: Path, capsys: pytest.CaptureFixture, length: int) -> None:
    """A data set is built in `.NAME.partial-XXXXXXXX` (18 bytes longer) beside --out: a name of 238 to 241 bytes
    passed the check for 14 bytes and failed at the first write as `.NAME.partial-x: File name too long; check the
    path, its permissions and the free space`, naming a folder the user never gave."""
    labels, a, b = _label_set(tmp_path / "set")
    out = tmp_path / ("s" * length)
    code = main(["data", "split", "--labels", str(labels), "--classes", "2", "--images-a", str(a), "--images-b",
                 str(b), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"--out: the name {'s' * 40}... of {out} is {length} bytes long" in err
    assert "a temporary name 18 bytes longer" in err and ".partial-" not in err
    assert sorted(os.listdir(tmp_path)) == ["set"]
    shorter = tmp_path / ("s" * 237)  # 237 + 18 = 255: taken
    assert main(["data", "split", "--labels", str(labels), "--classes", "2", "--images-a", str(a), "--images-b",
                 str(b), "--out", str(shorter)]) == 0
    assert len(os.listdir(shorter / "trainA")) + len(os.listdir(shorter / "trainB")) == 8


def _peak_bytes(call: Any) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_trimming_a_long_metrics_log_holds_little_more_than_the_log(tmp_path: Path) -> None:
    """Every resume trims RUN/metrics.jsonl to the checkpoint's step. It held each line parsed (a dict per logged
    step) beside the text: 8 times the log's size at its peak, 2 GB of memory for a log of 10^6 steps (200 MB). Now
    its peak is that of reading the log's text (`read_text`, the least a trim needs) and at most the log's size
    more."""
    import json

    from srunit._reading import read_text
    from srunit.engine.run_state import trim_metrics

    record = {"D": 0.4996678829193115, "G_GAN": 0.9994455575942993, "NCE": 6.387392044067383, "G": 7.44001960754,
              "NCE_Y": 6.493756294250488, "images_per_s": 0.4440984700248347, "lr": 0.0001}
    lines = [json.dumps({"step": step, **record}) + "\n" for step in range(1, 5_001)]
    log = tmp_path / "metrics.jsonl"
    # Nothing to drop (a run stopped at a checkpoint); lines after step 3,750 and a last line cut short by a kill.
    for step, tail, expected in ((10**9, "", lines), (3_750, '{"step": 5001, "D": 0.5', lines[:3_750])):
        log.write_text("".join(lines) + tail)
        size = log.stat().st_size
        reading = _peak_bytes(lambda: read_text(log, "the log", limit=2**30))
        peak = _peak_bytes(lambda: trim_metrics(tmp_path, step))  # noqa: B023 (called at once)
        assert log.read_text() == "".join(expected)
        assert peak < reading + size, (step, (peak - reading) / size)


def test_a_name_repeated_in_thousands_of_sub_folders_is_numbered_in_linear_time() -> None:
    """A data set of one folder per sample, each holding `image.png`: every repeat tried __1, __2, ... from 1 again,
    so placing N files cost N^2 / 2 tries (100 s for 8,000 in `data split` or `data mismatch`; 20,000 would take
    10 minutes)."""
    import time

    from srunit.datasets.split import _unique_names

    files = [Path(f"s{i:05d}/image.png") for i in range(20_000)]
    start = time.perf_counter()
    names = _unique_names(files)
    assert time.perf_counter() - start < 2.0
    assert names == ["image.png"] + [f"image__{k}.png" for k in range(1, 20_000)]
    # a name already taken by a file of its own is passed over, as before
    files = [Path(f"a{i}/x.png") for i in range(3)] + [Path("b/x__3.png"), Path("c/x.png")]
    assert _unique_names(files) == ["x.png", "x__1.png", "x__2.png", "x__3.png", "x__4.png"]
    files = [Path("b/x__2.png")] + [Path(f"a{i}/x.png") for i in range(4)]
    assert _unique_names(files) == ["x__2.png", "x.png", "x__1.png", "x__3.png", "x__4.png"]


@pytest.mark.parametrize("copy", [False, True])
def test_a_repeated_long_name_whose_suffix_would_not_fit_is_refused_before_any_file_is_placed(
        tmp_path: Path, capsys: pytest.CaptureFixture, copy: bool) -> None:
    """Two sub-folders holding one 255-byte name: the second gets `__1` (258 bytes). `data split` failed there with
    `cannot create symlink ... File name too long; pass --copy to copy files`, and with --copy with `File name too
    long; check the path, its permissions and the free space`, naming the hidden folder it builds in."""
    root = tmp_path / "set"
    for sub in ("labels", "a", "b"):
        for i in range(6):
            path = root / sub / ("x" if i < 3 else "y") / (f"{i % 3}" + "n" * 250 + ".png")
            path.parent.mkdir(parents=True, exist_ok=True)
            ids = np.zeros((8, 8), np.uint8)
            ids[: 2 + 4 * (i % 3 % 2)] = 1  # x/N and y/N fall in one cluster: one folder gets both
            Image.fromarray(ids if sub == "labels" else np.stack([ids * 200] * 3, -1)).save(path)
    out = tmp_path / "out"
    code = main(["data", "split", "--labels", str(root / "labels"), "--classes", "2", "--images-a", str(root / "a"),
                 "--images-b", str(root / "b"), "--out", str(out)] + (["--copy"] if copy else []))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "(258 bytes: its name repeats in another sub-folder, and each repeat gets a suffix __N), longer than the " \
           "255 bytes this file system takes" in err
    assert "--copy" not in err and ".partial-" not in err
    assert sorted(os.listdir(tmp_path)) == ["set"]
