"""Round thirty-one (D): advice that fails when followed (demo and bench), the app's temporary folder, forks of moved
folders, and the app's animated uploads (docs/what-survives-what.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest


def _demo_folder(runs: Path, name: str, steps: int) -> Path:
    """A demo folder as `srunit demo --steps STEPS --device cpu` starts it: its settings.json only."""
    from srunit.synthscapes import profile_settings

    folder = runs / name
    folder.mkdir(parents=True)
    settings = profile_settings("cpu", methods=("cut", "srunit"), conditions=("unmatched",), seeds=1, steps=steps,
                                size=64, device="cpu")
    (folder / "settings.json").write_text(json.dumps(settings.to_dict()))
    return folder


def _options(capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
             command: list[str]) -> set[str]:
    """The options ``srunit COMMAND --help`` lists."""
    assert cli_status([*command, "--help"]) == 0
    return set(re.findall(r"--[a-z][a-z_.-]*", capsys.readouterr().out))


def test_a_demo_with_other_settings_is_refused_naming_options_the_demo_takes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`demo --steps 4` on a demo made with `--steps 2` said "pass a new --out, or the same options as before": the demo
    has no --out (it has --name and --runs-dir); `bench synthscapes` still names its --out."""
    folder = _demo_folder(tmp_path / "runs", "d2", steps=2)
    before = (folder / "settings.json").read_bytes()
    demo_options = _options(capsys, cli_status, ["demo"])
    assert cli_status(["demo", "--runs-dir", str(tmp_path / "runs"), "--name", "d2", "--steps", "4",
                       "--device", "cpu", "--no-progress"]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "holds a benchmark with other settings" in err and "pass a new --name" in err, err
    named = set(re.findall(r"--[a-z][a-z_.-]*", err))
    assert named and named <= demo_options, (named - demo_options, err)
    assert (folder / "settings.json").read_bytes() == before and sorted(p.name for p in folder.iterdir()) == [
        "settings.json"]

    bench_options = _options(capsys, cli_status, ["bench", "synthscapes"])
    assert cli_status(["bench", "synthscapes", "--out", str(folder), "--steps", "4", "--device", "cpu",
                       "--no-progress"]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "pass a new --out" in err and set(re.findall(r"--[a-z][a-z_.-]*", err)) <= bench_options, err


def test_a_damaged_image_of_a_benchmarks_own_data_is_refused_with_advice_that_works(tmp_path: Path) -> None:
    """A demo or bench interrupted, a training image then truncated, the command again: "pass --data.skip_bad_images
    true", which demo does not take and bench synthscapes refused as "other settings". The advice is now to delete
    the generated split, which the benchmark writes again with the same images."""
    from srunit._outputs import file_identity
    from srunit.errors import DataError
    from srunit.synthscapes import profile_settings
    from srunit.synthscapes.benchmark import RunWork, train_data

    out = tmp_path / "bench"
    settings = profile_settings("cpu", methods=("cut",), conditions=("unmatched",), seeds=1, steps=2, size=32,
                                num_pool=16, num_test=8, device="cpu")
    root = train_data(out, settings, "unmatched")
    victim = sorted((root / "trainA").iterdir())[0]
    original = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    victim.write_bytes(original[victim.relative_to(root)][:10])  # cut inside the PNG signature and header
    work = RunWork(settings, "cut", "unmatched", 0, "unmatched/cut-seed0", str(out), str(root), str(out / "test"),
                   ((), None), (), None, {}, None, {}, "", False, file_identity(out), "the benchmark")
    with pytest.raises(DataError) as err:
        work.run()
    message = " ".join(str(err.value).split())
    assert str(victim) in message and "skip_bad_images" not in message, message
    assert f"rm -r {root}" in message and "run the same command again" in message, message

    import shutil
    shutil.rmtree(root)  # the advice, followed
    again = train_data(out, settings, "unmatched")
    assert {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()} == original


def _unusable_temp_dir(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """GRADIO_TEMP_DIR set to a file, a link to nothing or a path below a file (``kind``), in ``tmp_path``."""
    (tmp_path / "file").write_text("x")
    value = {"file": tmp_path / "file", "link to nothing": tmp_path / "link",
             "below a file": tmp_path / "file" / "temp"}[kind]
    if kind == "link to nothing":
        value.symlink_to(tmp_path / "gone")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(value))
    return value


@pytest.mark.slow  # gradio's import, about 10 s; the check itself is in the fast tier below
@pytest.mark.parametrize("kind", ["file", "link to nothing", "below a file"])
def test_an_unusable_gradio_temp_dir_is_named_before_the_app_starts(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """GRADIO_TEMP_DIR a file or a link to nothing, then `srunit app`: "... vibe_edit_history: Not a directory / File
    exists; check the path, its permissions and the free space", the variable never named."""
    pytest.importorskip("gradio")
    value = _unusable_temp_dir(kind, tmp_path, monkeypatch)
    # the checkpoint does not exist: the folder is checked before any checkpoint is loaded
    assert cli_status(["app", "--checkpoint", str(tmp_path / "no-run")]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"GRADIO_TEMP_DIR={value} " in err and "unset it" in err and "no-run" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["file", "link"] if kind == "link to nothing" else ["file"])


@pytest.mark.parametrize("kind", ["file", "link to nothing", "below a file"])
def test_an_unusable_gradio_temp_dir_is_refused_naming_the_variable(kind: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The check `srunit app` runs before it loads a checkpoint (the test above runs it through the app's command)."""
    from srunit.app import check_temp_folder
    from srunit.errors import ConfigError

    value = _unusable_temp_dir(kind, tmp_path, monkeypatch)
    with pytest.raises(ConfigError) as refused:
        check_temp_folder()
    message = " ".join(str(refused.value).split())
    assert message.startswith(f"GRADIO_TEMP_DIR={value} ") and "unset it" in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == (["file", "link"] if kind == "link to nothing" else ["file"])


def test_a_usable_gradio_temp_dir_is_made_and_nothing_is_left_in_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from srunit.app import check_temp_folder

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "a" / "b"))
    assert check_temp_folder() == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir() and list((tmp_path / "a" / "b").iterdir()) == []


def _fork_of_moved(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Path]:
    """`cp -as d1 d3; mv d1 d6` for a folder of ``files``: d3 holds links to d1's files, which no longer exist."""
    original = tmp_path / "d1"
    for name, text in files.items():
        (original / name).parent.mkdir(parents=True, exist_ok=True)
        (original / name).write_text(text)
    fork = tmp_path / "d3"
    for name in files:
        (fork / name).parent.mkdir(parents=True, exist_ok=True)
        (fork / name).symlink_to(original / name)
    original.rename(tmp_path / "d6")
    return fork, original


@pytest.mark.parametrize(("command", "marker", "what"), [
    (["report", "{fork}", "--out", "{tmp}/r.html"], "summary.json", "a bench or tuning folder"),
    (["report", "{fork}/unmatched/cut-seed0", "--out", "{tmp}/r.html"], "unmatched/cut-seed0/metrics.jsonl",
     "a run folder"),
    (["demo", "--runs-dir", "{tmp}", "--name", "d3", "--steps", "2", "--device", "cpu", "--no-progress"],
     "settings.json", "a demo folder"),
    (["bench", "synthscapes", "--out", "{fork}", "--device", "cpu", "--no-progress"], "settings.json",
     "a benchmark folder"),
    (["eval", "seg", "--images", "{tmp}/d6", "--labels", "{tmp}/d6", "--segmenter", "synthscapes", "--classes", "8",
      "--run", "{fork}/unmatched/cut-seed0"], "unmatched/cut-seed0/config.yaml", "a run folder"),
    (["train", "--resume", "{fork}/unmatched/cut-seed0"], "unmatched/cut-seed0/config.yaml", "a run folder"),
])
def test_a_fork_of_links_whose_original_moved_is_named_as_links_to_nothing(
        command: list[str], marker: str, what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`cp -as dm/d1 dm/d3; mv dm/d1 dm/d6`, then `report dm/d3` or `demo --name d3`: "holds neither metrics.jsonl
    nor ..." / "is not a demo folder", where its files are there as links to nothing (as `srunit app` says of a
    checkpoint's `latest`); `eval --run` and `train --resume` of its run said "is not a run folder (no
    config.yaml)"."""
    fork, original = _fork_of_moved(tmp_path, {"settings.json": "{}", "summary.json": "{}", "table.md": "x",
                                               "unmatched/cut-seed0/metrics.jsonl": "",
                                               "unmatched/cut-seed0/config.yaml": ""})
    argv = [a.format(fork=fork, tmp=tmp_path) for a in command]
    assert cli_status(argv) != 0
    err = " ".join(capsys.readouterr().err.split())
    link = fork / marker
    assert f"{link} is a link to {original / marker}, which does not exist" in err, err
    assert f"is not read as {what}" in err and "cp -a" in err and "put them back where the links point" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d3", "d6"]  # nothing written


def _animated_and_its_first_frame(folder: Path) -> tuple[Path, Path]:
    """A 2-frame animated PNG of noise and its first frame as a still PNG."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(2)]
    animated, still = folder / "anim.png", folder / "first.png"
    frames[0].save(animated, save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(still)
    assert Image.open(animated).n_frames == 2
    return animated, still


def test_the_app_says_an_animated_upload_is_translated_from_its_first_frame(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """The app translated an animated PNG from its first frame with no notice, where `srunit translate` warns."""
    import numpy as np

    from srunit.app import TranslationDemo

    animated, still = _animated_and_its_first_frame(tmp_path)
    demo = TranslationDemo.from_checkpoints([tiny_runs["cut"]], device="cpu")
    outputs, _, notice = demo.translate_upload(animated)
    first, _, none = demo.translate_upload(still)
    assert "anim.png holds several frames" in notice and "only its first frame is translated" in notice, notice
    assert none == ""
    assert np.array_equal(np.asarray(outputs[0]), np.asarray(first[0]))


@pytest.mark.slow  # imports gradio (seconds); the test above checks the notice the page shows
def test_the_app_page_shows_the_notice_of_an_animated_upload(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """The page's /translate warns of an animated upload and ends its status with the notice; a still has none."""
    pytest.importorskip("gradio")
    from srunit.app import TranslationDemo, build_app

    animated, still = _animated_and_its_first_frame(tmp_path)
    blocks = build_app(TranslationDemo.from_checkpoints([tiny_runs["cut"]], device="cpu"))
    page = next(f.fn for f in blocks.fns.values() if f.api_name == "translate")  # the page's /translate
    with pytest.warns(UserWarning, match="several frames"):  # gr.Warning, called outside a request
        *_, status = page({"path": str(animated)})
    assert status.endswith("; anim.png holds several frames (an animation or pages); only its first frame is "
                           "translated"), status
    *_, status = page({"path": str(still)})
    assert "frame" not in status, status



def test_a_damaged_image_of_a_benchmarks_held_out_set_is_refused_with_advice_that_works(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """The same with a held-out image: translate's advice "replace or remove the file, or translate a folder without
    it" left a label map without its image (refused next), and demo translates no folder of the user's."""
    import shutil

    import numpy as np
    from PIL import Image

    from srunit._outputs import file_identity
    from srunit.errors import DataError
    from srunit.synthscapes import profile_settings
    from srunit.synthscapes.benchmark import RunWork

    out = tmp_path / "bench"
    run = out / "unmatched" / "cut-seed0"
    shutil.copytree(tiny_runs["cut"], run)
    (run / "eval").mkdir(exist_ok=True)
    (run / "eval" / "scores.json").write_text("{}")  # scored before: not trained again, re-scored
    heldout = out / "data" / "test"
    for sub in ("testA", "testB", "testLabels"):
        (heldout / sub).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(heldout / sub / f"{i:04d}.png")
    victim = heldout / "testA" / "0000.png"
    victim.write_bytes(victim.read_bytes()[:10])
    settings = profile_settings("cpu", methods=("cut",), conditions=("unmatched",), seeds=1, steps=2, size=32,
                                num_pool=16, num_test=8, device="cpu")
    work = RunWork(settings, "cut", "unmatched", 0, "unmatched/cut-seed0", str(out), str(out / "data" / "unmatched"),
                   str(heldout), ((), None), (), None, {}, None, {}, "", False, file_identity(out), "the benchmark")
    with pytest.raises(DataError) as err:
        work.run(segment=lambda image: np.zeros(image.shape[:2], np.int64))
    message = " ".join(str(err.value).split())
    assert str(victim) in message and "translate a folder without it" not in message, message
    assert f"rm -r {heldout}" in message and "run the same command again" in message, message


def test_a_run_of_links_whose_metrics_and_scores_lead_to_nothing_is_reported_with_a_warning(tmp_path: Path) -> None:
    """A run fork (`cp -as`) whose config.yaml was then copied in, the original moved: its training curves and
    evaluation were left out of the report without a word (only its sample grid was named)."""
    from srunit.report.runs import load_run

    fork, original = _fork_of_moved(tmp_path, {"metrics.jsonl": "", "eval/scores.json": "{}"})
    (fork / "config.yaml").write_text("method: {name: cut}\n")
    run = load_run(fork)
    said = " ".join(run.warnings)
    assert f"{fork / 'metrics.jsonl'} is a link to {original / 'metrics.jsonl'}, which does not exist" in said, said
    assert f"{fork / 'eval' / 'scores.json'} is a link to {original / 'eval' / 'scores.json'}" in said, said
