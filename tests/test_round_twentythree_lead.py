"""Round twenty-three, the lead's own: a void option set in the user's own YAML preset is refused as on the command
line (20A noted it was taken without a word)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from srunit.config import keys_changed_by_files, load_config, preset_names, read_preset
from srunit.engine.trainer import check_options_take_effect
from srunit.errors import CheckpointError


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_train_refuses_a_void_option_the_users_own_preset_sets(tmp_path: Path, capsys: pytest.CaptureFixture,
        cli_status: Callable[[list[str]], int]
                                                               ) -> None:
    """`train --preset my.yaml`, where my.yaml (base: stegogan) sets lambda_b 0 and cycle_noise 0.5: trained with the
    noise unused, without a word, though `--method.cycle_noise 0.5` on the command line is refused."""
    mine = _write(tmp_path / "my.yaml", {"base": "stegogan", "method": {"lambda_b": 0, "cycle_noise": 0.5}})
    runs = tmp_path / "runs"
    assert cli_status(["train", "--preset", str(mine), "--data.root", str(tmp_path / "data"),
                    "--train.runs_dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert f"method.cycle_noise 0.5 (set in {mine}) has no effect" in err and "method.lambda_b is 0" in err
    assert not runs.exists()


def test_a_key_of_a_base_file_counts_and_the_nearest_file_or_the_command_line_wins(tmp_path: Path) -> None:
    base = _write(tmp_path / "base.yaml", {"base": "cut", "method": {"lambda_nce": 0, "nce_temperature": 0.5}})
    top = _write(tmp_path / "top.yaml", {"base": "base.yaml", "method": {"nce_temperature": 0.2},
                                         "train": {"steps": 5}})
    assert keys_changed_by_files(top) == {"method.nce_temperature": (0.2, str(top)), "train.steps": (5, str(top)),
                                          "method.lambda_nce": (0, str(base))}
    with pytest.raises(Exception, match=rf"^method\.nce_temperature 0\.2 \(set in {top}\) has no effect"):
        check_options_take_effect(load_config(top), [], top)
    overrides = ["method.nce_temperature=0.3"]
    with pytest.raises(Exception, match=r"^method\.nce_temperature 0\.3 has no effect"):
        check_options_take_effect(load_config(top, overrides), overrides, top)
    # a nested key of a term, in a file whose base is a packaged preset
    term = _write(tmp_path / "e5.yaml", {"base": "e5-semantic-consistency", "method": {"robust": {"max_noise": 0.3}}})
    with pytest.raises(Exception, match=rf"^method\.robust\.max_noise 0\.3 \(set in {term}\) has no effect"):
        check_options_take_effect(load_config(term), [], term)


@pytest.mark.parametrize("name", preset_names())
def test_a_copy_of_each_packaged_preset_is_accepted_and_packaged_presets_set_no_users_keys(name: str,
                                                                                        tmp_path: Path) -> None:
    """Packaged presets hold no void option, so a user's copy of one, every key written out, still trains."""
    assert keys_changed_by_files(name) == {}
    copy = _write(tmp_path / f"{name}.yaml", read_preset(name))
    check_options_take_effect(load_config(copy), [], copy)


def test_bench_and_tune_refuse_a_void_option_of_the_users_own_preset(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     cli_status: Callable[[list[str]], int]) -> None:
    import srunit.cli.bench_synthscapes as bench_synthscapes
    import srunit.tune.study as study

    def work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the command went on to its work")

    monkeypatch.setattr(bench_synthscapes, "run_benchmark", work)
    monkeypatch.setattr(study, "run_tune", work)
    mine = _write(tmp_path / "cut-off.yaml", {"base": "cut", "method": {"lambda_nce": 0, "nce_temperature": 0.1}})
    out = tmp_path / "b"
    assert cli_status(["bench", "synthscapes", "--methods", f"srunit,{mine}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--methods {mine}: method.nce_temperature 0.1 (set in {mine}) has no effect" in err
    assert cli_status(["tune", "synthscapes", "--preset", str(mine), "--out", str(out)]) == 2
    assert f"method.nce_temperature 0.1 (set in {mine}) has no effect" in capsys.readouterr().err
    assert not out.exists()


def test_a_runs_config_yaml_as_a_preset_names_defaults_and_changes_nothing_by_them(tiny_runs: dict[str, Path],
                                                                                    tmp_path: Path) -> None:
    """A run's config.yaml names every key, defaults included. Used as a preset with PatchNCE switched off, its
    nce_temperature (at the default) is no value the user gave; its num_patches, 16 where the default is 256 (the
    tiny run's), is, and is refused as on the command line."""
    data = yaml.safe_load((tiny_runs["cut"] / "config.yaml").read_text())
    defaults = load_config(None, {"method.name": "cut"}).method
    assert data["method"]["nce_temperature"] == defaults.nce_temperature
    assert data["method"]["num_patches"] == 16 != defaults.num_patches
    data["method"]["lambda_nce"] = 0
    copy = _write(tmp_path / "again.yaml", data)
    changed = keys_changed_by_files(copy)
    assert {"method.lambda_nce", "method.num_patches", "train.name"} <= set(changed)
    assert "method.nce_temperature" not in changed
    with pytest.raises(Exception, match=rf"^method\.num_patches 16 \(set in {copy}\) has no effect"):
        check_options_take_effect(load_config(copy), [], copy)
    data["method"]["num_patches"] = defaults.num_patches
    check_options_take_effect(load_config(_write(copy, data)), [], copy)


def test_the_dry_run_refuses_what_a_new_run_refuses_before_writing(tiny_runs: dict[str, Path], tiny_data: Path,
                                                                   tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   cli_status: Callable[[list[str]], int]) -> None:
    """`train --dry-run` said all was well for a name that already holds a run, for a run folder inside the training
    images, and for a tracker that cannot start; `train` itself refuses each before writing. One function,
    `check_new_run_folder`, now checks the folder for both, and both check the trackers."""
    run = tiny_runs["cut"]
    common = ["train", "--dry-run", "--preset", "cut", "--data.root", str(tiny_data)]
    assert cli_status([*common, "--train.runs_dir", str(run.parent), "--train.name", run.name]) == 2
    assert f"run folder {run} already holds a run; continue it with `srunit train --resume {run}`" in \
        capsys.readouterr().err
    assert cli_status([*common, "--train.runs_dir", str(tiny_data / "runs")]) == 2
    assert "the training images, where its sample grids would be read as images" in capsys.readouterr().err
    assert not (tiny_data / "runs").exists()
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # W&B online, no key: a run of it cannot start
    status = cli_status([*common, "--train.runs_dir", str(tmp_path / "runs"), "--train.loggers", "wandb"])
    err = capsys.readouterr().err
    assert status == 2 and "wandb" in err, err
    assert not (tmp_path / "runs").exists()


def test_drits_dry_run_runs_every_phase(tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    """`train --dry-run --preset drit` printed D_content's loss alone: it ran the step train.steps, at which DRIT
    updates D_content only (one step in d_iter is a full one). It runs step 0 too, where all four phases train."""
    from srunit.engine.dryrun import dry_run

    config = tiny_config("drit", "data.load_size=48", "data.crop_size=48", "method.dis_scales=1",
                         "method.dis_layers=2", "method.content_dis_layers=1", "train.steps=4",
                         data_root=tiny_data, runs_dir=tmp_path)
    found = dry_run(config)
    # the logs of each phase: D (domain discriminators), D_content, EG (encoders and generator), G (random codes)
    assert {"D_A", "D_B2", "D_content", "EG", "G", "latent_A"} <= set(found.losses)


def test_a_tensor_of_another_shape_is_refused_naming_the_function_and_its_argument(tiny_runs: dict[str, Path]
                                                                                 ) -> None:
    """`Translator.translate_tensor` and `UnmatchedMasker.mask_tensor` named neither themselves nor the argument for a
    tensor of another shape ("expected images of shape (B, 3, H, W) ...") while every other refusal of theirs did."""
    import torch

    from srunit.inference import Translator, check_image_tensor

    translator = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    for shape in ((3, 8, 8), (1, 1, 8, 8), (0, 3, 8, 8)):
        with pytest.raises(ValueError, match=rf"^translate_tensor: x must be images of shape \(B, 3, H, W\), B, H, W "
                                             rf">= 1, got \({', '.join(map(str, shape))},?\)$"):
            translator.translate_tensor(torch.zeros(shape))
    with pytest.raises(ValueError, match=r"^mask_tensor: y must be images of shape"):
        check_image_tensor(torch.zeros(2, 4, 8, 8), "mask_tensor", "y")


@pytest.mark.slow
@pytest.mark.parametrize("args", [["train", "--preset", "nope"], ["translate", "--checkpoint", "/nonexistent",
                                                                  "--input", ".", "--output", "out"]])
def test_a_refusal_whose_message_meets_a_full_standard_error_still_exits_2(args: list[str], tmp_path: Path) -> None:
    """`srunit translate ... 2> /dev/full` with a bad input exited 1 (Python's status for the traceback it could not
    print either), not the 2 of every refusal: the message met the full device and its OSError left main."""
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "srunit", *args], stdout=subprocess.PIPE, stderr=full,
                              cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert not (tmp_path / "out").exists()


def test_a_run_config_of_a_preset_trained_by_steps_serves_as_a_preset_and_numbers_compare_as_read(
        tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    """Round twenty-five: a CycleGAN run's config.yaml (its preset's train.epochs 100, trained by train.steps) as a
    preset was refused for "train.epochs 100 (set in ...) has no effect", where the docs say it serves as it is: a
    file's length options are not counted. And a default written as 7e-2 (YAML 1.1 reads a string, the config 0.07)
    was counted as a change."""
    from srunit.engine import Trainer

    run = Trainer(tiny_config("cyclegan", "train.steps=1", "train.name=cg", data_root=tiny_data, runs_dir=tmp_path),
                  show_progress=False).fit()
    data = yaml.safe_load((run / "config.yaml").read_text())
    assert data["train"]["epochs"] == 100 and data["train"]["steps"] == 1
    again = _write(tmp_path / "again.yaml", {**data, "train": {**data["train"], "name": "cg2"}})
    check_options_take_effect(load_config(again), [], again)
    written = tmp_path / "exp.yaml"
    written.write_text("base: cut\nmethod:\n  lambda_nce: 0\n  nce_temperature: 7e-2\n")
    assert "method.nce_temperature" not in keys_changed_by_files(written)
    check_options_take_effect(load_config(written), [], written)


def test_a_new_start_into_a_run_whose_checkpoints_were_deleted_is_refused_as_its_resume_is(
        tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    """Round twenty-five: `--resume` of a run whose checkpoints were all deleted was refused, but `srunit train` of
    a new run of the same name (and its --dry-run) went ahead, replacing metrics.jsonl's logged steps and sample
    grids, as the refusal warned. A new start now refuses it alike; a folder that never had a checkpoint is reused."""
    from srunit.engine import Trainer
    from srunit.engine.dryrun import dry_run

    settings = ("cut", "train.steps=3", "train.checkpoint_every=2", "train.log_every=1", "train.name=gone")
    run = Trainer(tiny_config(*settings, data_root=tiny_data, runs_dir=tmp_path), show_progress=False).fit()
    (run / "train.lock").unlink(missing_ok=True)
    shutil.rmtree(run / "checkpoints")
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    again = tiny_config(*settings, data_root=tiny_data, runs_dir=tmp_path)
    for start in (lambda: Trainer(again, show_progress=False), lambda: dry_run(again)):
        with pytest.raises(CheckpointError, match=r"holds no checkpoint, but .*metrics\.jsonl logs step 3, past step "
                                                  r"2, where the run saved its first checkpoint"):
            start()
    after = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    after.pop("train.lock", None)
    before.pop("train.lock", None)
    assert after == before


def test_a_file_where_the_run_folder_or_runs_dir_goes_is_refused_by_train_and_its_dry_run(
        tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture, cli_status: Callable[[list[str]], int]) -> None:
    """Round twenty-five: a file named as the run (runs/NAME) or as train.runs_dir passed `train --dry-run`, and
    `train` failed at its mkdir with "File exists; check the path, its permissions and the free space"."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "afile").write_text("mine")
    (tmp_path / "runsfile").write_text("mine")
    common = ["train", "--preset", "cut", "--data.root", str(tiny_data)]
    for extra in ([], ["--dry-run"]):
        assert cli_status([*common, *extra, "--train.runs_dir", str(tmp_path / "runs"), "--train.name", "afile"]) == 2
        assert (f"the run folder {tmp_path / 'runs' / 'afile'} is a regular file, not a folder; move it away or "
                f"choose another train.name") in capsys.readouterr().err
        assert cli_status([*common, *extra, "--train.runs_dir", str(tmp_path / "runsfile")]) == 2
        assert (f"train.runs_dir {tmp_path / 'runsfile'} is a regular file, not a folder; move it away or choose "
                f"another train.runs_dir") in capsys.readouterr().err
    assert (tmp_path / "runs" / "afile").read_text() == (tmp_path / "runsfile").read_text() == "mine"


def test_a_default_device_this_torch_build_lacks_is_refused_in_srunits_words() -> None:
    """Round twenty-five: after torch.set_default_device("cuda") on a CPU build, the check of torch's defaults raised
    torch's own AssertionError ("Torch not compiled with CUDA enabled") from torch.get_default_device()."""
    import torch

    from srunit.errors import ConfigError
    from srunit.runtime.device import check_torch_defaults

    torch.set_default_device("cuda")
    try:
        with pytest.raises(ConfigError, match=r"call torch\.set_default_device\('cpu'\) before srunit$"):
            check_torch_defaults()
    finally:
        torch.set_default_device("cpu")
    check_torch_defaults()
