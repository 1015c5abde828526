"""Round nine, a confirmation probe of issue 24's classes: empty option values, thresholds given twice, the
label folder given as the image folder and one path where the app's API takes a list. Each test reproduced a
defect first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from srunit.cli.main import main
from srunit.errors import ConfigError, DataError


@pytest.mark.parametrize("argv", [
    ["translate", "--checkpoint", "RUN", "--input", "", "--output", "OUT"],
    ["eval", "fid", "--real", "A", "--fake", "B", "--weights", ""],
    ["eval", "paired", "--pred", "", "--target", "B"],
    ["export", "", "--output", "g.onnx"],
    ["report", "", "--out", "r.html"],
])
def test_an_empty_input_path_is_refused_naming_the_option(argv: list[str], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          cli_status: Callable[[list[str]], int]) -> None:
    # Path('') is the current folder: translate said `--output OUT is inside --input .`, fid `weights . is a folder`
    monkeypatch.chdir(tmp_path)
    assert cli_status(argv) == 2
    err = capsys.readouterr().err
    assert "an empty path" in err and " ." not in err.splitlines()[-1]
    assert not (tmp_path / "OUT").exists()


@pytest.mark.parametrize("option", ["--train.runs_dir", "--data.root", "--preset"])
def test_train_refuses_an_empty_runs_dir_data_root_or_preset(option: str, tiny_data: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             cli_status: Callable[[list[str]], int]) -> None:
    # runs_dir '' trained into the current folder, --preset '' trained the default preset (srunit), without a word
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--preset", "cut", "--data.root", str(tiny_data), "--train.runs_dir", str(tmp_path / "runs"),
            "--dry-run"]
    argv[argv.index(option) + 1] = ""
    assert cli_status(argv) == 2
    err = capsys.readouterr().err
    assert option.lstrip("-") in err and "empty" in err
    assert list(tmp_path.iterdir()) == []


def test_a_delta_given_twice_is_refused(tmp_path: Path, write_image) -> None:
    from srunit.eval.paired import check_deltas, paired_scores

    # Acc(5) of --delta 5,5 read 200%: each listing added the hits again
    with pytest.raises(ConfigError, match=r"--delta gives 5 more than once"):
        check_deltas([5, 30, 5])
    write_image(tmp_path / "p" / "a.png")
    write_image(tmp_path / "t" / "a.png")
    with pytest.raises(ConfigError, match="more than once"):
        paired_scores(tmp_path / "p", tmp_path / "t", deltas=(5, 5))
    assert paired_scores(tmp_path / "p", tmp_path / "t", deltas=(5, 30)).acc == {5: 1.0, 30: 1.0}


def test_seg_refuses_the_label_folder_as_the_image_folder(tmp_path: Path, write_image) -> None:
    from srunit.eval.scoring import score_segmentation

    write_image(tmp_path / "lb" / "a.png", np.zeros((8, 8), np.uint8))
    # the label maps were segmented as images and scored against themselves: 83% "flips", status 0
    with pytest.raises(DataError, match="--images and --labels are the same folder"):
        score_segmentation(tmp_path / "lb", tmp_path / "lb" / ".", lambda im: im[..., 0] * 0, 8)


@pytest.mark.parametrize("wrap", [str, Path])
def test_translation_demo_given_one_path_names_the_argument(wrap, tiny_runs: dict[str, Path]) -> None:
    from srunit.app import TranslationDemo

    # a str was iterated as its characters: `no checkpoint found at /`
    with pytest.raises(TypeError, match=r"paths must be a list .*wrap it in a list"):
        TranslationDemo.from_checkpoints(wrap(tiny_runs["cut"]), device="cpu")


def test_translate_expands_a_quoted_tilde_in_input_and_output(tiny_runs: dict[str, Path], tmp_path: Path,
                                                                 write_image, monkeypatch: pytest.MonkeyPatch) -> None:
    # --input '~/in' (a ~ the shell did not expand) was a ValueError traceback: 'HOME/in/a.png' is not in '~/in'
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # before the fix a literal ./~ folder was made here
    write_image(tmp_path / "in" / "a.png", size=(16, 16))
    assert main(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", "~/in", "--output", "~/out",
                 "--device", "cpu"]) == 0
    assert (tmp_path / "out" / "a.png").is_file() and list((tmp_path / "cwd").iterdir()) == []
