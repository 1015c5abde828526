"""Advice that is right, end to end: what each command says names only its own options and what is true."""

from __future__ import annotations

from pathlib import Path

import pytest

from srunit.cli import main as cli_main
from srunit.cli.main import main


@pytest.mark.parametrize("command", ["translate", "export", "eval", "report"])
def test_ctrl_c_outside_training_speaks_of_no_checkpoint(command: str, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    def interrupted(args: object, extra: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main.command_module(command), "run", interrupted)
    argv = {"translate": ["translate", "--checkpoint", "r", "--input", "i", "--output", "o"],
            "export": ["export", "r", "--output", "g.onnx"],
            "eval": ["eval", "paired", "--pred", "p", "--target", "t"],
            "report": ["report", "r"]}[command]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"srunit {command}: interrupted") and "checkpoint" not in err
    if command == "translate":
        assert "--overwrite" in err and "whole" in err


def test_ctrl_c_before_training_began_says_to_run_the_command_again(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    # A KeyboardInterrupt that reaches `main` from `srunit train` came before training (Ctrl-C in training stops at
    # a checkpoint, and one raised inside a step names the run: test_round_twenty_variants.py); it advised
    # `--resume RUN_DIR`, a placeholder, for a run that may not exist.
    def interrupted(args: object, extra: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main.command_module("train"), "run", interrupted)
    assert main(["train"]) == 130
    assert capsys.readouterr().err == "srunit train: interrupted; training had not started; run the command again\n"


def test_top_level_help_lists_every_method(capsys: pytest.CaptureFixture) -> None:
    from srunit.registry import METHODS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in METHODS.names():
        assert f" {name}," in out or f" {name}." in out, name


def test_crop_size_advice_is_a_sensible_value(capsys: pytest.CaptureFixture) -> None:
    # A deep PatchGAN made the "fix" data.crop_size 3 x 2^50 = 3377699720527872: the depth is bounded now ...
    assert main(["train", "--preset", "cut", "--model.n_layers_d", "50"]) == 2
    err = capsys.readouterr().err
    assert "model.n_layers_d: invalid value 50; allowed: an integer from 1 to 10" in err
    assert "3377699720527872" not in err
    # ... and a crop too small for D is offered a shallower D, not only a larger crop.
    assert main(["train", "--preset", "cut", "--data.crop_size", "20", "--model.n_layers_d", "4"]) == 2
    err = capsys.readouterr().err
    assert "use e.g. data.crop_size 48, or model.n_layers_d 2 with data.crop_size 20" in err


def _options_of(argv: list[str]) -> set[str]:
    """Every option string of the (sub)command that ``argv`` names."""
    import argparse

    parser = cli_main.build_parser()
    for word in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            break
        parser = subs[0].choices[word]
    return {s for a in parser._actions for s in a.option_strings}


def _named_options(message: str) -> set[str]:
    import re

    return set(re.findall(r"(?<![\w-])--[a-z][\w.-]*[a-z_]", message))


def test_messages_name_only_options_of_their_command(tmp_path: Path, python_segmenter: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    """Unreadable and too large images, a missing folder: eval and translate once suggested the training options
    --data.skip_bad_images, --data.root and data.max_pixels, which they do not have."""
    from PIL import Image

    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    Image.new("RGB", (4, 4)).save(good / "x.png")
    (bad / "x.png").write_text("not an image")
    Image.new("L", (4, 4)).save(tmp_path / "x.png")
    labels = tmp_path / "labels"
    labels.mkdir()
    Image.new("L", (4, 4)).save(labels / "x.png")
    cases = [
        ["eval", "paired", "--pred", str(bad), "--target", str(good)],
        ["eval", "paired", "--pred", str(tmp_path / "nowhere"), "--target", str(good)],
        ["eval", "seg", "--images", str(bad), "--labels", str(labels), "--segmenter",
         f"{python_segmenter}:segment", "--classes", "3"],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "error:" in err and "data." not in err, (argv, err)
        assert _named_options(err) <= _options_of(argv), (argv, err)


def test_pixel_limit_names_an_option_only_where_the_command_has_one(tmp_path: Path) -> None:
    from PIL import Image

    from srunit.data import load_rgb
    from srunit.errors import DataError

    Image.new("RGB", (10, 10)).save(tmp_path / "x.png")
    with pytest.raises(DataError) as e:
        load_rgb(tmp_path / "x.png", max_pixels=50)
    assert "shrink it (memory" in str(e.value) and "pass" not in str(e.value)
    with pytest.raises(DataError, match="or pass --max-pixels 100 to allow it"):
        load_rgb(tmp_path / "x.png", max_pixels=50, limit_option="--max-pixels")


def test_translate_takes_a_b_to_a_export_with_its_direction(tiny_config, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    """An export of the B -> A generator with --direction BtoA was refused with the advice to do just that."""
    import numpy as np
    import torch
    from PIL import Image

    from srunit.engine.checkpoint import save_checkpoint
    from srunit.export import export_generator
    from srunit.methods import build_method

    config = tiny_config(None, "method.name=cyclegan", "model.n_blocks=1", "model.ngf=4", "model.ndf=4")
    method = build_method(config.method, config.model)
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints", 1, {k: v for k, v in method.networks().items() if k in ("G", "G_BA")},
                    {"step": 1}, keep=True)
    (run / "config.yaml").write_text(config.to_yaml())
    export_generator(run, tmp_path / "ba.ts", direction="BtoA", check_sizes=((1, 16, 16),))
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(inp / "a.png")

    def translate(checkpoint: Path, out: str, *direction: str) -> int:
        return main(["translate", "--checkpoint", str(checkpoint), "--input", str(inp), "--output",
                     str(tmp_path / out), "--device", "cpu", *direction])

    assert translate(tmp_path / "ba.ts", "o1", "--direction", "BtoA") == 0
    assert translate(tmp_path / "ba.ts", "o2") == 0  # the export's own direction
    assert translate(tmp_path / "ba.ts", "o3", "--direction", "AtoB") == 2
    err = capsys.readouterr().err
    assert "was exported with --direction BtoA" in err and "leave --direction out" in err
    # the B -> A network file itself, with --direction BtoA, as the old advice said to give it
    g_ba = next((run / "checkpoints").glob("step_*/G_BA.safetensors"))
    assert translate(g_ba, "o4", "--direction", "BtoA") == 0
    assert translate(g_ba.with_name("G.safetensors"), "o5", "--direction", "BtoA") == 2
    assert "holds the A -> B generator" in capsys.readouterr().err
    with torch.no_grad():
        assert np.array_equal(np.asarray(Image.open(tmp_path / "o1" / "a.png")),
                              np.asarray(Image.open(tmp_path / "o2" / "a.png")))


def test_history_records_the_overrides_of_the_start(tiny_data: Path, tiny_model_overrides: list[str],
                                                    tmp_path: Path) -> None:
    import json

    given = ["--data.root", str(tiny_data), "--data.load_size", "36", "--data.crop_size=32", "--data.num_workers",
             "0", "--train.device", "cpu", "--train.steps", "1", "--train.runs_dir", str(tmp_path),
             "--train.name", "r", *[f"--{o}" for o in tiny_model_overrides], "--model.n_blocks", "1"]
    assert main(["train", "--preset", "cut", "--no-progress", *given]) == 0
    start = json.loads((tmp_path / "r" / "history.jsonl").read_text().splitlines()[0])
    assert start["event"] == "start"
    assert start["overrides"] == {"data.root": str(tiny_data), "data.load_size": "36", "data.crop_size": "32",
                                  "data.num_workers": "0", "train.device": "cpu", "train.steps": "1",
                                  "train.runs_dir": str(tmp_path), "train.name": "r",
                                  **dict(o.split("=", 1) for o in tiny_model_overrides), "model.n_blocks": "1"}


def test_translate_of_a_training_run_survives_checkpoint_rotation(tiny_runs: dict[str, Path], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """Rotation deletes the step `latest` named while translate reads it: the new latest is read, and no message
    ever advises restoring a file."""
    import os
    import shutil

    import numpy as np
    from PIL import Image

    from srunit import inference

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["srunit"], run, symlinks=True)
    checkpoints = run / "checkpoints"
    old = (checkpoints / "latest").resolve()
    new = checkpoints / "step_00000002"
    shutil.copytree(old, new)
    real = inference.load_translator
    calls: list[Path] = []

    def rotate_then_read(path: Path):  # noqa: ANN202 - what training does between resolve and read
        calls.append(path)
        if len(calls) == 1:
            os.replace(checkpoints / "latest", checkpoints / "gone")
            (checkpoints / "latest").symlink_to(new.name)
            shutil.rmtree(old)
        return real(path)

    monkeypatch.setattr(inference, "load_translator", rotate_then_read)
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(inp / "a.png")
    assert main(["translate", "--checkpoint", str(run), "--input", str(inp), "--output", str(tmp_path / "o"),
                 "--device", "cpu"]) == 0
    assert [p.parent.name for p in calls] == [old.name, new.name]
    # the same through RUN/checkpoints/latest itself
    calls.clear()
    old = new
    new = checkpoints / "step_00000003"
    shutil.copytree(old, new)
    (checkpoints / "gone").unlink()
    assert main(["translate", "--checkpoint", str(checkpoints / "latest"), "--input", str(inp), "--output",
                 str(tmp_path / "o1"), "--device", "cpu"]) == 0
    assert [p.parent.name for p in calls] == [old.name, new.name]
    # a step folder named by the user cannot be replaced by a newer one: say so, without "restore"
    calls.clear()
    old = new
    new = checkpoints / "step_00000004"
    shutil.copytree(old, new)
    (checkpoints / "gone").unlink()
    assert main(["translate", "--checkpoint", str(old), "--input", str(inp), "--output", str(tmp_path / "o2"),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "was deleted while it was read" in err and "give the run folder" in err and "restore" not in err


def test_train_help_shows_the_values_and_method_of_the_preset(capsys: pytest.CaptureFixture) -> None:
    import re

    from srunit.config import load_config

    config = load_config("cyclegan")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--preset", "cyclegan", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out

    def shown(key: str) -> str:
        return re.search(rf"^\s+--{re.escape(key)}\s+(\S+)", out, re.M).group(1)  # type: ignore[union-attr]

    # As typed (round thirty-seven): the class default is True, the preset's False
    assert shown("model.antialias") == "false" and config.model.antialias is False
    assert shown("train.name") == "cyclegan" and shown("train.epochs") == str(config.train.epochs)
    assert len(re.findall(r"^\s+--method.name ", out, re.M)) == 1  # one method's options, once
    assert "--method.lambda_a" in out and "--method.nce" not in out
    # overrides given with --help are shown in force too
    with pytest.raises(SystemExit):
        main(["train", "--preset", "cyclegan", "--train.epochs", "7", "--help"])
    assert re.search(r"--train.epochs\s+7\s", capsys.readouterr().out)


def _fake_run(root: Path, step: int) -> Path:
    from srunit.runtime.run_folder import LATEST, STATE_FILE, checkpoint_name

    run = root / "run"
    (run / "checkpoints" / checkpoint_name(step)).mkdir(parents=True, exist_ok=True)
    (run / "checkpoints" / checkpoint_name(step) / STATE_FILE).write_text("{}")
    (run / "config.yaml").write_text("method:\n  name: cut\n")
    latest = run / "checkpoints" / LATEST
    latest.unlink(missing_ok=True)
    latest.symlink_to(checkpoint_name(step))
    return run


def test_eval_into_a_run_never_mixes_two_image_sets_or_steps(tmp_path: Path, python_segmenter: Path,
                                                             paired_folders: tuple[Path, Path],
                                                             capsys: pytest.CaptureFixture) -> None:
    """eval seg then eval paired --run on other images once made one record of two image sets, with no step."""
    import json

    import numpy as np
    from PIL import Image

    run = _fake_run(tmp_path, 5)
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    Image.new("RGB", (2, 2), (200, 0, 0)).save(images / "a.png")
    Image.fromarray(np.zeros((2, 2), np.uint8), mode="L").save(labels / "a.png")
    seg = ["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
           f"{python_segmenter}:segment", "--classes", "3", "--run", str(run)]
    assert main(seg) == 0
    record_file = run / "eval" / "scores.json"
    record = json.loads(record_file.read_text())
    assert record["checkpoint_step"] == 5 and len(record["images_digest"]) == 64 and record["num_translated"] == 1
    before = record_file.read_bytes()
    pred, target = paired_folders
    paired = ["eval", "paired", "--pred", str(pred), "--target", str(target), "--run", str(run)]
    assert main(paired) == 2
    err = capsys.readouterr().err
    assert "holds segmentation scores of other images" in err and "--replace-record" in err
    assert record_file.read_bytes() == before and sorted(p.name for p in (run / "eval" / "translated").iterdir()) \
        == ["a.png"]  # nothing changed
    assert main([*paired, "--replace-record"]) == 0
    record = json.loads(record_file.read_text())
    assert "segmentation" not in record and "paired" in record and not (run / "eval" / "predicted").exists()
    # the same images scored again at another checkpoint step: refused too
    _fake_run(tmp_path, 6)
    assert main(paired) == 2
    assert "checkpoint of step 5 (the run is at step 6 now)" in capsys.readouterr().err
    assert main([*paired, "--replace-record"]) == 0 and json.loads(record_file.read_text())["checkpoint_step"] == 6


def test_report_does_not_show_images_beside_scores_of_other_images(tmp_path: Path,
                                                                   paired_folders: tuple[Path, Path]) -> None:
    """A kill between writing the images and the scores of `eval --run` left new images beside old scores."""
    from PIL import Image

    from srunit.report.runs import load_run

    run = _fake_run(tmp_path, 5)
    pred, target = paired_folders
    assert main(["eval", "paired", "--pred", str(pred), "--target", str(target), "--run", str(run)]) == 0
    assert load_run(run).scores["images"]["translated"] == "translated" and not load_run(run).warnings
    Image.new("RGB", (2, 2), (1, 2, 3)).save(run / "eval" / "translated" / "a.png")  # the next eval's images
    loaded = load_run(run)
    assert "images" not in loaded.scores and "paired" in loaded.scores
    assert any("does not hold the images the scores" in w for w in loaded.warnings)


def test_eval_seg_has_a_builtin_synthscapes_scorer(tiny_data: Path, tiny_segmenter_settings, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    import json

    from srunit.synthscapes import settings
    from srunit.synthscapes.scenes import CLASS_NAMES, PALETTE

    monkeypatch.setenv("SRUNIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(settings, "scorer_settings", lambda size: tiny_segmenter_settings)  # trains in a moment
    run = _fake_run(tmp_path, 1)
    argv = ["eval", "seg", "--images", str(tiny_data / "testB"), "--labels", str(tiny_data / "testLabels"),
            "--segmenter", "synthscapes", "--classes", "8", "--class-names", "synthscapes", "--run", str(run)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "segmenter: the SynthScapes scorer" in out and "sidewalk" in out
    assert list((tmp_path / "cache").glob("synthscapes-segmenter-*.safetensors"))  # cached for the next call
    record = json.loads((run / "eval" / "scores.json").read_text())
    assert record["class_names"] == list(CLASS_NAMES) and record["palette"] == PALETTE.tolist()
    assert record["segmenter"] == "synthscapes"
