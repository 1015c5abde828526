"""srunit.runtime.run_folder: one module names every file of a run, and one resolver says what a checkpoint path is.

The contract: no other module of the package spells a run folder's file name (a test below reads every module's
string constants and path joins), and every kind of path `srunit translate`, `export` and `app` take resolves to
its file, run, step and direction in `CheckpointSource`.
"""

from __future__ import annotations

import ast
import logging
import shutil
from pathlib import Path

import pytest

from srunit.errors import CheckpointError, ConfigError
from srunit.runtime.run_folder import (
    DIRECTIONS,
    KEEP_MARKER,
    LATEST,
    STATE_FILE,
    CheckpointSource,
    RunFolder,
    checkpoint_name,
    checkpoint_step,
    is_exported_file,
    is_run_folder,
    network_file,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "srunit"
OWNER = SRC / "runtime" / "run_folder.py"

# ----------------------------------------------------------------------------- one owner of the names

# Names that are nothing but a file of a run: spelled anywhere else, they are a second owner of the format.
FILE_NAMES = {RunFolder.CONFIG, RunFolder.RECORD, RunFolder.HISTORY, RunFolder.METRICS, RunFolder.LOCK,
              RunFolder.CHECKPOINTS, RunFolder.SAMPLES, RunFolder.SCORES, STATE_FILE, KEEP_MARKER, LATEST,
              RunFolder.TRACKERS["mlflow"]}
# Words that also name other things (the `eval` command, the experiment trackers, the eval record's image roles):
# a second owner only where they are joined to a path.
PATH_WORDS = FILE_NAMES | {RunFolder.EVAL, RunFolder.TRANSLATED, RunFolder.PREDICTED, RunFolder.MASKS,
                           *RunFolder.TRACKERS.values()}


def spelled_names(source: str) -> list[tuple[int, str]]:
    """(line, name) of each run-folder name ``source`` spells: a string constant that is a file name of a run, a
    step folder's prefix (``step_``), or a path word joined with ``/``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                node.value in FILE_NAMES or node.value.startswith("step_")):
            found.append((node.lineno, node.value))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            found += [(node.lineno, side.value) for side in (node.left, node.right)
                      if isinstance(side, ast.Constant) and side.value in PATH_WORDS - FILE_NAMES]
    return found


def test_the_scanner_finds_what_it_looks_for() -> None:
    planted = ('run / "config.yaml"\nrun / "eval" / name\nf"step_{n:08d}"\nx = ("metrics.jsonl", "latest")\n'
               'command = "eval"\nlogger = "tensorboard"\nrecord["translated"] = 1\n')
    assert spelled_names(planted) == [(1, "config.yaml"), (2, "eval"), (3, "step_"), (4, "metrics.jsonl"),
                                      (4, "latest")]


def test_no_module_but_the_run_folder_spells_a_run_folder_name() -> None:
    spelled = {f"{path.relative_to(SRC)}:{line}": name for path in sorted(SRC.rglob("*.py")) if path != OWNER
               for line, name in spelled_names(path.read_text(encoding="utf-8"))}
    assert not spelled, f"run-folder names spelled outside srunit/runtime/run_folder.py (use RunFolder): {spelled}"


# ----------------------------------------------------------------------------- the run folder


def test_run_folder_paths_and_what_makes_a_run_folder(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "r")
    assert run.config == tmp_path / "r" / "config.yaml" and run.record.name == "run.json"
    assert run.checkpoint(1000) == tmp_path / "r" / "checkpoints" / "step_00001000"
    assert run.latest == tmp_path / "r" / "checkpoints" / "latest"
    assert run.sample(12) == tmp_path / "r" / "samples" / "step_00000012.png"
    assert run.scores == tmp_path / "r" / "eval" / "scores.json" and run.predicted.parent == run.eval
    assert {run.tracker(t).name for t in ("tensorboard", "wandb", "mlflow")} == {"tensorboard", "wandb", "mlruns"}
    assert checkpoint_name(1000) == "step_00001000" and checkpoint_step("step_00001000") == 1000
    assert checkpoint_step("step_00000012.png") == 12 and checkpoint_step("latest") is None
    assert checkpoint_step("step_x") is None and network_file(Path("c"), "G") == Path("c/G.safetensors")
    run.path.mkdir()
    run.config.write_text("method: {name: cut}\n")
    assert not run.is_run()  # a config alone is any folder with a YAML file
    for marker in RunFolder.MARKERS:
        (run.path / marker).touch()
        assert run.is_run() and is_run_folder(run.path)
        (run.path / marker).unlink()
    assert run.method() == "cut" and not run.has_checkpoint() and run.latest_step() is None
    run.samples.mkdir()
    for step in (20, 3):
        run.sample(step).touch()
    (run.samples / "notes.png").touch()
    assert [p.name for p in run.sample_files()] == ["step_00000003.png", "step_00000020.png"]


@pytest.mark.parametrize(("text", "says"), [
    ("method: {name: cut}\ntrain: {seed: " + "7" * 10_000 + "}\n", "an integer of 10000 digits"),
    ("method: {name: cut}\nmethod: {name: srunit}\n", "the key 'method' appears twice"),
    ("method: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 64 levels deep"),
    ("method: [unclosed\n", "could not be read"),
])
def test_a_damaged_run_config_is_read_as_empty_with_a_warning(tmp_path: Path, text: str, says: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "config.yaml").write_text(text)
    with caplog.at_level(logging.WARNING, logger="srunit"):
        assert RunFolder(tmp_path).read_config() == {} and RunFolder(tmp_path).method() is None
    assert str(tmp_path / "config.yaml") in caplog.text and says in caplog.text


# ----------------------------------------------------------------------------- what a user passes


def test_every_path_into_a_run_resolves_to_its_checkpoint_run_and_step(tiny_runs: dict[str, Path]) -> None:
    run = tiny_runs["cut"]
    step = (run / "checkpoints" / "step_00000001").resolve()
    assert RunFolder(run).latest_checkpoint() == step and RunFolder(run).latest_step() == 1
    for path in (run, run / "checkpoints", run / "checkpoints" / "latest", step):
        source = CheckpointSource.resolve(path)
        assert (source.kind, source.folder, source.run, source.step) == ("checkpoint", step, RunFolder(run.resolve()),
                                                                         1), path
        assert source.file == step / "G.safetensors" and source.direction == "AtoB" and source.method == "cut"
    back = CheckpointSource.resolve(run, "BtoA")  # the file of the direction (a one-sided run has none: the loader
    assert back.file == step / "G_BA.safetensors" and back.direction == "BtoA"  # says so)
    network = CheckpointSource.resolve(step / "G.safetensors")
    assert (network.kind, network.file, network.folder, network.run, network.step) == (
        "network", step / "G.safetensors", step, RunFolder(run.resolve()), 1)


def test_files_outside_a_run_and_their_directions(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    step = RunFolder(tiny_runs["cut"]).latest_checkpoint()
    shutil.copytree(step, tmp_path / "step_00000007")
    shutil.copy(step / "G.safetensors", tmp_path / "G.safetensors")
    shutil.copy(step / "G.safetensors", tmp_path / "G_BA.safetensors")
    copied = CheckpointSource.resolve(tmp_path / "step_00000007")
    assert (copied.run, copied.step, copied.method) == (None, 7, None)
    loose = CheckpointSource.resolve(tmp_path / "G.safetensors")
    assert (loose.kind, loose.folder, loose.run, loose.step) == ("network", tmp_path.resolve(), None, None)
    assert CheckpointSource.resolve(tmp_path / "G_BA.safetensors").direction == "BtoA"  # the file's own
    assert CheckpointSource.resolve(tmp_path / "G_BA.safetensors", "BtoA").file == tmp_path / "G_BA.safetensors"
    with pytest.raises(ConfigError, match=r"--direction BtoA picks the B -> A generator, but .*G\.safetensors holds "
                                          r"the A -> B generator"):
        CheckpointSource.resolve(tmp_path / "G.safetensors", "BtoA")
    for name, held in (("latest_net_G.pth", "AtoB"), ("latest_net_G_A.pth", "AtoB"), ("latest_net_G_B.pth", "BtoA")):
        (tmp_path / name).write_bytes(b"not read by the resolver")
        public = CheckpointSource.resolve(tmp_path / name)
        assert (public.kind, public.direction, public.run) == ("public", held, None)
    (tmp_path / "weights.pth").write_bytes(b"")
    with pytest.raises(ConfigError, match="a generator of no known direction"):
        CheckpointSource.resolve(tmp_path / "weights.pth", "BtoA")
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(CheckpointError, match="unknown checkpoint file type"):
        CheckpointSource.resolve(tmp_path / "notes.txt")
    with pytest.raises(CheckpointError, match="does not exist"):
        CheckpointSource.resolve(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        CheckpointSource.resolve(tmp_path / "empty")
    with pytest.raises(ConfigError, match=r"--direction: invalid value 'AtoC'; allowed: AtoB, BtoA"):
        CheckpointSource.resolve(tmp_path / "G.safetensors", "AtoC")


def test_exported_files_and_the_direction_their_metadata_gives(tmp_path: Path) -> None:
    onnx = tmp_path / "g.onnx"
    onnx.write_bytes(b"")
    assert is_exported_file(onnx) and not is_exported_file(tmp_path / "missing.onnx")
    source = CheckpointSource.resolve(onnx)
    assert (source.kind, source.file, source.direction) == ("exported", onnx, None)
    source.check_held_direction("BtoA")  # the file as it is
    source.check_held_direction("BtoA", exact=True)
    asked = CheckpointSource.resolve(onnx, "BtoA")
    asked.check_held_direction("BtoA", exact=True)
    with pytest.raises(ConfigError, match="holds the A -> B generator"):
        asked.check_held_direction("AtoB")
    with pytest.raises(ConfigError, match="was exported with --direction AtoB and translates in that direction only"):
        asked.check_held_direction(None, exact=True)  # an export that records no direction is A -> B
    with pytest.raises(ConfigError, match="was exported with --direction BtoA"):
        CheckpointSource.resolve(onnx, "AtoB").check_held_direction("BtoA", exact=True)
    CheckpointSource.resolve(onnx, "AtoB").check_held_direction("BtoA")  # AtoB asked of a file: the file as it is
    assert set(DIRECTIONS) == {"AtoB", "BtoA"}
