"""Round fourteen, a confirmation probe of issue 24's classes aimed at whole workflows (train, resume, export,
translate, eval, report) on every method, at the commands and advice srunit prints, and at odd environments (a
deleted working folder, long paths, `SRUNIT_*` variables). Each test reproduced a defect first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from srunit.engine.trainer import Trainer
from srunit.errors import ConfigError


@pytest.mark.slow
def test_the_logged_learning_rate_is_the_one_each_step_trained_at(tiny_config, tiny_data: Path, tmp_path: Path
                                                                  ) -> None:
    """`metrics.jsonl` (and the log line, TensorBoard, W&B) gave at step N the learning rate of step N + 1: a run of
    2 steps decaying over the last one logged 1e-4 and 0, though its steps trained at 2e-4 and 1e-4 (the last step
    of every run showed 0)."""
    config = tiny_config("cut", "train.steps=2", "train.decay_fraction=0.5", "train.log_every=1", "train.lr=2e-4",
                         "train.name=lr", data_root=tiny_data, runs_dir=tmp_path)
    trainer = Trainer(config, show_progress=False)
    trained_at = [trainer.runner.learning_rate(step) for step in range(2)]
    assert trained_at == pytest.approx([2e-4, 1e-4])  # the schedule: factor 1, then 1 - 1/2
    run = Path(trainer.fit())
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], m["lr"]) for m in lines] == [(1, pytest.approx(2e-4)), (2, pytest.approx(1e-4))]


def test_a_cache_folder_error_names_only_what_the_command_takes(monkeypatch, tmp_path: Path) -> None:
    """`eval seg --segmenter synthscapes` with `$SRUNIT_CACHE` naming a file said the folder `comes from --cache-dir
    (or --records)`, options `eval` does not have; a folder the caller gave is named as given."""
    import srunit.synthscapes.scorer as scorer

    monkeypatch.setattr(scorer, "train_segmenter", lambda *a, **k: pytest.fail("trained before the check"))
    blocker = tmp_path / "f"
    blocker.write_text("x")
    monkeypatch.setenv("SRUNIT_CACHE", str(blocker))
    settings = scorer.SegmenterSettings(size=32, num_images=8, steps=2, batch_size=2, width=4)
    with pytest.raises(ConfigError) as err:
        scorer.load_or_train_segmenter(settings)
    assert "--cache-dir" not in str(err.value) and "point $SRUNIT_CACHE at a writable folder" in str(err.value)
    with pytest.raises(ConfigError, match=r"given as the cache folder \(--cache-dir or --records"):
        scorer.load_or_train_segmenter(settings, blocker)
    assert blocker.read_text() == "x"


@pytest.mark.slow
def test_a_broken_plugin_is_named_as_such_when_a_network_file_is_read(monkeypatch, tmp_path: Path) -> None:
    """`SRUNIT_PLUGINS=no_such_mod srunit translate --checkpoint RUN` said the file `holds a network of class
    'ResnetGenerator', which is not registered (plugin module ... cannot be imported ...); if it is a network of your
    own, name its module in $SRUNIT_PLUGINS`: the package's own generator called unregistered, and advice to add a
    plugin where one was the trouble."""
    import srunit.registry as registry
    from srunit.networks import ResnetGenerator
    from srunit.runtime.network_files import load_network, save_network

    path = tmp_path / "G.safetensors"
    save_network(ResnetGenerator(ngf=4, n_blocks=2), path)
    monkeypatch.setenv("SRUNIT_PLUGINS", "no_such_module_of_round_fourteen")
    with pytest.raises(ConfigError) as err:
        load_network(path)
    assert "no_such_module_of_round_fourteen" in str(err.value) and "cannot be imported" in str(err.value)
    assert "not registered" not in str(err.value)
    assert "no_such_module_of_round_fourteen" not in registry._plugins_loaded
    monkeypatch.delenv("SRUNIT_PLUGINS")
    assert isinstance(load_network(path), ResnetGenerator)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="a deleted working folder is a Linux case")
@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"]])
def test_help_works_in_a_deleted_folder(tmp_path: Path, argv: list[str]) -> None:
    """`srunit --help` (or `srunit train --help`) in a folder deleted under the shell: the help is meant to need no
    folder, but it loads torch, whose libraries failed with `Intel oneMKL FATAL ERROR: Cannot load
    libtorch_cpu.so`, status 2, and no help."""
    gone = tmp_path / "gone"
    gone.mkdir()
    script = ("import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
              "from srunit.cli.main import main; sys.exit(main(sys.argv[2:]))")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script, str(gone), *argv], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-500:]
    assert "usage: srunit" in result.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_written_files_keep_the_umask(monkeypatch, tmp_path: Path) -> None:
    """`umask 077; srunit translate ...` wrote its images (and every report, record and checkpoint) 0644, readable
    by every user, though the folders it made were 0700: the atomic writes set 0644 whatever the umask."""
    import srunit._atomic as atomic

    monkeypatch.setattr(atomic, "_UMASK", None)
    old = os.umask(0o077)
    try:
        atomic.write_bytes_atomic(tmp_path / "a.json", b"{}")
        atomic.write_text_atomic(tmp_path / "b.html", "<p>")
        with atomic.FolderWriter(tmp_path / "out") as writer:
            writer.write_bytes("c.png", b"png")
    finally:
        os.umask(old)
    monkeypatch.setattr(atomic, "_UMASK", None)
    for path in (tmp_path / "a.json", tmp_path / "b.html", tmp_path / "out" / "c.png"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    atomic.write_bytes_atomic(tmp_path / "d.json", b"{}")  # the default umask of the tests: shareable
    assert (tmp_path / "d.json").stat().st_mode & 0o777 == atomic.FILE_MODE & ~old


@pytest.mark.parametrize("section", ["data: []", "train: 0", "model: ''"])
def test_a_section_that_is_not_a_mapping_is_refused_under_overrides_too(tmp_path: Path, section: str) -> None:
    """`base: cut` then `data: []` in a YAML file was refused (round twelve) unless the command line also gave a
    key of that section (`--data.root X`, which every `train` gives): the override's mapping replaced the list, and
    the run took the preset's data settings without a word."""
    from srunit.config import load_config

    preset = tmp_path / "p.yaml"
    preset.write_text(f"base: cut\n{section}\n", encoding="utf-8")
    name = section.split(":")[0]
    key = {"data": "data.root=x", "train": "train.steps=2", "model": "model.ngf=4"}[name]
    with pytest.raises(ConfigError, match=rf"^{name}: expected a mapping of keys, got"):
        load_config(preset, [key])
    preset.write_text("base: cut\ndata: null\n", encoding="utf-8")  # null is the defaults, as before
    assert str(load_config(preset, ["data.root=x"]).data.root) == "x"


@pytest.mark.slow
def test_resuming_a_run_that_has_ended_says_how_to_extend_it(tiny_config, tiny_data: Path, tmp_path: Path,
                                                             caplog) -> None:
    """`srunit train` into a run folder that holds a run said `continue it with srunit train --resume RUN`; done as
    said on a run that had ended, it logged `steps 2 -> 2 of 2` and exited 0, training nothing, with no word of
    why or of `--train.steps`."""
    import logging

    config = tiny_config("cut", "train.steps=1", "train.name=ended", data_root=tiny_data, runs_dir=tmp_path)
    run = Path(Trainer(config, show_progress=False).fit())
    with pytest.raises(ConfigError, match=r"--resume .* \(with a larger --train.steps N to extend a run that has "):
        Trainer(config, show_progress=False)
    with caplog.at_level(logging.WARNING, logger="srunit"):
        Trainer.resume(run, show_progress=False).fit()
    assert rf"the run has ended (step 1 of 1): nothing to train, and its files are left as they were; extend it " \
           rf"with srunit train --resume {run} --train.steps N (N > 1)" in caplog.text


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_an_evaluation_that_fails_leaves_the_runs_record_as_it_was(tiny_runs: dict[str, Path], tiny_data: Path,
                                                                    tmp_path: Path) -> None:
    """`eval paired --pred P --target T --run RUN --replace-record` (or `eval seg`) where P's files do not pair with
    T's: refused, status 2, but RUN/eval/translated had been replaced by P's images and RUN/eval/predicted deleted
    already, so the record's scores described images the run no longer held."""
    import shutil

    import numpy as np

    from srunit.errors import DataError
    from srunit.eval.run_records import evaluate_run_paired, evaluate_run_segmentation

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    def segment(rgb):
        return np.zeros(rgb.shape[:2], dtype=np.int64)

    evaluate_run_segmentation(run, tiny_data / "testB", tiny_data / "testLabels", segment, 8, segmenter="zeros")
    evaluate_run_paired(run, tiny_data / "testB", tiny_data / "testB", (30, 50))
    before = _snapshot(run / "eval")
    assert any(name.startswith("predicted/") for name in before)
    one = tmp_path / "one"
    one.mkdir()
    first = sorted((tiny_data / "testB").iterdir())[0]
    shutil.copyfile(first, one / first.name)
    with pytest.raises(DataError, match=rf"no prediction partner .* in {one}"):
        evaluate_run_paired(run, one, tiny_data / "testB", (30, 50), replace=True)
    assert _snapshot(run / "eval") == before
    with pytest.raises(DataError, match=rf"no image partner .* in {one}"):
        evaluate_run_segmentation(run, one, tiny_data / "testLabels", segment, 8, segmenter="zeros", replace=True)
    assert _snapshot(run / "eval") == before
    assert sorted(p.name for p in (run / "eval").iterdir()) == ["predicted", "scores.json", "translated"]
    evaluate_run_paired(run, one, one, (30, 50), replace=True)  # a whole evaluation still replaces the record
    assert sorted(p.name for p in (run / "eval" / "translated").iterdir()) == [first.name]
    assert not (run / "eval" / "predicted").exists()


def test_the_data_max_pixels_advice_lets_the_image_through(tmp_path: Path) -> None:
    """`train --data.max_pixels 100` on 32 x 32 images said `pass data.max_pixels 1024 to allow it`; done as said,
    it was refused again (data.load_size 36 resizes them to 1,296 pixels), and that message advised `use
    data.preprocess resize_and_crop`, the mode in use."""
    import numpy as np
    from PIL import Image

    from srunit.data import Preprocess, UnalignedDataset
    from srunit.errors import DataError

    for domain in ("A", "B"):
        (tmp_path / domain).mkdir()
        Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(tmp_path / domain / "0.png")
    preprocess = Preprocess("resize_and_crop", 36, 32, False)
    # both files (A/0.png and B/0.png) are over the limit: the value lets both through (round nineteen B)
    with pytest.raises(DataError, match=r"\(none larger\).*pass data.max_pixels 1296 to allow them all") as err:
        UnalignedDataset(tmp_path / "A", tmp_path / "B", preprocess, max_pixels=100)
    assert "use data.preprocess resize_and_crop" not in str(err.value)
    with pytest.raises(DataError, match=r"lower data.load_size, or pass data.max_pixels 1296 to allow them all"):
        UnalignedDataset(tmp_path / "A", tmp_path / "B", preprocess, max_pixels=1024)
    assert len(UnalignedDataset(tmp_path / "A", tmp_path / "B", preprocess, max_pixels=1296)) == 1


def test_the_report_says_which_checkpoint_a_runs_scores_are_of(tmp_path: Path) -> None:
    """`srunit eval seg --run RUN` at step 4, `train --resume RUN --train.steps 6`, then `srunit report RUN`: the
    runs table said 6 steps and the scores table gave the step-4 scores beside the run's name, without a word that
    they were not of the checkpoint the run now holds."""
    from srunit.report import render_report
    from srunit.report.runs import Run

    scores = {"checkpoint_step": 4, "segmentation": {"pixel_accuracy": 0.5, "class_accuracy": 0.4, "mean_iou": 0.3}}
    stale = Run(tmp_path / "a", "a", "cut", {}, scores, checkpoint_step=6)
    fresh = Run(tmp_path / "b", "b", "cut", {}, {**scores, "checkpoint_step": 6}, checkpoint_step=6)
    page = render_report([stale, fresh], 0)
    assert "a (scores of step 4; newest checkpoint: step 6)" in page
    assert "b (scores of" not in page
