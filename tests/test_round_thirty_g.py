"""Round thirty (G): numbers YAML reads as names, NaN segmenters, lossy TIFF labels, and other inputs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.errors import CheckpointError, ConfigError, DataError


class _Logits(torch.nn.Module):
    def __init__(self, fill: float) -> None:
        super().__init__()
        self.fill = fill

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(1, 4, x.shape[2], x.shape[3])
        out[:, 2] = self.fill  # channel 2 wins wherever the fill is a number above 0
        return out


@pytest.mark.parametrize("fill", [float("nan"), float("inf")])
def test_a_segmenter_whose_logits_are_nan_or_inf_is_refused(tmp_path: Path, fill: float) -> None:
    """A TorchScript segmenter returning NaN logits was argmax-ed to class 0 everywhere and scored (pixAcc 24.73%,
    exit 0); a generator's NaN output is refused, and so is now a segmenter's."""
    from srunit.eval.segmenters import load_segmenter

    image = np.zeros((8, 12, 3), dtype=np.uint8)
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    with warnings.catch_warnings():  # torch deprecates TorchScript; users' segmenters are saved that way all the same
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_Logits(1.0)).save(str(good))
        torch.jit.script(_Logits(fill)).save(str(bad))
    assert (load_segmenter(str(good), 4)(image) == 2).all()  # finite logits: channel 2 everywhere
    with pytest.raises(ConfigError, match=r"segmenter .*bad\.pt returned 96 NaN or inf logits of 384 for a 8x12 "
                                          r"image; .*fix the model"):
        load_segmenter(str(bad), 4)(image)


def _ids() -> np.ndarray:
    """A 32x32 map of 4 classes in blocks with sharp edges, where lossy compression moves values."""
    ids = np.zeros((32, 32), dtype=np.uint8)
    ids[:16, 16:], ids[16:, :16], ids[16:, 16:] = 1, 2, 3
    return ids * 60


@pytest.mark.parametrize("compression", ["jpeg", "tiff_jpeg"])
def test_a_tiff_label_map_of_jpeg_compression_is_refused_and_a_lossless_one_read(tmp_path: Path,
                                                                                  compression: str) -> None:
    """A mode-L TIFF saved with compression='jpeg' changed 275-398 of 1,024 ids per map and eval seg scored it without a
    word; a .jpg (or JPEG data in a .png) was refused."""
    from srunit.data.labels import load_label_map

    lossy, lossless = tmp_path / "lossy.tif", tmp_path / "lzw.tif"
    Image.fromarray(_ids()).save(lossy, compression=compression if compression == "jpeg" else "jpeg", quality=50)
    if compression == "tiff_jpeg":  # the old-style JPEG tag (6): Pillow names it tiff_jpeg; rewrite the tag
        data = bytearray(lossy.read_bytes())
        ifd = int.from_bytes(data[4:8], "little")
        for i in range(int.from_bytes(data[ifd:ifd + 2], "little")):
            entry = ifd + 2 + 12 * i
            if int.from_bytes(data[entry:entry + 2], "little") == 259:  # Compression
                data[entry + 8:entry + 10] = (6).to_bytes(2, "little")
        lossy.write_bytes(bytes(data))
    Image.fromarray(_ids()).save(lossless, compression="tiff_lzw")
    with Image.open(lossy) as img:
        assert img.info["compression"] == compression
    with pytest.raises(DataError, match=f"is a TIFF file of {compression} compression, whose lossy compression "
                                        f"changes class ids"):
        load_label_map(lossy)
    assert (load_label_map(lossless) == _ids()).all()


def test_a_lossy_webp_label_map_is_refused_and_a_lossless_one_read(tmp_path: Path) -> None:
    """WebP is read as RGB, so only a colour label map (--palette cityscapes) reaches the check: a lossy one was
    read."""
    from srunit.data.labels import load_label_map

    colours = np.zeros((32, 32, 3), dtype=np.uint8)
    colours[:] = (128, 64, 128)  # Cityscapes 'road', train id 0
    colours[:, 16:] = (244, 35, 232)  # 'sidewalk', train id 1
    expected = np.zeros((32, 32), dtype=np.int64)
    expected[:, 16:] = 1
    for name, kwargs in (("lossy", {"quality": 40}), ("lossless", {"lossless": True})):
        Image.fromarray(colours).save(tmp_path / f"{name}.webp", **kwargs)
    assert (tmp_path / "lossy.webp").read_bytes()[12:16] == b"VP8 "  # what the check reads: the lossy bitstream
    with pytest.raises(DataError, match=r"is a lossy WebP file, whose lossy compression changes class ids"):
        load_label_map(tmp_path / "lossy.webp", palette="cityscapes")
    assert (load_label_map(tmp_path / "lossless.webp", palette="cityscapes") == expected).all()


def _trials_in(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM trials").fetchone()[0])


@pytest.mark.slow
@pytest.mark.parametrize("copy", ["-al", "-as"])
def test_a_tuning_folder_copied_with_links_never_appends_to_the_originals_study(tmp_path: Path, monkeypatch,
                                                                                copy: str) -> None:
    """A study stopped before it finished, `cp -al tuneE tuneF` (or `cp -as`), then `tune data ... --out tuneF`:
    tuneE/study.db (the same inode, or the link's target) listed tuneF's trials."""
    from srunit.tune.study import (
        Trials,
        TuneSettings,
        _prepare_out,
        default_storage,
        open_study,
        run_tune,
    )
    from srunit.tune.targets import FolderTarget

    monkeypatch.setattr(Trials, "run", lambda self, params, seed, on_stop=None: (0.5, {"runs": ["x"]}))
    monkeypatch.setattr(FolderTarget, "prepare", lambda self, out: None)
    monkeypatch.setattr(FolderTarget, "check", lambda self: None)
    (tmp_path / "train" / "val").mkdir(parents=True)
    (tmp_path / "train" / "labels").mkdir()
    target = FolderTarget(str(tmp_path / "train"), str(tmp_path / "train" / "val"),
                          str(tmp_path / "train" / "labels"), "seg.onnx", 3)
    settings = TuneSettings(preset="cut", target=target.to_dict(), study_name="tuneE", trials=2, sampler="random",
                            space={"method.lambda_nce": {"low": 0.25, "high": 4.0, "log": True}})
    original, copied = tmp_path / "tuneE", tmp_path / "tuneF"
    _prepare_out(original, settings)
    open_study(default_storage(original), settings)  # the study, begun: no trial finished yet
    before = (original / "study.db").read_bytes()
    subprocess.run(["cp", copy, str(original), str(copied)], check=True)
    run_tune(copied, settings, show_progress=False)
    assert (original / "study.db").read_bytes() == before and _trials_in(original / "study.db") == 0
    own = copied / "study.db"
    assert not own.is_symlink() and os.stat(own).st_nlink == 1 and _trials_in(own) == 2


def test_export_to_a_suffix_srunit_cannot_read_back_is_refused_with_names_it_reads(tmp_path: Path) -> None:
    """`export --output xo2.png` advised `pass --format onnx`, which wrote ONNX into xo2.png that translate, app and
    Translator.from_checkpoint refused as an unknown checkpoint file type, a message naming none of the exported
    forms translate takes."""
    from srunit.export import export_generator
    from srunit.runtime.run_folder import CheckpointSource

    run = tmp_path / "run"  # never read: the output is refused first
    for output, fmt, names in ((tmp_path / "xo2.png", None, f"{tmp_path / 'xo2.onnx'}, {tmp_path / 'xo2.pt2'} or "
                                                            f"{tmp_path / 'xo2.ts'}"),
                               (tmp_path / "xo2.png", "onnx", f"{tmp_path / 'xo2.onnx'}"),
                               (tmp_path / "gmodel", "export", f"{tmp_path / 'gmodel.pt2'}")):
        with pytest.raises(ConfigError) as refused:
            export_generator(run, output, fmt)
        message = str(refused.value)
        assert message.endswith(f"name the file {names}") and "--format" not in message, message
        assert not output.exists()
    weights = tmp_path / "xo.png"
    weights.write_bytes(b"\x08\x01")  # an ONNX file's first bytes, under a name of no known suffix
    with pytest.raises(CheckpointError) as unknown:
        CheckpointSource.resolve(weights)
    for form in ("run folder", "checkpoint folder", "G.safetensors", "G_BA.safetensors", "_net_G_B.pth", ".onnx",
                 ".pt2", ".ts"):
        assert form in str(unknown.value), form


@pytest.mark.parametrize(("written", "value"), [("0x1f", 31), ("0b101", 5), ("1_2", 12), ("+12", 12),
                                                ("1.50", 1.5), (".5", 0.5), (".NaN", float("nan")),
                                                ("1.0e+3", 1000.0)])
def test_a_yaml_number_whose_text_is_not_the_name_it_would_give_is_refused(tmp_path: Path, written: str,
                                                                           value: float) -> None:
    """`name: 0x1f` in a preset file trained into runs/31 (`007` was refused already): a number an option takes as
    text is refused where YAML's value, as a string, is not the text written; `0x10` for a number is refused as the
    command line refuses `--train.steps 0x10`."""
    from srunit.config import load_config

    preset = tmp_path / "p.yaml"
    preset.write_text(f"base: cut\ntrain:\n  name: {written}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(preset)
    message = str(refused.value)
    assert written in message and ("quote it" in message), message
    if not written.startswith(("0x", "0b")):  # those two are refused as YAML reads them, for every option
        assert f"the number {value!r}" in message and f"('{written}')" in message
    preset.write_text(f"base: cut\ntrain:\n  name: '{written}'\n")
    assert load_config(preset).train.name == written
    preset.write_text("base: cut\ntrain:\n  name: 12\n  steps: 1_0\n")  # a number's own text: taken as before
    loaded = load_config(preset)
    assert (loaded.train.name, loaded.train.steps) == ("12", 10)
    assert load_config(preset, ["train.name=0x1f"]).train.name == "0x1f"  # the command line's text is the name


@pytest.mark.parametrize(("written", "value", "reading"), [("0x10", 16, "hexadecimal"), ("0b101", 5, "binary")])
def test_a_yaml_hexadecimal_or_binary_count_is_refused_as_the_command_line_refuses_it(tmp_path: Path, written: str,
                                                                                      value: int,
                                                                                      reading: str) -> None:
    from srunit.config import load_config

    with pytest.raises(ConfigError, match=r"^train\.steps: invalid value"):
        load_config("cut", [f"train.steps={written}"])
    preset = tmp_path / "p.yaml"
    preset.write_text(f"base: cut\ntrain:\n  steps: {written}\n")
    with pytest.raises(ConfigError, match=rf"line 3: {written} is {value} in YAML \({reading}\); write the number "
                                          rf"in decimal as {value}, or quote it"):
        load_config(preset)


def test_the_reports_loss_panels_are_bounded_and_name_what_they_leave_out(tmp_path: Path, make_report_run,
                                                                          monkeypatch) -> None:
    """A metrics.jsonl of 2 lines x 3,000 keys made `srunit report` run past 120 s at 2.8 GB (300 keys: 37 s): one
    panel a key. The first series logged (16) are drawn, and the rest named; drawn here with a bound of 3."""
    from srunit.report import plots
    from srunit.report.runs import load_run

    assert plots.MAX_LOSS_PANELS == 16
    monkeypatch.setattr(plots, "MAX_LOSS_PANELS", 3)
    run = make_report_run(tmp_path / "mk")
    keys = [f"loss{i}" for i in range(10)]
    lines = [{"step": s, **{k: float(i + s) for i, k in enumerate(keys)}, "lr": 2e-4} for s in (1, 2)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    titles: list[str] = []
    real = plots._new_figure

    def counting(*args, **kwargs):
        fig = real(*args, **kwargs)
        monkeypatch.setattr(fig, "tight_layout", lambda: titles.extend(ax.get_title() for ax in fig.axes
                                                                      if ax.get_visible()))
        return fig

    monkeypatch.setattr(plots, "_new_figure", counting)
    html = plots.loss_section([load_run(run)])
    assert titles == keys[:3]
    assert "The first 3 logged series are drawn; 7 more are left out (loss3, loss4, loss5, loss6, loss7, ...)." in html
