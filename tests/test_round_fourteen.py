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
