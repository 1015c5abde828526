"""Round twenty (A): recent rows in variants they do not name.

docs/what-survives-what.md, "Round twenty (A)", lists the cases; each test here failed before its fix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.config import Config
from srunit.errors import DataError, MethodError


@pytest.fixture
def plugins(load_test_plugins: Callable[..., None]) -> None:
    """The misbehaving method and the constant term imported as srunit imports plugins (see `load_test_plugins`)."""
    load_test_plugins("misbehaving", "constant_term")


@pytest.mark.parametrize("fault", ["attribute", "key"])
def test_a_plugins_load_extra_state_that_raises_on_resume_names_the_plugin_and_keeps_the_checkpoint(
        plugins: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    # An AttributeError in a plugin's load_extra_state was a traceback on --resume; a KeyError (or RuntimeError) said
    # "state.pt does not fit this run ...; the file is damaged: use an earlier step_N checkpoint", and every earlier
    # checkpoint failed the same way: the file was whole, the plugin was at fault.
    from srunit.engine import Trainer

    config = tiny_config(None, "method.name=misbehaving", "train.steps=2", "train.name=bad", data_root=tiny_data,
                         runs_dir=tmp_path)
    run = Trainer(config, show_progress=False).fit()
    state = run / "checkpoints" / "step_00000002" / "state.pt"
    before = hashlib.sha256(state.read_bytes()).hexdigest()
    monkeypatch.setenv("MISBEHAVING_LOAD_FAULT", fault)
    with pytest.raises(MethodError) as caught:
        Trainer.resume(run, ["train.steps=3"], show_progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("method 'misbehaving' (misbehaving.Misbehaving) failed in plugin module 'misbehaving' "
                              "while its load_extra_state() read the checkpoint: ")
    assert f"{state} was not changed: fix the plugin and resume again with `srunit train --resume {run}`" in message
    assert "damaged" not in message
    assert hashlib.sha256(state.read_bytes()).hexdigest() == before
    monkeypatch.delenv("MISBEHAVING_LOAD_FAULT")  # the plugin fixed: the advised resume works
    trainer = Trainer.resume(run, ["train.steps=3"], show_progress=False)
    assert trainer.step == 2
    trainer.fit()
    assert (run / "checkpoints" / "step_00000003").is_dir()


def test_a_term_plugin_whose_loss_is_a_float_stops_the_run_naming_the_term(
        plugins: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    # A term's loss() returning a Python float was added to G's loss as a constant: CUT trained without a word, and
    # the term (method.constant.weight 0.1 here) did nothing.
    from srunit.engine import Trainer

    config = tiny_config("cut", "method.constant.weight=0.1", "train.steps=2", "train.name=const",
                         data_root=tiny_data, runs_dir=tmp_path)
    with pytest.raises(MethodError, match=r"^loss term 'constant' \(constant_term.Constant\): its loss\(\) returned "
                                          r"a value of type float \(0.05\); a term's loss\(\) returns"):
        Trainer(config, show_progress=False).fit()


def _images(root: Path, side: int) -> Path:
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir(parents=True)
        for i in range(2):
            pixels = np.random.default_rng(i).integers(0, 256, (side, side, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / domain / f"{i}.png")
    return root


def test_drit_images_kept_at_their_size_are_checked_against_drits_discriminators_before_the_run_folder(
        tiny_config: Callable[..., Config], tmp_path: Path) -> None:
    # DRIT with data.preprocess none on 32 x 32 images passed the header check (the patch discriminator's 24 pixels),
    # made the run folder (config.yaml, run.json, train.lock ...), then failed at the first batch with
    # "data.crop_size: DRIT's discriminators take images of at least 209x209 pixels ...; use larger crops", an option
    # data.preprocess none does not use.
    from srunit.engine import Trainer
    from srunit.engine.dryrun import dry_run

    data = _images(tmp_path / "data", 32)
    config = tiny_config("drit", "data.preprocess=none", "method.dis_layers=4", "method.content_dis_layers=3",
                         "method.dis_scales=3", "train.batch_size=1", "train.name=d", data_root=data,
                         runs_dir=tmp_path / "runs")
    # 209: the smallest side for 3 scales, 4 layers and 3 content layers, as docs/what-survives-what.md (round fifteen)
    pattern = (r"^image file .*0\.png is 32 x 32; data\.preprocess none keeps it at 32 x 32, a side shorter than the "
               r"209 pixels DRIT's discriminators take with method\.dis_scales 3, method\.dis_layers 4 and "
               r"method\.content_dis_layers 3 \(fewer layers take smaller images\); use a cropping data\.preprocess")
    with pytest.raises(DataError, match=pattern) as caught:
        Trainer(config, show_progress=False)
    assert "data.crop_size:" not in str(caught.value) and "n_layers_d" not in str(caught.value)
    # the crop it gives, followed, is taken: 209 is no multiple of 4 and was refused (round thirty-six (G))
    assert "data.load_size and data.crop_size of at least 212, a multiple of 4" in str(caught.value)
    cropped = tiny_config("drit", "data.preprocess=resize_and_crop", "data.load_size=212", "data.crop_size=212",
                          "method.dis_layers=4", "method.content_dis_layers=3", "method.dis_scales=3",
                          "train.batch_size=1", "train.name=d", data_root=data, runs_dir=tmp_path / "runs")
    assert cropped.data.crop_size == 212
    assert not (tmp_path / "runs").exists()
    with pytest.raises(DataError, match=pattern):
        dry_run(config)
    # fewer layers, as the message says: 32 x 32 images train kept at their size
    fewer = tiny_config("drit", "data.preprocess=none", "method.dis_layers=3", "method.content_dis_layers=0",
                        "method.dis_scales=1", "train.batch_size=1", "train.steps=1", "train.name=d", data_root=data,
                        runs_dir=tmp_path / "runs")
    assert (Trainer(fewer, show_progress=False).fit() / "checkpoints" / "latest").exists()


@pytest.mark.parametrize(("items", "word"), [("[yes]", "yes"), ("[tensorboard, No]", "No"), ("[OFF, on]", "OFF")])
def test_a_yaml_boolean_in_a_list_is_quoted_as_the_user_wrote_it(tmp_path: Path, items: str, word: str) -> None:
    # `loggers: [yes]` advised "quote the word ('on')", a word the file never held (round nineteen B tracked the words
    # of mappings' values only).
    from srunit.config import load_config
    from srunit.errors import ConfigError

    base = tmp_path / "base.yaml"
    base.write_text(f"base: cut\ntrain:\n  loggers: {items}\n")
    preset = tmp_path / "mine.yaml"
    preset.write_text("base: base.yaml\ntrain:\n  steps: 2\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(base))}: train\.loggers: got the boolean .*quote the "
                                          rf"word \('{word}'\) if you mean it as train\.loggers$"):
        load_config(preset)


def _segment_nothing(tmp_path: Path) -> str:
    module = tmp_path / "zeros.py"
    module.write_text("import numpy as np\n\ndef seg(a):\n    return np.zeros(a.shape[:2], dtype=np.int64)\n")
    return f"{module}:seg"


@pytest.mark.parametrize("where", ["eval", "eval/masks"])
def test_a_file_where_run_eval_belongs_is_named_with_a_copy_advice_that_is_then_taken(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        where: str) -> None:
    # RUN/eval as a file was "--run RUN/eval is a file; give a folder (new or empty) to write into": an option value
    # the user never gave, and advice no run folder can follow. RUN/eval/masks as a file advised "evaluate into a copy
    # of the run": a copy made with cp -r holds the same file and was refused the same way.
    import shutil
    import subprocess

    from srunit.cli.main import main

    run = tmp_path / "r1"
    shutil.copytree(tiny_runs["cut"], run)
    place = run / where
    place.parent.mkdir(parents=True, exist_ok=True)
    place.write_text("mine")
    args = ["eval", "seg", "--images", str(tiny_data / "testA"), "--labels", str(tiny_data / "testLabels"),
            "--segmenter", _segment_nothing(tmp_path), "--classes", "8"]
    capsys.readouterr()
    assert main([*args, "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"srunit eval seg: error: --run {run}: {place} is a file, not a folder; ")
    assert "new or empty" not in err and place.read_text() == "mine"
    copy = tmp_path / "r1-2"
    advice = f"cp -r {run} {copy} && rm -r {copy / 'eval'}, then --run {copy}"
    assert advice in err
    subprocess.run(advice.split(", then")[0], shell=True, check=True)  # the advice, as printed
    assert main([*args, "--run", str(copy)]) == 0, capsys.readouterr().err
    assert (copy / "eval" / "scores.json").is_file()


def test_a_dry_run_refuses_activation_checkpointing_for_drit_as_training_does(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    # `train --preset drit --train.activation_checkpointing true --dry-run` printed the one batch's losses and passed;
    # the same command without --dry-run was refused ("allowed: false for DRIT").
    from srunit.engine.dryrun import dry_run
    from srunit.errors import ConfigError

    config = tiny_config("drit", "train.activation_checkpointing=true", data_root=tiny_data, runs_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"^train\.activation_checkpointing: invalid value True; allowed: false for "
                                          r"DRIT"):
        dry_run(config)


def test_a_plugins_keyboard_interrupt_names_the_run_to_resume(plugins: None, tiny_model_overrides: list[str],
                                                              tiny_data: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    # A KeyboardInterrupt raised in a plugin's step (not Ctrl-C, which stops at a checkpoint) ended with the advice
    # "continue with srunit train --resume RUN_DIR", a placeholder; it names the run now, and resuming it works.
    from srunit.cli.main import main

    monkeypatch.setenv("MISBEHAVING_FAULT", "interrupt")
    argv = ["train", "--method.name", "misbehaving", *(f"--{item}" for item in tiny_model_overrides),
            "--data.root", str(tiny_data), "--train.runs_dir", str(tmp_path), "--train.name", "stop",
            "--train.steps", "4", "--train.checkpoint_every", "2", "--no-progress", "--data.load_size", "36",
            "--data.crop_size", "32"]
    argv = [part for item in argv for part in (item.split("=", 1) if item.startswith("--model.") else [item])]
    assert main(argv) == 130
    run = tmp_path / "stop"
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"srunit train: interrupted; the last saved checkpoint is intact; continue with srunit train "
                   f"--resume {run}")
    monkeypatch.delenv("MISBEHAVING_FAULT")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert (run / "checkpoints" / "step_00000004").is_dir()
