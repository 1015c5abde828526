"""Round ten, a confirmation probe of issue 24's classes: YAML numbers that are not what their digits say, a
benchmark's JSON written over its training data, overrides a benchmark or a study sets itself, empty study
options, a plugin run resumed without its plugin, an invalid $MPLBACKEND and the app's EXIF note in the docs.
Each test reproduced a defect first."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from srunit import load_config, profile_settings
from srunit.cli.main import main
from srunit.errors import CheckpointError, ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize(("line", "says"), [
    ("train:\n  steps: 010\n", "010 is 8 in YAML (octal), not 10"),
    ("train:\n  seed: -010\n", "-010 is -8 in YAML (octal), not -10"),
    ("train:\n  steps: 1:30\n", "1:30 is 90 in YAML (base 60)"),
    ("train:\n  lr: 1:30.5\n", "1:30.5 is 90.5 in YAML (base 60)"),
    ("train:\n  name: '007'\n  steps: 0_10\n", "0_10 is 8 in YAML (octal), not 10"),
    ("train:\n  name: 007\n", "007 is 7 in YAML (octal)"),
])
def test_yaml_numbers_that_are_not_their_decimal_digits_are_refused_naming_the_line(
        line: str, says: str, tmp_path: Path) -> None:
    # PyYAML follows YAML 1.1: `steps: 010` trained 8 steps, `steps: 1:30` 90, `name: 007` named the run "7",
    # while `--train.steps 010` on the command line is 10.
    preset = tmp_path / "p.yaml"
    preset.write_text("base: cut\n" + line)
    with pytest.raises(ConfigError) as err:
        load_config(preset)
    assert says in str(err.value) and f"{preset}: line " in str(err.value) and "quote it" in str(err.value)


def test_yaml_numbers_that_read_the_same_either_way_still_load(tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text("base: cut\ntrain:\n  steps: 1_000\n  seed: 0\n  name: '007'\n  lr: 2.0e-4\n")
    config = load_config(preset)
    assert (config.train.steps, config.train.seed, config.train.name, config.train.lr) == (1000, 0, "007", 2.0e-4)


def test_bench_loader_never_writes_its_json_over_the_images_it_reads(tiny_data: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture,
                                                                      cli_status: Callable[[list[str]], int]) -> None:
    # `bench loader --json DATA/trainA/IMAGE --overwrite` replaced a training image with the result's JSON.
    image = sorted((tiny_data / "trainA").iterdir())[0]
    before = image.read_bytes()
    for option in ("--data.root", "--data.dir_a"):
        value = tiny_data if option == "--data.root" else tiny_data / "trainA"
        extra = [] if option == "--data.root" else ["--data.dir_b", str(tiny_data / "trainB")]
        assert cli_status(["bench", "loader", "--preset", "cut", option, str(value), *extra, "--data.num_workers", "0",
                        "--batches", "1", "--warmup", "0", "--json", str(image), "--overwrite"]) == 2
        assert f"is inside {option}" in capsys.readouterr().err
    assert image.read_bytes() == before


@pytest.mark.parametrize(("override", "names"), [
    ("train.seed=7", "--first-seed and --seeds"),
    ("train.steps=5", "--steps"),
    ("train.batch_size=2", "--batch-size"),
    ("train.device=cpu", "--device"),
    ("data.root=/data", "the data it makes under --out"),
    ("data.crop_size=64", "--size"),
    ("train.name=x", "--out"),
    ("train.runs_dir=elsewhere", "--out"),
])
def test_a_benchmark_refuses_overrides_of_what_it_sets_in_each_run(override: str, names: str) -> None:
    # `--train.seed 7` trained every "seed" as seed 7 (n identical runs: intervals of no width); `--train.steps 5`
    # trained 5 steps where the settings said --steps 2; `--train.runs_dir` put the runs outside the benchmark.
    with pytest.raises(ConfigError) as err:
        profile_settings("cpu", overrides=(override,))
    key = override.partition("=")[0]
    assert f"--{key}: the benchmark sets {key}" in str(err.value) and names in str(err.value)
    assert profile_settings("cpu", overrides=("train.lr=1e-3",)).overrides[-1] == "train.lr=1e-3"


def test_bench_synthscapes_refuses_such_an_override_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture, cli_status: Callable[[list[str]], int]) -> None:
    assert cli_status(["bench", "synthscapes", "--out", str(tmp_path / "b"), "--train.seed", "7"]) == 2
    assert "--train.seed: the benchmark sets train.seed" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("kind", "override"), [
    ("synthscapes", "--train.seed"), ("synthscapes", "--train.steps"), ("synthscapes", "--train.name"),
    ("synthscapes", "--train.runs_dir"), ("data", "--train.seed"), ("data", "--train.name"),
    ("data", "--train.runs_dir"), ("data", "--data.root"),
])
def test_a_study_refuses_overrides_of_what_it_sets_in_each_trial(kind: str, override: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture,
                                                                 cli_status: Callable[[list[str]], int]) -> None:
    # tune data dropped --train.seed, --train.name, --train.runs_dir and --data.root without a word; tune
    # synthscapes dropped --train.name, and --train.steps beat --steps while tune.json recorded --steps.
    needs = (["--data", "d", "--val-images", "v", "--val-labels", "l", "--segmenter", "s.py:f", "--classes", "3"]
             if kind == "data" else [])
    out = tmp_path / "t"
    assert cli_status(["tune", kind, "--preset", "cut", *needs, "--out", str(out), override, "5"]) == 2
    assert f"{override}: tune {kind} sets {override[2:]} of each run itself" in capsys.readouterr().err
    assert not out.exists()


def test_a_search_space_entry_for_what_the_study_sets_is_refused(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture,
                                                                 cli_status: Callable[[list[str]], int]) -> None:
    # `train.name: {choices: [a, b]}` was accepted and dropped; `train.seed` gave every trial seed one seed.
    space = tmp_path / "space.yaml"
    for entry in ("train.name: {choices: [a, b]}", "train.seed: {low: 0, high: 9, int: true}"):
        space.write_text(entry + "\n")
        assert cli_status(["tune", "synthscapes", "--preset", "cut", "--space", str(space), "--show-space"]) == 2
        key = entry.partition(":")[0]
        assert f"entry {key!r}: tune synthscapes sets {key} of each run itself" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--study", "--storage"])
def test_tune_refuses_an_empty_study_name_or_storage(option: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture,
                                                     cli_status: Callable[[list[str]], int]) -> None:
    # Both fell back to their defaults (the --out folder's name, OUT/study.db) without a word.
    assert cli_status(["tune", "synthscapes", "--preset", "cut", "--out", str(tmp_path / "t"), option, ""]) == 2
    assert f"argument {option}: an empty value" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_resuming_a_plugin_methods_run_without_the_plugin_names_the_plugin_variable(tmp_path: Path) -> None:
    # It said the run's config.yaml "was changed since srunit train wrote it: undo the edit", which it was not.
    from srunit.engine import Trainer

    run = tmp_path / "toy"
    run.mkdir()
    data = load_config("cut").to_dict()
    data["method"] = {"name": "toy-not-loaded", "width": 6}
    (run / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(CheckpointError) as err:
        Trainer.resume(run)
    message = str(err.value)
    assert "names method 'toy-not-loaded', which no method or plugin registers here" in message
    assert "export SRUNIT_PLUGINS=MODULE" in message and "was changed since" not in message


@pytest.mark.slow
def test_a_report_is_drawn_whatever_mplbackend_says(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    # `MPLBACKEND=gtk4 srunit report RUN` ended in matplotlib's ValueError traceback at import. A name that is no
    # backend at all (`nonsense`) takes the same path: matplotlib refuses both with a ValueError.
    backend = "gtk4"
    env = {**os.environ, "MPLBACKEND": backend}
    result = subprocess.run([sys.executable, "-m", "srunit", "report", str(tiny_runs["cut"]), "--out",
                             str(tmp_path / "r.html")], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and f"ignoring $MPLBACKEND={backend}" in result.stderr
    assert (tmp_path / "r.html").stat().st_size > 0


def test_the_docs_say_the_app_turns_an_upload_by_its_exif_orientation() -> None:
    # docs/after-training.md said "EXIF orientation is not applied (as in srunit translate)": both apply it.
    text = (DOCS / "after-training.md").read_text()
    assert "EXIF orientation is not applied" not in text and "turned by its EXIF orientation tag" in text


@pytest.mark.slow
def test_the_app_turns_an_upload_by_its_exif_orientation_as_translate_does(tiny_runs: dict[str, Path],
                                                                           tmp_path: Path) -> None:
    from srunit.app import TranslationDemo

    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90 degrees: a 32 x 20 file shows as 20 x 32
    path = tmp_path / "turned.jpg"
    Image.fromarray(np.zeros((20, 32, 3), np.uint8)).save(path, exif=exif.tobytes())
    demo = TranslationDemo.from_checkpoints([tiny_runs["cut"]], device="cpu")
    assert demo.translate_file(path)[0].size == (20, 32)
    assert main(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(path), "--output",
                 str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert Image.open(tmp_path / "out" / "turned.png").size == (20, 32)


@pytest.mark.parametrize(("override", "option"), [
    ("train.batch_size=4", "--batch-size"), ("data.crop_size=64", "--size"), ("data.load_size=72", "--size")])
def test_bench_speed_refuses_overrides_its_random_batches_never_read(override: str, option: str) -> None:
    # `bench speed --train.batch_size 4` timed batches of 1 and reported batch 1; `--data.crop_size` was dropped.
    from srunit.engine.speed import measure_speed

    with pytest.raises(ConfigError) as err:
        measure_speed("cut", size=32, steps=1, warmup=0, device="cpu", overrides=[override])
    assert f"--{override.partition('=')[0]}: bench speed sets" in str(err.value) and option in str(err.value)


def test_a_gradio_variable_gradio_refuses_at_import_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # `GRADIO_SERVER_PORT=abc srunit app ...` was a ValueError traceback from inside gradio's import.
    import builtins

    from srunit import app

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "gradio":
            raise ValueError("invalid literal for int() with base 10: 'abc'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setenv("GRADIO_SERVER_PORT", "abc")
    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)  # set by an earlier import_gradio in this process
    monkeypatch.delitem(sys.modules, "gradio", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ConfigError) as err:
        app.import_gradio()
    assert "importing gradio failed (ValueError: invalid literal" in str(err.value)
    assert "(GRADIO_SERVER_PORT)" in str(err.value)


@pytest.mark.parametrize("method", ["cyclegan", "drit", "gcgan"])
def test_train_help_of_another_method_works_as_the_listing_advises(method: str,
                                                                   capsys: pytest.CaptureFixture,
                                                                   cli_status: Callable[[list[str]], int]) -> None:
    # The listing says "other methods have their own options: srunit train --method.name NAME --help"; that
    # command failed with `unknown key method.flip_equivariance` (srunit's preset options under another method).
    assert cli_status(["train", "--method.name", method, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"method options (method.name '{method}')" in out and "the defaults of method" in out


def test_a_trial_refused_by_srunit_is_logged_in_one_line_without_optunas_traceback() -> None:
    # Optuna logs a failed trial with its traceback: a damaged image in `tune data --data` (a DataError in the
    # trial) printed 20 lines of Python traceback before srunit's one-line error.
    import logging

    from srunit.errors import DataError
    from srunit.tune.study import _OwnErrorsInOneLine

    def record(err: BaseException) -> logging.LogRecord:
        try:
            raise err
        except BaseException:
            return logging.LogRecord("optuna.study._optimize", logging.WARNING, __file__, 1, "Trial 0 failed", None,
                                     sys.exc_info())

    ours, theirs = record(DataError("cannot read image file x.png")), record(RuntimeError("a bug"))
    assert _OwnErrorsInOneLine().filter(ours) and ours.exc_info is None
    assert _OwnErrorsInOneLine().filter(theirs) and theirs.exc_info is not None  # a bug keeps its traceback
    formatted = logging.Formatter().format(ours)
    assert formatted == "Trial 0 failed" and "Traceback" not in formatted


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_a_search_space_device_this_machine_lacks_is_refused_before_the_study(
        tmp_path: Path, capsys: pytest.CaptureFixture, cli_status: Callable[[list[str]], int]) -> None:
    # `train.device: {choices: [cuda]}` failed in the first trial, after the tuning folder was made.
    space = tmp_path / "space.yaml"
    space.write_text("train.device: {choices: [cuda]}\n")
    assert cli_status(["tune", "data", "--preset", "cut", "--data", "d", "--val-images", "v", "--val-labels", "l",
                    "--segmenter", "s.py:f", "--classes", "3", "--space", str(space), "--out",
                    str(tmp_path / "t")]) == 2
    assert "entry 'train.device' cannot take 'cuda'" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_translate_tensor_names_a_numpy_array_and_refuses_a_size_it_would_allocate(
        tiny_runs: dict[str, Path]) -> None:
    # A numpy array was an AttributeError (`'numpy.ndarray' object has no attribute 'dim'`); an expanded tensor of
    # 100000 x 100000 pixels (no memory held) made the finiteness check allocate 10 GB: an allocator traceback.
    import torch

    from srunit import Translator

    translator = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    with pytest.raises(TypeError, match=r"x must be a torch tensor .* got ndarray; .*torch.from_numpy"):
        translator.translate_tensor(np.zeros((1, 3, 16, 16), np.float32))
    huge = torch.zeros(1, 3, 1, 1).expand(1, 3, 100_000, 100_000)
    with pytest.raises(ValueError, match=r"100000 x 100000 = 10,000,000,000 pixels, more than srunit translates"):
        translator.translate_tensor(huge)


def test_run_benchmark_names_settings_of_the_wrong_type(tmp_path: Path) -> None:
    # `run_benchmark(out, "cpu")` was an AttributeError traceback after the folder was made.
    from srunit import run_benchmark

    with pytest.raises(TypeError, match="settings must be BenchSettings, got str"):
        run_benchmark(tmp_path / "b", "cpu")  # type: ignore[arg-type]
    assert not (tmp_path / "b").exists()
