"""Round twelve, a confirmation probe of issue 24's classes aimed at the Python API as a library user meets it
(`Config`, `Trainer.fit`, the eval and data functions), the config file route, `srunit report` on half-finished runs
and docs/reference/cli.md against the command line. Each test reproduced a defect first."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.config import Config, load_config
from srunit.data import pil_to_tensor
from srunit.engine import Trainer
from srunit.errors import ConfigError
from srunit.eval import (
    ConfusionMatrix,
    check_deltas,
    parse_deltas,
    pixel_distance_and_accuracy,
    score_segmentation,
    segmentation_scores,
)
from srunit.options import TrainConfig
from srunit.report.page import render_report
from srunit.report.runs import load_run

ROOT = Path(__file__).resolve().parents[1]


def test_config_with_overrides_given_one_string_names_the_argument() -> None:
    # One string was iterated as its characters: `override 't' must look like section.key=value`; None was
    # Python's "'NoneType' object is not iterable".
    config = load_config("cut")
    with pytest.raises(TypeError, match=r"Config\.with_overrides: overrides must be a list .* \['train\.steps=2'\]"):
        config.with_overrides("train.steps=2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Config\.with_overrides: overrides must be a list .* got NoneType"):
        config.with_overrides(None)  # type: ignore[arg-type]
    assert config.with_overrides(["train.steps=3"]).train.steps == 3
    assert config.with_overrides({"train.steps": 4}).train.steps == 4


def test_a_config_built_by_hand_with_a_section_of_the_wrong_type_names_it() -> None:
    # Config(method=None) was an AttributeError from inside its own checks ('NoneType' ... 'check_data').
    config = load_config("cut")
    with pytest.raises(TypeError, match=r"Config: method must be a MethodOptions, got NoneType None; .*load_config"):
        Config(method=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Config: train must be a TrainConfig, got dict"):
        Config(method=config.method, train={"steps": 2})  # type: ignore[arg-type]
    assert Config(method=config.method, model=config.model, data=config.data, train=config.train) == config


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("train:\n  name: null\n", r"train\.name: invalid value null; allowed: a string"),  # it named the run 'None'
    ("train:\n  name: !!binary aGVsbG8=\n", r"train\.name: invalid value b'hello'"),  # it named the run "b'hello'"
    ("train:\n  runs_dir: ~\n", r"train\.runs_dir: invalid value null"),
    ("data: []\n", r"data: expected a mapping of keys, got \[\]"),  # an empty list was taken for the defaults
    ("train: 0\n", r"train: expected a mapping of keys, got 0"),
])
def test_a_yaml_null_bytes_or_empty_list_is_refused_where_a_name_or_a_section_belongs(
        tmp_path: Path, yaml_text: str, message: str) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text("base: cut\n" + yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(preset)


def test_names_that_yaml_reads_as_numbers_or_dates_are_still_names(tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text("base: cut\ntrain:\n  name: 2026-12-06\n  runs_dir: 1.5\n", encoding="utf-8")
    config = load_config(preset)
    assert (config.train.name, config.train.runs_dir) == ("2026-12-06", "1.5")
    preset.write_text("base: cut\ntrain: null\n", encoding="utf-8")  # a null section is the defaults, as before
    assert load_config(preset).train == TrainConfig()


@pytest.mark.slow  # builds a Trainer (networks, data, run folder): 1.5 s
def test_fit_refuses_a_stop_step_that_would_train_nothing(tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    # fit(stop_at=-1) returned the run folder, status 0, having trained nothing; stop_at='1' was Python's
    # "'<' not supported between instances of 'int' and 'str'".
    trainer = Trainer(tiny_config("cut", "train.steps=2", data_root=tiny_data, runs_dir=tmp_path), show_progress=False)
    try:
        with pytest.raises(ConfigError, match=r"stop_at -1 is not after the run's step 0, so nothing would be trained"):
            trainer.fit(stop_at=-1)
        with pytest.raises(ConfigError, match=r"stop_at 0 is not after the run's step 0"):
            trainer.fit(stop_at=0)
        with pytest.raises(TypeError, match=r"Trainer\.fit: stop_at must be an integer step .*, got str '1'"):
            trainer.fit(stop_at="1")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"got bool True"):
            trainer.fit(stop_at=True)
    finally:
        trainer.release()
    assert not (tmp_path / "cut" / "checkpoints" / "latest").exists()


def test_pixel_distance_and_accuracy_refuses_arrays_it_would_score_wrongly() -> None:
    # A list or a tensor was an AttributeError; a 16-bit array overflowed int32 into NaN distances (a RuntimeWarning
    # and a NaN score); floats in 0..1 were scored as 0..255 values; deltas of 0 or -5 counted no pixel.
    zeros = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(TypeError, match=r"pred must be a numpy uint8 \(H, W, 3\) RGB array, got list"):
        pixel_distance_and_accuracy([[[0, 0, 0]]], zeros)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"target must be a numpy uint8 .* got Tensor"):
        pixel_distance_and_accuracy(zeros, torch.zeros(2, 2, 3, dtype=torch.uint8))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"target must be a numpy uint8 .* got a uint16 array"):
        pixel_distance_and_accuracy(zeros, np.full((2, 2, 3), 60000, np.uint16))
    with pytest.raises(TypeError, match=r"got a float64 array"):
        pixel_distance_and_accuracy(np.ones((2, 2, 3)), zeros)
    with pytest.raises(ConfigError, match=r"--delta must be .* in 1\.\.256, got \[0, -5\]"):
        pixel_distance_and_accuracy(zeros, zeros, deltas=[0, -5])
    white = np.full((2, 2, 3), 255, np.uint8)
    total, count, hits = pixel_distance_and_accuracy(zeros, white, (30,))
    assert total == pytest.approx(4 * 255 * 3 ** 0.5) and count == 4 and hits == {30: 0}


def test_check_and_parse_deltas_name_an_argument_of_the_wrong_type() -> None:
    # check_deltas('30') read the text as the deltas '3' and '0'; check_deltas(30) and parse_deltas(30) were
    # Python's "'int' object is not iterable" and an AttributeError.
    with pytest.raises(TypeError, match=r"deltas must be a list of integers .* got str '30,50'; parse_deltas"):
        check_deltas("30,50")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"deltas must be a list of integers .* got int 30"):
        check_deltas(30)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"parse_deltas: text must be a string such as '30,50', got int 30"):
        parse_deltas(30)  # type: ignore[arg-type]
    assert check_deltas([30, 50]) == parse_deltas("30,50") == (30, 50)


def test_segmentation_scores_name_arguments_of_the_wrong_type(tmp_path: Path) -> None:
    # An array of counts as `cm` was an AttributeError ('numpy.ndarray' object has no attribute 'num_classes');
    # class_names='abc' named the three classes 'a', 'b' and 'c'; a segment of None or 'synthscapes' failed on
    # the first image as "'str' object is not callable".
    cm = ConfusionMatrix(3)
    cm.update(np.zeros((2, 2), np.int64), np.zeros((2, 2), np.int64))
    with pytest.raises(TypeError, match=r"segmentation_scores: cm must be a ConfusionMatrix, got ndarray"):
        segmentation_scores(np.zeros((3, 4)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"class_names must be a list of names, one per class, got str 'abc'"):
        segmentation_scores(cm, "abc")
    assert segmentation_scores(cm, ["a", "b", "c"]).pixel_accuracy == 1.0
    with pytest.raises(TypeError, match=r"score_segmentation: segment must be a function .* got str 'synthscapes'"):
        score_segmentation(tmp_path / "images", tmp_path / "labels", "synthscapes", 8)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got NoneType None"):
        score_segmentation(tmp_path / "images", tmp_path / "labels", None, 8)  # type: ignore[arg-type]


def test_pil_to_tensor_given_a_path_names_the_argument() -> None:
    # It was an AttributeError: 'str' object has no attribute 'mode'.
    with pytest.raises(TypeError, match=r"pil_to_tensor: img must be a PIL image, got str 'a\.png'; .*load_rgb"):
        pil_to_tensor("a.png")  # type: ignore[arg-type]
    assert pil_to_tensor(Image.new("RGB", (3, 2), (255, 0, 0)))[:, 0, 0].tolist() == [1.0, -1.0, -1.0]


def test_a_run_killed_before_its_first_checkpoint_is_shown_as_stopped(tmp_path: Path) -> None:
    # `train` killed while it wrote its first checkpoint: config.yaml and run.json (4 steps planned), no checkpoint,
    # nothing logged. The report's steps cell was empty, as for a folder of no plan, not "stopped".
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text(load_config("cut").to_yaml(), encoding="utf-8")
    (run / "run.json").write_text(json.dumps({"total_steps": 4}), encoding="utf-8")
    (run / "metrics.jsonl").write_text("", encoding="utf-8")
    loaded = load_run(run)
    assert loaded.stopped and loaded.checkpoint_step is None
    assert loaded.steps_shown == "0 of 4 (stopped; continue with srunit train --resume)"
    assert "0 of 4 (stopped; continue with srunit train --resume)" in render_report([loaded])
    (run / "run.json").unlink()  # no plan recorded (another version): nothing can be said, as before
    assert load_run(run).steps_shown == "" and not load_run(run).stopped


def _command_options() -> dict[str, set[str]]:
    """Every `srunit COMMAND [KIND]` and its long options, from the parser itself."""
    from srunit.cli.main import build_parser

    def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(actions[0].choices) if actions else {}

    commands: dict[str, set[str]] = {}
    for name, parser in subparsers(build_parser()).items():
        for command, sub in ({f"{name} {kind}": p for kind, p in subparsers(parser).items()} or {name: parser}).items():
            commands[command] = {o for a in sub._actions for o in a.option_strings if o.startswith("--")} - {"--help"}
    return commands


@pytest.mark.slow  # builds every command's parser (imports every command module)
def test_the_cli_reference_names_every_option_of_every_command_and_no_other() -> None:
    # docs/reference/cli.md left out 45 options of 14 commands (`eval fid --json`, `report --overwrite`, `data split
    # --images-a`, `data maps --input`, `bench synthscapes --device`, ...), while it is the page that lists them.
    reference = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    options = _command_options()
    rows = [line.split("|") for line in reference.splitlines() if line.startswith("| `srunit ")]
    option = re.compile(r"(?<![\w.-])(--[a-z][a-z0-9-]*)(?![\w.])")
    documented: set[str] = set()
    problems = []
    for cells in rows:
        commands = re.findall(r"`srunit ([a-z ]+?)`", cells[1])
        named = set(option.findall("|".join(cells[2:])))
        offered = set().union(*(options[c] for c in commands))
        problems += [f"cli.md names {o} for {commands}, which do not take it" for o in sorted(named - offered)]
        problems += [f"srunit {c} {o} is missing from cli.md" for c in commands for o in sorted(options[c] - named)]
        documented.update(commands)
    assert documented == set(options), f"commands without a row: {sorted(set(options) - documented)}"
    assert not problems, "\n".join(problems)


def test_resume_and_export_name_arguments_of_the_wrong_type(tmp_path: Path) -> None:
    # Batch 4. Trainer.resume(run, overrides=[1]) was an AttributeError ('int' object has no attribute 'partition');
    # export_generator(run, out, direction=None) exported, described the file as "the cyclegan generator (None)" and
    # wrote direction None into its metadata. Both are refused before the run is read.
    from srunit import export_generator

    with pytest.raises(TypeError, match=r"Trainer\.resume: overrides must hold .* strings, got int 1"):
        Trainer.resume(tmp_path / "run", overrides=[1])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"--direction: invalid value None; allowed: AtoB, BtoA"):
        export_generator(tmp_path / "run", tmp_path / "g.pt2", direction=None)  # type: ignore[arg-type]
    assert not (tmp_path / "g.pt2").exists()


def test_overwrite_given_as_text_is_refused_before_anything_is_replaced(tiny_runs: dict[str, Path], tmp_path: Path
                                                                        ) -> None:
    """Python's `if` takes any non-empty text as true: translate_folder(..., overwrite="no") replaced the outputs
    it was told to keep. The flags that replace files now take True or False only."""
    from srunit.export import export_generator
    from srunit.inference import Translator
    from srunit.report.page import build_report

    source = tmp_path / "in" / "a.png"
    source.parent.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(source)
    kept = tmp_path / "out" / "a.png"
    kept.parent.mkdir()
    kept.write_bytes(b"the user's file")
    translator = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    with pytest.raises(TypeError, match="translate_folder: overwrite must be True or False, got str 'no'"):
        translator.translate_folder(source.parent, kept.parent, overwrite="no")  # type: ignore[arg-type]
    assert kept.read_bytes() == b"the user's file"
    with pytest.raises(TypeError, match="build_report: overwrite must be True or False, got int 0"):
        build_report([tiny_runs["cut"]], tmp_path / "r.html", overwrite=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="export_generator: overwrite must be True or False, got str 'false'"):
        export_generator(tiny_runs["cut"], tmp_path / "g.onnx", overwrite="false")  # type: ignore[arg-type]
    assert translator.translate_folder(source.parent, kept.parent, overwrite=np.bool_(True)) == [kept]
    assert kept.read_bytes() != b"the user's file"
