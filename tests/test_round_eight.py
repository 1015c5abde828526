"""Round eight, a confirmation probe of issue 24's classes: runs edited by hand between sessions, environment
variables read on the way to a tracker, the report's Python API, label maps with an EXIF orientation and length
options that cannot act. Each test reproduced a defect first."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.errors import CheckpointError, ConfigError

posix = pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "mkfifo"), reason="FIFOs, devices: POSIX")


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


def _copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    (copy / "train.lock").unlink(missing_ok=True)
    return copy


# ----------------------------------------------------------------------------- W&B's environment


@posix
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_netrc_that_is_a_fifo_or_a_device_is_refused_not_read(kind: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`train --train.loggers '[wandb]'` looks for W&B's key in $NETRC (else ~/.netrc) before the run folder is made.
    The netrc module opened it itself: a FIFO blocked the command for ever, /dev/zero never ended."""
    from srunit.engine.loggers import check_loggers

    netrc = tmp_path / "netrc"
    if kind == "fifo":
        os.mkfifo(netrc)
    else:
        netrc.symlink_to("/dev/zero")
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(netrc))
    with pytest.raises(ConfigError) as err:
        check_loggers(["wandb"])
    text = _one_line(err.value)
    assert f"the netrc file {netrc} is " in text and "not a regular file" in text and "WANDB_API_KEY" in text


def test_a_netrc_with_a_login_still_counts_as_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from srunit.engine.loggers import check_loggers

    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(netrc))
    check_loggers(["wandb"])  # a login: no error


def test_a_wandb_base_url_that_is_no_url_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """WANDB_BASE_URL=http://[::1 was a ValueError traceback from urllib ("Invalid IPv6 URL")."""
    from srunit.engine.loggers import check_loggers

    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://[::1")
    with pytest.raises(ConfigError, match=r"WANDB_BASE_URL 'http://\[::1' is not a URL") as err:
        check_loggers(["wandb"])
    _one_line(err.value)


# ----------------------------------------------------------------------------- runs edited by hand


def test_a_run_config_edited_with_an_unknown_key_names_the_file_on_resume(tiny_runs: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    """A config.yaml given a key no option has (or a method whose options differ) was refused as `unknown key
    method.distance`, naming no file: the user had not typed it."""
    from srunit.engine import Trainer

    run = _copy_run(tiny_runs["cut"], tmp_path)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("name: cut\n", "name: cyclegan\n", 1))
    with pytest.raises(CheckpointError) as err:
        Trainer.resume(run, show_progress=False)
    text = _one_line(err.value)
    assert text.startswith(f"{config} is not a valid run config (unknown key method.") and "undo the edit" in text


def test_a_run_config_whose_model_was_edited_is_one_line_naming_the_first_tensor(tiny_runs: dict[str, Path],
                                                                                tmp_path: Path) -> None:
    """`model.ngf` edited in config.yaml: the resume printed torch's message, one line for each of 40 tensors. (A
    run of this srunit is refused before, naming the key from run.json's record of the config; one of an older
    srunit, without that record, meets this check.)"""
    import json

    from srunit.engine import Trainer

    run = _copy_run(tiny_runs["cut"], tmp_path)
    record = json.loads((run / "run.json").read_text())
    del record["config"]
    (run / "run.json").write_text(json.dumps(record))
    config = run / "config.yaml"
    text = config.read_text()
    assert "ngf: 4\n" in text
    config.write_text(text.replace("ngf: 4\n", "ngf: 8\n", 1))
    with pytest.raises(CheckpointError) as err:
        Trainer.resume(run, show_progress=False)
    message = _one_line(err.value)
    assert "does not match the network built from the run config: tensor " in message
    assert "in the file, [8, " in message and "more tensor(s) differ" in message and "config.yaml" in message


@pytest.mark.parametrize("drop", ["section", "steps"])
def test_a_run_config_that_lost_its_train_section_or_length_is_refused_on_resume(drop: str, tiny_runs: dict[str, Path],
                                                                                tmp_path: Path) -> None:
    """A config.yaml whose `train:` section (or `steps:` line) was deleted resumed on the defaults without a word:
    a run of 1 step went on to 3200 (train.epochs 200 + 200), with another seed and learning rate."""
    import yaml

    from srunit.engine import Trainer

    run = _copy_run(tiny_runs["cut"], tmp_path)
    config = run / "config.yaml"
    data = yaml.safe_load(config.read_text())
    if drop == "section":
        del data["train"]
    else:
        del data["train"]["steps"]
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(CheckpointError) as err:
        Trainer.resume(run, show_progress=False)
    lacks = "train" if drop == "section" else "train.steps"
    assert _one_line(err.value).startswith(f"{config} lacks {lacks}, which `srunit train` writes")


def test_a_latest_link_to_a_missing_step_gives_the_command_that_mends_it(tiny_runs: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    """`checkpoints/latest` pointing at a step folder that is gone said "checkpoint path RUN/checkpoints/latest does
    not exist; give a run folder", while the user had given one."""
    from srunit.engine import Trainer

    run = _copy_run(tiny_runs["cut"], tmp_path)
    latest = run / "checkpoints" / "latest"
    step = os.readlink(latest)
    latest.unlink()
    latest.symlink_to("step_00000099")
    with pytest.raises(CheckpointError) as err:
        Trainer.resume(run, show_progress=False)
    assert _one_line(err.value) == (f"{latest} is a link to step_00000099, which does not exist; point it at a "
                                    f"checkpoint that exists: ln -sfn {Path(step).name} {latest}")


# ----------------------------------------------------------------------------- the Python API and options


def test_build_report_given_one_path_as_a_string_names_the_argument(tiny_runs: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    """`build_report("runs/cut", "r.html")` iterated the string: "--out r.html is inside PATH /"."""
    from srunit.report.page import build_report

    with pytest.raises(TypeError, match=r"build_report: paths must be a list .* got str .*wrap it in a list"):
        build_report(str(tiny_runs["cut"]), tmp_path / "r.html")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got PosixPath|got WindowsPath"):
        build_report(tiny_runs["cut"], tmp_path / "r.html")  # type: ignore[arg-type]
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(("given", "says"), [
    (["--train.steps", "2", "--train.epochs", "3"], "train.epochs 3 has no effect: train.steps 2 sets the length"),
    (["--train.steps", "2", "--train.epochs_decay", "3"], "train.epochs_decay 3 has no effect"),
    (["--train.steps", "0", "--train.decay_fraction", "0.5"], "train.decay_fraction 0.5 has no effect"),
])
def test_a_new_run_refuses_length_options_that_cannot_act(given: list[str], says: str, tiny_data: Path,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`train --train.steps 2 --train.epochs 3` trained 2 steps without a word (a resume refused the same)."""
    from srunit.cli.main import main

    assert main(["train", "--preset", "cut", "--data.root", str(tiny_data), "--train.runs_dir", str(tmp_path),
                 *given, "--dry-run"]) == 2
    assert says in capsys.readouterr().err


def test_a_new_run_takes_a_steps_budget_alone(tiny_data: Path, tmp_path: Path) -> None:
    """The relative of the refusals above that must still run (small networks: the dry run builds them)."""
    from srunit.cli.main import main

    assert main(["train", "--preset", "cut", "--data.root", str(tiny_data), "--train.runs_dir", str(tmp_path),
                 "--train.steps", "2", "--model.ngf", "8", "--model.ndf", "8", "--model.n_blocks", "1",
                 "--dry-run"]) == 0


# ----------------------------------------------------------------------------- label maps


def test_a_label_map_is_turned_by_its_exif_orientation_as_its_image_is(tmp_path: Path) -> None:
    """A label map tagged with an EXIF orientation (as its photo) was read as stored while the photo was turned:
    the ids lay on their side under the image, and square images were scored that way without a word."""
    from srunit.data.images import load_rgb
    from srunit.data.labels import load_label_map

    ids = np.arange(12, dtype=np.uint8).reshape(3, 4)
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to view
    Image.fromarray(ids).save(tmp_path / "label.png", exif=exif)
    Image.fromarray(np.stack([ids] * 3, axis=2)).save(tmp_path / "photo.png", exif=exif)
    labels = load_label_map(tmp_path / "label.png")
    photo = np.asarray(load_rgb(tmp_path / "photo.png"))[..., 0]
    assert labels.shape == photo.shape == (4, 3)
    assert (labels == photo).all()
    Image.fromarray(ids).save(tmp_path / "plain.png")
    assert (load_label_map(tmp_path / "plain.png") == ids).all()
