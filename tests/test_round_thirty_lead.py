"""Round thirty (lead): what the confirmation probe of round twenty-nine (B) left."""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from srunit.config import load_config
from srunit.errors import ConfigError


def test_an_existing_output_whose_lock_or_temporary_name_would_be_too_long_is_refused_before_any_work(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """An existing empty folder of 250 bytes as `translate --output`, and an existing file of 245 bytes as `export
    --output ... --overwrite`, failed at the lock or temporary with "File name too long; check the path, its
    permissions and the free space": the name check covered only names not made yet."""
    folder = tmp_path / ("q" * 250)
    folder.mkdir()
    assert cli_status(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(tiny_data / "testA"),
                    "--output", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "is 250 bytes long; this file system takes names of 255 bytes, and srunit keeps a lock file beside it " \
           "under a name 6 bytes longer" in err and err.count("\n") == 1
    assert list(folder.iterdir()) == []
    existing = tmp_path / ("e" * 240 + ".onnx")
    existing.write_text("the user's")
    assert cli_status(["export", str(tiny_runs["cut"]), "--output", str(existing), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "is 245 bytes long; this file system takes names of 255 bytes, and srunit writes through a temporary " \
           "name" in err and err.count("\n") == 1
    assert existing.read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([folder.name, existing.name])


def test_a_file_read_through_a_link_into_a_path_below_a_file_names_that_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`train --preset c.yaml` where `c.yaml -> afile/x.yaml` was told to "give a YAML file saved as UTF-8"; the file
    in the way is named now, and so is the target of a config link to nothing."""
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("not a folder")
    Path("c.yaml").symlink_to("afile/x.yaml")
    Path("d.yaml").symlink_to("nowhere.yaml")
    assert cli_status(["train", "--preset", "./c.yaml", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"lies below {tmp_path / 'afile'}, which is a file, not a folder; give the path of a file" in err
    assert "UTF-8" not in err and err.count("\n") == 1
    with pytest.raises(ConfigError, match="is a symbolic link to nowhere.yaml, which does not exist"):
        load_config("./d.yaml")
    assert os.readlink("c.yaml") == "afile/x.yaml" and Path("afile").read_text() == "not a folder"


def test_the_reports_ground_truth_row_shows_its_paired_scores_as_table_md_does(
        tmp_path: Path, report_dataset: Path, make_report_bench: Callable[[Path, Path], Path]) -> None:
    """The ground truth scored against itself is Dist 0 and Acc(delta) 100 %: table.md showed 0.00 and 100.00, the
    report page of the same bench showed a dash in each of those cells."""
    import re

    from srunit.report import build_report
    from srunit.synthscapes.summary import format_table

    bench = make_report_bench(tmp_path / "bench", report_dataset)
    page = build_report([bench], tmp_path / "r.html", num_images=0).read_text()
    head = re.search(r"<tr>(<th>method</th>.*?)</tr>", page, re.S).group(1)
    row = re.search(r"<tr><td><em>segmenter on ground-truth renderings</em></td>(.*?)</tr>", page, re.S).group(1)
    cells = dict(zip(re.findall(r"<th>(.*?)</th>", head)[3:], re.findall(r"<td>(.*?)</td>", row)[2:]))
    assert cells == {"pixAcc %": "95.00", "clsAcc %": "90.00", "mIoU %": "85.00", "Dist": "0.00",
                     "Acc(30) %": "100.00", "Acc(50) %": "100.00"}
    summary = json.loads((bench / "summary.json").read_text())
    assert "| ground truth (segmenter upper bound) | - | - | 95.00 | 90.00 | 85.00 | 0.00 | 100.00 | 100.00 |" \
        in format_table(summary)


@pytest.mark.parametrize(("argv", "prog"), [
    (["bench", "loader", "--batches", "-1"], "srunit bench loader"),
    (["bench", "speed", "--model.ngf", "-3"], "srunit bench speed"),
    (["data", "synthscapes", "--out", "x", "--num-pool", "4"], "srunit data synthscapes"),
])
def test_an_error_names_the_subcommand_typed_as_argparses_own_refusals_do(
        argv: list[str], prog: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`srunit bench speed --model.ngf -3` said `srunit bench: error: ...` where argparse's refusal of the same
    command says `srunit bench speed: error: ...`."""
    monkeypatch.chdir(tmp_path)
    assert cli_status(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: ") and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("space", "overrides", "says"), [
    ({"model.ngf": {"low": 0, "high": 8}}, (), "the search space: entry 'model.ngf' cannot take 0"),
    ({"train.seed": {"choices": [1, 2]}}, (), "tune data sets train.seed of each run itself"),
    ({"method.lambda_nce": {"low": 0.5, "high": 2.0}}, ("method.lambda_nce=3",),
     "--method.lambda_nce: the search space tunes method.lambda_nce"),
    ({"method.lambda_nce": {"low": 0.5, "high": 2.0}}, ("model.n_layers_d=2",), None),
])
def test_run_tune_from_python_checks_the_space_and_overrides_before_the_tuning_folder_is_made(
        space: dict, overrides: tuple[str, ...], says: str | None, tmp_path: Path) -> None:
    """`run_tune` called from Python with a space entry its networks refuse (or one the study sets itself, or an
    override the space replaces) made the tuning folder and failed in the first trial, as a traceback in Optuna's
    log: only `srunit tune` checked the space."""
    from srunit.tune.study import TuneSettings, run_tune
    from srunit.tune.targets import FolderTarget

    for folder in ("data", "val", "labels"):
        (tmp_path / folder).mkdir()
    target = FolderTarget(str(tmp_path / "data"), str(tmp_path / "val"), str(tmp_path / "labels"), "seg.onnx", 3)
    settings = TuneSettings(preset="cut", target=target.to_dict(), space=space, study_name="s", trials=1,
                            overrides=overrides)
    with pytest.raises(ConfigError) as refused:
        run_tune(tmp_path / "out", settings)
    if says is None:  # a valid study gets as far as its target's own check: the segmenter file is missing
        assert "seg.onnx" in str(refused.value)
    else:
        assert says in str(refused.value), refused.value
    assert not (tmp_path / "out").exists()


def test_tune_data_takes_the_synthscapes_class_names_as_eval_seg_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`tune data --classes 8 --class-names synthscapes` was refused as "--class-names gives 1 names but --classes
    is 8": only `eval seg` knew the word, and `tune data --help` did not offer it."""
    from srunit.eval.run_records import resolve_class_names

    assert resolve_class_names("synthscapes", 8) == ["sky", "building", "vegetation", "road", "sidewalk", "car",
                                                     "pole", "person"]
    for folder in ("data/trainA", "data/trainB", "val", "labels"):
        (tmp_path / folder).mkdir(parents=True)
    assert cli_status(["tune", "data", "--preset", "cut", "--data", str(tmp_path / "data"), "--val-images",
                       str(tmp_path / "val"), "--val-labels", str(tmp_path / "labels"), "--segmenter",
                       str(tmp_path / "nope.onnx"), "--classes", "8", "--class-names", "synthscapes", "--out",
                       str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "nope.onnx" in err and "--class-names" not in err, err
    assert not (tmp_path / "out").exists()
    assert cli_status(["tune", "data", "--help"]) == 0
    assert "synthscapes (its 8 classes, needs --classes 8)" in " ".join(capsys.readouterr().out.split())


def test_the_frechet_distance_of_a_set_to_itself_is_zero_not_a_float_error_below_it() -> None:
    """Two copies of one folder printed "FID -0.0000": with 10 images of 32 features (singular covariances) the
    matrix square root's float error gave about -1e-6."""
    import numpy as np

    from srunit.eval.fid import frechet_distance

    for seed in range(5):
        features = np.random.default_rng(seed).normal(size=(10, 32))
        mean, cov = features.mean(0), np.cov(features, rowvar=False)
        assert frechet_distance(mean, cov, mean, cov) == 0.0
        assert f"{frechet_distance(mean, cov, mean, cov):.4f}" == "0.0000"
    eye = np.eye(2)
    assert frechet_distance([0.0, 0.0], eye, [3.0, 4.0], eye) == pytest.approx(25.0)  # |mu1 - mu2|^2, equal covs


def test_fid_of_two_copies_of_a_folder_is_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`eval fid --real a --fake copy-of-a` printed "FID -0.0008" (torchmetrics' float error, 6 images of 32
    features)."""
    import shutil

    import numpy as np
    import torch
    from PIL import Image

    from srunit.eval.fid import fid_kid

    rng = np.random.default_rng(0)
    (tmp_path / "a").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "a" / f"{i}.png")
    shutil.copytree(tmp_path / "a", tmp_path / "b")

    class Features(torch.nn.Module):
        num_features = 32

        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.randn(16 * 16 * 3, 32, generator=torch.Generator().manual_seed(0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1).float() @ self.weight / 100

    terminal = _Terminal()  # and a progress bar of the images read, on a terminal
    monkeypatch.setattr(sys, "stderr", terminal)
    scores = fid_kid(tmp_path / "a", tmp_path / "b", feature=Features(), kid_subsets=2, kid_subset_size=3,
                     show_progress=True)
    assert scores.fid == 0.0 and f"{scores.fid:.4f}" == "0.0000"
    assert "0/12 [00:00<?, ?image/s]" in terminal.getvalue()


def test_pixels_segmented_outside_the_classes_are_not_called_not_rendered_for_any_segmenter(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`eval seg` with any segmenter that gives ids outside its --classes printed "not rendered 4.00%", the
    SynthScapes scorer's word for its extra output, which a Cityscapes segmenter has not."""
    from srunit.cli.eval import _print_flips

    _print_flips({"flip_rate": 0.1, "unrendered_rate": 0.04, "flip_to": None, "per_class": [
        {"name": "road", "flip_rate": 0.1, "top_destination": "car", "top_destination_rate": 0.1}]})
    out = capsys.readouterr().out
    assert out.startswith("flips: 10.00% of the labelled pixels segmented as another class; 4.00% segmented as "
                          "none of the classes (the SynthScapes scorer's 'not rendered')"), out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_eval_shows_a_progress_bar_of_the_images_scored_on_a_terminal(
        tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        cli_status: Callable[[list[str]], int]) -> None:
    """`eval seg`, `eval paired` and `eval fid` printed nothing until their last image was scored: 500 Cityscapes
    images at 2048x1024 looked like a hang for minutes."""
    import shutil

    import numpy as np
    from PIL import Image

    from srunit.eval.paired import paired_scores
    from srunit.eval.scoring import score_segmentation

    images = tmp_path / "images"
    shutil.copytree(tiny_data / "testA", images)
    labels = tmp_path / "labels"
    labels.mkdir()
    count = 0
    for path in sorted(images.iterdir()):
        with Image.open(path) as image:
            width, height = image.size
        Image.fromarray(np.zeros((height, width), np.uint8)).save(labels / f"{path.stem}.png")
        count += 1
    segment = Path(tmp_path / "seg_module.py")
    segment.write_text("import numpy as np\n\ndef segment(image):\n    return np.zeros(image.shape[:2], np.int64)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    zeros = importlib.import_module("seg_module").segment  # a module of tmp_path: no dependency of the package

    for show in (True, False):
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        assert score_segmentation(images, labels, zeros, 2, show_progress=show).num_images == count
        assert paired_scores(images, images.parent / "images", show_progress=show).num_images == count
        shown = terminal.getvalue()
        assert (f"0/{count} [00:00<?, ?image/s]" in shown) if show else shown == "", shown
    with pytest.raises(TypeError, match="show_progress"):
        score_segmentation(images, labels, zeros, 2, show_progress="no")  # type: ignore[arg-type]
    for argv in (["eval", "seg", "--images", str(images), "--labels", str(labels), "--segmenter",
                  "seg_module:segment", "--classes", "2"],
                 ["eval", "paired", "--pred", str(images), "--target", str(tiny_data / "testA")]):
        for extra, bar in (([], True), (["--no-progress"], False)):
            terminal = _Terminal()
            monkeypatch.setattr(sys, "stderr", terminal)
            assert cli_status([*argv, *extra]) == 0
            assert ("image/s]" in terminal.getvalue()) == bar, (argv, extra, terminal.getvalue())


def _copy_of(run: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "runs" / run.name
    shutil.copytree(run, copy, symlinks=True)
    (copy / "train.lock").unlink(missing_ok=True)
    return copy


def test_a_method_model_or_data_value_edited_in_a_runs_config_is_refused_on_resume_naming_it(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`sed -i 's/lambda_nce: 1.0/lambda_nce: 5.0/' RUN/config.yaml; srunit train --resume RUN` trained the rest of
    the run with lambda_nce 5 (NCE logged 25.2 for 5.04), without a word, and recorded nothing, while `--resume RUN
    --method.lambda_nce 2` is refused; so was an edit of data.flip."""
    from srunit.engine.trainer import resume_config
    from srunit.errors import CheckpointError

    run = _copy_of(tiny_runs["cut"], tmp_path)
    config = run / "config.yaml"
    written = config.read_text()
    for old, new, key in (("lambda_nce: 1.0", "lambda_nce: 5.0", "method.lambda_nce 5.0 where srunit wrote 1.0"),
                          ("flip: true", "flip: false", "data.flip False where srunit wrote True"),
                          ("ngf: 4", "ngf: 8", "model.ngf 8 where srunit wrote 4")):
        assert old in written
        config.write_text(written.replace(old, new))
        before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        with pytest.raises(CheckpointError, match=f"{config} was edited since `srunit train` wrote it") as refused:
            resume_config(run, [])
        assert key in str(refused.value), refused.value
        assert cli_status(["train", "--resume", str(run), "--train.steps", "9"]) == 2
        err = capsys.readouterr().err
        assert key in err and err.count("\n") == 1 and "Traceback" not in err, err
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    config.write_text(written)  # undone, as the message says: the resume takes it
    assert resume_config(run, [])[2] == {}


def test_a_train_value_edited_in_a_runs_config_is_a_change_the_resume_records(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """An extension made by editing train.steps in config.yaml was taken, and history.jsonl's line said "changed":
    {}; data.num_workers, which training.md says does not change a run, was refused on resume."""
    import yaml

    from srunit.engine.trainer import resume_config

    run = _copy_of(tiny_runs["cut"], tmp_path)
    steps = yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"]
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace(f"steps: {steps}\n", f"steps: {steps + 2}\n"))
    saved, config, changed = resume_config(run, ["data.num_workers=1"])
    assert changed == {"train.steps": [steps, steps + 2], "data.num_workers": [0, 1]}
    assert (saved.train.steps, config.train.steps, config.data.num_workers) == (steps, steps + 2, 1)


def test_a_run_of_a_plugin_loss_term_resumed_without_its_plugin_is_told_to_load_it(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """A run trained with a plugin's loss term (`SRUNIT_PLUGINS=total_variation ... --method.tv.weight 0.1`), resumed
    without the variable, was told its config.yaml "was changed since srunit train wrote it: undo the edit"; the
    advice, followed, removed the term and the run went on without it, without a word."""
    import yaml

    run = _copy_of(tiny_runs["cut"], tmp_path)
    data = yaml.safe_load((run / "config.yaml").read_text())
    data["method"]["tv_of_a_plugin"] = {"weight": 0.1}
    (run / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assert cli_status(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "holds the loss term section(s) method.tv_of_a_plugin, which no term or plugin registers here" in err
    assert "needs its module in $SRUNIT_PLUGINS as when the run was trained" in err and err.count("\n") == 1


def test_an_output_on_a_read_only_file_system_is_named_as_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """root on a read-only mount was told "the folder ... is not writable for this user" (root may write any folder
    of a writable file system; the advice to choose another path works either way)."""
    from types import SimpleNamespace

    from srunit._outputs import guard_output

    monkeypatch.setattr(os, "access", lambda path, mode: False)
    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_flag=os.ST_RDONLY))
    with pytest.raises(ConfigError, match=f"the folder {tmp_path} is on a read-only file system; choose another path"):
        guard_output(tmp_path / "out.json", "--json")
    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_flag=0))
    with pytest.raises(ConfigError, match="is not writable for this user; choose another path"):
        guard_output(tmp_path / "out.json", "--json")


def test_a_missing_input_file_is_not_called_a_missing_folder(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`translate --input un/missing.png` said "input folder un/missing.png does not exist"."""
    missing = tmp_path / "missing€.png"
    assert cli_status(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(missing), "--output",
                       str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"--input {missing} does not exist (neither an image file nor a folder is there)" in err
    assert "folder " + str(missing) not in err and not (tmp_path / "out").exists()


def test_a_users_oversized_file_is_not_called_one_srunit_did_not_write(tmp_path: Path) -> None:
    """A 17 MB --space file was refused as "it is not one srunit wrote": users write search spaces and configs."""
    from srunit._reading import read_text

    big = tmp_path / "space.yaml"
    big.write_bytes(b"#" * 2048)
    with pytest.raises(ConfigError) as refused:
        read_text(big, "--space", limit=1024, error=ConfigError, fix="give a search space YAML file")
    assert str(refused.value) == f"--space {big} is 2,048 bytes or more, more than the 1,024 such a file can hold; " \
                                 f"give a search space YAML file"


def test_a_class_name_holding_a_bidirectional_control_is_refused_as_a_run_name_is() -> None:
    """`--class-names 'road,car\\u202edaor'` was taken and printed in the eval table as other text than it is."""
    from srunit.eval.run_records import resolve_class_names

    with pytest.raises(ConfigError, match="class 1 a name holding U\\+202E"):
        resolve_class_names("road,car\u202edaor", 2)
    assert resolve_class_names("road,café", 2) == ["road", "café"]


def test_a_train_seed_or_name_edited_in_a_runs_config_is_named_as_an_edit_of_the_file(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`sed -i 's/seed: 0/seed: 5/' RUN/config.yaml; train --resume RUN` said "train.seed cannot change on --resume
    (...; recorded 0, given 5); leave it out": nothing was given on the command line, and deleting the line put the
    default in its place (refused again where the recorded value was not the default)."""
    import yaml

    from srunit.engine.trainer import resume_config
    from srunit.errors import CheckpointError

    run = _copy_of(tiny_runs["cut"], tmp_path)
    written = (run / "config.yaml").read_text()
    train = yaml.safe_load(written)["train"]
    for key, value in (("seed", 5), ("name", "other")):
        data = yaml.safe_load(written)
        data["train"][key] = value
        (run / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        with pytest.raises(CheckpointError, match=f"was edited since `srunit train` wrote it \\(train.{key} "
                                                  f"{value!r} where srunit wrote {train[key]!r};") as refused:
            resume_config(run, [])
        assert "put back the values srunit wrote" in str(refused.value) and "leave it out" not in str(refused.value)
    (run / "config.yaml").write_text(written)
    assert resume_config(run, [])[2] == {}


def test_a_yaml_time_in_a_text_option_is_refused_where_its_text_would_change(tmp_path: Path) -> None:
    """`train: {name: 2026-12-07T10:00:00Z}` trained into `runs/2026-12-07 10:00:00+00:00`, other text than the file
    says; a date alone stays as written (round twelve), and so does a quoted time."""
    import re

    preset = tmp_path / "n.yaml"
    for written, name in (("2026-12-07T10:00:00Z", None), ("2026-12-7t1:02:03.50+01:00", None),
                          ("2026-12-06", "2026-12-06"), ("'2026-12-07T10:00:00Z'", "2026-12-07T10:00:00Z")):
        preset.write_text(f"base: cut\ntrain:\n  name: {written}\n")
        if name is None:
            with pytest.raises(ConfigError, match=re.escape(f"train.name: {written} is a time in YAML, which "
                                                            f"train.name would take as the text '2026-12-0")):
                load_config(str(preset))
        else:
            assert load_config(str(preset)).train.name == name
