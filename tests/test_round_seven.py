"""Round seven, a fresh probe of issue 24's classes: tracebacks from user code, odd environments and API arguments,
reads and work without a bound, options accepted with no effect, and messages that named the wrong thing. Each test
reproduced a defect first."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.errors import CheckpointError, ConfigError, DataError

posix = pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "mkfifo"), reason="FIFOs, devices: POSIX")


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


# ----------------------------------------------------------------------------- leftovers of round six


@pytest.mark.parametrize("value", ["abc", "inf", "nan", "-1", "1e9"])
def test_a_bad_test_write_delay_is_ignored_with_a_warning(value: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """SRUNIT_TEST_CHECKPOINT_WRITE_DELAY=abc was a ValueError traceback in the middle of a checkpoint, inf an
    OverflowError from time.sleep. The variable is for tests: a bad value is ignored, with one warning naming it."""
    from srunit.engine import checkpoint

    monkeypatch.setenv(checkpoint.WRITE_DELAY_ENV, value)
    monkeypatch.setattr(checkpoint, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="srunit.engine.checkpoint"):
        checkpoint.write_file(tmp_path / "a", b"1234")
        checkpoint.write_file(tmp_path / "b", b"1234")
    assert (tmp_path / "a").read_bytes() == b"1234"
    warned = [r.getMessage() for r in caplog.records if checkpoint.WRITE_DELAY_ENV in r.getMessage()]
    assert len(warned) == 1 and "ignored" in warned[0], warned
    monkeypatch.setenv(checkpoint.WRITE_DELAY_ENV, "0.01")
    assert checkpoint.write_delay() == 0.01


@posix
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_translate_input_that_is_a_fifo_or_a_device_says_what_it_is(tiny_runs: dict[str, Path], tmp_path: Path,
                                                                    kind: str, capsys: pytest.CaptureFixture) -> None:
    """`translate --input FIFO` said the FIFO "is not a folder", as if a file had been given where a folder belongs."""
    from srunit.cli.main import main

    given = tmp_path / "in.png"
    if kind == "fifo":
        os.mkfifo(given)
    else:
        given.symlink_to("/dev/zero")
    assert main(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(given), "--output",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    what = "a FIFO (named pipe)" if kind == "fifo" else "a character device (it points to /dev/zero)"
    assert f"--input {given} is {what}, neither an image file nor a folder" in err
    assert "pass --input an image file or a folder of images" in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("content", "says"), [
    ("[1, 2]", "it holds list [1, 2], not a mapping of settings"),
    ('{"size": 64}', "lacks 'methods', "),
    ('{"size": "big"}', "lacks "),
])
def test_a_benchmark_settings_file_that_is_not_one_names_the_file_the_problem_and_the_fix(
        tmp_path: Path, content: str, says: str, capsys: pytest.CaptureFixture) -> None:
    """A damaged OUT/settings.json was refused as "cannot be read as benchmark settings (cannot convert dictionary
    update sequence element #0 to a sequence)" or "(('segmenter'))": Python's words, not what is wrong."""
    from srunit.cli.main import main

    out = tmp_path / "b"
    out.mkdir()
    (out / "settings.json").write_text(content)
    assert main(["bench", "synthscapes", "--profile", "cpu", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'settings.json'} is not the settings file of a benchmark: " in err and says in err
    assert "restore it from a copy, or pass a new --out (nothing was changed)" in err
    assert sorted(p.name for p in out.iterdir()) == ["settings.json"]


def test_wrong_types_in_benchmark_settings_are_named() -> None:
    from srunit.synthscapes import profile_settings
    from srunit.synthscapes.settings import BenchSettings

    data = profile_settings("cpu").to_dict()
    data["size"] = "big"
    with pytest.raises(ValueError, match=r"'size' is 'big', not int"):
        BenchSettings.from_dict(data)
    data = profile_settings("cpu").to_dict()
    data["segmenter"]["lr"] = [1]
    with pytest.raises(ValueError, match=r"'segmenter.lr' is \[1\], not a number"):
        BenchSettings.from_dict(data)
    data = profile_settings("cpu").to_dict()
    data["zzz"] = 1
    with pytest.raises(ValueError, match=r"has unknown 'zzz'"):
        BenchSettings.from_dict(data)
    assert BenchSettings.from_dict(profile_settings("cpu").to_dict()) == profile_settings("cpu")


@pytest.mark.parametrize("value", ["-1", "100000000000", "65536"])
@pytest.mark.parametrize("command", ["eval seg", "tune data", "data split", "data mismatch"])
def test_an_ignore_index_no_label_map_can_hold_is_refused(tiny_data: Path, tmp_path: Path, command: str,
                                                          value: str, capsys: pytest.CaptureFixture) -> None:
    """--ignore-index -1 or 10^11 was accepted and skipped no pixel (label maps hold 8- or 16-bit ids): an unlabelled
    pixel then counted as a class or was an error about its value, and tune data started training."""
    from srunit.cli.main import main

    seg = tmp_path / "seg.py"
    seg.write_text("def segment(image):\n    return image.argmax(axis=2)\n")
    out = tmp_path / "out"
    argv = {
        "eval seg": ["eval", "seg", "--images", str(tiny_data / "testB"), "--labels", str(tiny_data / "testLabels"),
                     "--segmenter", f"{seg}:segment", "--classes", "8"],
        "tune data": ["tune", "data", "--preset", "cut", "--data", str(tiny_data), "--val-images",
                      str(tiny_data / "testA"), "--val-labels", str(tiny_data / "testLabels"), "--classes", "8",
                      "--segmenter", f"{seg}:segment", "--trials", "1", "--out", str(out), "--no-progress"],
        "data split": ["data", "split", "--labels", str(tiny_data / "testLabels"), "--classes", "8", "--images-a",
                       str(tiny_data / "testA"), "--images-b", str(tiny_data / "testB"), "--out", str(out)],
        "data mismatch": ["data", "mismatch", "--labels", str(tiny_data / "testLabels"), "--class", "1",
                          "--images-a", str(tiny_data / "testA"), "--images-b", str(tiny_data / "testB"), "--out",
                          str(out)],
    }[command]
    assert main([*argv, "--ignore-index", value]) == 2
    err = capsys.readouterr().err
    assert f"--ignore-index must be an integer from 0 to 65,535, got {value}; label maps hold 8- or 16-bit ids" in err
    assert not out.exists()


def test_the_confusion_matrix_bounds_its_ignore_index_and_still_takes_a_class_id() -> None:
    from srunit.eval.segmentation import ConfusionMatrix

    with pytest.raises(ConfigError, match="--ignore-index must be an integer from 0 to 65,535, got -1"):
        ConfusionMatrix(8, -1)
    cm = ConfusionMatrix(3, 0)  # a void = 0 data set: class 0 is never scored
    cm.update(np.array([[1, 2, 0]]), np.array([[1, 2, 0]]))
    assert cm.matrix.sum() == 2


def test_fid_names_its_weights_before_reading_the_folders(tmp_path: Path, write_image) -> None:
    """`eval fid` scanned both folders (and refused one of them) before it looked at --weights: a missing weights
    file was reported only once the folders were right."""
    from srunit.eval.fid import fid_kid

    real = tmp_path / "real"
    write_image(real / "only.png", size=(8, 8))  # FID needs 2 images: this was the first error
    with pytest.raises(ConfigError, match=r"Inception weights file .*nope\.pt does not exist"):
        fid_kid(real, real, weights=tmp_path / "nope.pt")


@pytest.mark.parametrize(("option", "value", "says"), [
    ("kid_subsets", 0, "--kid-subsets must be an integer from 1 to 10,000, got 0"),
    ("kid_subsets", 10**11, "--kid-subsets must be an integer from 1 to 10,000"),
    ("kid_subset_size", 0, "--kid-subset-size must be an integer from 2"),
    ("batch_size", 0, "--batch-size must be an integer from 1 to 65,536, got 0"),
    ("device", "gpu", "--device: invalid value 'gpu'"),
])
def test_fid_options_are_bounded_and_named_as_the_command_names_them(tmp_path: Path, option: str, value: object,
                                                                     says: str) -> None:
    """The message named the library's arguments (`fid_kid: kid_subsets (0), ...`), not the options; and
    --kid-subsets 10**11 computed for ever."""
    from srunit.eval.fid import fid_kid

    with pytest.raises(ConfigError, match=says.replace("(", r"\(")):
        fid_kid(tmp_path, tmp_path, weights=tmp_path / "w.pt", **{option: value})


# ----------------------------------------------------------------------------- export: the check's sizes


def test_export_check_sizes_are_typed_counted_and_bounded(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """export_generator(check_sizes=[(10**6, 64, 64)]) allocated 49 GB (a RuntimeError traceback from the allocator);
    [(64, 64)] and "128x128" were ValueError tracebacks; `--check-size` repeated 200 times ran for minutes."""
    from srunit.cli.main import main
    from srunit.export import MAX_CHECKS, check_sizes_of, export_generator

    out = tmp_path / "g.onnx"
    with pytest.raises(ConfigError, match=r"check batch size 1000000 of 64x64 images must be from 1 to 8,192"):
        export_generator(tmp_path / "no-run", out, check_sizes=[(10**6, 64, 64)])  # before the run is looked at
    for wrong in ([(64, 64)], "128x128", [("2", 64, 64)], [(True, 64, 64)]):
        with pytest.raises(TypeError, match=r"check_sizes must be a list of \(batch, height, width\) triples"):
            check_sizes_of(wrong)
    with pytest.raises(ConfigError, match="--tolerance 'abc' must be a finite number > 0"):
        export_generator(tmp_path / "no-run", out, tolerance="abc")  # type: ignore[arg-type]
    assert check_sizes_of([(2, 4096, 4096)]) == [(2, 4096, 4096)]  # the command checks its first size twice
    argv = ["export", str(tmp_path / "no-run"), "--output", str(out)]
    assert main([*argv, *["--check-size", "64x64"] * (MAX_CHECKS + 1)]) == 2
    assert f"--check-size is given {MAX_CHECKS + 1} times, more than {MAX_CHECKS}" in capsys.readouterr().err
    assert not out.exists()


def test_a_damaged_torch_export_program_is_one_line_without_torchs_traceback(tmp_path: Path,
                                                                            capfd: pytest.CaptureFixture) -> None:
    """A damaged .pt2 given to `translate` printed torch's 20-line warning with a traceback before the error."""
    from srunit.exported import load_program

    damaged = tmp_path / "g.pt2"
    damaged.write_bytes(os.urandom(1000))
    logging.getLogger("torch.export").addHandler(handler := logging.StreamHandler(sys.stderr))
    try:
        with pytest.raises(CheckpointError, match=r"could not be loaded as a torch.export program") as err:
            load_program(damaged, torch.device("cpu"))
    finally:
        logging.getLogger("torch.export").removeHandler(handler)
    _one_line(err.value)
    assert "Traceback" not in capfd.readouterr().err
    assert not logging.getLogger("torch.export").disabled


# ----------------------------------------------------------------------------- odd environments


@pytest.mark.skipif(sys.platform == "win32", reason="a folder in use cannot be removed on Windows")
def test_a_command_run_from_a_deleted_folder_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """From a shell whose folder was removed, every command died in torch's import: "Intel oneMKL FATAL ERROR: Cannot
    load libtorch_cpu.so", which names neither the cause nor the fix."""
    from srunit.cli.main import main

    gone = tmp_path / "gone"
    gone.mkdir()
    here = os.getcwd()
    os.chdir(gone)
    try:
        gone.rmdir()
        assert main(["report", "run"]) == 2
        assert "the current folder no longer exists" in capsys.readouterr().err
        with pytest.raises(SystemExit) as done:  # what needs no folder still works (batch 2: it was refused too)
            main(["--version"])
        assert done.value.code == 0 and "srunit" in capsys.readouterr().out
    finally:
        os.chdir(here)


def test_resume_with_overrides_given_as_one_string_names_the_argument(tiny_runs: dict[str, Path]) -> None:
    """Trainer.resume(run, "train.steps=2") iterated the string: "override 't' must look like section.key=value"."""
    from srunit.engine import Trainer

    with pytest.raises(TypeError, match="Trainer.resume: overrides must be a list of 'section.key=value' strings, "
                                        "got str 'train.steps=2'; wrap it in a list"):
        Trainer.resume(tiny_runs["cut"], "train.steps=2")  # type: ignore[arg-type]


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
@pytest.mark.parametrize("target", ["an empty folder", "nothing"])
def test_a_data_output_that_is_a_symbolic_link_is_refused_up_front(tiny_data: Path, tmp_path: Path, target: str,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """`data split --out LINK` (to an empty folder, or to nothing) built the whole split, then said the output "was
    filled by someone else while srunit wrote it": a rename cannot replace a link by a folder."""
    from srunit.cli.main import main

    out = tmp_path / "o"
    if target == "an empty folder":
        (tmp_path / "target").mkdir()
    out.symlink_to(tmp_path / "target")
    assert main(["data", "split", "--labels", str(tiny_data / "testLabels"), "--classes", "8", "--images-a",
                 str(tiny_data / "testA"), "--images-b", str(tiny_data / "testB"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    # to nothing: guard_output's line (round twenty-eight), which names the link's target as it was written
    link = f"(to {tmp_path / 'target'}); " if target == "an empty folder" else f"to {tmp_path / 'target'}, which does"
    assert f"--out {out} is a symbolic link {link}" in err and "someone else" not in err
    assert out.is_symlink() and not any(p.name.startswith(".o") for p in tmp_path.iterdir())
    assert target == "nothing" or list((tmp_path / "target").iterdir()) == []


# ----------------------------------------------------------------------------- the user's segmenter


@pytest.mark.parametrize(("source", "says"), [
    ("import sys\nsys.exit(0)\n", "importing .*seg.py failed: SystemExit: 0"),
    ("def segment(image):\n    raise RuntimeError('boom')\n", "failed on a 4x6 image: RuntimeError: boom"),
    ("def segment():\n    return 1\n", "failed on a 4x6 image: TypeError: segment\\(\\) takes 0 positional"),
    ("import sys\ndef segment(image):\n    sys.exit(3)\n", "failed on a 4x6 image: SystemExit: 3"),
    ("def segment(image):\n    image[:] = 0\n    return image[..., 0]\n", "failed on a 4x6 image: ValueError: "),
], ids=["exit-at-import", "raises", "signature", "exits", "writes-its-input"])
def test_a_segmenter_that_raises_or_exits_is_one_line_naming_it(tmp_path: Path, source: str, says: str) -> None:
    """A segmenter module that called sys.exit() ended `eval seg` silently (status 0 or its own); one that raised
    (or had the wrong signature) ended it in a traceback through srunit's code."""
    from srunit.eval.segmenters import load_segmenter

    seg = tmp_path / "seg.py"
    seg.write_text(source)
    image = np.zeros((4, 6, 3), dtype=np.uint8)
    image.flags.writeable = False  # as the images the scorer hands over
    with pytest.raises(ConfigError, match=f"segmenter {seg}:segment:? {says}") as err:
        load_segmenter(f"{seg}:segment", 3)(image)
    _one_line(err.value)


def test_a_library_function_that_is_no_segmenter_is_named(tiny_data: Path, capsys: pytest.CaptureFixture) -> None:
    from srunit.cli.main import main

    assert main(["eval", "seg", "--images", str(tiny_data / "testB"), "--labels", str(tiny_data / "testLabels"),
                 "--segmenter", "math:floor", "--classes", "8"]) == 2
    assert "segmenter math:floor failed on a 40x40 image: TypeError" in capsys.readouterr().err


# ----------------------------------------------------------------------------- sizes and seeds checked up front


@pytest.mark.parametrize("size", [33, 20, 4])
def test_bench_speed_refuses_a_size_the_networks_cannot_take(size: int) -> None:
    """`bench speed --size 33` (or 20, 4) ended in a RuntimeError traceback in the middle of the first step."""
    from srunit.engine.speed import measure_speed

    with pytest.raises(ConfigError, match=rf"--size {size} does not fit the networks: .* use e\.g\. --size \d+"):
        measure_speed("cut", size=size, steps=1, warmup=0, device="cpu")


def test_synthscapes_seeds_below_zero_are_refused_by_name(tmp_path: Path) -> None:
    """`data synthscapes --seed -1` and `bench synthscapes --data-seed -1` were numpy ValueError tracebacks."""
    from srunit.synthscapes import make_synthscapes, profile_settings

    with pytest.raises(ConfigError, match="--seed must be an integer from 0 to 18,446,744,073,709,551,615, got -1"):
        make_synthscapes(tmp_path / "d", num_pool=8, num_test=1, size=16, seed=-1)
    with pytest.raises(ConfigError, match="--data-seed must be an integer from 0 to"):
        profile_settings("cpu", data_seed=-1)
    with pytest.raises(ConfigError, match="--num-test must be an integer from 1"):  # before the pool is rendered
        make_synthscapes(tmp_path / "e", num_pool=8, num_test=0, size=16)
    assert not (tmp_path / "e").exists()


def test_cityscapes_sizes_are_bounded_and_named(tmp_path: Path) -> None:
    """`data cityscapes --width 0` said "size must be positive (width, height)", naming no option; --height 10**6
    was accepted (each photo resized to it)."""
    from srunit.datasets.cityscapes import prepare_cityscapes

    for size, says in (((0, 256), "--width must be an integer from 1 to 16,384, got 0"),
                       ((512, 10**6), "--height must be an integer from 1 to 16,384, got 1000000")):
        with pytest.raises(ConfigError, match=says):
            prepare_cityscapes(tmp_path, tmp_path / "out", size=size)


def _tune(tiny_data: Path, out: Path, seg: Path, *extra: str) -> list[str]:
    return ["tune", "data", "--preset", "cut", "--data", str(tiny_data), "--val-images", str(tiny_data / "testA"),
            "--val-labels", str(tiny_data / "testLabels"), "--classes", "8", "--trials", "1", "--out", str(out),
            "--no-progress", "--segmenter", f"{seg}:segment", *extra]


@pytest.mark.parametrize(("extra", "space", "says"), [
    (["--classes", "0"], None, "--classes must be an integer from 1 to 4,096, got 0"),
    ([], "method.zzz: {low: 1, high: 5}\n", "entry 'method.zzz' cannot take 1: unknown key method.zzz"),
    ([], "model.n_blocks: {low: 0, high: 4, int: true}\n", "entry 'model.n_blocks' cannot take 0: "),
    ([], "model.feature_layers: {leave_one_out: [0, 4, 99]}\n",  # refused by the generator, not the config (batch 2)
     "entry 'model.feature_layers' cannot take 'none': model.feature_layers: invalid value (0, 4, 99)"),
])
def test_tune_checks_its_classes_and_its_space_before_the_study_starts(tiny_data: Path, tmp_path: Path,
                                                                       extra: list[str], space: str | None,
                                                                       says: str,
                                                                       capsys: pytest.CaptureFixture) -> None:
    """`tune data --classes 0` started the first trial's training; a --space entry with an unknown key (or a value
    the option refuses) failed only in the first trial, as a traceback in Optuna's log, after the folder was made."""
    from srunit.cli.main import main

    seg = tmp_path / "seg.py"
    seg.write_text("def segment(image):\n    return image.argmax(axis=2)\n")
    if space is not None:
        (tmp_path / "space.yaml").write_text(space)
        extra = [*extra, "--space", str(tmp_path / "space.yaml")]
    out = tmp_path / "t"
    assert main(_tune(tiny_data, out, seg, *extra)) == 2
    assert says in capsys.readouterr().err and not out.exists()


# ----------------------------------------------------------------------------- options accepted with no effect


def test_a_demo_into_a_folder_that_is_not_a_demo_names_the_demos_options(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    """`demo --name d` into an existing folder said "--out ... exists and is not a benchmark folder": an option of
    another command."""
    from srunit.cli.main import main

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine\n")
    assert main(["demo", "--runs-dir", str(tmp_path), "--name", "d", "--steps", "1", "--size", "16"]) == 2
    err = capsys.readouterr().err
    assert "--runs-dir/--name" in err and "pass another --name" in err and "--out" not in err
    assert (tmp_path / "d" / "keep.txt").read_text() == "mine\n"


def test_a_benchmark_refuses_a_baseline_it_does_not_train_conditions_twice_and_two_methods_of_one_name(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`--baseline drit` with `--methods cut,srunit` trained every run, then printed "no paired differences";
    `--conditions unmatched,unmatched` counted each run twice in its row (n doubled, intervals too narrow); a preset
    file `cut.yaml` beside the packaged `cut` trained into the same run folders."""
    from srunit.cli.main import main
    from srunit.synthscapes import profile_settings

    out = tmp_path / "b"
    base = ["bench", "synthscapes", "--profile", "cpu", "--out", str(out), "--no-progress"]
    assert main([*base, "--methods", "cut,srunit", "--baseline", "drit"]) == 2
    assert "--baseline drit is not among --methods cut,srunit" in capsys.readouterr().err
    assert main([*base, "--conditions", "unmatched,unmatched"]) == 2
    assert "--conditions names 'unmatched' 2 times" in capsys.readouterr().err
    assert not out.exists()
    own = tmp_path / "cut.yaml"
    shutil.copy(Path(__file__).parent.parent / "src" / "srunit" / "presets" / "cut.yaml", own)
    with pytest.raises(ConfigError, match=rf"--methods cut and {own} share the name 'cut'"):
        profile_settings("cpu", methods=("cut", str(own)))


def test_translate_tensor_refuses_8_bit_pixels_and_values_outside_the_image_range(tiny_runs: dict[str, Path]
                                                                                  ) -> None:
    """A uint8 tensor, or float pixels in 0..255, were translated into garbage without a word."""
    from srunit.inference import Translator

    tr = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    with pytest.raises(ValueError, match=r"x is torch.uint8; .* x.float\(\) / 127.5 - 1"):
        tr.translate_tensor(torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"x holds values from .* to 25\d.*; images are values in \[-1, 1\]"):
        tr.translate_tensor(torch.rand(1, 3, 16, 16) * 255 + 1)
    assert tr.translate_tensor(torch.full((1, 3, 16, 16), 1.001)).shape == (1, 3, 16, 16)  # rounding is fine


def test_translate_images_reads_a_pil_image_as_the_file_loader_does(tiny_runs: dict[str, Path]) -> None:
    """translate_images converted with PIL's convert("RGB"): a 16-bit image became white, an image with alpha lost
    it, so the API and `srunit translate` of the same picture differed."""
    from srunit.data.images import pil_to_tensor, tensor_to_pil
    from srunit.inference import Translator

    tr = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    wide = Image.fromarray(np.full((16, 16), 3000, dtype=np.uint16))
    rgba = Image.fromarray(np.dstack([np.full((16, 16, 3), 200, np.uint8), np.zeros((16, 16), np.uint8)]), "RGBA")
    for image in (wide, rgba):
        expected = tensor_to_pil(tr.translate_tensor(pil_to_tensor(image)[None])[0])
        assert np.array_equal(np.asarray(tr.translate_images([image])[0]), np.asarray(expected))


def test_a_tracker_named_twice_is_refused() -> None:
    """`--train.loggers '[tensorboard, tensorboard]'` started two TensorBoard writers: two event files, every scalar
    logged twice."""
    from srunit.config import load_config

    with pytest.raises(ConfigError, match=r"train.loggers: invalid value \['tensorboard', 'tensorboard'\]; allowed: "
                                          r"each tracker once"):
        load_config("cut", ["train.loggers=[tensorboard, tensorboard]"])


@pytest.mark.parametrize(("text", "says"), [
    ('train: !!python/object/apply:os.system ["true"]\n', r"line 1, column 8: could not determine a constructor"),
    ("train:\n  steps: [1\n", r"line 3, column 1: while parsing a flow sequence, expected ',' or ']'"),
    ("a: b: c\n", r"line 1, column 5: mapping values are not allowed here"),
])
def test_invalid_yaml_is_one_line_naming_the_file_the_line_and_the_column(text: str, says: str) -> None:
    """A YAML syntax error was four lines naming "<unicode string>" (PyYAML's str), with a caret under a quote of the
    line, instead of the file."""
    from srunit._yaml import load_yaml

    with pytest.raises(ConfigError, match=rf"^p\.yaml is not valid YAML: {says}") as err:
        load_yaml(text, "p.yaml")
    assert "<unicode string>" not in _one_line(err.value)


def test_the_data_scan_says_what_a_path_that_is_not_a_folder_is(tmp_path: Path) -> None:
    from srunit.data.files import scan_images

    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match=r"domain A path .*f is a regular file, not a folder"):
        scan_images(tmp_path / "f", role="domain A", hint="fix it")
