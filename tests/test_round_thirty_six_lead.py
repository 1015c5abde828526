"""Round thirty-six (lead): what earlier rounds noted and left."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image


class _Checked(Exception):
    """Raised where the benchmark goes on after its runs' configs were checked."""


@pytest.mark.parametrize(("method", "size", "advice", "followed"), [
    ("cut", 20, "use e.g. --size 24, or --model.n_layers_d 2 with --size 20",
     [["--size", "24"], ["--model.n_layers_d", "2", "--size", "20"]]),
    ("drit", 32, "use e.g. --size 64", [["--size", "64"]]),
])
def test_a_size_a_benchmarks_runs_cannot_take_is_advised_in_the_commands_own_options(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int], method: str, size: int, advice: str,
        followed: list[list[str]]) -> None:
    """`bench synthscapes --size 20`: `... use e.g. data.crop_size 24, or model.n_layers_d 2 with data.crop_size 20`,
    where the benchmark refuses --data.crop_size (its runs' crop is --size) (round thirty-five (D), noted). The
    advice names --size and --model.n_layers_d, and each way out it gives is taken."""
    import srunit.synthscapes.benchmark as bench

    def checked(*args: object, **kwargs: object) -> None:
        raise _Checked

    monkeypatch.setattr(bench, "resolve_device", checked)
    base = ["bench", "synthscapes", "--methods", method, "--baseline", method, "--seeds", "1", "--no-report",
            "--out", str(tmp_path / "b")]
    assert cli_status([*base, "--size", str(size)]) == 2
    err = capsys.readouterr().err
    assert f"--size {size} does not fit {method} (it is each run's data.crop_size): " in err, err
    assert err.rstrip().endswith(advice), err
    for options in followed:
        with pytest.raises(_Checked):
            cli_status([*base, *options])
    assert not (tmp_path / "b").exists()


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys")
@pytest.mark.parametrize("command", [["tune", "synthscapes", "--preset", "cut", "--trials", "1"],
                                     ["bench", "synthscapes", "--methods", "cut", "--baseline", "cut", "--seeds", "1"]])
def test_a_records_folder_that_takes_no_files_is_refused_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
        command: list[str]) -> None:
    """`tune synthscapes --records /sys/rec --cache-dir C`: trial 0 trained, then its record failed (`/sys/rec:
    Operation not permitted`), the trial left failed (round thirty-five (D), noted): a permission check passes as
    root there. The folder is tried before any work, and a records folder that can be made is left as it was."""
    from srunit.eval.study_records import check_records_folder

    out = tmp_path / "o"
    small = ["--size", "32", "--steps", "1", "--num-pool", "24", "--num-test", "2", "--segmenter-steps", "2",
             "--segmenter-images", "8", "--no-progress"]
    assert cli_status([*command, *small, "--records", "/sys/srunit-rec", "--cache-dir", str(tmp_path / "c"),
                       "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--records /sys/srunit-rec: no record can be written there (" in err and err.count("\n") == 1, err
    assert not out.exists() and not Path("/sys/srunit-rec").exists()
    check_records_folder(tmp_path / "new" / "rec")  # one that can be made: not left behind by the check
    assert not (tmp_path / "new").exists()
    (tmp_path / "rec").mkdir()
    check_records_folder(tmp_path / "rec")
    assert list((tmp_path / "rec").iterdir()) == []


def _tiny_generator(tmp_path: Path) -> tuple[Path, Path]:
    from srunit.networks import ResnetGenerator
    from srunit.runtime.network_files import save_network

    net = tmp_path / "net" / "G.safetensors"
    save_network(ResnetGenerator(ngf=4, n_blocks=1), net, "ResnetGenerator")
    (tmp_path / "in").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "a.png")
    return net, tmp_path / "in"


def test_python_without_a_standard_error_gets_one_back_and_progress_bars_take_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_config,
        tiny_data: Path) -> None:
    """`srunit translate ... 2>&-`: Python started with sys.stderr None, which the descriptor guard left None: the
    progress bar's `sys.stderr.isatty()` ended translate, train and eval with status 1, nothing done, not a word
    (round thirty-six (E), class c). The API in a host without a standard error (pythonw) met the same."""
    from srunit._progress import progress_bar, stderr_is_terminal
    from srunit.cli import main as cli
    from srunit.engine import Trainer

    monkeypatch.setattr(sys, "stderr", None)
    assert not stderr_is_terminal()
    with progress_bar(2, "image", show=True) as bar:
        bar.update(2)
    run = Trainer(tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=tmp_path), show_progress=True).fit()
    assert (run / "checkpoints" / "latest" / "G.safetensors").is_file()
    cli._guard_standard_descriptors()
    assert sys.stderr is not None and sys.stderr.fileno() == 2
    net, images = _tiny_generator(tmp_path)
    assert cli.main(["translate", "--checkpoint", str(net), "--input", str(images), "--output",
                     str(tmp_path / "o"), "--device", "cpu"]) == 0
    assert (tmp_path / "o" / "a.png").is_file()


@pytest.mark.e2e
def test_a_closed_standard_error_does_the_work_without_a_word(tmp_path: Path) -> None:
    """The same as a command: `srunit translate ... 2>&-` translated nothing and ended with status 1."""
    net, images = _tiny_generator(tmp_path)
    done = subprocess.run(f"{sys.executable} -m srunit translate --checkpoint {net} --input {images} --output "
                          f"{tmp_path / 'o'} --device cpu 2>&-", shell=True, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done
    assert (tmp_path / "o" / "a.png").is_file()


def test_a_loss_that_is_not_finite_and_a_step_or_score_out_of_range_are_named_not_dropped_or_a_traceback(
        tmp_path: Path, make_report_run) -> None:
    """`srunit report RUN`: a metrics.jsonl value of 1 followed by 330 zeros (and such a score in eval/scores.json)
    ended in `OverflowError: int too large to convert to float`; a loss logged as NaN or Infinity was dropped from
    its curve without a word (a run whose D blew up showed a smooth curve); a negative step, and scores out of their
    range (a pixel accuracy of -1 shown as -100.00 %), were taken (round thirty-six (E), classes c and d)."""
    import json

    from srunit.report import build_report
    from srunit.report.runs import load_metrics, load_run

    path = tmp_path / "metrics.jsonl"
    huge = "1" + "0" * 330
    path.write_text(f'{{"step": 1, "D": {huge}, "G": 2.0}}\n{{"step": 2, "D": Infinity, "G": NaN}}\n'
                    f'{{"step": -5, "D": 1.0}}\n{{"step": {huge}, "D": 1.0}}\n{{"step": 3, "D": -Infinity}}\n')
    warnings: list[str] = []
    assert load_metrics(path, warnings) == {1: {"G": 2.0}, 2: {}, 3: {}}
    assert warnings == [
        f'{path} line 1: "D" is not a finite number (got {huge[:37]}...); the value is left out of the curves',
        f'{path} line 2: "D" is not a finite number (got Infinity); the value is left out of the curves',
        f'{path} line 2: "G" is not a finite number (got NaN); the value is left out of the curves',
        f"{path} line 3: step -5 is not a training step (0 to 1,000,000,000,000); the line is left out",
        f"{path} line 4: step {huge[:37]}... is not a training step (0 to 1,000,000,000,000); the line is left out",
        f'{path} line 5: "D" is not a finite number (got -Infinity); the value is left out of the curves']
    run = make_report_run(tmp_path / "run", "cut", label="cut / unmatched / seed 0")
    scores_file = run / "eval" / "scores.json"
    scores = json.loads(scores_file.read_text())
    scores["segmentation"]["pixel_accuracy"] = -1
    scores["paired"] = {"dist": int(huge), "acc": {"30": 1.5, "50": 0.25}}
    scores_file.write_text(json.dumps(scores))
    loaded = load_run(run)
    assert [w.split(": ", 1)[1] for w in loaded.warnings] == [
        "segmentation.pixel_accuracy is not a score from 0 to 1 (got -1); it is not shown: run `srunit eval` again",
        f"paired.dist is not a finite number (got {huge[:37]}...); it is not shown: run `srunit eval` again",
        "paired.acc.30 is not a score from 0 to 1 (got 1.5); it is not shown: run `srunit eval` again"]
    page = build_report([run], tmp_path / "r.html").read_text()
    assert "Not read" in page and "-100.00" not in page and "25.00" in page


@pytest.mark.parametrize(("mask", "taken"), [(0o777, "read, write and search"), (0o222, "write"),
                                             (0o477, "read")])
def test_a_umask_that_takes_the_owners_permissions_is_refused_before_anything_is_made(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
        request: pytest.FixtureRequest, mask: int, taken: str) -> None:
    """Under `umask 0777` `srunit export` called the file it had just written damaged (it could not read it back)
    and advised exporting again, which failed the same way; under `umask 0222` `srunit train` made the run folder,
    could not put its lock there, blamed the user's folder and left it to block the name; `report` ended with
    matplotlib's PermissionError tracebacks (round thirty-six (E), D1 to D3). A umask that keeps them is taken."""
    import os

    out = tmp_path / "o"
    previous = os.umask(mask)
    request.addfinalizer(lambda: os.umask(previous))
    assert cli_status(["data", "synthscapes", "--out", str(out), "--num-pool", "8", "--num-test", "1",
                       "--size", "16"]) == 2
    err = capsys.readouterr().err
    assert err == (f"srunit data synthscapes: error: the umask {mask:04o} takes your own {taken} permission from every "
                   f"file and folder srunit makes, which it must then read or write in; set a umask that keeps them "
                   f"(e.g. `umask 022`) and run the command again\n")
    assert list(tmp_path.iterdir()) == []
    assert cli_status(["data", "synthscapes", "--help"]) == 0  # help needs no files
    os.umask(0o077)  # the advice's kind: the owner keeps all three
    assert cli_status(["data", "synthscapes", "--out", str(out), "--num-pool", "8", "--num-test", "1",
                       "--size", "16"]) == 0
    assert (out / "trainA").is_dir()


@pytest.mark.parametrize("name", ["evil\nsrunit translate: ok.png", "x\u202egnp.exe.png", "tab\tand\x1b[31m.png"])
def test_a_file_name_with_a_newline_or_a_bidirectional_control_is_named_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int], name: str
        ) -> None:
    """`srunit translate --input nl`, nl holding a damaged file named `evil<newline>srunit translate: ok.png`: the
    error was two lines, the second one looking like srunit's own; U+202E showed the name as other text (round
    thirty-six (E), class e). Such characters are written as escapes, as names srunit makes may not hold them."""
    net, images = _tiny_generator(tmp_path)
    (images / name).write_bytes(b"not an image")
    assert cli_status(["translate", "--checkpoint", str(net), "--input", str(images), "--output",
                       str(tmp_path / "o"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    shown = name.encode("unicode_escape").decode("ascii")
    assert err.count("\n") == 1 and f"cannot read image file {images}/{shown}: not an image file" in err, err


def test_an_empty_output_path_of_the_api_is_refused_and_a_preset_given_as_a_path_is_explained(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Translator.translate_folder(src, "")` wrote its translations into the current folder (and replaced a
    user's 0000.png there with overwrite=True), where `srunit translate --output ''` is refused;
    `load_config(Path("cut"))` was told to give one of: cut, ... (round thirty-six (E), classes d and e)."""
    from srunit import Translator, load_config
    from srunit.errors import ConfigError

    net, images = _tiny_generator(tmp_path)
    monkeypatch.chdir(tmp_path)
    translator = Translator.from_checkpoint(net, device="cpu")
    with pytest.raises(ConfigError, match=r"^translate_folder: output is an empty path; give the path \('\.' for "):
        translator.translate_folder(images, "", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "net"]
    with pytest.raises(ConfigError, match=r"^config file cut does not exist; the preset cut is named by a str "
                                          r"\(load_config\('cut'\)\), a YAML file by a path$"):
        load_config(Path("cut"))
    assert load_config("cut").method.name == "cut"


def test_a_one_sided_runs_export_asked_for_b_to_a_is_not_told_to_export_a_generator_it_lacks(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`translate --checkpoint CUT.ts --direction BtoA`: `... or export the B -> A generator (srunit export RUN
    --direction BtoA) and give that file`, which a CUT run refuses (`... has no B -> A generator`) (round
    thirty-six (E), class e). Files of two-sided runs keep that advice (their metadata's directions hold BtoA)."""
    exported = tmp_path / "g.ts"
    assert cli_status(["export", str(tiny_runs["cut"]), "--output", str(exported)]) == 0
    capsys.readouterr()
    (tmp_path / "in").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "a.png")
    assert cli_status(["translate", "--checkpoint", str(exported), "--direction", "BtoA", "--input",
                       str(tmp_path / "in"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"--direction BtoA: {exported} was exported with --direction AtoB and translates in that "
                        f"direction only (its cut run has no B -> A generator srunit exports: two-sided methods such "
                        f"as cyclegan have one); leave --direction out to use it\n"), err
    from srunit.exported import load_exported

    assert load_exported(exported, "cpu")[0].metadata["directions"] == "AtoB"  # what its checkpoint held


def test_a_folder_that_cannot_be_read_is_named_as_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreadable folder inside `translate --input`, `eval paired --pred`, a training domain or `data split`
    was named as `ur/sub/config.yaml: Permission denied`, a file the user never had (os.walk would have passed over
    it without a word); as `--output` the same (round thirty-six (E), class e). Root reads every folder: the denial
    is made here as a user meets it."""
    import srunit.data.files as files
    from srunit.data.files import scan_images
    from srunit.errors import DataError

    (tmp_path / "ur" / "sub").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "ur" / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "ur" / "sub" / "b.png")
    listdir = os.listdir

    def denied(path: object) -> list[str]:
        if Path(str(path)).name == "sub":
            raise PermissionError(13, "Permission denied", str(path))
        return listdir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(files.os, "listdir", denied)
    sub = tmp_path / "ur" / "sub"
    with pytest.raises(DataError) as err:
        scan_images(tmp_path / "ur", "translate --input")
    assert str(err.value) == (f"translate --input: the folder {sub} cannot be read (Permission denied); give "
                              f"yourself read permission (chmod u+rx {sub}) or move it out of {tmp_path / 'ur'}")
    monkeypatch.setattr(files.os, "listdir", listdir)
    assert [p.name for p in scan_images(tmp_path / "ur", "translate --input")] == ["a.png", "b.png"]


@pytest.mark.e2e
@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(), reason="needs root and setpriv")
def test_an_unreadable_folder_as_a_user_meets_it(request: pytest.FixtureRequest) -> None:
    """The same as user nobody, through the command line: in --input, and as --output."""
    import shutil
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="srunit-nobody-"))  # pytest's own temporary folders are root's alone
    request.addfinalizer(lambda: shutil.rmtree(tmp_path, ignore_errors=True))
    net, images = _tiny_generator(tmp_path)
    (images / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(images / "sub" / "b.png")
    (images / "sub").chmod(0)
    (tmp_path / "urx").mkdir(mode=0)
    os.chmod(tmp_path, 0o777)
    for path in (tmp_path / "net", net, images):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "srunit"]
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    for output, says in ((tmp_path / "o", f"input: the folder {images / 'sub'} cannot be read (Permission "
                                           f"denied); give yourself read permission"),
                         (tmp_path / "urx", f"--output {tmp_path / 'urx'}: the folder {tmp_path / 'urx'} cannot be "
                                            f"read (Permission denied); give yourself read, write and search")):
        done = subprocess.run([*user, "translate", "--checkpoint", str(net), "--input", str(images), "--output",
                               str(output), "--device", "cpu"], capture_output=True, text=True, timeout=300,
                              env=env, cwd=tmp_path)
        assert done.returncode == 2 and says in done.stderr and "config.yaml" not in done.stderr, done.stderr


def test_files_of_other_extensions_are_counted_and_jfif_is_read_as_jpeg(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`translate --input ext`, ext holding 14 images of which 6 have extensions srunit does not list (`.jfif`, what
    browsers name JPEG downloads, `.heic`, `.txt`, ...): `translated 8 image(s)` and nothing about the other 6; a
    `.jfif` target had no partner for `eval paired` (round thirty-six (E), class d)."""
    import logging

    from srunit.data.files import scan_images

    folder = tmp_path / "ext"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    Image.new("RGB", (8, 8)).save(folder / "k.jfif", format="JPEG")
    Image.new("RGB", (8, 8)).save(folder / "l.jpe", format="JPEG")
    for name in ("g.heic", "h.txt", ".DS_Store"):
        (folder / name).write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="srunit.data.files"):
        assert [p.name for p in scan_images(folder, "input")] == ["a.png", "k.jfif", "l.jpe"]
    assert [r.getMessage() for r in caplog.records] == [
        f"input: 2 file(s) of other extensions passed over (e.g. {folder / 'g.heic'}); srunit reads .bmp .gif .jfif "
        f".jpe .jpeg .jpg .pgm .png .ppm .tif .tiff .webp"]


def test_an_interrupted_demo_says_how_to_continue_the_demo(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """Ctrl-C in `srunit demo`: `continue with srunit train --resume DEMO/unmatched/cut-seed0`, which finished that
    run and left the demo without its other runs, scores and report; rerunning the demo with its folder continues
    it, and its folder's name is a time stamp the same command would not give again (round thirty-six (F),
    class e). The advice, followed, is the same demo folder."""
    import shlex
    import signal

    import srunit.cli.demo as demo
    from srunit.errors import TrainingStopped

    folders: list[Path] = []

    def benchmark(out: Path, *args: object, **kwargs: object) -> dict[str, object]:
        folders.append(Path(out))
        if len(folders) == 1:
            run = Path(out) / "unmatched" / "cut-seed0"
            raise TrainingStopped(signal.SIGINT, 3, run / "checkpoints" / "step_00000003", run)
        raise _Checked

    monkeypatch.setattr(demo, "run_benchmark", benchmark)
    assert cli_status(["demo", "--runs-dir", str(tmp_path / "dm"), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "--resume" in err.split("the demo;")[-1] and "rerun srunit demo with --runs-dir " in err, err
    words = shlex.split(err.split("rerun srunit demo with ")[1].split(" (and the same")[0])
    assert words[0] == "--runs-dir" and words[2] == "--name"
    with pytest.raises(_Checked):
        cli_status(["demo", *words, "--no-progress"])
    assert folders[1] == folders[0]


@pytest.mark.parametrize("preprocess", ["scale_width", "none"])
def test_every_setting_a_size_keeping_preprocess_conflicts_with_is_named_at_once(preprocess: str) -> None:
    """`train --preset gcgan --data.preprocess scale_width`: `... use train.batch_size=1 or a cropping mode`; given
    train.batch_size 1, method.geometry 'rot' was refused; given method.geometry vf, method.pool_size 50: three
    refusals, the first two pieces of advice not working alone (round thirty-six (F), class e). All three at once,
    and the advice, followed whole, is taken."""
    from srunit.config import load_config
    from srunit.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load_config("gcgan", [f"data.preprocess={preprocess}"])
    assert str(err.value) == (
        f"data.preprocess '{preprocess}' keeps each image's own size and shape, which 3 settings cannot take: "
        "train.batch_size 8 (a batch stacks images); method.geometry 'rot' (it rotates by 90 degrees); "
        "method.pool_size 50 (a pool stacks images); use a cropping mode such as resize_and_crop, or give "
        "train.batch_size=1, method.geometry=vf and method.pool_size=0")
    fixed = load_config("gcgan", [f"data.preprocess={preprocess}", "train.batch_size=1", "method.geometry=vf",
                                  "method.pool_size=0"])
    assert (fixed.train.batch_size, fixed.method.geometry, fixed.method.pool_size) == (1, "vf", 0)
    assert load_config("gcgan", ["data.preprocess=resize_and_crop"]).method.geometry == "rot"  # the other way


def test_the_apis_writers_refuse_such_a_umask_too(tmp_path: Path, request: pytest.FixtureRequest, tiny_config,
                                                  tiny_data: Path, tiny_runs: dict[str, Path]) -> None:
    """Through the API under `os.umask(0o700)`: export_generator called its own output damaged and advised exporting
    again, translate_folder met PermissionErrors in the folder it had just made, and Trainer left a runs folder of
    mode 0070 behind that a later train then met (round thirty-six (G), class e). Each refuses first, naming the
    fix for the process; nothing is made."""
    import os

    from srunit import Trainer, Translator, export_generator
    from srunit.datasets.pix2pix import split_side_by_side
    from srunit.datasets.split import split_folders
    from srunit.errors import ConfigError
    from srunit.report import build_report
    from srunit.synthscapes import make_synthscapes
    from srunit.synthscapes.dataset import write_nonbijective_split, write_test_set, write_train_split

    net, images = _tiny_generator(tmp_path)
    translator = Translator.from_checkpoint(net, device="cpu")
    config = tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=tmp_path / "runs")
    previous = os.umask(0o700)
    request.addfinalizer(lambda: os.umask(previous))
    calls = {"export_generator": lambda: export_generator(tiny_runs["cut"], tmp_path / "g.onnx"),
             "translate_folder": lambda: translator.translate_folder(images, tmp_path / "o"),
             "Trainer": lambda: Trainer(config, show_progress=False),
             "build_report": lambda: build_report([tiny_runs["cut"]], tmp_path / "r.html"),
             "make_synthscapes": lambda: make_synthscapes(tmp_path / "ss", num_pool=8, num_test=1, size=16),
             # and the data writers of the API (round thirty-six (H): a folder of mode 0077 was left behind)
             "write_train_split": lambda: write_train_split(tmp_path / "t", num_pool=8, size=16),
             "write_test_set": lambda: write_test_set(tmp_path / "t", num_test=1, size=16),
             "write_nonbijective_split": lambda: write_nonbijective_split(tmp_path / "t", num_pool=8, size=16),
             "split_folders": lambda: split_folders(tmp_path / "t", images_a=images, images_b=images, mode="random"),
             "split_side_by_side": lambda: split_side_by_side(images, tmp_path / "t")}
    for where, call in calls.items():
        with pytest.raises(ConfigError, match=rf"^the umask 0700 takes your own read, write and search permission "
                                              rf".* \(e\.g\. `umask 022`\) in this process \(os\.umask\(0o022\)\) "
                                              rf"before {where}$"):
            call()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "net"]


def test_a_demo_interrupted_before_its_training_names_its_folder_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """Ctrl-C while `srunit demo` made its data: `interrupted; ... run the command again`, which made a second
    time-stamped folder and left the first half-made (round thirty-six (G), class e)."""
    import shlex

    import srunit.cli.demo as demo

    folders: list[Path] = []

    def benchmark(out: Path, *args: object, **kwargs: object) -> dict[str, object]:
        folders.append(Path(out))
        if len(folders) == 1:
            raise KeyboardInterrupt
        raise _Checked

    monkeypatch.setattr(demo, "run_benchmark", benchmark)
    assert cli_status(["demo", "--runs-dir", str(tmp_path / "dm"), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("srunit demo: interrupted; every file written so far is whole; rerun srunit demo with "), err
    words = shlex.split(err.split("rerun srunit demo with ")[1].split(" (and the same")[0])
    with pytest.raises(_Checked):
        cli_status(["demo", *words, "--no-progress"])
    assert folders[1] == folders[0]


def test_log_lines_naming_such_a_file_are_one_line_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int], make_report_run) -> None:
    """`srunit report 'wrun/r<newline>srunit report: wrote ok'`: its "Not read" warning was two lines, the second
    one looking like srunit's own (round thirty-six (G), class e). A traceback a library logs stays as it is."""
    import logging

    from srunit.checks import OneLineFormatter

    monkeypatch.setattr(logging.root, "handlers", [])  # as in a fresh process: the command sets its own handler
    run = make_report_run(tmp_path / "wrun" / "r\nsrunit report: wrote ok", "cut")
    with (run / "metrics.jsonl").open("a") as metrics:
        metrics.write('{"step": 200, "D": "x"}\n')
    assert cli_status(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "is not a number" in line]
    assert len(warning) == 1 and "wrun/r\\nsrunit report: wrote ok/metrics.jsonl line 4" in warning[0], warning
    try:
        raise ValueError("a\nb")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "bad %s", ("f\u202eg",), exc_info=sys.exc_info())
    text = OneLineFormatter("%(message)s").format(record)
    assert text.startswith("bad f\\u202eg\nTraceback (most recent call last):") and text.endswith("ValueError: a\nb")


def test_a_full_disk_at_the_outputs_lock_names_the_lock_not_standard_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`translate --output /full/disk/o` (and `data maps`, `data split`): `a write to standard output failed (No
    space left on device) ...; send its output to a disk with space, or to /dev/null`, which followed changed
    nothing: the lock's holder record had failed, without a file name (round thirty-six (G), class e)."""
    import errno

    import srunit._outputs as outputs

    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    net, images = _tiny_generator(tmp_path)
    monkeypatch.setattr(outputs.os, "pwrite", full)
    assert cli_status(["translate", "--checkpoint", str(net), "--input", str(images), "--output",
                       str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == (f"srunit translate: error: {tmp_path / '.o.lock'}: the disk is full (No space left on device); "
                   f"that file was not written: free space and run the command again\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "net"]  # no lock file left


def test_a_benchs_and_a_studys_values_out_of_range_are_named_not_shown(
        tmp_path: Path, make_report_bench, tiny_data: Path) -> None:
    """`srunit report BENCH` with a row's pixel accuracy -2.5 in summary.json showed -250.00 %, 7 as 700.00 %, NaN
    or "abc" as a dash (as an absent value), a 400-digit n in full; a tuning folder's trial value of -3.5 showed
    -350.00 %, one of "abc" dropped the trial from the table without a word (round thirty-six (G), class d)."""
    import json

    from srunit.report import render_report
    from srunit.report.runs import STUDY_FORMAT, load_bench, load_study

    bench = make_report_bench(tmp_path / "b", tiny_data)
    summary_file = bench / "summary.json"
    summary = json.loads(summary_file.read_text())
    row = summary["rows"][0]
    row["mean"].update(pixel_accuracy=-2.5, mean_iou=float("nan"))
    row["std"]["pixel_accuracy"] = "abc"
    row["n"] = int("9" * 400)
    summary_file.write_text(json.dumps(summary))
    loaded = load_bench(bench)
    said = [w.split(": ", 1)[1] for w in loaded.warnings]
    assert said == [f"rows[0].n is not a count of runs (got {'9' * 37}...); the number of runs the row names is shown: "
                    "rerun the benchmark's command",
                    "rows[0].mean.pixel_accuracy is not a score from 0 to 1 (got -2.5); it is not shown: rerun the "
                    "benchmark's command",
                    "rows[0].mean.mean_iou is not a finite number (got NaN); it is not shown: rerun the benchmark's "
                    "command",
                    "rows[0].std.pixel_accuracy is not a finite number (got \"abc\"); it is not shown: rerun the "
                    "benchmark's command"], said
    page = render_report([loaded], num_images=0)
    assert "Not read" in page and "-250.00" not in page and "rows[0].mean.pixel_accuracy" in page
    study = tmp_path / "t"
    study.mkdir()
    trials = [{"number": 0, "state": "COMPLETE", "value": -3.5, "scores": {"mean_iou": -3.5, "flip_rate": 0.1}},
              {"number": -7, "state": "COMPLETE", "value": "abc"},
              {"number": 2, "state": "COMPLETE", "value": 0.5, "scores": {"mean_iou": 0.5, "flip_rate": None}}]
    (study / "study.json").write_text(json.dumps({"format": STUDY_FORMAT, "study": "t", "objective": "mean_iou",
                                                  "direction": "maximize", "settings": {}, "trials": trials}))
    loaded_study = load_study(study)
    assert [w.split(": ", 1)[1] for w in loaded_study.warnings] == [
        "trials[0].value is not a score from 0 to 1 (got -3.5); the trial is listed as not finished: rerun the "
        "study's command",
        "trials[0].scores.mean_iou is not a score from 0 to 1 (got -3.5); it is not shown: rerun the study's command",
        "trials[1].number is not a trial number (got -7); it is not shown: rerun the study's command",
        "trials[1].value is not a finite number (got \"abc\"); the trial is listed as not finished: rerun the study's "
        "command"]
    page = render_report([loaded_study], num_images=0)
    assert "-350.00" not in page and "Not finished: 0 (not read), ? (not read)." in page and "50.00" in page


def test_a_mismatch_class_no_label_map_can_hold_is_named_as_such(tmp_path: Path) -> None:
    """`data mismatch --class 5 --ignore-index 5` (or `--class 300` with 8-bit maps): `no split with 60% of trainB
    holding the class ...; change --share or --num-test`, and `--share 0` as advised wrote a "mismatch" split with
    no mismatch (round thirty-six (G), class e)."""
    import numpy as np

    from srunit.datasets.mismatch import mismatch_split
    from srunit.errors import ConfigError, DataError

    for folder in ("img", "lab"):
        (tmp_path / folder).mkdir()
    for i in range(8):
        Image.new("RGB", (32, 32)).save(tmp_path / "img" / f"{i}.png")
        lab = np.full((32, 32), i % 3, dtype=np.uint8)
        if i % 2:
            lab[:4, :4] = 5
        Image.fromarray(lab, mode="L").save(tmp_path / "lab" / f"{i}.png")
    common = {"images_a": tmp_path / "img", "images_b": tmp_path / "img", "labels": tmp_path / "lab", "share": 0.6}
    with pytest.raises(ConfigError, match=r"^--class 5 is the --ignore-index, whose pixels are not counted"):
        mismatch_split(tmp_path / "o1", class_id=5, ignore_index=5, **common)
    with pytest.raises(DataError, match=rf"^no label map in {tmp_path / 'lab'} holds class 300 \(of 8\); give the id "
                                        r"of a class some of its images hold \(a map of 8-bit ids holds 0 to 255\)$"):
        mismatch_split(tmp_path / "o2", class_id=300, **common)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    split, _ = mismatch_split(tmp_path / "o3", class_id=5, **{**common, "share": 0.5})
    assert split.b_holding > 0


def test_a_permission_error_inside_a_folder_that_cannot_be_read_names_the_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chmod a permission error needs: the folder above the file that cannot be entered, else the file itself
    (round thirty-six (G), D10; as a user meets it: the test below)."""
    import srunit._reading as reading

    blocked = tmp_path / "run2" / "eval"
    blocked.mkdir(parents=True)
    access = os.access
    monkeypatch.setattr(reading.os, "access", lambda p, mode: Path(p) != blocked and access(p, mode))
    assert reading.unreadable_folder(blocked / "scores.json") == blocked
    assert reading.permission_fix(blocked / "scores.json") == (
        f"the folder {blocked} cannot be read: give yourself read permission (chmod u+rx {blocked})")
    assert reading.permission_fix(tmp_path / "run2" / "metrics.jsonl") == (
        f"give yourself read permission (chmod u+r {tmp_path / 'run2' / 'metrics.jsonl'})")


@pytest.mark.e2e
@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(), reason="needs root and setpriv")
def test_a_runs_unreadable_folder_or_log_as_a_user_meets_it(request: pytest.FixtureRequest, make_report_run) -> None:
    """`srunit report run2` with run2/eval unreadable: `run2/eval/scores.json: Permission denied; check the path,
    its permissions and the free space`; run4/metrics.jsonl unreadable: `...; move the file aside`, which, followed,
    made a report without the run's curves (round thirty-six (G), class e)."""
    import shutil
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="srunit-nobody-"))  # pytest's own temporary folders are root's alone
    request.addfinalizer(lambda: shutil.rmtree(tmp_path, ignore_errors=True))
    os.chmod(tmp_path, 0o777)
    cases = {"run2": ("eval", "the folder {run}/eval cannot be read; give yourself read permission (chmod u+rx "
                                "{run}/eval)"),
             "run4": ("metrics.jsonl", "give yourself read permission (chmod u+r {run}/metrics.jsonl)")}
    for name, (blocked, says) in cases.items():
        run = make_report_run(tmp_path / name, "cut", label=name)
        os.chown(tmp_path / name, 65534, 65534)
        for path in (tmp_path / name).rglob("*"):
            os.chown(path, 65534, 65534)
        os.chmod(run / blocked, 0)
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                               "srunit", "report", str(run), "--out", str(tmp_path / f"{name}.html")],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path,
                              env={**os.environ, "HOME": str(tmp_path), "PYTHONWARNINGS": "ignore"})
        assert done.returncode == 2 and says.format(run=run) in done.stderr, done.stderr


def test_a_full_disk_elsewhere_is_not_blamed_on_standard_output(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`srunit train --train.runs_dir /full/runs > tr.log`: `a write to standard output failed (No space left on
    device) ...; send its output to a disk with space, or to /dev/null`: the metrics log's last flush had failed,
    naming no file, and tr.log was on a disk with space (round thirty-six (H), class e). Here standard output is
    pytest's file of the captured output: a regular file on a disk with space."""
    import errno

    import srunit.cli.report as report

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report, "run", full)
    assert cli_status(["report", "x"]) == 2
    assert capsys.readouterr().err == ("srunit report: error: a write failed (No space left on device): a disk srunit "
                                       "writes to is full (standard output's has space); free space and run the "
                                       "command again\n")


def test_files_follow_the_umask_of_when_they_are_written(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """`os.umask(0o022); export_generator(...); os.umask(0o077); export_generator(...)`: both files 0644, the umask
    read once per process (round thirty-six (H), class d). Each API writer reads it as it starts."""
    import stat

    from srunit import Translator

    net, images = _tiny_generator(tmp_path)
    translator = Translator.from_checkpoint(net, device="cpu")
    previous = os.umask(0o022)
    request.addfinalizer(lambda: os.umask(previous))
    modes = []
    for mask, out in ((0o022, "o1"), (0o077, "o2")):
        os.umask(mask)
        translator.translate_folder(images, tmp_path / out)
        modes.append(stat.S_IMODE(os.stat(tmp_path / out / "a.png").st_mode))
    assert modes == [0o644, 0o600]


def test_a_records_folder_whose_records_cannot_be_read_is_refused_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tune synthscapes --records recs` with recs/trials unreadable (as a user): the study made its folder and
    data, then trial 0 failed reading the records; the advice, followed, met another refusal (round thirty-six (H),
    class e). Root reads every folder: the denial is made here as a user meets it."""
    import srunit.eval.study_records as records
    from srunit.errors import ConfigError

    trials = tmp_path / "recs" / "trials"
    trials.mkdir(parents=True)
    listdir = os.listdir

    def denied(path: object) -> list[str]:
        if Path(str(path)) == trials:
            raise PermissionError(13, "Permission denied", str(path))
        return listdir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(records.os, "listdir", denied)
    with pytest.raises(ConfigError, match=rf"^--records {tmp_path / 'recs'}: the folder {trials} cannot be read "
                                          rf"\(Permission denied\); give yourself read permission \(chmod u\+rx "):
        records.check_records_folder(tmp_path / "recs")
    monkeypatch.setattr(records.os, "listdir", listdir)
    records.check_records_folder(tmp_path / "recs")


def test_a_tracker_that_meets_a_full_disk_is_one_line_without_a_threads_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """`train --train.runs_dir /full/runs` with tensorboard: `Exception in thread Thread-1: Traceback ...` from the
    event file's writer thread, which failed before it was registered, and `the tracker could not start (OSError:
    [Errno 28] ...); fix its settings or leave tensorboard out`, advice that then met the full disk (round
    thirty-six (H), class c). By hand on a 2 MB tmpfs: one line, `the disk of RUN is full`."""
    import errno
    import threading

    import srunit.engine.loggers as loggers
    from srunit.errors import ConfigError

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setitem(loggers._LOGGERS, "tensorboard", (full, *loggers._LOGGERS["tensorboard"][1:]))
    with pytest.raises(ConfigError, match=rf"^train.loggers tensorboard: the tracker could not start: the disk of "
                                          rf"{tmp_path} is full \(No space left on device\); free space and run the "
                                          rf"command again$"):
        loggers.open_loggers(["tensorboard"], tmp_path, "r", {})

    class Writer(threading.Thread):  # as tensorboard's event file writer thread is
        def run(self) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    Writer.__module__ = "tensorboard.summary.writer.event_file_writer"
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # put back after the test
    loggers._hook_writer_threads()
    thread = Writer()
    thread.start()
    thread.join()
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(("mode", "extra", "row"), [("none", [], "| none | - | - |"),
                                                    ("crop", ["--data.crop_size", "32"], "| crop | - | 32 |"),
                                                    ("resize_and_crop", [], "| resize_and_crop | 36 | 32 |")])
def test_the_loader_tables_sizes_are_the_ones_its_mode_uses(
        tiny_data: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int], mode: str,
        extra: list[str], row: str) -> None:
    """`bench loader --data.preprocess none`: `| 0 | 1 | none | 286 | 256 | 166.7 |`, the preset's load and crop sizes,
    which the mode does not use (round thirty-six (H), class e)."""
    sizes = [] if mode != "resize_and_crop" else ["--data.load_size", "36", "--data.crop_size", "32"]
    batch = ["--train.batch_size", "1"] if mode == "none" else []
    assert cli_status(["bench", "loader", "--data.root", str(tiny_data), "--batches", "1", "--warmup", "0",
                       "--data.num_workers", "0", "--data.preprocess", mode, *extra, *sizes, *batch]) == 0
    assert row in capsys.readouterr().out


def test_result_lines_naming_such_a_file_are_one_line_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`srunit translate --output $'nl\\nsrunit translate: ok'`: `translated 1 image(s) into nl` and a second line
    `srunit translate: ok in 0.6 s`, which looked like srunit's own (round thirty-six (H), class e); `export`'s and
    the data commands' result lines the same."""
    net, images = _tiny_generator(tmp_path)
    out = tmp_path / "nl\nsrunit translate: ok"
    assert cli_status(["translate", "--checkpoint", str(net), "--input", str(images), "--output", str(out),
                       "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "into " + str(tmp_path) + "/nl\\nsrunit translate: ok in " in printed, printed
    assert (out / "a.png").is_file()  # the folder of that name, as asked


def test_yaml_aliases_that_expand_to_millions_of_values_are_refused_at_once() -> None:
    """`train --preset lol.yaml`, a few lines of aliases each repeating the one before nine times under
    method.lambda_nce: 60 s and 4.5 GB before `timeout` ended it (round thirty-six (H), class b)."""
    import time

    from srunit._yaml import read_yaml
    from srunit.errors import ConfigError

    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 7)]
    began = time.monotonic()
    with pytest.raises(ConfigError, match=r"^lol.yaml: its aliases \(\*name\) expand to more than 100,000 values"):
        read_yaml("\n".join([*lines, "method: {lambda_nce: *a6}"]) + "\n", "lol.yaml")
    assert time.monotonic() - began < 5
    assert read_yaml("a: &a [1, 2]\nb: *a\n", "ok.yaml").data == {"a": [1, 2], "b": [1, 2]}  # aliases as such: taken
