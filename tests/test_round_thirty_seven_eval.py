"""Round thirty-seven (eval): the evaluation and data side defects of probe (J) (eval, report, data, tune)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.errors import ConfigError, DataError


def _images(folder: Path, count: int, value: int = 40, size: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(np.full((size, size, 3), value + i, np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def _labels(folder: Path, count: int, size: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(np.full((size, size), i % 2, np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def _through_link(outer_option: str, outer: Path, inner_option: str, inner: Path, link: Path) -> str:
    return (f"{outer_option} {outer} holds {inner_option} {inner} (through the link {link}, which points to "
            f"{os.path.realpath(link)}")


# ----------------------------------------------------------------------------- D1, D2, D3: a link into the other folder

@pytest.mark.parametrize("pred_through_link", [False, True])
def test_eval_paired_refuses_a_target_folder_holding_a_link_to_the_predictions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
        pred_through_link: bool) -> None:
    """`eval paired --pred p --target t` with t/predlink -> p: the nesting check compared paths only, the scan of t
    followed the link, and "4 target file(s) have no prediction partner ...: t/predlink/0000.png, ...; remove these"
    advised deleting the translations through the link (probe (J), D1). Now refused, naming the link; nothing is
    advised for deletion and p is untouched."""
    pred = _images(tmp_path / "p", 4)
    target = _images(tmp_path / "t", 4, value=90)
    link = target / "predlink"
    link.symlink_to(pred, target_is_directory=True)
    given = link if pred_through_link else pred
    assert cli_status(["eval", "paired", "--pred", str(given), "--target", str(target), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert _through_link("--target", target, "--pred", given, link) in err
    assert "remove these" not in err and len(list(pred.iterdir())) == 4


def test_paired_scores_refuses_a_target_folder_holding_a_link_to_the_predictions(tmp_path: Path) -> None:
    """`paired_scores('p', 't')` with t/predlink -> p: "4 prediction file(s) have no target partner ... remove these"
    (probe (J), D1, the API). Now the DataError of the nesting check, naming the link."""
    from srunit.eval import paired_scores

    pred = _images(tmp_path / "p", 4)
    target = _images(tmp_path / "t", 4, value=90)
    (target / "predlink").symlink_to(pred, target_is_directory=True)
    with pytest.raises(DataError) as caught:
        paired_scores(pred, target)
    assert _through_link("--target", target, "--pred", pred, target / "predlink") in str(caught.value)


class _MeanColour(torch.nn.Module):
    num_features = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().mean((2, 3))


@pytest.mark.parametrize("link_to_parent", [False, True])
def test_fid_kid_refuses_a_real_folder_holding_a_link_to_the_fakes(tmp_path: Path, link_to_parent: bool) -> None:
    """`fid_kid('fr', 'p')` with fr/fake -> p gave `num_real=8` of 4 real images: the translations were counted as
    real images, scores silently wrong (probe (J), D2). Now refused naming the link; also a link to a folder that
    holds p (the scan reaches p below it)."""
    from srunit.eval import fid_kid

    fake = _images(tmp_path / "work" / "p", 4)
    real = _images(tmp_path / "fr", 4, value=90)
    link = real / "fake"
    link.symlink_to(fake.parent if link_to_parent else fake, target_is_directory=True)
    with pytest.raises(DataError) as caught:
        fid_kid(real, fake, feature=_MeanColour(), kid_subset_size=2, kid_subsets=2)
    assert _through_link("--real", real, "--fake", fake, link) in str(caught.value)


def test_fid_kid_still_scores_a_folder_with_links_elsewhere_and_a_hidden_link_to_the_fakes(tmp_path: Path) -> None:
    """What the scan does not read is not refused: a hidden link to the fakes (hidden folders are passed over) and a
    link to a third folder leave the scores as they were: 4 + 2 real images, 4 fakes."""
    from srunit.eval import fid_kid

    fake = _images(tmp_path / "p", 4)
    real = _images(tmp_path / "fr", 4, value=90)
    (real / ".hidden").symlink_to(fake, target_is_directory=True)
    (real / "more").symlink_to(_images(tmp_path / "other", 2, value=150), target_is_directory=True)
    scores = fid_kid(real, fake, feature=_MeanColour(), kid_subset_size=2, kid_subsets=2)
    assert (scores.num_real, scores.num_fake) == (6, 4)


@pytest.mark.parametrize("api", [False, True])
def test_data_split_refuses_a_domain_folder_holding_a_link_to_the_other(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int], api: bool) -> None:
    """`data split --images-a dA --images-b dB` with dA/blink -> dB: "8 --images-a file(s) have no --labels partner
    ...: dA/blink/0000.png, ...; remove these": domain B's images, through the link (probe (J), D3). Now refused by
    the shared check naming the link, before anything is written; dB is untouched."""
    a = _images(tmp_path / "dA", 4)
    b = _images(tmp_path / "dB", 4, value=140)
    labels = _labels(tmp_path / "dL", 4)
    (a / "blink").symlink_to(b, target_is_directory=True)
    expected = _through_link("--images-a", a, "--images-b", b, a / "blink")
    if api:
        from srunit.datasets.split import split_folders

        with pytest.raises(ConfigError) as caught:
            split_folders(tmp_path / "o", images_a=a, images_b=b, labels=labels, classes=2)
        assert expected in str(caught.value)
    else:
        assert cli_status(["data", "split", "--images-a", str(a), "--images-b", str(b), "--labels", str(labels),
                           "--classes", "2", "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert expected in err and "remove these" not in err
    assert not (tmp_path / "o").exists() and len(list(b.iterdir())) == 4


# ----------------------------------------------------------------------------- D4, D5, D6: predicted=

def _zeros(image: np.ndarray) -> np.ndarray:
    return np.zeros(image.shape[:2], dtype=np.int64)


def test_score_segmentation_refuses_predicted_inside_a_run_folder(tmp_path: Path) -> None:
    """`score_segmentation('p', 'lab2', seg, 8, predicted='runs/r1/checkpoints')` wrote 0000.png... beside `latest`
    in the run's checkpoints, where every output of a command is refused (probe (J), D4). Now the same refusal, naming
    the argument; nothing is written."""
    from srunit.eval import score_segmentation

    run = tmp_path / "runs" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("method: {name: cut}\n")
    images, labels = _images(tmp_path / "p", 2), _labels(tmp_path / "lab", 2)
    with pytest.raises(DataError) as caught:
        score_segmentation(images, labels, _zeros, 8, predicted=run / "checkpoints")
    assert str(caught.value) == (
        f"score_segmentation: predicted {run / 'checkpoints'} is inside the run folder {run.resolve()}, whose files "
        f"srunit writes only through train, eval --run and report; choose an output outside it (nothing was written)")
    assert list((run / "checkpoints").iterdir()) == []


@pytest.mark.parametrize("domain", ["trainA", "testLabels"])
def test_score_segmentation_refuses_predicted_inside_a_data_sets_domain_folder(tmp_path: Path, domain: str) -> None:
    """`predicted='ss/trainA/pred'` wrote grey class-id maps among the data set's training images, which the next
    `train --data.root ss` read as domain A (probe (J), D5). Now the data commands' refusal (one shared check)."""
    from srunit.eval import score_segmentation

    ss = tmp_path / "ss"
    for name in ("trainA", "trainB", domain):
        (ss / name).mkdir(parents=True, exist_ok=True)
    images, labels = _images(tmp_path / "p", 2), _labels(tmp_path / "lab", 2)
    with pytest.raises(ConfigError) as caught:
        score_segmentation(images, labels, _zeros, 8, predicted=ss / domain / "pred")
    real = ss.resolve()
    assert str(caught.value).startswith(
        f"score_segmentation: predicted {ss / domain / 'pred'} lies inside {real / domain}, the {domain} folder of "
        f"the data set {real}, whose images are read recursively")
    assert list((ss / domain).iterdir()) == []


@pytest.mark.parametrize("device", [False, True])
def test_score_segmentation_refuses_a_file_as_predicted(tmp_path: Path, device: bool) -> None:
    """`predicted='afile'` (or /dev/null) gave a raw `FileExistsError: [Errno 17] File exists: 'afile'` after every
    check had passed (probe (J), D6). Now one line naming the argument; the file is untouched."""
    from srunit.eval import score_segmentation

    afile = Path(os.devnull) if device else tmp_path / "afile"
    if not device:
        afile.write_text("x")
    images, labels = _images(tmp_path / "p", 2), _labels(tmp_path / "lab", 2)
    with pytest.raises(ConfigError) as caught:
        score_segmentation(images, labels, _zeros, 8, predicted=afile)
    assert str(caught.value) == f"score_segmentation: predicted {afile} is a file; give a folder (new or empty) to " \
                                f"write into"
    assert device or afile.read_text() == "x"


# ----------------------------------------------------------------------------- D11, D12: tune data's other outputs

def _tune_data(tiny_data: Path, out: Path, *extra: str) -> list[str]:
    return ["tune", "data", "--preset", "cut", "--data", str(tiny_data), "--val-images", str(tiny_data / "testA"),
            "--val-labels", str(tiny_data / "testLabels"), "--classes", "8", "--trials", "1", "--out", str(out),
            "--no-progress", "--segmenter", "seg.onnx", *extra]


def _a_run(folder: Path) -> Path:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text("method: {name: cut}\n")
    return folder


@pytest.mark.parametrize("where", ["testA", "trainB"])
def test_tune_data_refuses_records_among_its_inputs(
        tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
        where: str) -> None:
    """`tune data --records val/img/rec` wrote rec/trials/*.json among the validation images, and the next run warned
    of `val/img/rec/trials/cut-....json` passed over; `--records ss/trainB/rec` among the training images (probe (J),
    D11). Now refused as --out is: `... is inside --data ...: srunit never writes over or among what a command
    reads`; nothing is made there."""
    before = sorted(p.name for p in (tiny_data / where).iterdir())
    records = tiny_data / where / "rec"
    assert cli_status(_tune_data(tiny_data, tmp_path / "tu", "--records", str(records))) == 2
    err = capsys.readouterr().err
    assert f"--records {records} is inside --data {tiny_data}: srunit never writes over or among what a command " \
           f"reads; choose an output outside it (nothing was written)" in err
    assert sorted(p.name for p in (tiny_data / where).iterdir()) == before and not (tmp_path / "tu").exists()


@pytest.mark.parametrize("option", ["--records", "--storage"])
def test_tune_data_refuses_records_or_a_storage_in_a_run_folder(
        tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
        option: str) -> None:
    """`tune data --storage sqlite:////RUN/x.db` wrote the study database into another run's folder, `--records
    RUN/rec` its records (probe (J), D12). Now the run folder rule every output gets; RUN is as it was."""
    run = _a_run(tmp_path / "runs" / "r1")
    target = run / ("rec" if option == "--records" else "x.db")
    value = str(target) if option == "--records" else f"sqlite:///{target}"
    assert cli_status(_tune_data(tiny_data, tmp_path / "tu", option, value)) == 2
    err = capsys.readouterr().err
    assert f"{option} {target} is inside the run folder {run.resolve()}, whose files srunit writes only through " \
           f"train, eval --run and report" in err
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.yaml"]


def test_tune_data_refuses_a_storage_among_its_inputs(
        tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`--storage sqlite:///VAL_IMAGES/x.db` was written among the validation images (probe (J), D12, an input)."""
    db = tiny_data / "testA" / "x.db"
    assert cli_status(_tune_data(tiny_data, tmp_path / "tu", "--storage", f"sqlite:///{db}")) == 2
    assert f"--storage {db} is inside --data {tiny_data}: srunit never writes" in capsys.readouterr().err
    assert not db.exists()


def test_sqlite_file_names_the_database_of_a_storage_url() -> None:
    from srunit.tune.study import sqlite_file

    assert sqlite_file("sqlite:////abs/x.db") == "/abs/x.db" and sqlite_file("sqlite:///rel.db?timeout=3") == "rel.db"
    assert sqlite_file("sqlite:///:memory:") is None and sqlite_file("postgresql://h/db") is None


# ----------------------------------------------------------------------------- D7, D8, D9, D13, D14: report

def _edited_run(make_report_run: Callable[..., Path], folder: Path, edit: Callable[[dict], None],
                data: Path | None = None) -> Path:
    run = make_report_run(folder, "cut", label="cut / unmatched / seed 0", data=data)
    scores = json.loads((run / "eval" / "scores.json").read_text())
    edit(scores)
    (run / "eval" / "scores.json").write_text(json.dumps(scores))
    return run


def _not_read(page: str) -> str:
    return page.split("<h2>Not read</h2>", 1)[1] if "<h2>Not read</h2>" in page else ""


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="a folder whose walk fails: /dev with its /dev/fd")
def test_the_report_names_an_image_folder_of_a_record_that_cannot_be_walked(
        make_report_run: Callable[..., Path], report_dataset: Path, tmp_path: Path) -> None:
    """A forged `images.source: "/dev"` in eval/scores.json failed the whole report with `/dev/fd/7: No such file or
    directory; check the path ...`, naming neither the record nor the field (probe (J), D7). Now the record's field is
    named under "Not read" and the page is written."""
    from srunit.report import build_report

    run = _edited_run(make_report_run, tmp_path / "run", lambda s: s["images"].update(source="/dev"),
                      data=report_dataset)
    out = build_report([run], tmp_path / "r.html", num_images=2)
    not_read = _not_read(out.read_text(encoding="utf-8"))
    assert f"{run / 'eval' / 'scores.json'}: images.source /dev cannot be read (" in not_read, not_read


@pytest.mark.parametrize("matrix", [
    [[1e308] * 4] * 3,  # shares far past 1: bars past 100 %, numpy's overflow warnings
    [[0.5, 0.5, float("nan"), 0.0]] * 3,
    [[-0.5, 1.5, 0.0, 0.0]] * 3,
    [[1.0], [1.0, 2.0]],  # ragged: the section vanished without a word
    [[0.5, 0.5, 0.0]] * 3,  # N x N, not N x (N + 1)
    "x",
])
def test_a_flip_matrix_that_is_not_one_is_named_under_not_read(
        make_report_run: Callable[..., Path], tmp_path: Path, recwarn: pytest.WarningsRecorder, matrix: object) -> None:
    """`segmentation.flips.matrix` of 1e308 (or NaN, or negative) shares was drawn as read, with numpy's overflow
    warnings (probe (J), D8); one of the wrong shape, or a string, made the Semantic flips section vanish without a
    word (D9). Now each is named under "Not read" and nothing is drawn from it."""
    from srunit.report import build_report

    good = [[0.9, 0.05, 0.05, 0.0], [0.1, 0.8, 0.1, 0.0], [None, None, None, None]]

    def edit(scores: dict) -> None:
        scores["segmentation"]["flips"] = {"flip_rate": 0.1, "matrix": matrix}

    run = _edited_run(make_report_run, tmp_path / "run", edit)
    page = build_report([run], tmp_path / "r.html", num_images=0).read_text(encoding="utf-8")
    assert "segmentation.flips.matrix is not a list of N rows of N + 1 shares from 0 to 1 or null" in _not_read(page)
    assert "Semantic flips" not in page
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    # the same run with a matrix as `srunit eval` writes it is drawn, and named nowhere
    valid = _edited_run(make_report_run, tmp_path / "valid",
                        lambda s: s["segmentation"].update(flips={"flip_rate": 0.1, "matrix": good}))
    page = build_report([valid], tmp_path / "v.html", num_images=0).read_text(encoding="utf-8")
    assert "Semantic flips" in page and "flips.matrix" not in page


def test_extreme_logged_values_are_left_out_of_the_curves_and_named(
        make_report_run: Callable[..., Path], tmp_path: Path) -> None:
    """metrics.jsonl with `"D": 1e308` and `"D": -1e308` (finite) ended the report in matplotlib's `ValueError:
    arange: cannot compute length` (probe (J), D13). Now both values are named under "Not read" and left out; the
    other curves are drawn."""
    from srunit.report import build_report

    run = make_report_run(tmp_path / "run", "cut", label="cut / unmatched / seed 0")
    lines = [{"step": 1, "D": 1e308, "G": 1.0}, {"step": 2, "D": -1e308, "G": 0.5}, {"step": 3, "D": 0.2, "G": 0.4}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    page = build_report([run], tmp_path / "r.html", num_images=0).read_text(encoding="utf-8")
    not_read = _not_read(page)
    for number, value in ((1, "1e+308"), (2, "-1e+308")):
        assert f"metrics.jsonl line {number}: &quot;D&quot; is not a number from -1e+300 to 1e+300 (got {value}); " \
               f"the value is left out of the curves" in not_read, not_read
    assert "Training losses" in page


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_metrics_log_that_is_not_a_file_is_named(make_report_run: Callable[..., Path], tmp_path: Path,
                                                   kind: str) -> None:
    """RUN/metrics.jsonl a FIFO (or a folder): "wrote", no loss curves and no word of why (probe (J), D14). Now named
    as a study's plot of the kind is: `... is a FIFO (named pipe), not a regular file; ...; ... left out`."""
    from srunit.report import build_report

    run = make_report_run(tmp_path / "run", "cut", label="cut / unmatched / seed 0")
    (run / "metrics.jsonl").unlink()
    if kind == "fifo":
        os.mkfifo(run / "metrics.jsonl")
    else:
        (run / "metrics.jsonl").mkdir()
    page = build_report([run], tmp_path / "r.html", num_images=0).read_text(encoding="utf-8")
    what = "a FIFO (named pipe)" if kind == "fifo" else "a folder"
    assert f"the metrics log {run / 'metrics.jsonl'} is {what}, not a regular file; srunit reads only regular " \
           f"files" in _not_read(page)
    assert "the run&#x27;s training curves are left out" in _not_read(page) or \
           "the run's training curves are left out" in _not_read(page)


# ----------------------------------------------------------------------------- D15: bench's --out in a domain folder

@pytest.mark.parametrize("command", ["bench", "tune"])
def test_a_benchmark_or_study_inside_a_data_sets_domain_folder_is_refused(
        tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
        command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench synthscapes --out ss/trainA/b` was accepted and wrote 1500 images there, which the next run on ss read
    as domain A (probe (J), D15); every data command refused such an --out. Now bench (and tune synthscapes) refuse
    it with the data commands' check, before anything is made."""
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the command went on to lock its --out and run")

    monkeypatch.setattr(f"srunit.cli.{'bench_synthscapes' if command == 'bench' else 'tune'}.OutputLock", never)
    ss = tmp_path / "ss"
    for name in ("trainA", "trainB"):
        (ss / name).mkdir(parents=True)
    out = ss / "trainA" / "b"
    argv = (["bench", "synthscapes", "--profile", "cpu", "--out", str(out), "--no-progress"] if command == "bench"
            else ["tune", "synthscapes", "--preset", "cut", "--trials", "1", "--out", str(out), "--no-progress"])
    assert cli_status(argv) == 2
    real = ss.resolve()
    assert f"--out {out} lies inside {real / 'trainA'}, the trainA folder of the data set {real}, whose images are " \
           f"read recursively" in capsys.readouterr().err
    assert list((ss / "trainA").iterdir()) == []
