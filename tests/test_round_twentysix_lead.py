"""Round twenty-six, the lead's own: what round twenty-five (A) reported and left."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.mark.parametrize(("extra", "says"), [
    (["--preset", "srunit"], "--preset cannot be combined with --resume"),
    (["--train.name", "other"], "train.name cannot change on --resume"),
    (["--train.runs_dir", "elsewhere"], "train.runs_dir cannot change on --resume"),
    (["--train.seed", "5"], "train.seed cannot change on --resume"),
    (["--train.epochs", "3"], "train.epochs has no effect: train.steps 1 sets the length of the run"),
])
def test_train_help_of_a_resume_refuses_what_the_resume_refuses(
        tiny_runs: dict[str, Path], capsys: pytest.CaptureFixture, extra: list[str], says: str,
        cli_status: Callable[[list[str]], int]) -> None:
    """`train --resume RUN --help --train.name other` (or --preset, a fixed train option, a length option the run's
    budget makes void) printed the help with those values, though the resume itself refuses each."""
    run = tiny_runs["cut"]
    assert cli_status(["train", "--resume", str(run), *extra]) == 2
    refused = capsys.readouterr().err
    assert says in refused
    assert cli_status(["train", "--resume", str(run), "--help", *extra]) == 2
    captured = capsys.readouterr()
    assert says in captured.err and "config keys" not in captured.out


def test_train_help_of_a_resume_of_a_folder_that_is_no_run_says_so(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture,
                                                                    cli_status: Callable[[list[str]], int]) -> None:
    """`train --resume FOLDER --help` of a folder without config.yaml advised a preset file ("preset ... not found:
    give a packaged preset name or a YAML file"); the resume says the folder is not a run."""
    assert cli_status(["train", "--resume", str(tmp_path), "--help"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is not a run folder (no config.yaml)" in err and "preset" not in err


def _synthscapes(out: str) -> list[str]:
    return ["data", "synthscapes", "--out", out, "--num-pool", "8", "--num-test", "1", "--size", "32"]


def test_data_output_into_an_empty_folder_keeps_what_the_user_gave_that_folder(tmp_path: Path,
        cli_status: Callable[[list[str]], int]) -> None:
    """`data synthscapes --out DIR` of an empty folder the user made (mode 2750, say, for a group) renamed srunit's
    temporary folder onto it: the output came back 0755, the setgid bit and group gone."""
    out = tmp_path / "shared"
    out.mkdir()
    out.chmod(0o2750)
    os.utime(out, (1_000_000_000, 1_000_000_000))
    assert cli_status(_synthscapes(str(out))) == 0
    assert (out / "manifest.json").is_file()
    assert stat.S_IMODE(out.stat().st_mode) == 0o2750
    assert out.stat().st_mtime > 1_000_000_000  # filled now: `find -newer`, make and rsync see the change (27A)


def test_data_output_into_the_working_folder_is_refused_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture,
                                                                        cli_status: Callable[[list[str]], int]) -> None:
    """`data synthscapes --out .` in an empty folder replaced the working folder: the shell was left in a deleted
    folder (`ls` showed nothing) and the data set lay at a path the shell no longer named."""
    here = tmp_path / "here"
    here.mkdir()
    inode = here.stat().st_ino
    monkeypatch.chdir(here)
    assert cli_status(_synthscapes(".")) == 2
    assert "is the working folder" in capsys.readouterr().err
    assert os.stat(".").st_ino == inode and here.stat().st_ino == inode and not any(tmp_path.glob(".*partial*"))
    assert cli_status(_synthscapes("./out")) == 0 and (here / "out" / "manifest.json").is_file()


@pytest.mark.parametrize(("command", "argv"), [
    ("report", ["report", "RUN", "--bogus"]),
    ("translate", ["translate", "--checkpoint", "c", "--input", "i", "--output", "o", "--bogus"]),
    ("eval fid", ["eval", "fid", "--real", "r", "--fake", "f", "--weights", "w", "--bogus"]),
    ("data split", ["data", "split", "--images-a", "a", "--images-b", "b", "--out", "o", "--bogus"]),
    ("data synthscapes", ["data", "synthscapes", "--out", "o", "--bogus"]),
    ("export", ["export", "c", "--output", "o", "--bogus"]),
])
def test_an_unknown_option_is_answered_with_the_usage_of_the_command_typed(
        command: str, argv: list[str], capsys: pytest.CaptureFixture, cli_status: Callable[[list[str]], int]) -> None:
    """`srunit report RUN --bogus` answered "usage: srunit [-h] [--version] [-v] COMMAND ..." and "srunit: error":
    the usage of srunit itself, which names no option of the command the user typed."""
    assert cli_status(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: srunit {command} [-h]")
    assert f"srunit {command}: error: unrecognized arguments: --bogus" in err


def test_a_new_run_is_not_started_among_a_users_own_files(tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    """`train --train.runs_dir ~/work --train.name photos`, where ~/work/photos held the user's own files, wrote the
    run's checkpoints, logs and samples among them (and a later `rm -r` of the run took them along). An empty
    folder, or a folder of an earlier run without checkpoints, is still taken."""
    from srunit.engine import Trainer
    from srunit.errors import ConfigError

    runs = tmp_path / "work"
    (runs / "photos").mkdir(parents=True)
    (runs / "photos" / "note.txt").write_text("mine")
    config = tiny_config("cut", "train.steps=1", "train.name=photos", data_root=tiny_data, runs_dir=runs)
    with pytest.raises(ConfigError, match=r"exists and holds files no run writes \(note\.txt\)"):
        Trainer(config, show_progress=False)
    assert [p.name for p in (runs / "photos").iterdir()] == ["note.txt"]
    (runs / "photos" / "note.txt").unlink()
    run = Trainer(config, show_progress=False).fit()
    assert (run / "config.yaml").is_file()


def test_tune_refuses_the_nonbijective_condition_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture,
                                                                 cli_status: Callable[[list[str]], int]) -> None:
    """`tune synthscapes --condition nonbijective` (its help: "unmatched or matched") was accepted and scored trials
    by segmenting validation layouts that hold the class domain A of that condition never shows."""
    from srunit.errors import ConfigError
    from srunit.tune.targets import SynthScapesTarget

    monkeypatch.chdir(tmp_path)
    assert cli_status(["tune", "synthscapes", "--preset", "cut", "--condition", "nonbijective", "--trials", "1"]) == 2
    assert "--condition nonbijective cannot be tuned" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="cannot be tuned"):
        SynthScapesTarget({}, str(tmp_path / "out"), "nonbijective")


@pytest.mark.parametrize("option", ["--model.ngf", "--method.lambda_nce", "--train.steps"])
def test_bench_loader_refuses_an_override_it_never_reads(tiny_data: Path, option: str,
                                                          capsys: pytest.CaptureFixture,
                                                          cli_status: Callable[[list[str]], int]) -> None:
    """`bench loader --model.ngf 8` (or a method or train option but the batch size and seed) was accepted and
    timed the same pipeline without a word: the loader reads the data options only."""
    assert cli_status(["bench", "loader", "--data.root", str(tiny_data), "--batches", "1", "--warmup", "0", option,
                    "3"]) == 2
    assert f"{option} has no effect on bench loader" in capsys.readouterr().err
    assert cli_status(["bench", "loader", "--data.root", str(tiny_data), "--batches", "1", "--warmup", "0",
                    "--data.num_workers", "0", "--train.batch_size", "1", "--data.load_size", "32",
                    "--data.crop_size", "32"]) == 0


@pytest.mark.parametrize("module", ["parity_core", "parity_drit", "parity_gcgan", "parity_public", "parity_stegogan"])
def test_a_parity_module_run_as_a_script_names_the_script_to_run(module: str, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    """`python benchmarks/parity_core.py --help` printed nothing and exited 0: the file is a module of the parity
    harness, whose script is parity_vs_public.py."""
    import runpy

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{module}.py"
    monkeypatch.syspath_prepend(str(path.parent))  # as `python benchmarks/X.py` has it
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(path), run_name="__main__")
    assert "run benchmarks/parity_vs_public.py" in str(stopped.value.code)


@pytest.mark.parametrize("host", ["", " "])
def test_an_empty_host_is_refused_not_served_on_loopback(tiny_runs: dict[str, Path], host: str) -> None:
    """`srunit app --host ''` served on 127.0.0.1 (gradio takes an empty name as none), where '' means every
    interface to Python's own servers: the user meant the page for other machines and got it for this one.
    (Refused before gradio is imported.)"""
    from srunit.app import TranslationDemo, launch_app
    from srunit.errors import ConfigError

    class _Blocks:  # what launch would be given; nothing is served
        def launch(self, **given: object) -> tuple[None, str, None]:
            raise AssertionError(f"launched with {given}")

    demo = TranslationDemo.from_checkpoints([tiny_runs["cut"]], device="cpu")
    with pytest.raises(ConfigError, match=r"names no address; give 0\.0\.0\.0 to serve on every interface"):
        launch_app(_Blocks(), demo, host=host, port=7000)


@pytest.mark.parametrize(("preset", "option", "value", "says"), [
    ("drit", "model.n_blocks", "2", "DRIT's networks read model.ngf and model.ndf only"),
    ("drit", "model.init_type", "normal", "DRIT's networks read model.ngf and model.ndf only"),
    ("cyclegan", "model.projector_dim", "8", "CycleGAN has no patch-contrastive loss"),
    ("gcgan", "model.feature_layers", "[0,4]", "GcGAN has no patch-contrastive loss"),
    ("stegogan", "model.projector_norm", "shifted", "StegoGAN has no patch-contrastive loss"),
])
def test_a_model_option_the_methods_networks_never_read_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture, preset: str, option: str, value: str, says: str,
        cli_status: Callable[[list[str]], int]) -> None:
    """`train --preset drit --model.n_blocks 2` trained DRIT's networks, which read model.ngf and model.ndf only, as
    without it, and `train --help --preset drit` listed n_blocks among the values in force; CycleGAN, GcGAN and
    StegoGAN have no projector F. Refused as a void method option is, on the command line and from a user's file."""
    argv = ["train", "--preset", preset, "--data.root", str(tmp_path), "--dry-run"]
    assert cli_status([*argv, f"--{option}", value]) == 2
    assert f"{option} {value} has no effect: {says}" in capsys.readouterr().err
    mine = tmp_path / "mine.yaml"
    section, key = option.split(".")
    mine.write_text(f"base: {preset}\n{section}:\n  {key}: {value}\n")
    assert cli_status(["train", "--preset", str(mine), "--data.root", str(tmp_path), "--dry-run"]) == 2
    assert f"(set in {mine}) has no effect: {says}" in capsys.readouterr().err
    assert cli_status(["train", "--help", "--preset", preset]) == 0
    listed = capsys.readouterr().out
    assert not re.search(rf"^  --{re.escape(option)}\s", listed, re.M) and "not read by" in listed


def test_the_model_options_cut_reads_are_all_taken(tmp_path: Path, tiny_data: Path,
                                                   capsys: pytest.CaptureFixture,
                                                   cli_status: Callable[[list[str]], int]) -> None:
    argv = ["train", "--preset", "cut", "--data.root", str(tiny_data), "--train.runs_dir", str(tmp_path), "--dry-run",
            "--model.n_blocks", "2", "--model.projector_dim", "8", "--model.ngf", "4", "--model.ndf", "4",
            "--data.load_size", "32", "--data.crop_size", "32", "--data.num_workers", "0"]
    assert cli_status(argv) == 0
    assert "not read by" not in capsys.readouterr().out


def test_unmatched_masks_write_folder_never_writes_over_its_images_or_a_users_files(tmp_path: Path,
                                                                                      write_image) -> None:
    """`UnmatchedMasks.write_folder("photos", "photos")` (a public method of the API reference) wrote each mask over
    the photo of the same name, and into any folder it replaced files without a word (26A noted it)."""
    import torch

    from srunit.errors import DataError
    from srunit.networks.stegogan import StegoMaskGenerator
    from srunit.unmatched import UnmatchedMasks

    masks = UnmatchedMasks(StegoMaskGenerator(ngf=4, n_blocks=2).eval(), torch.device("cpu"))
    photos = tmp_path / "photos"
    photo = write_image(photos / "a.png", size=(16, 16))
    before = photo.read_bytes()
    for out in (photos, photos / "masks"):
        with pytest.raises(DataError):
            masks.write_folder(photos, out)
    assert photo.read_bytes() == before and [p.name for p in photos.iterdir()] == ["a.png"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a.png").write_bytes(b"the user's")
    with pytest.raises(DataError, match="not an empty folder"):
        masks.write_folder(photos, mine)
    assert (mine / "a.png").read_bytes() == b"the user's"
    assert masks.write_folder(photos, mine, overwrite=True) == [mine / "a.png"]
    assert masks.write_folder(photos, tmp_path / "new") == [tmp_path / "new" / "a.png"]


def test_the_partial_folders_of_an_output_are_found_by_its_name_taken_literally(tmp_path: Path) -> None:
    """`--out 'data[1]'` looked for `.data[1].partial-*` as a glob pattern: it took `.data1.partial-XXXXXXXX`, the
    working folder of another command writing data1 under its own lock, for its own leftover and removed it; and
    a user's `.model1.pt2.partial-mine` beside `model[1].pt2` (27A)."""
    from srunit._outputs import remove_leftovers

    others = [tmp_path / ".data1.partial-ab12cd34", tmp_path / ".model1.pt2.partial-mine",
              tmp_path / ".data[1].partial-mine"]
    for path in others:
        path.mkdir()
    own = [tmp_path / ".data[1].partial-zz99yy88", tmp_path / ".model[1].pt2.partial-4242"]
    for path in own:
        path.mkdir()
    remove_leftovers([tmp_path / "data[1]", tmp_path / "model[1].pt2"], partials=True)
    assert all(p.exists() for p in others) and not any(p.exists() for p in own)


@pytest.mark.parametrize("files", [{"config.yaml": "base: cut  # my own preset\n"},
                                   {"eval/mynotes.txt": "mine"}, {"samples/b1.JPG": "x"},
                                   {"checkpoints/latest_net_G.pth": "x"}])
def test_a_users_config_yaml_or_files_in_folders_of_a_runs_names_are_the_users(
        tiny_config, tiny_data: Path, tmp_path: Path, files: dict[str, str]) -> None:
    """A folder holding the user's own config.yaml (their preset, kept beside the run it was for) was taken as a
    run: a new run replaced the file. A user's files in eval/, samples/ or checkpoints/ of a folder that is no run
    were not counted as theirs (27A). A folder a start left with its lock and empty folders is still taken."""
    from srunit.engine import Trainer
    from srunit.errors import ConfigError

    runs = tmp_path / "experiments"
    for name, text in files.items():
        (runs / "day" / name).parent.mkdir(parents=True, exist_ok=True)
        (runs / "day" / name).write_text(text)
    config = tiny_config("cut", "train.steps=1", "train.name=day", data_root=tiny_data, runs_dir=runs)
    with pytest.raises(ConfigError, match="holds files no run writes"):
        Trainer(config, show_progress=False, overrides=None)
    for name, text in files.items():
        assert (runs / "day" / name).read_text() == text
    left = runs / "left"
    (left / "samples").mkdir(parents=True)
    (left / "train.lock").write_text("")
    assert Trainer(tiny_config("cut", "train.steps=1", "train.name=left", data_root=tiny_data, runs_dir=runs),
                   show_progress=False).fit() == left


def test_ctrl_c_while_the_command_line_loads_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    """Ctrl-C in the first second or two of any command (while torch and the methods load for its parser) printed
    a traceback of 34 to 61 lines (27A); later it was the one-line message."""
    import srunit.cli.main as cli

    def interrupted(argv: object = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["translate", "--input", "x"]) == 130
    err = capsys.readouterr().err
    assert err == "srunit translate: interrupted before the command started; nothing was done\n"
