"""Round thirty-five (lead): what a preset file sets is the file's, even at the value its base gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from srunit.errors import ConfigError


@pytest.mark.parametrize(("sets", "key", "value", "says"), [
    ("model: {n_blocks: 9}", "model.n_blocks", 9,
     "p5.yaml sets model.n_blocks 9, and the cpu profile sets model.n_blocks 6 for every run: give --model.n_blocks 9 "
     "to train the file's values"),
    ("method: {num_patches: 256}", "method.num_patches", 256,
     "p5.yaml sets method.num_patches 256, and the cpu profile sets method.num_patches 64 for every run: give "
     "--method.num_patches 256"),
])
def test_a_preset_files_option_at_its_bases_value_is_not_replaced_by_the_profile_without_a_word(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_status,
        sets: str, key: str, value: int, says: str) -> None:
    """`tune synthscapes --preset p5.yaml --profile cpu`, p5.yaml `base: cut` with `model: {n_blocks: 9}` (cut's own
    9): every trial trained the profile's 6 without a word, where `n_blocks: 3` was refused (round thirty-five (A)),
    and best.yaml (`base: p5.yaml`) then trained 9, not the 6 tuned. The advice, followed, is taken."""
    from srunit.config import load_config
    from srunit.synthscapes import profile_settings
    from srunit.synthscapes.settings import check_files_keep_their_values

    monkeypatch.chdir(tmp_path)
    Path("p5.yaml").write_text(f"base: cut\n{sets}\n")
    section, name = key.split(".")
    assert getattr(getattr(load_config("cut"), section), name) == value  # the file's value is cut's own
    small = ["--size", "32", "--steps", "2", "--num-pool", "24", "--num-test", "2", "--segmenter-steps", "2",
             "--segmenter-images", "8", "--no-progress", "--profile", "cpu", "--out", "o"]
    for command in (["tune", "synthscapes", "--preset", "p5.yaml", "--trials", "1"],
                    ["bench", "synthscapes", "--methods", "p5.yaml", "--baseline", "p5", "--seeds", "1",
                     "--conditions", "unmatched", "--no-report"]):
        assert cli_status([*command, *small]) == 2
        err = capsys.readouterr().err
        assert says in err, err
        assert not Path("o").exists()
    given = (f"{key}={value}",)
    settings = profile_settings("cpu", methods=("p5.yaml",), overrides=(*profile_settings("cpu").overrides, *given))
    check_files_keep_their_values(settings.methods, settings.overrides, given, "cpu")  # the advice, taken
    with pytest.raises(ConfigError):  # and without it, the function itself refuses
        check_files_keep_their_values(settings.methods, profile_settings("cpu").overrides, (), "cpu")


@pytest.mark.parametrize("argv", [
    ["eval", "paired", "--pred", "p", "--real", "r", "--json", "-"],
    ["translate", "--checkpoint", "c", "--input", "i", "--output", "-"],
    ["report", "r", "--out", "-"],
    ["data", "synthscapes", "--out", "-"],
], ids=lambda argv: " ".join(argv[:2]))
def test_a_dash_for_an_output_is_refused_not_written_as_a_file_named_dash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_status,
        argv: list[str]) -> None:
    """`eval paired --json -` wrote a file named `-` and said `wrote -`, where many tools read `-` as standard output
    (round thirty-five (A)). Every output option refuses it, naming the option and the way to a file named -."""
    monkeypatch.chdir(tmp_path)
    assert cli_status(argv) == 2
    err = capsys.readouterr().err
    option = argv[argv.index("-") - 1]
    assert f"argument {option}: '-' is not standard output here" in err and "./- for a file named -" in err, err
    assert list(tmp_path.iterdir()) == []


def test_an_edit_to_a_base_file_of_a_studys_preset_is_named_by_the_file_edited(tmp_path: Path) -> None:
    """p3.yaml `base: b.yaml`, b.yaml edited between two calls of `tune synthscapes`: refused as `the preset p3.yaml
    was edited`, naming p3.yaml alone, which the user had not touched (round thirty-five (A)). The base file is named
    beside the value it sets now; a key of the preset's own keeps its message."""
    from srunit.tune.study import TuneSettings, _prepare_out, preset_values
    from srunit.tune.targets import FolderTarget

    for folder in ("train", "val", "labels"):
        (tmp_path / folder).mkdir()
    base, preset = tmp_path / "b.yaml", tmp_path / "p3.yaml"
    base.write_text("base: cut\nmethod: {lambda_nce: 1.0}\n")
    preset.write_text("base: b.yaml\nmodel: {ngf: 8}\n")

    def settings() -> TuneSettings:
        target = FolderTarget(str(tmp_path / "train"), str(tmp_path / "val"), str(tmp_path / "labels"), "seg.onnx", 3)
        return TuneSettings(preset=str(preset), target=target.to_dict(), study_name="s", trials=2, sampler="random",
                            space={"method.nce_t": {"low": 0.05, "high": 0.1}},
                            preset_config=preset_values(str(preset)))

    out = tmp_path / "tu"
    _prepare_out(out, settings())
    base.write_text("base: cut\nmethod: {lambda_nce: 3.0}\n")
    with pytest.raises(ConfigError, match=rf"method\.lambda_nce 3\.0 now \(set in {re.escape(str(base))}\), 1\.0 "
                                          rf"when the study began"):
        _prepare_out(out, settings())
    base.write_text("base: cut\nmethod: {lambda_nce: 1.0}\n")
    preset.write_text("base: b.yaml\nmodel: {ngf: 12}\n")
    with pytest.raises(ConfigError, match=r"\(model\.ngf 12 now, 8 when the study began\)"):
        _prepare_out(out, settings())


def test_a_crop_size_under_preprocess_none_is_refused_as_having_no_effect(tiny_config, tmp_path: Path) -> None:
    """`srunit train --data.preprocess none --data.crop_size 256` (or 16, or 20, which is no multiple of 4): taken
    without a word, written in config.yaml, and the two runs' weights were byte-identical: `none` takes each image as
    stored (round thirty-five (C)). Refused as data.load_size is there; scale_width keeps it as the least height."""
    from srunit.engine.trainer import check_no_void_options

    for crop in ("256", "20"):
        overrides = ["data.preprocess=none", f"data.crop_size={crop}"]
        with pytest.raises(ConfigError, match=rf"data\.crop_size {crop} has no effect: data\.preprocess none crops and "
                                              r"resizes nothing .*give data\.preprocess crop, resize_and_crop or "
                                              r"scale_width too; or leave it out"):
            check_no_void_options(tiny_config("cut", *overrides), overrides)
    check_no_void_options(tiny_config("cut", "data.preprocess=none"), ["data.preprocess=none"])
    scale = ["data.preprocess=scale_width", "data.crop_size=16"]
    check_no_void_options(tiny_config("cut", *scale), scale)
    preset = tmp_path / "none.yaml"  # set in the user's own file: the same
    preset.write_text("base: cut\ndata: {preprocess: none, crop_size: 64}\n")
    with pytest.raises(ConfigError, match=r"data\.crop_size 64 \(set in .*none\.yaml\) has no effect"):
        check_no_void_options(tiny_config(preset), [], preset)


@pytest.mark.parametrize("classes", ["100000", "0", "-3"])
def test_eval_segs_classes_out_of_range_is_named_as_the_option_for_every_segmenter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_status,
        classes: str) -> None:
    """`eval seg --segmenter myseg.py:seg --classes 100000` said `load_segmenter: num_classes must be ...; pass
    load_segmenter: num_classes within that range`, a library argument; `--segmenter synthscapes` named --classes
    (round thirty-five (C)). Checked before the segmenter is loaded: its module is never imported."""
    monkeypatch.chdir(tmp_path)
    for folder in ("img", "lab"):
        (tmp_path / folder).mkdir()
    Path("myseg.py").write_text("raise SystemExit('imported')\n")
    assert cli_status(["eval", "seg", "--images", "img", "--labels", "lab", "--segmenter", "myseg.py:seg",
                       "--classes", classes]) == 2
    err = capsys.readouterr().err
    assert f"--classes must be an integer from 1 to 4,096, got {classes}" in err and "load_segmenter" not in err, err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, a folder that takes no new file")
def test_a_lock_that_a_folder_refuses_to_create_is_not_advised_to_be_removed(tmp_path: Path) -> None:
    """`srunit data synthscapes --out /sys/ssx` (as root, where os.access says the folder is writable): `cannot open
    the lock /sys/.ssx.lock: Permission denied; ... remove /sys/.ssx.lock (rm /sys/.ssx.lock ...)`, and the rm, done
    as advised, said there was no such file (round thirty-five (C)). The folder is named as the cause."""
    from srunit._outputs import open_lock_file

    lock = Path("/proc/.srunit-test.lock")
    with pytest.raises(ConfigError) as err:
        open_lock_file(lock, "--out")
    assert not lock.exists() and "rm " not in str(err.value), err.value
    assert "cannot open the lock /proc/.srunit-test.lock" in str(err.value), err.value
    assert "/proc does not take new files (there is no lock to remove)" in str(err.value) or \
        "you have no permission to write in /proc" in str(err.value), err.value  # as root, or as another user


@pytest.mark.parametrize("crop", [16, 18, 209])
def test_drits_crop_size_advice_names_drits_own_least_side_and_a_crop_that_is_taken(tiny_config, crop: int) -> None:
    """`srunit train --preset drit --data.crop_size 16`: `at least 24 (3 x 2^model.n_layers_d ...); use e.g.
    data.crop_size 24, or model.n_layers_d 2 with data.crop_size 16`; both ways out were refused (DRIT reads no
    model.n_layers_d; its discriminators take 209 pixels) (round thirty-five (C)). The advice is DRIT's least side, a
    multiple of 4, and that crop is taken."""
    from srunit.config import load_config

    least = next(n for n in range(1, 1000) if load_config("drit").method.fits(n))  # its own computation of the side
    fit = least + (-least) % 4
    with pytest.raises(ConfigError) as err:
        load_config("drit", [f"data.load_size={crop}", f"data.crop_size={crop}"])
    message = str(err.value)
    assert f"at least the {least} pixels DRIT's discriminators take" in message, message
    assert message.endswith(f"use e.g. data.crop_size {fit}") and "n_layers_d" not in message.split(";")[1], message
    assert load_config("drit", [f"data.load_size={fit}", f"data.crop_size={fit}"]).data.crop_size == fit


def test_a_damaged_network_file_at_the_latest_checkpoint_says_how_to_resume_from_an_earlier_one(
        tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    """`train --resume RUN` with a truncated G.safetensors at the latest step: `... restore it from a copy, or point at
    another checkpoint`, and --resume takes no checkpoint; no page said how (round thirty-five (C)). The advice
    names the step_N folder for commands that take a checkpoint and the link that makes a resume start there; both,
    followed, work."""
    import os

    from srunit.engine import Trainer
    from srunit.errors import CheckpointError
    from srunit.inference import Translator

    config = tiny_config("cut", "train.steps=2", "train.checkpoint_every=1", "train.keep_every=1", "train.name=r",
                         data_root=tiny_data, runs_dir=tmp_path)
    run = Trainer(config, show_progress=False).fit()
    checkpoints = run / "checkpoints"
    latest = checkpoints / os.readlink(checkpoints / "latest")
    (latest / "G.safetensors").write_bytes((latest / "G.safetensors").read_bytes()[:100])
    with pytest.raises(CheckpointError) as err:
        Trainer.resume(run, ["train.steps=3"], show_progress=False)
    assert "give RUN/checkpoints/step_N where a command takes a checkpoint, or resume from it (ln -sfn step_N " \
           "RUN/checkpoints/latest)" in str(err.value), err.value
    Translator.from_checkpoint(checkpoints / "step_00000001")  # the earlier step, where a checkpoint is taken
    (checkpoints / "latest").unlink()
    (checkpoints / "latest").symlink_to("step_00000001")  # ln -sfn step_00000001 RUN/checkpoints/latest
    assert Trainer.resume(run, ["train.steps=3"], show_progress=False).fit() == run


@pytest.mark.parametrize("text", ["base:\nmodel: {ngf: 4}\n", "model: {ngf: 4}\n"])
def test_a_preset_file_that_names_no_method_is_named_with_the_ways_to_name_one(tmp_path: Path, text: str) -> None:
    """A preset file with `base:` empty, or with neither base: nor method.name: `method.name is missing; known
    methods: ...`, naming neither the file nor base: (round thirty-five (C), noted). Each way out it names is taken."""
    from srunit.config import load_config

    path = tmp_path / "nb.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))} names no method: .* add base: PRESET \(one of "
                                          r"cut, .*\) or method: \{name: METHOD\} to it, or give method\.name"):
        load_config(path)
    assert load_config(path, ["method.name=cut"]).method.name == "cut"
    path.write_text(text.replace("base:\n", "base: cut\n") if text.startswith("base:") else f"base: cut\n{text}")
    assert load_config(path).model.ngf == 4
    path.write_text(f"{text}method: {{name: cut}}\n")
    assert load_config(path).method.name == "cut"


def test_a_preset_file_that_clears_its_bases_method_section_is_told_so(tmp_path: Path) -> None:
    """`base: cut` with `method: ~` (or an empty `method:`): `names no method: neither a base: preset nor ...; add
    base: PRESET`, though the file had one (round thirty-five (D)). The null that clears the section is named."""
    from srunit.config import load_config

    path = tmp_path / "nm.yaml"
    for line in ("method: ~", "method:"):
        path.write_text(f"base: cut\n{line}\nmodel: {{ngf: 4}}\n")
        with pytest.raises(ConfigError, match=r"nm\.yaml: its chain sets method: null \(or an empty method:\), which "
                                              r"clears the method section its base: gives"):
            load_config(path)
        assert load_config(path, ["method.name=cut"]).method.name == "cut"  # the way out it names


@pytest.mark.parametrize("argv", [
    ["bench", "synthscapes", "--methods", "cut", "--records", "-", "--zz-unknown"],
    ["tune", "synthscapes", "--preset", "cut", "--cache-dir", "-", "--zz-unknown"],
    ["tune", "synthscapes", "--preset", "cut", "--records", "-", "--zz-unknown"],
    ["demo", "--cache-dir", "-", "--zz-unknown"],  # an unknown option: argparse ends a regression at once
    ["train", "--preset", "cut", "--train.runs_dir", "-", "--dry-run"],
], ids=lambda argv: " ".join(argv[:2] + [a for a in argv[2:] if a.startswith("--") and a != "--zz-unknown"][-1:]))
def test_a_dash_for_a_folder_srunit_writes_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], cli_status,
                                                      argv: list[str]) -> None:
    """`--records -`, `--cache-dir -` and `--train.runs_dir -` made a folder named - and wrote into it without a word,
    after `--out -` and `--json -` were refused (round thirty-five (D))."""
    monkeypatch.chdir(tmp_path)
    assert cli_status(argv) == 2
    err = capsys.readouterr().err
    assert "'-' is not standard output here" in err, err
    assert not (tmp_path / "-").exists()


def test_tune_data_names_a_validation_image_without_a_label_map_before_any_training(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_status,
        write_image) -> None:
    """`tune data --val-images A --val-labels L`, A holding 0004.png that L has no label map of: trial 0 trained, then
    its scoring named the trial's own translated copy (`OUT/trials/RUN/eval/translated/0004.png`); removing it as
    advised trained and failed another trial (round thirty-five (D)). The user's image is named before anything."""
    import numpy as np

    monkeypatch.chdir(tmp_path)
    for domain in ("trainA", "trainB"):
        for i in range(2):
            write_image(Path("data") / domain / f"{i}.png", size=(16, 16))
    for i in range(3):
        write_image(Path("val") / f"000{i + 2}.png", size=(16, 16))
    Path("labels").mkdir()
    from PIL import Image

    for i in range(2):
        Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(Path("labels") / f"000{i + 2}.png")
    Path("myseg.py").write_text("import numpy as np\n\ndef seg(image):\n    return np.zeros(image.shape[:2], int)\n")
    argv = ["tune", "data", "--preset", "cut", "--data", "data", "--val-images", "val", "--val-labels", "labels",
            "--segmenter", "myseg.py:seg", "--classes", "2", "--trials", "1", "--out", "o"]
    assert cli_status(argv) == 2
    err = capsys.readouterr().err
    assert "1 --val-images image file(s) have no --val-labels label map partner with the same name stem in labels: " \
           "val/0004.png; add the missing files or remove these" in err, err
    assert not Path("o").exists()
