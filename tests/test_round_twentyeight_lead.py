"""Round twenty-eight (lead): what earlier rounds left (docs/what-survives-what.md, "Round twenty-eight (lead)")."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.config import load_config


def test_a_config_hashes_as_the_frozen_value_it_is() -> None:
    """`hash(config)` raised `TypeError: unhashable type: 'FrozenTerms'` for every method with added terms (CUT,
    SRUNIT), so a Config could not be a dict key or a set member though it is frozen and compares by value."""
    srunit, again = load_config("srunit"), load_config("srunit")
    other = load_config("srunit", ["method.robust.weight=0.5"])
    assert again == srunit and hash(again) == hash(srunit)
    assert len({srunit, again, other, load_config("cut"), load_config("drit")}) == 4
    assert {srunit: "a"}[again] == "a"


def test_a_path_in_a_mapping_of_overrides_is_taken_as_its_string(tmp_path: Path) -> None:
    """`load_config("cut", {"data": {"root": Path(...)}})` was refused as "invalid value PosixPath(...); allowed: a
    string", where the API's own arguments (`Trainer(run_dir=...)`, `data_root`) take a Path."""
    config = load_config("cut", {"data": {"root": tmp_path / "data"}, "train": {"runs_dir": Path("~/runs")}})
    assert (config.data.root, config.train.runs_dir) == (str(tmp_path / "data"), "~/runs")
    assert load_config("cut").with_overrides({"data": {"root": tmp_path}}).data.root == str(tmp_path)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_translating_a_folder_on_a_terminal_shows_the_images_done_and_the_time_left(
        tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`srunit translate` of a folder printed nothing until its last image was written: thousands of images at full
    resolution on a CPU looked like a hang for minutes."""
    from srunit.cli.main import main
    from srunit.inference import Translator

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 24, 3), 40 * i, np.uint8)).save(inputs / f"{i}.png")
    translator = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    for show, expected in ((True, "0/3 [00:00<?, ?image/s]"), (False, None)):  # erased when done
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        assert len(translator.translate_folder(inputs, tmp_path / f"out{show}", show_progress=show)) == 3
        assert expected in terminal.getvalue() if expected else terminal.getvalue() == ""
    with pytest.raises(TypeError, match="show_progress"):
        translator.translate_folder(inputs, tmp_path / "x", show_progress="no")  # type: ignore[arg-type]
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(inputs), "--output",
                 str(tmp_path / "cli"), "--no-progress"]) == 0
    assert terminal.getvalue() == "" and len(list((tmp_path / "cli").iterdir())) == 3


def test_an_output_through_a_loop_of_links_or_into_a_file_is_one_line(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`ln -s loopB loopA; ln -s loopA loopB`, then `--output loopA` (translate, data, report, export, train's runs
    folder, eval --json) was `RuntimeError: Symlink loop from ...`, a traceback; a link into a path below a file
    (`ln -s afile/sub d6`) was told to pass or `mkdir -p` a folder that can never be made."""
    monkeypatch.chdir(tmp_path)
    Path("loopA").symlink_to("loopB")
    Path("loopB").symlink_to("loopA")
    Path("afile").write_text("the user's")
    Path("d6").symlink_to("afile/sub")
    run = str(tiny_runs["cut"])
    for out, says in (("loopA", "a loop of links that leads to no file or folder; remove the link (rm "),
                      ("d6", "which lies below the file")):
        for argv in (["translate", "--checkpoint", run, "--input", str(tiny_data / "testA"), "--output", out],
                     ["translate", "--checkpoint", run, "--input", str(tiny_data / "testA"), "--output", f"{out}/s"],
                     ["report", run, "--out", f"{out}/r.html"],
                     ["export", run, "--output", f"{out}/g.onnx"],
                     ["data", "synthscapes", "--out", out],
                     ["train", "--preset", "cut", "--data.root", str(tiny_data), "--train.runs_dir", out,
                      "--dry-run"]):
            assert cli_status(argv) == 2, argv
            err = capsys.readouterr().err
            assert says in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "d6", "loopA", "loopB"]
    assert Path("afile").read_text() == "the user's"


def test_an_output_folder_whose_lock_file_name_would_be_too_long_is_refused_naming_the_lock(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`translate --output` (or `tune --out`, `bench synthscapes --out`) of a new folder of 250 to 255 bytes failed
    at its lock `.NAME.lock` with "File name too long; check the path, its permissions and the free space"."""
    for length, status in ((249, 0), (250, 2), (255, 2)):
        out = tmp_path / ("q" * length)
        assert cli_status(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(tiny_data / "testA"),
                        "--output", str(out)]) == status
        err = capsys.readouterr().err
        if status:
            assert f"is {length} bytes long; this file system takes names of 255 bytes, and srunit keeps a lock " \
                   f"file beside it under a name 6 bytes longer" in err and not out.exists()


def test_bench_loader_takes_the_discriminator_depths_its_crop_advice_names(
        tiny_data: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`bench loader --data.crop_size 16` advised `model.n_layers_d 2 with data.crop_size 16`, and then refused
    `--model.n_layers_d` as having no effect; DRIT's pipeline could not be timed below 209 px crops."""
    base = ["bench", "loader", "--data.root", str(tiny_data), "--batches", "1", "--warmup", "0"]
    assert cli_status([*base, "--data.load_size", "16", "--data.crop_size", "16"]) == 2
    assert "or model.n_layers_d 2 with data.crop_size 16" in capsys.readouterr().err
    assert cli_status([*base, "--data.load_size", "16", "--data.crop_size", "16", "--model.n_layers_d", "2"]) == 0
    assert "| 16 | 16 |" in capsys.readouterr().out
    assert cli_status([*base, "--preset", "drit", "--data.load_size", "36", "--data.crop_size", "32",
                    "--method.dis_layers", "3", "--method.content_dis_layers", "0"]) == 0
    assert cli_status([*base, "--model.ngf", "8"]) == 2  # still refused: no network is built
    assert "--model.ngf has no effect on bench loader" in capsys.readouterr().err


def test_switching_a_whole_configs_method_names_only_what_it_sets() -> None:
    """`load_config("cut").with_overrides({"method": {"name": "cyclegan"}})` named method.robust, method.distance,
    method.smooth and method.lipschitz, terms a CUT config holds switched off (None), as settings it sets."""
    from srunit.errors import ConfigError

    for overrides in ({"method": {"name": "cyclegan"}}, ["method.name=cyclegan"]):
        with pytest.raises(ConfigError, match=r"this config is a cut config and sets method\.") as refused:
            load_config("cut").with_overrides(overrides)
        assert "method.num_patches" in str(refused.value)
        assert not any(f"method.{term}" in str(refused.value) for term in ("robust", "distance", "smooth", "lipschitz"))


def test_a_file_output_or_a_config_file_in_a_loop_of_links_is_one_line(
        tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`export --output l1.onnx`, `report --out m1.html` where the name itself is a loop of links, and `train
    --preset p1.yaml` (or `load_config`) of such a file, were `RuntimeError: Symlink loop from ...` tracebacks."""
    from srunit.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    for a, b in (("l1.onnx", "l2.onnx"), ("m1.html", "m2.html"), ("p1.yaml", "p2.yaml")):
        Path(a).symlink_to(b)
        Path(b).symlink_to(a)
    for argv in (["export", str(tiny_runs["cut"]), "--output", "l1.onnx"], ["report", str(tiny_runs["cut"]),
                 "--out", "m1.html"], ["train", "--preset", "p1.yaml", "--dry-run"]):
        assert cli_status(argv) == 2, argv
        err = capsys.readouterr().err
        assert "is a symbolic link to" in err and "a loop of links" in err and err.count("\n") == 1, err
    with pytest.raises(ConfigError, match="a loop of links"):
        load_config("p1.yaml")


@pytest.mark.parametrize("method", ["srunit", "cut-lipschitz"])
def test_switching_a_whole_configs_method_takes_the_new_methods_terms_as_load_config_does(method: str) -> None:
    """`load_config("cut").with_overrides({"method": {"name": "srunit"}})` kept CUT's switched-off Eq. 3 (None):
    a CUT run recorded as srunit, without a word (`bench synthscapes --method.name srunit` reached it), where
    `load_config("cut", ...)` and `train --preset cut --method.name srunit` switch the term on."""
    given = load_config("cut", {"method": {"name": method}})
    assert load_config("cut").with_overrides({"method": {"name": method}}) == given
    assert load_config("cut").with_overrides([f"method.name={method}"]) == given
    assert any(v is not None for v in given.method.terms.values())


@pytest.mark.parametrize("target", ["loopB", "gone", "afile/sub"])
def test_a_checkpoint_given_as_a_broken_link_is_told_to_mend_that_link(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """`translate --checkpoint L` (export, app, `Translator.from_checkpoint`) where L is the user's own link to
    nothing, to a loop or into a file was told "no step_N checkpoint is left there; restore the checkpoints folder
    from a copy", the advice for a run's broken `latest`."""
    from srunit.errors import CheckpointError
    from srunit.inference import Translator

    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("x")
    Path("loopB").symlink_to("L")
    Path("L").symlink_to(target)
    with pytest.raises(CheckpointError, match=r"^L is a symbolic link to .*, which leads to no run or checkpoint .*"
                                              r"point the link at a run or checkpoint folder \(ln -sfn RUN L\)") as err:
        Translator.from_checkpoint("L", device="cpu")
    assert "restore the checkpoints folder" not in str(err.value)
