"""Round nineteen (A): StegoGAN end to end, and plugin methods that misbehave while they train.

docs/what-survives-what.md, "Round nineteen (A)", lists the cases; each test here failed before its fix.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from srunit.config import Config
from srunit.errors import CheckpointError, DataError, MethodError, TrainingDiverged


def _zeros(image: np.ndarray) -> np.ndarray:
    return np.zeros(image.shape[:2], dtype=np.int64)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def stego_run(tiny_config: Callable[..., Config], tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny StegoGAN run of one step, evaluated once on testA (read-only: copy it before changing it)."""
    from srunit.engine import Trainer
    from srunit.eval.run_records import evaluate_run_segmentation

    runs = tmp_path_factory.mktemp("stego_runs")
    run = Trainer(tiny_config("stegogan", "train.steps=1", "train.name=stego", data_root=tiny_data, runs_dir=runs),
                  show_progress=False).fit()
    evaluate_run_segmentation(run, tiny_data / "testA", tiny_data / "testLabels", _zeros, 8, segmenter="zeros")
    assert sorted(p.name for p in (run / "eval" / "masks").iterdir()) == sorted(
        p.with_suffix(".png").name for p in (tiny_data / "testA").iterdir())
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run", symlinks=True))


@pytest.mark.slow  # trains a tiny StegoGAN run
def test_a_file_where_run_eval_masks_belongs_is_refused_before_the_translations_are_replaced(
        stego_run: Path, tiny_data: Path, tmp_path: Path) -> None:
    # RUN/eval/masks a file: `eval seg --run RUN --replace-record` replaced RUN/eval/translated with the new images,
    # then failed on the masks ("Not a directory; check the path, its permissions and the free space"), leaving the
    # record's scores beside translations they were not computed on.
    from srunit.eval.run_records import evaluate_run_segmentation

    run = _copy(stego_run, tmp_path)
    shutil.rmtree(run / "eval" / "masks")
    (run / "eval" / "masks").write_text("mine")
    before, record = _digests(run / "eval" / "translated"), (run / "eval" / "scores.json").read_bytes()
    with pytest.raises(DataError, match=r"eval/masks is a file, not a folder; .*\(mv .*eval/masks .*nothing was "
                                        r"written"):
        evaluate_run_segmentation(run, tiny_data / "testB", tiny_data / "testLabels", _zeros, 8, segmenter="zeros",
                                  replace=True)
    assert _digests(run / "eval" / "translated") == before
    assert (run / "eval" / "scores.json").read_bytes() == record
    assert (run / "eval" / "masks").read_text() == "mine"


@pytest.mark.slow  # trains a tiny StegoGAN run
def test_masks_that_cannot_be_made_leave_the_translations_and_the_record_as_they_were(
        stego_run: Path, tiny_data: Path, tmp_path: Path) -> None:
    # A B -> A generator whose masks are NaN: RUN/eval/translated and predicted were replaced before the masks were
    # made, the record was not, and the error named no file.
    from srunit.eval.run_records import evaluate_run_segmentation

    run = _copy(stego_run, tmp_path)
    latest = (run / "checkpoints" / "latest").resolve()
    path = latest / "G_BA.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    weights = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in load_file(path).items()}
    path.unlink()
    save_file(weights, path, metadata=meta)
    before = {name: _digests(run / "eval" / name) for name in ("translated", "predicted", "masks")}
    record = json.loads((run / "eval" / "scores.json").read_text())
    with pytest.raises(CheckpointError,
                       match=r"mask holds NaN or inf values \(.*G_BA.safetensors, StegoMaskGenerator\)"):
        evaluate_run_segmentation(run, tiny_data / "testB", tiny_data / "testLabels", _zeros, 8, segmenter="zeros",
                                  replace=True)
    assert {name: _digests(run / "eval" / name) for name in before} == before
    assert json.loads((run / "eval" / "scores.json").read_text()) == record
    assert sorted(p.name for p in (run / "eval").iterdir()) == ["masks", "predicted", "scores.json", "translated"]


# ------------------------------------------------------------------ plugin methods that misbehave while they train


@pytest.fixture
def misbehaving(load_test_plugins: Callable[..., None]) -> None:
    """The misbehaving plugin imported as srunit imports a plugin (see `load_test_plugins`)."""
    load_test_plugins("misbehaving")


def _train(tiny_config: Callable[..., Config], tiny_data: Path, runs: Path, *overrides: str) -> Path:
    from srunit.engine import Trainer

    config = tiny_config(None, "method.name=misbehaving", "train.steps=4",
                         "train.checkpoint_every=2", "train.name=bad", *overrides, data_root=tiny_data, runs_dir=runs)
    return Trainer(config, show_progress=False).fit()


@pytest.mark.parametrize(("fault", "returned"), [
    ("float", r"as its loss a value of type float"),
    ("many", r"as its loss a torch.float32 tensor of shape \(\d+, 3, 32, 32\)"),
    ("int", r"as its loss a torch.int64 tensor of shape \(\)"),
    ("log-vector", r"as its log 'G' a torch.float32 tensor of shape"),
    ("log-float", r"as its log 'G' a value of type float"),
    ("three", r"a tuple of 3 items"),
])
def test_a_phase_that_returns_what_no_loss_is_stops_in_one_line_naming_the_method(
        misbehaving: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, fault: str, returned: str) -> None:
    # Each was a traceback from torch's backward, the trainer's finite check or tqdm; a log of many elements
    # reached torch.stack.
    monkeypatch.setenv("MISBEHAVING_FAULT", fault)
    with pytest.raises(MethodError, match=r"^method 'misbehaving' \(misbehaving.Misbehaving\): phase 'G' returned "
                                          + returned + r".*Training stopped after step 0, and no checkpoint had "
                                          r"been written"):
        _train(tiny_config, tiny_data, tmp_path)


def test_a_plugin_that_raises_mid_run_names_itself_and_the_run_resumes(
        misbehaving: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from srunit.cli.main import main

    monkeypatch.setenv("MISBEHAVING_FAULT", "raise")
    with pytest.raises(MethodError, match=r"failed in plugin module 'misbehaving': RuntimeError: misbehaving at step "
                                          r"3\. Training stopped after step 3, and the latest checkpoint, "
                                          r"step_00000002, is intact: fix the plugin and continue with `srunit train "
                                          r"--resume .*bad`"):
        _train(tiny_config, tiny_data, tmp_path)
    monkeypatch.delenv("MISBEHAVING_FAULT")
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "bad"), "--no-progress"]) == 0
    assert (tmp_path / "bad" / "checkpoints" / "latest").resolve().name == "step_00000004"


def test_a_plugin_that_exits_mid_run_is_an_error_not_a_success(
        misbehaving: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # sys.exit(0) in a method's step ended `srunit train` at step 3 of 4 with status 0 and no word.
    from srunit.cli.main import main

    monkeypatch.setenv("MISBEHAVING_FAULT", "exit")
    capsys.readouterr()
    preset = tmp_path / "bad.yaml"
    preset.write_text("method:\n  name: misbehaving\n")
    code = main(["train", "--preset", str(preset), "--model.ndf", "4",
                 "--data.root", str(tiny_data), "--data.load_size", "32", "--data.crop_size", "32",
                 "--train.device", "cpu", "--train.steps", "4", "--train.checkpoint_every", "2",
                 "--train.runs_dir", str(tmp_path), "--train.name", "bad", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if not line.startswith("INFO")]
    assert lines == [lines[-1]] and "Traceback" not in err
    assert lines[-1].startswith("srunit train: error: method 'misbehaving' (misbehaving.Misbehaving) failed in plugin "
                                "module 'misbehaving': SystemExit: 0. Training stopped after step 3")


def test_an_extra_state_a_checkpoint_cannot_hold_is_refused_before_it_is_saved(
        misbehaving: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # An object() was saved, and no step of the run could be resumed (torch.load with weights_only refused it, and the
    # advice "use an earlier step_N checkpoint" held the same); a lambda was a pickling traceback.
    monkeypatch.setenv("MISBEHAVING_FAULT", "state")
    with pytest.raises(MethodError, match=r"its extra_state\(\)\['o'\] is a value of type object .*which a checkpoint "
                                          r"cannot hold"):
        _train(tiny_config, tiny_data, tmp_path)
    assert not list((tmp_path / "bad" / "checkpoints").glob("step_*"))


def test_a_plugin_loss_that_is_nan_stops_as_a_built_in_method_does(
        misbehaving: None, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISBEHAVING_FAULT", "nan")
    with pytest.raises(TrainingDiverged, match=r"non-finite loss at step \d"):
        _train(tiny_config, tiny_data, tmp_path)


def test_extra_state_checks_take_what_a_checkpoint_loads() -> None:
    from srunit.engine.method_checks import check_extra_state

    check_extra_state(object(), {"pool": [torch.zeros(2)], "n": 3, "x": (1.5, None, "a"), "d": torch.float16})
    with pytest.raises(MethodError, match=r"extra_state\(\)\['a'\]\[1\] is a value of type set"):
        check_extra_state(object(), {"a": [1, {2}]})


# ------------------------------------------------------------------ options of a StegoGAN run


def test_cycle_noise_without_the_b_cycle_loss_is_refused_as_void(tiny_config: Callable[..., Config]) -> None:
    # --method.lambda_b 0 --method.cycle_noise 0.5 trained without a word: the noise is added only where G
    # reconstructs y, which only the B cycle loss compares.
    from srunit.engine.trainer import check_no_void_options
    from srunit.errors import ConfigError

    given = ["method.lambda_b=0", "method.cycle_noise=0.5"]
    with pytest.raises(ConfigError, match=r"method.cycle_noise 0.5 has no effect: .*method.lambda_b is 0"):
        check_no_void_options(tiny_config("stegogan", *given), given)
    check_no_void_options(tiny_config("stegogan", "method.cycle_noise=0.5"), ["method.cycle_noise=0.5"])
    check_no_void_options(tiny_config("stegogan", "method.lambda_b=0"), ["method.lambda_b=0"])


@pytest.mark.parametrize(("method", "robust"), [("cut", "robust: null"), ("stegogan", None), ("cyclegan", None)])
def test_train_method_name_without_a_preset_trains_that_method_as_its_help_shows(
        tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_of: Callable[..., list[str]],
        method: str, robust: str | None) -> None:
    # `srunit train --method.name NAME` (the listing's "Methods (srunit train --method.name NAME)") started from the
    # srunit preset: `cut` trained with SRUNIT's robustness term on, and every other method was refused for
    # "unknown key method.flip_equivariance", a key the user never gave; its --help showed the method's defaults.
    # (Tiny networks and crops: the dry run's batch at the defaults' 256 px took 30 to 130 s.)
    from srunit.cli.main import main

    args = ["train", "--method.name", method, "--data.root", str(tiny_data), "--train.runs_dir", str(tmp_path),
            "--data.load_size", "36", "--data.crop_size", "32", *tiny_model_of(None, method)]
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"method:\n  name: {method}\n" in out
    if robust is not None:
        assert robust in out
    with pytest.raises(SystemExit):  # the help shows the same defaults
        main([*args, "--help"])
    shown = capsys.readouterr().out
    assert f"(none: the defaults of method {method})" in shown
