"""Round twenty-eight (A): what round twenty-seven (A) left, and its variants."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from srunit.config import load_config
from srunit.errors import ConfigError


def _synthscapes(out: str) -> list[str]:
    return ["data", "synthscapes", "--out", out, "--num-pool", "8", "--num-test", "1", "--size", "32"]


@pytest.mark.parametrize(("preset", "entry", "says"), [
    ("drit", "model.n_blocks: {choices: [1, 2]}", "DRIT's networks read model.ngf and model.ndf only"),
    ("cyclegan", "model.projector_dim: {low: 8, high: 64, int: true}", "CycleGAN has no patch-contrastive loss"),
    ("cyclegan", "method.lambda_identity: {low: 0.1, high: 1}", "method.lambda_a and method.lambda_b are 0"),
])
def test_tune_refuses_a_space_entry_the_method_leaves_without_effect(
        tmp_path: Path, capsys: pytest.CaptureFixture, preset: str, entry: str, says: str,
        cli_status: Callable[[list[str]], int]) -> None:
    """`tune --space` varying DRIT's model.n_blocks or CycleGAN's model.projector_dim (never read by their networks)
    trained every trial alike, and `--show-space` showed it as a space; `train` refuses either option."""
    space = tmp_path / "space.yaml"
    space.write_text(entry + "\n")
    zero_cycles = ["--method.lambda_a", "0", "--method.lambda_b", "0"] if "lambda_identity" in entry else []
    argv = ["tune", "synthscapes", "--preset", preset, "--space", str(space), "--show-space", *zero_cycles]
    assert cli_status(argv) == 2
    err = capsys.readouterr().err
    assert f"entry {entry.split(':')[0]!r}" in err and "has no effect" in err and says in err


def test_tune_takes_a_space_entry_another_entry_switches_on(tmp_path: Path, capsys: pytest.CaptureFixture,
        cli_status: Callable[[list[str]], int]) -> None:
    """An identity weight is void where both cycle weights are 0; a space that varies a cycle weight too switches
    it on in some trials, so it is taken."""
    preset = tmp_path / "no-cycles.yaml"
    preset.write_text("base: cyclegan\nmethod:\n  lambda_a: 0\n  lambda_b: 0\n")
    space = tmp_path / "space.yaml"
    space.write_text("method.lambda_identity: {low: 0.1, high: 1}\n")
    argv = ["tune", "synthscapes", "--preset", str(preset), "--space", str(space), "--show-space"]
    assert cli_status(argv) == 2
    assert "method.lambda_a and method.lambda_b are 0" in capsys.readouterr().err
    space.write_text("method.lambda_identity: {low: 0.1, high: 1}\nmethod.lambda_a: {choices: [0, 10]}\n")
    assert cli_status(argv) == 0
    assert "method.lambda_identity: {low: 0.1, high: 1" in capsys.readouterr().out


def test_bench_speed_refuses_a_model_option_the_method_never_reads(capsys: pytest.CaptureFixture,
        cli_status: Callable[[list[str]], int]) -> None:
    """`bench speed --preset cyclegan --model.projector_dim 16` timed CycleGAN's networks, which have no projector,
    and printed the result as of that setting."""
    argv = ["bench", "speed", "--preset", "cyclegan", "--size", "24", "--steps", "1", "--warmup", "0",
            "--device", "cpu", "--model.projector_dim", "16"]
    assert cli_status(argv) == 2
    captured = capsys.readouterr()
    assert "model.projector_dim 16 has no effect: CycleGAN has no patch-contrastive loss" in captured.err
    assert "| cyclegan |" not in captured.out


def test_trainer_refuses_an_override_it_is_told_of_that_has_no_effect(tmp_path: Path) -> None:
    """`Trainer(load_config("drit", o), overrides=o)` with o = ["model.n_blocks=2"] recorded the override in
    history.jsonl as the run's own and trained DRIT's networks, which never read it. (A config built by
    `load_config` alone cannot tell the user's override from a profile's, so `load_config` takes it.)"""
    from srunit.engine import Trainer

    overrides = ["model.n_blocks=2", f"data.root={tmp_path}", f"train.runs_dir={tmp_path}"]
    config = load_config("drit", overrides)
    with pytest.raises(ConfigError, match=r"model\.n_blocks 2 has no effect: DRIT's networks read"):
        Trainer(config, overrides=overrides)
    assert not any(tmp_path.iterdir())


def _other_group() -> int:
    """A group other than the process's own that this process may give to its files (any, as root)."""
    if os.geteuid() == 0:
        return os.getegid() + 4321
    others = [g for g in os.getgroups() if g != os.getegid()]
    if not others:
        pytest.skip("needs root or a second group")
    return others[0]


def _shared_folder(path: Path, group: int) -> Path:
    path.mkdir()
    os.chown(path, -1, group)
    path.chmod(0o2775)
    return path


def _groups_and_setgid(top: Path) -> set[tuple[int, bool]]:
    """{(group, setgid bit)} of every folder under ``top`` and {(group, False)} of every file."""
    return {(p.stat().st_gid, p.is_dir() and bool(p.stat().st_mode & stat.S_ISGID)) for p in top.rglob("*")}


def test_a_set_built_in_a_setgid_folder_is_of_its_group_as_if_made_in_place(tmp_path: Path,
        cli_status: Callable[[list[str]], int]) -> None:
    """`data synthscapes --out SHARED/new` where SHARED is a group's setgid folder: `mkdir` there gives a folder the
    group and the setgid bit, and everything made in it the group. The set is built beside its place and renamed:
    it came back without the bit and its files and folders in the user's own group. `data maps --out SHARED`
    built its halves outside SHARED altogether."""
    group = _other_group()
    shared = _shared_folder(tmp_path / "shared", group)
    assert cli_status([*_synthscapes(str(shared / "new"))]) == 0
    new = shared / "new"
    assert new.stat().st_gid == group and new.stat().st_mode & stat.S_ISGID
    assert _groups_and_setgid(new) == {(group, True), (group, False)}
    side = _shared_folder(tmp_path / "maps", group)
    assert cli_status(["data", "maps", "--input", str(new / "testA"), "--out", str(side)]) == 0
    assert {p.name for p in side.iterdir()} == {"photo", "map"}
    assert _groups_and_setgid(side) == {(group, True), (group, False)}


def test_a_set_built_in_a_users_empty_setgid_folder_is_of_its_group_throughout(tmp_path: Path,
        cli_status: Callable[[list[str]], int]) -> None:
    """`--out DIR` of an empty setgid folder of a group, in a folder that is not: the set's files were of the user's
    own group though DIR itself kept its group (round twenty-six)."""
    group = _other_group()
    out = _shared_folder(tmp_path / "out", group)
    assert cli_status(_synthscapes(str(out))) == 0
    assert out.stat().st_gid == group
    assert _groups_and_setgid(out) == {(group, True), (group, False)}


def _refuse_renames(monkeypatch: pytest.MonkeyPatch, refusal: Callable[[Path], int | None]) -> Callable[..., None]:
    """Make `os.replace` (which `building_folder` renames with, relative to the folder it opened) fail with the errno
    ``refusal(destination path)`` gives, where it gives one; returns the real `os.replace`."""
    real_replace = os.replace

    def replace(src: str, dst: str, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None) -> None:
        where = Path(os.readlink(f"/proc/self/fd/{dst_dir_fd}"), dst) if dst_dir_fd is not None else Path(dst)
        code = refusal(where)
        if code is not None:
            raise OSError(code, os.strerror(code), str(src), None, str(dst))
        real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "replace", replace)
    return real_replace


@pytest.mark.parametrize("errno_value", [errno.EBUSY, errno.EXDEV])
def test_an_output_on_a_mount_point_is_named_as_one_with_advice_that_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, errno_value: int,
        cli_status: Callable[[list[str]], int]) -> None:
    """`data synthscapes --out MNT` of an empty mount point failed at the rename with "Device or resource busy;
    check the path, its permissions and the free space", and `data maps --out MNT` with "Invalid cross-device link":
    neither is the cause. The rename fails so here where a bind mount is not seen as one before."""
    out = tmp_path / "mnt"
    out.mkdir()
    real_replace = _refuse_renames(monkeypatch, lambda dst: errno_value if out in (dst, dst.parent) else None)
    assert cli_status(_synthscapes(str(out))) == 2
    err = capsys.readouterr().err
    assert f"--out {out} is a mount point" in err and f"--out {out / 'out'}" in err
    assert "permissions" not in err and not any(out.iterdir())
    assert not [p.name for p in tmp_path.iterdir() if ".partial-" in p.name]
    monkeypatch.setattr(os, "replace", real_replace)
    assert cli_status(_synthscapes(str(out / "out"))) == 0  # the advice, followed as printed


def test_data_maps_into_a_real_mount_point_is_refused_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture,
        cli_status: Callable[[list[str]], int]
                                                                     ) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and a tmpfs mount")
    try:
        images = tmp_path / "pairs"
        images.mkdir()
        Image.new("RGB", (8, 4), (10, 20, 30)).save(images / "0.png")
        assert cli_status(["data", "maps", "--input", str(images), "--out", str(mnt)]) == 2
        assert f"--out {mnt} is a mount point" in capsys.readouterr().err
        assert not any(mnt.iterdir())
        assert cli_status(["data", "maps", "--input", str(images), "--out", str(mnt / "out")]) == 0
        assert sorted(p.name for p in (mnt / "out").iterdir()) == ["map", "photo"]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def _pairs(folder: Path) -> Path:
    folder.mkdir()
    Image.new("RGB", (8, 4), (10, 20, 30)).save(folder / "0.png")
    return folder


def test_data_maps_into_a_half_that_is_a_link_is_refused_before_writing(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture,
                                                                        cli_status: Callable[[list[str]], int]) -> None:
    """`data maps --out m1` where m1/map is a link to an empty folder wrote m1/photo, then said "m1/map was filled
    by someone else ...; nothing of this run was kept" (the rename cannot replace a link)."""
    images, out, elsewhere = _pairs(tmp_path / "pairs"), tmp_path / "m1", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "map").symlink_to(elsewhere)
    assert cli_status(["data", "maps", "--input", str(images), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {out / 'map'} is a symbolic link" in err and "nothing was written" in err
    assert [p.name for p in out.iterdir()] == ["map"] and not any(elsewhere.iterdir())
    (out / "map").unlink()  # the advice, followed as printed
    assert cli_status(["data", "maps", "--input", str(images), "--out", str(out)]) == 0
    assert elsewhere.is_dir() and sorted(p.name for p in out.iterdir()) == ["map", "photo"]


def test_data_maps_whose_second_half_is_filled_meanwhile_says_the_first_was_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        cli_status: Callable[[list[str]], int]) -> None:
    images, out = _pairs(tmp_path / "pairs"), tmp_path / "m1"
    # another process filled map after the check
    _refuse_renames(monkeypatch, lambda dst: errno.ENOTEMPTY if dst == out / "map" else None)
    assert cli_status(["data", "maps", "--input", str(images), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"of this run only {out / 'photo'} was kept" in err and "nothing of this run" not in err
    assert (out / "photo" / "0.png").is_file()


@pytest.mark.slow  # trains a step
def test_a_new_runs_linked_samples_are_unlinked_not_copied_in(tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    """A run stopped before its first checkpoint, whose samples/ the user made a link to their pictures: a new start
    advised `rm LINK && cp -r PICTURES LINK`, which put the user's pictures among the run's grids. Removing the link
    is enough, and leaves the pictures as they are."""
    from srunit.engine import Trainer

    config = tiny_config("cut", "train.steps=1", "train.name=day", data_root=tiny_data, runs_dir=tmp_path / "runs")
    run = tmp_path / "runs" / "day"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(config.to_yaml())
    (run / "metrics.jsonl").write_text("")
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    (pictures / "holiday.png").write_bytes(b"mine")
    (run / "samples").symlink_to(pictures)
    with pytest.raises(ConfigError) as refused:
        Trainer(config, show_progress=False)
    message = str(refused.value)
    assert f"rm {run / 'samples'} (" in message and "cp -r" not in message
    (run / "samples").unlink()  # the advice, followed as printed
    Trainer(config, show_progress=False).fit()
    assert [p.name for p in pictures.iterdir()] == ["holiday.png"]
    assert not (run / "samples" / "holiday.png").exists()


def test_trainer_with_run_dir_advises_another_run_dir(tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    """`Trainer(config, run_dir=DIR)` of a folder of the user's files, or inside the training images, advised a new
    train.name or train.runs_dir, which run_dir overrides: followed, it was refused again."""
    from srunit.engine import Trainer

    config = tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=tmp_path / "runs")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "note.txt").write_text("mine")
    for folder in (mine, tiny_data / "x"):
        with pytest.raises(ConfigError) as refused:
            Trainer(config, run_dir=folder, show_progress=False)
        message = str(refused.value)
        assert f"run_dir {folder}" in message
        assert ("a run_dir outside it" if folder.parent == tiny_data else "pick another run_dir") in message
        assert "train.name" not in message and "train.runs_dir" not in message


def test_a_preset_whose_method_is_switched_names_the_preset_and_the_fix(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture,
                                                                        cli_status: Callable[[list[str]], int]) -> None:
    """`train --preset cut --method.name cyclegan` said "unknown key method.flip_equivariance; allowed keys in
    method: ...", a key the user never typed: the preset sets it for CUT."""
    argv = ["train", "--preset", "cut", "--method.name", "cyclegan", "--data.root", str(tmp_path), "--dry-run"]
    assert cli_status(argv) == 2
    err = capsys.readouterr().err
    assert "preset cut is a cut config and sets" in err and "method.flip_equivariance" in err
    assert "start from preset cyclegan" in err
    mine = tmp_path / "mine.yaml"
    mine.write_text("base: cut\nmethod:\n  lambda_nce: 2\n")
    with pytest.raises(ConfigError, match=rf"preset {mine} is a cut config and sets .*method\.lambda_nce"):
        load_config(mine, ["method.name=cyclegan"])
    chain = tmp_path / "chain.yaml"  # the switch in the file itself: the keys come from its base
    chain.write_text("base: cut\nmethod:\n  name: cyclegan\n")
    with pytest.raises(ConfigError, match=rf"base cut of {chain} is a cut config and sets .*flip_equivariance"):
        load_config(chain)
    with pytest.raises(ConfigError, match="this config is a cut config and sets .*start from preset cyclegan"):
        load_config("cut").with_overrides(["method.name=cyclegan"])  # as `bench speed` applied its overrides
    assert load_config("cut", ["method.name=srunit"]).method.name == "srunit"  # every key of cut is srunit's


def test_bench_loader_refuses_a_load_size_its_preprocess_never_uses(tiny_data: Path,
                                                                    capsys: pytest.CaptureFixture,
                                                                    cli_status: Callable[[list[str]], int]) -> None:
    """`bench loader --data.preprocess crop --data.load_size 300` timed crops of the images as stored and printed
    300 in the table's load column, as if they had been resized to it (`train` refuses the pair)."""
    argv = ["bench", "loader", "--data.root", str(tiny_data), "--data.preprocess", "crop", "--data.load_size", "300",
            "--data.crop_size", "24", "--batches", "1", "--warmup", "0", "--data.num_workers", "0"]
    assert cli_status(argv) == 2
    captured = capsys.readouterr()
    assert "data.load_size 300 has no effect: data.preprocess crop resizes nothing" in captured.err
    assert "| crop |" not in captured.out


@pytest.mark.parametrize("command", [["bench", "speed"], ["bench", "loader"],
                                     ["tune", "synthscapes", "--preset", "cut"]])
def test_an_argument_that_is_no_override_points_at_a_help_that_lists_the_keys(
        command: list[str], capsys: pytest.CaptureFixture, cli_status: Callable[[list[str]], int]) -> None:
    """`bench speed --bogus` said "see --help for the keys", and `bench speed --help` lists no config key."""
    assert cli_status([*command, "--bogus"]) == 2
    err = capsys.readouterr().err
    assert "`srunit train --help` lists the keys" in err
    assert cli_status(["train", "--help"]) == 0
    assert "config keys and the values" in capsys.readouterr().out
    assert cli_status([*command[:2], "--help"]) == 0
    assert "config keys" not in capsys.readouterr().out  # why the advice cannot be the command's own --help


def test_data_maps_into_a_users_empty_setgid_half_is_of_its_group_throughout(tmp_path: Path,
        cli_status: Callable[[list[str]], int]) -> None:
    group = _other_group()
    images, out = _pairs(tmp_path / "pairs"), tmp_path / "m1"
    out.mkdir()
    _shared_folder(out / "map", group)
    assert cli_status(["data", "maps", "--input", str(images), "--out", str(out)]) == 0
    assert (out / "map").stat().st_gid == group and (out / "map").stat().st_mode & stat.S_ISGID
    assert {p.stat().st_gid for p in (out / "map").rglob("*")} == {group}
    assert {p.stat().st_gid for p in (out / "photo").rglob("*")} == {os.getegid()}


@pytest.mark.parametrize(("extra", "says"), [
    (["--preset", "drit", "--model.n_blocks", "2"], "model.n_blocks 2 has no effect"),
    (["--preset", "cyclegan", "--method.lambda_a", "0", "--method.lambda_b", "0", "--method.lambda_identity", "0.3"],
     "method.lambda_identity 0.3 has no effect"),
    (["--train.steps", "5", "--train.epochs", "3"], "train.epochs 3 has no effect"),
])
def test_train_help_of_a_new_run_refuses_what_train_refuses(capsys: pytest.CaptureFixture, extra: list[str],
                                                            says: str, cli_status: Callable[[list[str]], int]) -> None:
    """`train --help --preset drit --model.n_blocks 2` listed the options with n_blocks's value in force, though
    `train` with the same arguments refuses it (the help of a resume refuses what the resume refuses, round 26)."""
    assert cli_status(["train", "--help", *extra]) == 2
    captured = capsys.readouterr()
    assert says in captured.err and "config keys" not in captured.out


def test_an_output_folder_that_is_a_dangling_link_says_so_and_the_advice_works(
        tmp_path: Path, capsys: pytest.CaptureFixture, tiny_runs: dict[str, Path], tiny_data: Path,
        cli_status: Callable[[list[str]], int]) -> None:
    """`data maps --out LINK` (or `translate --output LINK`) where LINK points to a folder not made yet: "LINK: File
    exists; check the path, its permissions and the free space", and translate's writer printed an AttributeError
    traceback from its `__del__` after it."""
    images = _pairs(tmp_path / "pairs")
    for n, argv in enumerate((["data", "maps", "--input", str(images), "--out"],
                              ["translate", "--checkpoint", str(tiny_runs["cut"]), "--input",
                               str(tiny_data / "testA"), "--output"])):
        out, target = tmp_path / f"link{n}", tmp_path / f"not-yet{n}"
        out.symlink_to(target.name)
        assert cli_status([*argv, str(out)]) == 2
        err = capsys.readouterr().err
        assert f"{out} is a symbolic link to {target.name}, which does not exist" in err
        assert "permissions" not in err and "Traceback" not in err and not target.exists()
        assert f" {target}), which srunit makes" in err
        assert cli_status([*argv, str(target)]) == 0  # the advice, followed as printed
        assert any(target.iterdir())


def test_a_folder_writer_whose_folder_cannot_be_made_raises_its_error_alone(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The half-made writer's `__del__` raised AttributeError ('_fd'), which Python printed as a traceback."""
    import gc
    import sys

    from srunit._atomic import FolderWriter

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        FolderWriter(tmp_path / "file" / "out")
    gc.collect()
    assert unraisable == []


def test_a_link_to_nothing_above_an_output_is_named_with_mkdir_advice_that_works(
        tmp_path: Path, capsys: pytest.CaptureFixture, tiny_runs: dict[str, Path], tiny_data: Path,
        cli_status: Callable[[list[str]], int]) -> None:
    """`train --train.runs_dir LINK` (and `report --out LINK/r.html`) where LINK points to a folder not made yet:
    "LINK: File exists; check the path, its permissions and the free space" (train: after loading the data)."""
    link, target = tmp_path / "runs", tmp_path / "elsewhere"
    link.symlink_to(target.name)
    argv = ["train", "--preset", "cut", "--data.root", str(tiny_data), "--train.runs_dir", str(link),
            "--train.name", "x", "--dry-run"]
    assert cli_status(argv) == 2
    err = capsys.readouterr().err
    assert f"{link} is a symbolic link to elsewhere, which does not exist" in err and "permissions" not in err
    assert f"mkdir -p {target}" in err
    report = ["report", str(tiny_runs["cut"]), "--out", str(link / "r.html")]
    assert cli_status(report) == 2
    assert f"mkdir -p {target}" in capsys.readouterr().err
    target.mkdir()  # the advice, followed as printed
    assert cli_status(report) == 0 and (target / "r.html").is_file()
