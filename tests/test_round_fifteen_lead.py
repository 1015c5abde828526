"""Round fifteen, the lead's part: what round fourteen noted and left (a relative $XDG_CACHE_HOME, a rendezvous
timeout read only by a job of several processes, the staged folders of an evaluation that was killed) and what
follows from it (two evaluations of one run at once). Each test reproduced a defect first."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.errors import ConfigError


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`XDG_CACHE_HOME=cache srunit eval seg --segmenter synthscapes ...` kept the scorer in ./cache/srunit of each
    working folder, and trained it again in the next one; the XDG rule is to ignore a relative value."""
    from srunit.synthscapes.scorer import default_cache_dir

    monkeypatch.delenv("SRUNIT_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "cache")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "srunit"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "srunit"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "srunit"


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1e9", "nan"])
def test_a_bad_rendezvous_timeout_is_refused_in_one_process_too(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """`SRUNIT_RENDEZVOUS_TIMEOUT=abc srunit train ...` in one process trained without a word, and the same variable
    failed the job once it was started with torchrun."""
    import torch

    from srunit.engine.distributed import setup

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SRUNIT_RENDEZVOUS_TIMEOUT", value)
    with pytest.raises(ConfigError, match=rf"SRUNIT_RENDEZVOUS_TIMEOUT='{value}' must be a number of seconds"):
        setup(torch.device("cpu"))
    monkeypatch.setenv("SRUNIT_RENDEZVOUS_TIMEOUT", "30")
    ctx, device = setup(torch.device("cpu"))
    assert not ctx.enabled and device == torch.device("cpu")


def _zeros(rgb: np.ndarray) -> np.ndarray:
    return np.zeros(rgb.shape[:2], dtype=np.int64)


@pytest.mark.slow
def test_an_evaluation_killed_mid_way_leaves_nothing_at_the_next(tiny_runs: dict[str, Path], tiny_data: Path,
                                                                 tmp_path: Path) -> None:
    """`eval seg --run RUN` killed while it scored left RUN/eval/.translated.partial-XXXX and .predicted.partial-XXXX
    (a copy of every translation and class map) for ever; the next evaluation of the run now removes them."""
    from srunit.eval.run_records import evaluate_run_segmentation

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    left = [run / "eval" / ".translated.partial-0badf00d", run / "eval" / ".predicted.partial-0badf00d"]
    for folder in left:
        folder.mkdir(parents=True)
        (folder / "0.png").write_bytes(b"half")
    keep = run / "eval" / ".mine"  # a hidden folder of the user's: not srunit's to remove
    keep.mkdir()
    evaluate_run_segmentation(run, tiny_data / "testB", tiny_data / "testLabels", _zeros, 8, segmenter="zeros")
    assert sorted(p.name for p in (run / "eval").iterdir()) == [".mine", "predicted", "scores.json", "translated"]
    assert not (run / ".eval.lock").exists()


def test_a_mistyped_run_is_not_made_by_the_evaluation(tiny_data: Path, tmp_path: Path) -> None:
    """The evaluation's lock sits beside RUN/eval: it must not make the folder of a --run that does not exist."""
    from srunit.errors import DataError
    from srunit.eval.run_records import evaluate_run_paired

    with pytest.raises(DataError, match=r"is not a run folder"):
        evaluate_run_paired(tmp_path / "typo", tiny_data / "testB", tiny_data / "testB", (30, 50))
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("preset", ["srunit", "cut", "srunit-official"])
def test_show_space_prints_a_space_file(preset: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`tune --show-space` printed a description (`method.robust.weight log-uniform in [1e-05, 0.001]`), and its
    advice `give a --space FILE without method.lambda_nce` needed the format of docs/tuning.md. Saved as it is
    printed, it is now a --space file of the same space."""
    from srunit.cli.main import main

    assert main(["tune", "synthscapes", "--preset", preset, "--show-space"]) == 0
    shown = capsys.readouterr().out
    space = tmp_path / "space.yaml"
    space.write_text(shown)
    assert main(["tune", "synthscapes", "--preset", preset, "--space", str(space), "--show-space"]) == 0
    assert capsys.readouterr().out == shown
    lines = [line for line in shown.splitlines() if line and not line.startswith("#")]
    assert lines and all(": {" in line for line in lines)  # one entry per line, as docs/tuning.md writes them


def test_a_data_root_beside_both_domain_folders_is_refused(tmp_path: Path) -> None:
    """`train --data.root X --data.dir_a A --data.dir_b B` trained on A and B, X unread, without a word (noted and
    left in round twelve); given with one of the two, the error about the other folder named data.dir_b, though
    the path was data.root's."""
    from srunit.config import load_config
    from srunit.data import UnalignedDataset
    from srunit.engine.trainer import check_options_take_effect
    from srunit.errors import DataError

    overrides = [f"data.root={tmp_path / 'x'}", f"data.dir_a={tmp_path / 'a'}", f"data.dir_b={tmp_path / 'b'}"]
    with pytest.raises(ConfigError, match=r"data.root .*/x has no effect: data.dir_a .*/a and data.dir_b .*/b name "
                                          r"both domains' folders; leave data.root out"):
        check_options_take_effect(load_config("cut", overrides), overrides)
    (tmp_path / "a").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "0.png")
    one = overrides[:2]
    config = load_config("cut", one)
    check_options_take_effect(config, one)  # data.root gives domain B's folder
    with pytest.raises(DataError, match=r"domain B \(data.root/trainB\) folder .*/x/trainB does not exist"):
        UnalignedDataset.from_config(config.data, seed=0)


def test_non_finite_values_are_no_image_and_no_distance() -> None:
    """`tensor_to_pil` of a tensor holding nan gave a black image (the clamp keeps nan, the cast makes it 0), and
    `frechet_distance` of statistics holding nan gave nan (noted and left in round twelve)."""
    import torch

    from srunit.data.images import tensor_to_pil
    from srunit.eval.fid import frechet_distance

    x = torch.zeros(3, 4, 4)
    x[0, 1, 2] = float("nan")
    x[2, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"holds 2 non-finite value\(s\) \(nan or inf\) of 48"):
        tensor_to_pil(x)
    assert np.asarray(tensor_to_pil(torch.full((3, 2, 2), 2.0))).min() == 255  # beyond [-1, 1]: still clamped
    eye = np.eye(2)
    assert frechet_distance([0.0, 0.0], eye, [3.0, 4.0], eye) == pytest.approx(25.0)
    with pytest.raises(ValueError, match=r"frechet_distance: sigma2 holds 1 non-finite value"):
        frechet_distance([0.0, 0.0], eye, [3.0, 4.0], np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_a_sample_of_a_step_that_diverged_between_loss_checks_is_still_written(tiny_config, tiny_data: Path,
                                                                               tmp_path: Path) -> None:
    """The samples come at their own steps, which need not be log or checkpoint steps, where the losses are checked:
    a nan there is drawn as black (the run stops at the next check), not an error from the image conversion."""
    import torch

    from srunit.engine.trainer import Trainer

    config = tiny_config("cut", "train.steps=2", "train.name=s", data_root=tiny_data, runs_dir=tmp_path)
    trainer = Trainer(config, show_progress=False)
    fake = torch.zeros(1, 3, 8, 8)
    fake[0, :, :2] = float("nan")
    trainer.runner.last_visuals = {"real_A": torch.ones(1, 3, 8, 8), "fake_B": fake}
    trainer._write_samples()
    sample = np.asarray(Image.open(trainer.folder.sample(0)))
    assert sample.shape == (8, 18, 3) and sample[:2, 10:].max() == 0 and sample[2:, 10:].min() == 128


def test_a_drit_crop_too_small_is_refused_before_the_run_folder_is_made(tmp_path: Path) -> None:
    """`train --preset drit --data.crop_size 32` was refused at the first step, after the run folder was made: it
    kept config.yaml, run.json, history.jsonl, samples/ and train.lock of a run that never trained. The size is
    checked with the config now (and `bench --size 32` of DRIT is refused as early)."""
    from srunit.config import load_config

    with pytest.raises(ConfigError, match=r"data\.crop_size 32 does not fit the networks: .* at least the 209 pixels "
                                          r"DRIT's discriminators take with .*; use e\.g\. data\.crop_size 212$"):
        load_config("drit", ["data.load_size=32", "data.crop_size=32", f"train.runs_dir={tmp_path}"])
    fewer = ["method.dis_scales=1", "method.dis_layers=1", "method.content_dis_layers=1"]
    with pytest.raises(ConfigError, match=r"at least the 41 pixels DRIT's discriminators take with method.dis_scales "
                                          r"1"):
        load_config("drit", ["data.load_size=32", "data.crop_size=32", *fewer])
    assert load_config("drit", ["data.load_size=44", "data.crop_size=44", *fewer]).data.crop_size == 44
    assert load_config("drit", ["data.preprocess=none", "data.crop_size=32"]).data.crop_size == 32  # checked per batch


def test_a_runs_dir_that_would_make_a_folder_with_a_hidden_character_is_refused(tiny_config, tiny_data: Path,
                                                                                   tmp_path: Path) -> None:
    """`train --train.runs_dir $'runs\\nx'` made a folder named with a newline (noted and left in round fourteen as the
    user's folder; srunit makes it, as it refuses to make such a run name). A folder that exists already is the
    user's and is taken."""
    from srunit.engine.trainer import Trainer

    for odd in ("runs\nx", "runs\u202etxt.exe"):
        config = tiny_config("cut", "train.steps=1", "train.name=r", data_root=tiny_data,
                             runs_dir=tmp_path / odd / "sub")
        with pytest.raises(ConfigError, match=r"would make a folder 'runs.*x.*', whose name holds U\+(000A|202E)"):
            Trainer(config, show_progress=False)
        assert not (tmp_path / odd).exists()
    (tmp_path / "mine\nx").mkdir()
    config = tiny_config("cut", "train.steps=1", "train.name=r", data_root=tiny_data, runs_dir=tmp_path / "mine\nx")
    trainer = Trainer(config, show_progress=False)
    trainer.release()
    assert (tmp_path / "mine\nx" / "r").is_dir()


def test_a_network_file_too_short_for_a_header_says_so(tmp_path: Path) -> None:
    """`srunit app --checkpoint empty.safetensors` (round fifteen B, noted) said `its header size is missing does not
    fit a file of 0 bytes`."""
    from srunit.errors import CheckpointError
    from srunit.runtime.network_files import _check_header

    for size in (0, 3):
        path = tmp_path / f"{size}.safetensors"
        path.write_bytes(b"x" * size)
        with pytest.raises(CheckpointError, match=rf"\(it is {size} bytes, too short for the 8 that give the "
                                                  r"header's size\); it is damaged"):
            _check_header(path)


def test_bench_refuses_a_size_drits_discriminators_cannot_take_before_any_work(monkeypatch: pytest.MonkeyPatch,
                                                                             tmp_path: Path) -> None:
    """`bench synthscapes --size 32 --methods drit` trained the segmenter for minutes, then failed at the DRIT run
    (noted and left in round thirteen); with the crop checked with the config, the benchmark's own run config of
    DRIT at the profile's size was refused too (the suite's profile test). Now each run's config is built first."""
    import srunit.synthscapes.benchmark as bench
    from srunit.synthscapes import profile_settings, run_benchmark

    monkeypatch.setattr(bench, "load_or_train_segmenter", lambda *a, **k: pytest.fail("the segmenter was trained"))
    with pytest.raises(ConfigError, match=r"--size 32 does not fit drit \(it is each run's data.crop_size\): "
                                          r"data.crop_size 32 does not fit the networks: .* at least the 61 pixels "
                                          r"DRIT's discriminators take"):
        run_benchmark(tmp_path / "out", profile_settings("cpu", methods=("drit",), size=32), show_progress=False)
    assert not (tmp_path / "out").exists()
    config = bench.run_config(profile_settings("cpu", methods=("drit",)), "drit", tmp_path, tmp_path, "r", 0)
    assert (config.data.crop_size, config.method.content_dis_layers) == (64, 1)  # the profile's size and layers


def test_tune_refuses_a_size_drit_cannot_take_before_any_work_and_takes_the_users_layers(tmp_path: Path,
                                                                                       capsys: pytest.CaptureFixture
                                                                                       ) -> None:
    """`tune synthscapes --preset drit --size 32` made the data and trained the segmenter before its first trial
    failed; the study's options (`--method.dis_layers 1`) count in the check, as in the trials' configs."""
    from srunit.cli.main import main
    from srunit.synthscapes import profile_settings
    from srunit.tune.targets import SynthScapesTarget

    space = tmp_path / "space.yaml"
    space.write_text("method.lambda_cc: {low: 1, high: 10}\n")
    base = ["tune", "synthscapes", "--preset", "drit", "--size", "32", "--space", str(space), "--trials", "1",
            "--steps", "1", "--out", str(tmp_path / "study")]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "--size 32 does not fit drit (it is each run's data.crop_size): data.crop_size 32 does not fit the " \
           "networks" in err and "at least the 61 pixels DRIT's discriminators take" in err, err
    assert main([*base, "--method.dis_scales", "1", "--method.dis_layers", "1"]) == 2
    assert "at least the 41 pixels DRIT's discriminators take with method.dis_scales 1, method.dis_layers 1" in \
        capsys.readouterr().err
    assert not (tmp_path / "study").exists()
    target = SynthScapesTarget(profile_settings("cpu", methods=("drit",), size=48).to_dict(), str(tmp_path),
                               "unmatched", None)
    config = target.config("drit", ("method.dis_scales=1", "method.dis_layers=1"), {"method.lambda_cc": 2.5},
                           tmp_path / "trials", "t0", 0)
    assert (config.data.crop_size, config.method.dis_scales, config.method.lambda_cc) == (48, 1, 2.5)


def test_a_dry_run_refuses_what_train_refuses_before_writing(monkeypatch: pytest.MonkeyPatch, tiny_config,
                                                             tiny_data: Path, tmp_path: Path) -> None:
    """`train --dry-run` passed a train.runs_dir that would make a folder named with a newline and
    `SRUNIT_RENDEZVOUS_TIMEOUT=abc`, which the real `train` then refused (noted by round eighteen A)."""
    from srunit.engine.dryrun import dry_run

    config = tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=tmp_path / "runs\nx")
    with pytest.raises(ConfigError, match=r"train.runs_dir .* would make a folder 'runs\\nx', whose name holds "
                                          r"U\+000A"):
        dry_run(config)
    config = tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=tmp_path / "runs")
    monkeypatch.setenv("SRUNIT_RENDEZVOUS_TIMEOUT", "abc")
    with pytest.raises(ConfigError, match=r"SRUNIT_RENDEZVOUS_TIMEOUT='abc' must be a number of seconds"):
        dry_run(config)
    monkeypatch.delenv("SRUNIT_RENDEZVOUS_TIMEOUT")
    assert dry_run(config).losses and not (tmp_path / "runs").exists()
