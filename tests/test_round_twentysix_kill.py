"""Round twenty-six (B): every writing command killed at a random moment (SIGKILL: no clean-up runs), then run
again. A kill is simulated by leaving on disk exactly what the killed process left there."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.cli.main import main


def _png(seed: int, size: int = 40) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("suffix", [".onnx", pytest.param(".pt2", marks=pytest.mark.slow), ".ts"])
def test_an_export_killed_before_its_rename_leaves_nothing_after_the_next_export(suffix: str,
                                                                                  tiny_runs: dict[str, Path],
                                                                                  tmp_path: Path) -> None:
    """An export SIGKILLed after it wrote its hidden ``.NAME.partial-PID`` file (all of it or half), before the
    rename: the next export of that output (another pid) left the killed one's file beside the output for good, as
    large as the network. It is removed now, under the output's lock, with a warning; the new file is whole."""
    out = tmp_path / "out"
    out.mkdir()
    partial = out / f".g{suffix}.partial-4194303"  # a pid no process here has
    partial.write_bytes(b"PK\x03\x04" + bytes(1000))  # the start of a file the kill cut short
    (out / f".g{suffix}.lock").write_text('{"pid": 4194303}\n')  # the killed holder's lock file (no flock on it)
    kept = out / f".h{suffix}.partial-4194303"  # another output's: not this export's to remove
    kept.write_bytes(b"x")
    assert main(["export", str(tiny_runs["cut"]), "--output", str(out / f"g{suffix}"), "--check-size", "32x32"]) == 0
    assert _names(out) == [kept.name, f"g{suffix}"]
    assert (out / f"g{suffix}").stat().st_size > 10_000


def test_a_translation_killed_inside_a_write_leaves_no_temporary_after_the_next(tiny_runs: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    """`translate` SIGKILLed while it wrote an image (seen with 1024 x 1024 inputs: ``.2.png.21dd84f6.tmp`` of
    589,824 bytes, half a PNG), then run again with ``--overwrite`` as its refusal advises: the half-written
    temporary stayed in the output folder for good. The temporaries of the files this translation writes are
    removed now; a hidden file of the user's, even one named like a temporary of another file, stays."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for i, rel in enumerate(["a.png", "b.png", "sub/c.png"]):
        (src / rel).write_bytes(_png(i))
    out = tmp_path / "out"
    assert main(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(src), "--output", str(out)]) == 0
    # What a kill inside the writes of a second run left: mkstemp's and FolderWriter's names.
    left = [out / ".a.png.sr-k3x_0q9z.tmp", out / "sub" / ".c.png.sr-0a1b2c3d.tmp"]
    for path in left:
        path.write_bytes(_png(9)[:100])
    # ... and a user's hidden files, two of them named as srunit named its temporaries before they began with "sr-"
    # them (".a.png.original.tmp" was removed)
    users = [out / ".notes.txt.sr-12345678.tmp", out / ".a.png.keep", out / "sub" / ".c.png.sr-1234567.tmp",
             out / ".a.png.original.tmp", out / "sub" / ".c.png.12345678.tmp"]
    for path in users:
        path.write_text("the user's")
    argv = ["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(src), "--output", str(out)]
    assert main(argv) == 2  # refused: the outputs exist
    assert all(p.exists() for p in left)
    assert main([*argv, "--overwrite"]) == 0
    assert not any(p.exists() for p in left)
    assert all(p.read_text() == "the user's" for p in users)
    assert _names(out) == sorted([".a.png.keep", ".a.png.original.tmp", ".notes.txt.sr-12345678.tmp", "a.png",
                                  "b.png", "sub"])
    assert _names(out / "sub") == sorted([".c.png.12345678.tmp", ".c.png.sr-1234567.tmp", "c.png"])


def test_a_report_killed_inside_its_write_leaves_no_temporary_after_the_next(tiny_runs: dict[str, Path],
                                                                            tmp_path: Path) -> None:
    """`report --out` SIGKILLed inside its atomic write leaves ``.NAME.XXXXXXXX.tmp`` (half the page) beside the
    report; the next report into that file removes it."""
    out = tmp_path / "rep.html"
    left = tmp_path / ".rep.html.sr-abc_1234.tmp"
    left.write_text("<html><body>half a pa")
    assert main(["report", str(tiny_runs["cut"]), "--out", str(out), "--images", "0"]) == 0
    assert _names(tmp_path) == ["rep.html"]
    assert out.read_text().rstrip().endswith("</html>")


def test_a_resume_killed_while_it_rewrote_a_run_file_leaves_no_temporary_after_the_next(tiny_runs: dict[str, Path],
                                                                                       tmp_path: Path) -> None:
    """`train --resume` SIGKILLed while it rewrote the metrics log (`trim_metrics` rewrites a log of any size: seen
    with one of 315 MB, which left ``.metrics.jsonl.beh3q13f.tmp`` of 44 MB) or another run file: the next resume
    tidied RUN/checkpoints only, and the half-written copy stayed in the run for good. It is removed now, with the
    leftovers of the checkpoints; a file of the user's in the run folder stays."""
    import shutil

    from srunit.engine import Trainer

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    left = [run / ".metrics.jsonl.sr-beh3q13f.tmp", run / ".config.yaml.sr-0a1b2c3d.tmp",
            run / ".history.jsonl.sr-x_y_z_09.tmp", run / ".run.json.sr-abcdefgh.tmp"]
    for path in left:
        path.write_text('{"step": 1, "D": 0.')
    users = run / ".notes.md.sr-12345678.tmp"
    users.write_text("the user's")
    Trainer.resume(run, ["train.steps=2"], show_progress=False).fit()
    assert not any(p.exists() for p in left)
    assert users.read_text() == "the user's"


@pytest.mark.parametrize("kind", ["bench", "tune"])
def test_a_benchmark_or_study_killed_as_it_wrote_its_settings_continues_when_run_again(kind: str, tiny_settings,
                                                                                       tmp_path: Path) -> None:
    """`bench synthscapes --out OUT` (or `demo --name`, `tune --out`) SIGKILLed inside its first write, the settings
    file: OUT held only ``.settings.json.XXXXXXXX.tmp``, and the same command, which its help says continues an
    interrupted benchmark, was refused: `--out OUT exists and is not a benchmark folder; pass a new folder`. The
    folder is the command's own: the temporary is removed and the settings written; a folder holding anything else
    is still refused."""
    if kind == "bench":
        from srunit.synthscapes.benchmark import SETTINGS_FILE, _prepare_out

        settings = tiny_settings()
    else:
        from srunit.tune.study import SETTINGS_FILE, TuneSettings, _prepare_out
        from srunit.tune.targets import FolderTarget

        for folder in ("data", "val", "labels"):
            (tmp_path / folder).mkdir()
        target = FolderTarget(str(tmp_path / "data"), str(tmp_path / "val"), str(tmp_path / "labels"), "seg.onnx", 3)
        settings = TuneSettings(preset="cut", target=target.to_dict(), study_name="s", trials=2, sampler="random",
                                space={"method.lambda_nce": {"low": 0.25, "high": 4.0, "log": True}})
    out = tmp_path / "out"
    out.mkdir()
    (out / f".{SETTINGS_FILE}.sr-wtb8z9od.tmp").write_text('{"methods": ["cu')  # seen: 624 bytes of 1,361
    _prepare_out(out, settings)
    assert _names(out) == [SETTINGS_FILE]
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("the user's")
    with pytest.raises(Exception, match="exists and is not a"):
        _prepare_out(other, settings)
    assert _names(other) == ["mine.txt"]


def test_ctrl_c_that_a_library_turns_into_another_error_is_reported_as_the_interruption(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while `export` checked its .pt2 file (or `translate --checkpoint g.pt2` loaded one): torch's archive
    reader caught the KeyboardInterrupt and failed on its own, and srunit said `... could not be loaded as a
    torch.export program ...; it is damaged, not a .pt2 program, or from a newer torch ...; export it again`, status
    2, blaming a whole file. An error after a SIGINT is now the interruption: status 130 and the command's message."""
    import os
    import signal
    import time

    from srunit import export as export_module
    from srunit.errors import CheckpointError

    def a_load_that_swallows_the_interrupt(*args: object, **kwargs: object) -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the signal arrives here
        except KeyboardInterrupt:
            pass  # what torch's reader does: the interrupt becomes a failure of its own
        raise CheckpointError("g.pt2 could not be loaded as a torch.export program (We ran into an error when "
                              "deserializing the saved file.); it is damaged, not a .pt2 program")

    monkeypatch.setattr(export_module, "load_generator", a_load_that_swallows_the_interrupt)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, as in a shell
    try:
        status = main(["export", str(tiny_runs["cut"]), "--output", str(tmp_path / "g.ts")])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err
    assert status == 130, err
    assert "interrupted" in err and "damaged" not in err
    assert list(tmp_path.iterdir()) == []


class _Killed(BaseException):
    """Where a test's simulated SIGKILL stops the code (nothing after it runs in the frame that raises it)."""


def test_a_kill_while_an_old_checkpoint_is_pruned_leaves_no_step_folder_without_its_files(
        tiny_config, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotation removed an unkept step folder in place: SIGKILL inside the removal (seen: step_00000003 without its
    G.safetensors, the run finished at step 4) left a step folder missing files for good, since a finished run saves
    no more and the next start tidied only .tmp-* and .old-* (`translate --checkpoint .../step_00000003`: `G.safetensors
    is missing`). The folder is moved aside to a .tmp-* name first now; the next start removes it."""
    import shutil

    from srunit.engine import Trainer
    from srunit.engine import checkpoint as checkpoint_module

    real = shutil.rmtree

    def killed_inside(path: Path, *args: object, **kwargs: object) -> None:
        if "step_00000001" in str(path):
            next(p for p in sorted(Path(path).iterdir()) if p.name.startswith("G")).unlink()
            raise _Killed
        real(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.shutil, "rmtree", killed_inside)
    config = tiny_config("cut", "train.steps=2", "train.checkpoint_every=1", "train.name=run", data_root=tiny_data,
                         runs_dir=tmp_path)
    with pytest.raises(_Killed):
        Trainer(config, show_progress=False).fit()
    monkeypatch.setattr(checkpoint_module.shutil, "rmtree", real)
    checkpoints = tmp_path / "run" / "checkpoints"
    for step in checkpoints.glob("step_*"):  # what a reader sees: every step folder whole
        assert (step / "G.safetensors").is_file() and (step / "state.pt").is_file(), step
    Trainer.resume(tmp_path / "run", show_progress=False).fit()
    assert _names(checkpoints) == ["latest", "step_00000002"]
