"""Round six, a fresh probe of issue 24's classes: files read without a bound or through a FIFO, outputs that
follow links, odd environments, silent garbage, and the docs' first hour. Each test reproduced a defect first."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from srunit.runtime.run_folder import RunFolder

posix = pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "mkfifo"), reason="FIFOs, flock: POSIX")

DEEP = "[" * 100_000 + "]" * 100_000


@contextlib.contextmanager
def _within(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: an open() of a FIFO without a writer blocks until a signal interrupts it."""

    def hung(*_: object) -> None:
        raise AssertionError(f"still blocked after {seconds} s (a read of a FIFO?)")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def run_copy(tiny_runs: dict[str, Path], tmp_path: Path) -> RunFolder:
    """A copy of the tiny CUT run (the session's runs are read-only)."""
    copy = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], copy, symlinks=True)
    return RunFolder(copy)


# ----------------------------------------------------------------------------- reads with a bound


@posix
def test_the_report_reads_a_run_whose_lock_or_record_is_a_fifo_or_deep_json(run_copy: RunFolder) -> None:
    """The report asks whether a run is being trained (a shared flock on train.lock) and how many steps it planned
    (run.json): a plain open() of a FIFO in either place blocked `srunit report` for ever, and run.json nested
    100,000 deep was a RecursionError traceback."""
    from srunit.report.runs import load_run

    run_copy.lock.unlink(missing_ok=True)
    os.mkfifo(run_copy.lock)
    run_copy.record.unlink()
    os.mkfifo(run_copy.record)
    with _within(10):
        loaded = load_run(run_copy.path)
    assert not loaded.training and loaded.planned_steps is None

    run_copy.record.unlink()
    run_copy.record.write_text(DEEP)
    assert load_run(run_copy.path).planned_steps is None


@posix
def test_the_report_still_sees_a_run_being_trained(run_copy: RunFolder) -> None:
    """The lock read without blocking still tells a held lock (a training now) from a free one."""
    from srunit.engine.run_state import RunLock
    from srunit.report.runs import load_run

    assert not load_run(run_copy.path).training
    lock = RunLock(run_copy.path)
    try:
        assert load_run(run_copy.path).training
    finally:
        lock.release()
    assert not load_run(run_copy.path).training


@posix
@pytest.mark.parametrize("damage", ["fifo", "deep"])
def test_a_resume_whose_run_record_is_a_fifo_or_deep_json_trains_on(run_copy: RunFolder, damage: str) -> None:
    """A resume that changes the length rewrites run.json's total_steps: it read run.json with a plain open(), so a
    FIFO there hung the resume (after the warning that it is not a regular file) and deep JSON was a traceback."""
    from srunit.engine import Trainer

    run_copy.record.unlink()
    if damage == "fifo":
        os.mkfifo(run_copy.record)
    else:
        run_copy.record.write_text(DEEP)
    with _within(60):
        Trainer.resume(run_copy.path, ["train.steps=2"], show_progress=False).fit()
    assert run_copy.latest_step() == 2


def test_a_run_copied_by_a_tool_that_follows_links_is_refused_on_resume_with_the_command_that_mends_it(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """``scp -r`` or ``cp -rL`` turns checkpoints/latest into a folder: the resume trained a step, then failed to
    replace it by a link with advice about permissions and free space. Now it is refused before any work, with the
    command that makes it a link again; after that command the resume trains on."""
    from srunit.engine import Trainer
    from srunit.errors import CheckpointError

    copy = RunFolder(tmp_path / "copy")
    shutil.copytree(tiny_runs["cut"], copy.path)  # follows links, as scp -r does
    assert copy.latest.is_dir() and not copy.latest.is_symlink()
    with pytest.raises(CheckpointError, match=r"latest is a folder, not the link .* rm -r .*latest && ln -s "
                                              r"step_00000001 ") as refused:
        Trainer.resume(copy.path, ["train.steps=2"], show_progress=False)
    assert "\n" not in str(refused.value)
    shutil.rmtree(copy.latest)
    copy.latest.symlink_to("step_00000001")
    Trainer.resume(copy.path, ["train.steps=2"], show_progress=False).fit()
    assert copy.latest_step() == 2


# ----------------------------------------------------------------------------- odd environments


@pytest.mark.parametrize("place", ["file", "under a file", "fifo"])
def test_a_segmenter_cache_that_cannot_be_written_is_refused_before_the_segmenter_trains(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, place: str) -> None:
    """`$SRUNIT_CACHE` (or --cache-dir) naming a file, a FIFO or a path below a file: the first SynthScapes score
    trained the segmenter for minutes, then failed to write it (a FileExistsError traceback from the library)."""
    import srunit.synthscapes.scorer as scorer
    from srunit.errors import ConfigError

    trained = []
    monkeypatch.setattr(scorer, "train_segmenter", lambda *a, **k: trained.append(1))
    blocker = tmp_path / "cache"
    if place == "fifo" and hasattr(os, "mkfifo"):
        os.mkfifo(blocker)
    else:
        blocker.write_text("a user's file\n")
    cache = blocker / "srunit" if place == "under a file" else blocker
    monkeypatch.setenv("SRUNIT_CACHE", str(cache))
    settings = scorer.SegmenterSettings(size=32, num_images=8, steps=2, batch_size=2, width=4)
    with pytest.raises(ConfigError, match=rf"segmenter cache folder {cache} cannot hold .*SRUNIT_CACHE.*writable"):
        scorer.load_or_train_segmenter(settings)
    assert not trained
    if place != "fifo":
        assert blocker.read_text() == "a user's file\n"


# ----------------------------------------------------------------------------- no silent garbage


@pytest.mark.parametrize("spec", ["a,a,c", "a,,c", "a, b ,b"])
def test_class_names_that_repeat_or_are_empty_are_refused(spec: str) -> None:
    """`--class-names a,a,c` was accepted: `--flip-from a` then picked one of the two classes without a word, and
    the tables said class 0 flipped mostly to `a`. An empty name (`a,,c`) left a class unnamed in every table."""
    from srunit.errors import ConfigError
    from srunit.eval.run_records import resolve_class_names

    with pytest.raises(ConfigError, match=r"--class-names (names more than one class '(a|b)' \(ids \[\d, \d\]\)|gives "
                                          r"an empty name for class 1)"):
        resolve_class_names(spec, 3)
    assert resolve_class_names("a,b,c", 3) == ["a", "b", "c"]


def test_a_class_names_file_with_a_repeated_name_is_refused(tmp_path: Path) -> None:
    from srunit.errors import ConfigError
    from srunit.eval.run_records import resolve_class_names

    names = tmp_path / "names.txt"
    names.write_text("sky\nroad\nsky\n")
    with pytest.raises(ConfigError, match=r"'sky' \(ids \[0, 2\]\)"):
        resolve_class_names(str(names), 3)


# ----------------------------------------------------------------------------- writes that follow nothing


def _tune_data(tiny_data: Path, out: Path, *extra: str) -> list[str]:
    return ["tune", "data", "--preset", "cut", "--data", str(tiny_data), "--val-images", str(tiny_data / "testA"),
            "--val-labels", str(tiny_data / "testLabels"), "--classes", "8", "--trials", "1", "--out", str(out),
            "--no-progress", *extra]


@pytest.mark.parametrize("inside", ["testA", "trainB", "testLabels"])
def test_a_tuning_folder_inside_the_data_or_validation_folders_is_refused(tiny_data: Path, inside: str,
                                                                          capsys: pytest.CaptureFixture) -> None:
    """`tune data --out VAL_IMAGES/tune` was accepted: study.db and tune.json were written among the validation
    images, and each trial's translations would have been scanned as validation images."""
    from srunit.cli.main import main

    out = tiny_data / inside / "tune"
    before = sorted(p.name for p in (tiny_data / inside).iterdir())
    assert main(_tune_data(tiny_data, out, "--segmenter", "seg.onnx")) == 2
    assert "is inside --data" in capsys.readouterr().err
    assert sorted(p.name for p in (tiny_data / inside).iterdir()) == before


def test_a_tuning_study_that_cannot_start_leaves_no_folder(tiny_data: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    """A wrong --segmenter (or --objective) was refused only after OUT/study.db and OUT/tune.json were written; the
    message for `--segmenter synthscapes` said it was of no known form while listing it as accepted."""
    from srunit.cli.main import main

    out = tmp_path / "tune"
    assert main(_tune_data(tiny_data, out, "--segmenter", "synthscapes")) == 2
    err = capsys.readouterr().err
    assert "is taken by `srunit eval seg`" in err and "no known form" not in err
    assert not out.exists()
    assert main(_tune_data(tiny_data, out, "--segmenter", "nothing-here")) == 2
    assert "no known form" in capsys.readouterr().err and not out.exists()


# ----------------------------------------------------------------------------- options with a resource meaning


def test_an_export_check_size_above_the_pixel_limit_is_refused_before_the_generator_loads(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`export --check-size 100000x100000` allocated a random batch of 240 GB: a RuntimeError traceback from
    torch's allocator (or the machine swapping) instead of a message."""
    from srunit.cli.main import main
    from srunit.errors import ConfigError
    from srunit.export import parse_size

    with pytest.raises(ConfigError, match=r"--check-size '100000x100000' is 10,000,000,000 pixels, more than "
                                          r"16,777,216"):
        parse_size("100000x100000")
    assert parse_size("4096x4096") == (4096, 4096)
    out = tmp_path / "g.onnx"
    assert main(["export", str(tiny_runs["cut"]), "--output", str(out), "--check-size", "8192x4096"]) == 2
    assert "more than 16,777,216" in capsys.readouterr().err and not out.exists()


@posix
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_fid_weights_that_are_a_fifo_or_a_device_are_named_as_such(tmp_path: Path, kind: str) -> None:
    """`eval fid --weights` given a FIFO or a link to /dev/zero said the file did not exist (and to download it)."""
    from srunit.errors import ConfigError
    from srunit.eval.fid import load_inception

    weights = tmp_path / "inception.pt"
    if kind == "fifo":
        os.mkfifo(weights)
    else:
        weights.symlink_to("/dev/zero")
    what = "a FIFO" if kind == "fifo" else "a character device"
    with pytest.raises(ConfigError, match=rf"Inception weights {weights} is {what}"):
        load_inception(weights)


def test_a_benchmark_folder_inside_its_records_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture
                                                                 ) -> None:
    """`bench synthscapes --out RECORDS/b --records RECORDS` was accepted (`tune` refuses it): the benchmark's run
    folders, checkpoints included, went into the folder of records a user commits."""
    from srunit.cli.main import main

    records = tmp_path / "records"
    records.mkdir()
    assert main(["bench", "synthscapes", "--profile", "cpu", "--out", str(records / "b"), "--records", str(records),
                 "--no-progress"]) == 2
    assert "is inside --records" in capsys.readouterr().err
    assert list(records.iterdir()) == []


@pytest.mark.parametrize("classes", ["9", "300"])
def test_the_synthscapes_segmenter_takes_its_eight_classes_only(tmp_path: Path, classes: str,
                                                                capsys: pytest.CaptureFixture) -> None:
    """`eval seg --segmenter synthscapes --classes 9` was accepted: the scorer's 'not rendered' output (id 8) then
    counted as a class, and the flip rate rose by the unrendered share (77.7% where --classes 8 gives 62.6% and
    15.1% not rendered), with no word."""
    from srunit.cli.main import main

    folder = tmp_path / "images"
    folder.mkdir()
    assert main(["eval", "seg", "--images", str(folder), "--labels", str(folder), "--segmenter", "synthscapes",
                 "--classes", classes]) == 2
    assert f"scores the 8 SynthScapes classes, got --classes {classes}; pass --classes 8" in capsys.readouterr().err


@posix
@pytest.mark.parametrize("linked", ["eval", "eval/translated"])
def test_an_evaluation_never_replaces_a_folder_a_link_in_the_run_points_to(run_copy: RunFolder, tmp_path: Path,
                                                                           tiny_data: Path, linked: str) -> None:
    """`eval paired --run RUN` where RUN/eval is a symbolic link to a user's folder replaced that folder's
    translated/ (deleting the user's files in it) and wrote scores.json there."""
    from srunit.errors import DataError
    from srunit.eval.run_records import evaluate_run_paired

    users = tmp_path / "users"
    (users / "translated").mkdir(parents=True)
    (users / "translated" / "keep.txt").write_text("mine\n")
    shutil.rmtree(run_copy.eval, ignore_errors=True)
    link = run_copy.path / linked
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(users if linked == "eval" else users / "translated")
    with pytest.raises(DataError, match=rf"{linked} is a symbolic link .*\(rm "):
        evaluate_run_paired(run_copy.path, tiny_data / "testB", tiny_data / "testB", (30, 50))
    assert sorted(p.relative_to(users).as_posix() for p in users.rglob("*")) == ["translated", "translated/keep.txt"]


@posix
@pytest.mark.parametrize("linked", ["checkpoints", "samples"])
def test_a_run_that_links_another_runs_checkpoints_or_samples_is_refused(run_copy: RunFolder, tmp_path: Path,
                                                                         linked: str) -> None:
    """A fork made by linking the original's checkpoints/ (`ln -s ../run/checkpoints fork/checkpoints`) resumed
    into them: the original's `latest` moved to the fork's step 2, and rotation would have deleted its checkpoints.
    Now refused before any step, naming the link and the copy that gives the fork its own folder."""
    import hashlib

    from srunit.engine import Trainer
    from srunit.errors import ConfigError

    fork = RunFolder(tmp_path / "fork")
    shutil.copytree(run_copy.path, fork.path, symlinks=True)
    target = getattr(run_copy, linked)
    target.mkdir(exist_ok=True)
    shutil.rmtree(getattr(fork, linked), ignore_errors=True)
    getattr(fork, linked).symlink_to(target)

    def snapshot() -> dict[str, str]:
        return {str(p.relative_to(run_copy.path)): os.readlink(p) if p.is_symlink()
                else hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
                for p in run_copy.path.rglob("*") if p.name != "train.lock"}

    before = snapshot()
    with pytest.raises(ConfigError, match=rf"{linked} is a symbolic link .* rm .* && cp -r "):
        Trainer.resume(fork.path, ["train.steps=2"], show_progress=False)
    assert snapshot() == before


@pytest.mark.parametrize("kind", ["checkpoints", "samples"])
def test_a_run_whose_checkpoints_or_samples_is_a_file_is_refused_before_any_step(run_copy: RunFolder,
                                                                                  kind: str) -> None:
    """A run whose samples/ had become a file resumed, trained to its first sample grid, and failed there
    (NotADirectoryError); now refused up front, naming the file and the fix, and the file is kept."""
    from srunit.config import load_config
    from srunit.engine import Trainer
    from srunit.errors import ConfigError

    path = getattr(run_copy, kind)
    if kind == "checkpoints":  # a new run's folder: nothing in it to resume, so a new Trainer meets the file
        shutil.rmtree(path)
    else:
        shutil.rmtree(path, ignore_errors=True)
    path.write_text("a user's notes\n")
    with pytest.raises(ConfigError, match=rf"{kind} is a file, not a folder; .* \(mv .*{kind}\.bak\)"):
        if kind == "checkpoints":
            Trainer(load_config(run_copy.config), run_dir=run_copy.path, show_progress=False)
        else:
            Trainer.resume(run_copy.path, ["train.steps=2"], show_progress=False)
    assert path.read_text() == "a user's notes\n"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_bench_speed_names_its_own_device_option(capsys: pytest.CaptureFixture) -> None:
    """`bench speed --device cuda` (and `demo --device cuda`) on a machine without CUDA said `train.device is 'cuda'
    ...; use train.device cpu`, an option these commands do not have."""
    from srunit.cli.main import main

    assert main(["bench", "speed", "--device", "cuda", "--size", "32"]) == 2
    assert "--device is 'cuda' but CUDA is not available here; use --device cpu" in capsys.readouterr().err
    assert main(["bench", "speed", "--size", "32", "--train.device", "cuda"]) == 2  # an override keeps its name
    assert "train.device is 'cuda'" in capsys.readouterr().err


def test_a_class_names_file_saved_with_a_byte_order_mark_names_its_first_class_plainly(tmp_path: Path) -> None:
    """A names file saved as "UTF-8 with BOM" (Windows editors) gave its first class the name '\\ufeffsky':
    `--flip-from sky` was then 'not a class' while the list it printed showed `sky`, and every table and record
    carried the invisible character."""
    from srunit.eval.run_records import resolve_class_names

    names = tmp_path / "names.txt"
    names.write_bytes(b"\xef\xbb\xbfsky\r\nroad\r\ncar\r\n")
    assert resolve_class_names(str(names), 3) == ["sky", "road", "car"]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--size", "100000000000", "--size must be an integer from 16 to 4,096"),
    ("--num-test", "100000000000", "--num-test must be an integer from 1 to 100,000"),
    ("--batch-size", "100000000000", "--batch-size must be an integer from 1 to 65,536"),
    ("--seeds", "100000000000", "--seeds must be an integer from 1 to 1,000"),
    ("--first-seed", str(2**70), "--first-seed must be an integer from 0 to 18,446,744,073,709,551,615"),
    ("--segmenter-images", "100000000000", "--segmenter-images must be an integer from 1 to 100,000"),
])
def test_benchmark_counts_have_an_upper_bound(tmp_path: Path, capsys: pytest.CaptureFixture, option: str, value: str,
                                              message: str) -> None:
    """`bench synthscapes --size 10**11` was a numpy MemoryError traceback; `--segmenter-images 10**11` began
    rendering 10**11 images; `--num-test`, `--batch-size` and `--first-seed` out of range were refused only after
    minutes of training the scoring segmenter."""
    from srunit.cli.main import main

    out = tmp_path / "bench"
    assert main(["bench", "synthscapes", "--profile", "cpu", option, value, "--out", str(out), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(sys.platform == "win32" or sys.getfilesystemencoding() != "utf-8", reason="POSIX byte names")
def test_output_and_run_paths_that_are_not_utf8_are_refused_naming_their_bytes(tmp_path: Path) -> None:
    """`translate --output $'o\\xff'` (and `eval --json`, `report --out`, `export --output`) ended in a
    UnicodeEncodeError traceback from the name-length check; `train --train.name $'n\\xff'` in one from the config
    check, and `--train.runs_dir $'rd\\xff'` made the run folder and then failed in the TensorBoard logger."""
    from srunit._outputs import guard_output
    from srunit.config import load_config
    from srunit.errors import ConfigError

    bad = os.fsdecode(b"o\xff")
    with pytest.raises(ConfigError, match=r"--output b'.*o\\xff' is not a valid UTF-8 path"):
        guard_output(tmp_path / bad, "--output", folder=True)
    for key in ("train.name", "train.runs_dir", "data.root"):
        with pytest.raises(ConfigError, match=rf"{key} b'n\\xff' is not valid UTF-8"):
            load_config("cut", [f"{key}={os.fsdecode(b'n' + bytes([255]))}"])
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(sys.platform == "win32" or sys.getfilesystemencoding() != "utf-8", reason="POSIX byte names")
def test_the_report_shows_a_run_folder_whose_name_is_not_utf8(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`srunit report $'runs/s\\xff' --out r.html`: the folder name became the run's label, and matplotlib (then the
    page writer) refused its lone surrogate with a traceback. It is shown as its escape."""
    from srunit.report.page import build_report

    run = tmp_path / os.fsdecode(b"s\xff")
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    out = build_report([run], tmp_path / "r.html")
    assert "s\\xff" in out.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- messages in the user's terms


@pytest.mark.parametrize(("option", "value"), [("--share", "101"), ("--share", "-1"), ("--min-share", "150")])
def test_mismatch_shares_out_of_range_are_named_in_percent(tmp_path: Path, option: str, value: str,
                                                           capsys: pytest.CaptureFixture) -> None:
    """`data mismatch --share 101` (a percent) said `--share must be between 0 and 1, got 1.01`: the range and the
    value in the fraction the library takes, not in the percent the user gave."""
    from srunit.cli.main import main

    folder = tmp_path / "in"
    folder.mkdir()
    assert main(["data", "mismatch", "--labels", str(folder), "--class", "5", "--images-a", str(folder),
                 "--images-b", str(folder), "--out", str(tmp_path / "out"), option, value]) == 2
    assert f"{option} must be between 0 and 100, got {float(value)}" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["bench", "tune"])
def test_a_records_path_that_is_a_file_is_refused_naming_records(tiny_data: Path, tmp_path: Path, command: str,
                                                                 capsys: pytest.CaptureFixture) -> None:
    """`bench synthscapes --records FILE` was refused as "the segmenter cache folder FILE" (--records doubles as the
    cache); `tune data --records FILE` trained its first trial and failed only when writing the trial's record."""
    from srunit.cli.main import main

    records = tmp_path / "records.txt"
    records.write_text("a user's file\n")
    out = tmp_path / "out"
    argv = (["bench", "synthscapes", "--profile", "cpu", "--out", str(out), "--no-progress"] if command == "bench"
            else _tune_data(tiny_data, out, "--segmenter", "seg.onnx"))
    assert main([*argv, "--records", str(records)]) == 2
    assert f"--records {records} is not a folder" in capsys.readouterr().err
    assert records.read_text() == "a user's file\n" and not out.exists()
