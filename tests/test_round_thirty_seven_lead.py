"""Round thirty-seven (lead): the open defects of probe (H) of round thirty-six."""

from __future__ import annotations

import json
import os
import shutil
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
        Image.fromarray(np.full((size, size, 3), value + i, np.uint8)).save(folder / f"{i:02d}.png")
    return folder


@pytest.mark.parametrize("real_inside", [True, False])
def test_eval_fid_refuses_one_folder_inside_the_other(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
        real_inside: bool) -> None:
    """`eval fid --real ss/testB --fake ss`: status 0 and `images: real 4, fake 21`: the folders are read with their
    sub-folders, so the 4 real images were counted among the translations (probe (H), D7). The same folder was
    already refused; one inside the other is the same fault in part."""
    outer = _images(tmp_path / "outer", 3)
    inner = _images(outer / "inner", 3, value=90)
    real, fake = (inner, outer) if real_inside else (outer, inner)
    weights = tmp_path / "never-read.pt"  # the check comes before the feature network is loaded
    assert cli_status(["eval", "fid", "--real", str(real), "--fake", str(fake), "--weights", str(weights),
                       "--no-progress"]) == 2
    err = capsys.readouterr().err
    outer_option, inner_option = ("--fake", "--real") if real_inside else ("--real", "--fake")
    assert f"{outer_option} {outer} holds {inner_option} {inner} (folders are read with their sub-folders)" in err, err
    assert "neither inside the other" in err
    # Two folders side by side are not refused for being near each other.
    assert cli_status(["eval", "fid", "--real", str(inner), "--fake", str(_images(tmp_path / "side", 3)),
                       "--weights", str(weights), "--no-progress"]) != 0
    assert "holds" not in capsys.readouterr().err


def test_eval_paired_and_seg_refuse_one_folder_inside_the_other(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`eval paired --pred t/pred --target t`: `4 target file(s) have no prediction partner ... t/pred/0000.png ...;
    add the missing files or remove these`: removing "these" would delete the predictions (probe (H), D7's
    variant). The nesting is named instead; `score_segmentation` (eval seg) refuses it the same way."""
    from srunit.eval.scoring import score_segmentation

    target = _images(tmp_path / "t", 3)
    pred = _images(target / "pred", 3)
    assert cli_status(["eval", "paired", "--pred", str(pred), "--target", str(target), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--target {target} holds --pred {pred} (folders are read with their sub-folders)" in err, err
    assert "remove these" not in err
    labels = target / "labels"
    labels.mkdir()
    with pytest.raises(DataError, match=r"--images .* holds --labels .*labels \(folders are read with their "):
        score_segmentation(target, labels, lambda image: np.zeros(image.shape[:2], np.int64), 2)
    assert list(pred.iterdir())  # nothing was touched


def test_a_merge_key_with_a_list_of_mappings_takes_the_first_mappings_value() -> None:
    """`<<: [{lambda_nce: 3.0}, {lambda_nce: 6.0, nce_temperature: 0.3}]` gave lambda_nce 6.0 without a word
    (probe (H), D8): YAML's merge rule says a mapping earlier in the list overrides a later one. (PyYAML dropped a
    repeated key by the identity of its string, so a one-letter key worked and a longer one did not.)"""
    from srunit._yaml import load_yaml

    merged = load_yaml("method:\n  name: cut\n  <<: [{lambda_nce: 3.0}, {lambda_nce: 6.0, nce_temperature: 0.3}]\n",
                       "m.yaml")
    assert merged == {"method": {"name": "cut", "lambda_nce": 3.0, "nce_temperature": 0.3}}
    anchored = load_yaml("a: &a {lambda_nce: 3.0, ngf: 8}\nb: &b {lambda_nce: 6.0, ngf: 16, ndf: 4}\n"
                         "c:\n  <<: [*a, *b]\n  ngf: 32\n", "m.yaml")
    assert anchored["c"] == {"lambda_nce": 3.0, "ngf": 32, "ndf": 4}  # the mapping's own key overrides every merge
    assert load_yaml("a: &a {lambda_nce: 3.0}\nc:\n  <<: *a\n  lambda_nce: 6.0\n", "m.yaml")["c"] == {
        "lambda_nce": 6.0}


@pytest.mark.parametrize(("key", "shown"), [("acc_30", True), ("acc_256", True), ("acc_-30", False),
                                            ("acc_0", False), ("acc_257", False), ("acc_030", False),
                                            ("acc_abc", False), ("acc_1e9", False), ("acc_\u0663\u0660", False)])
def test_a_score_of_an_acc_threshold_that_cannot_be_is_not_shown(key: str, shown: bool) -> None:
    """`report RUN` with scores.json's paired.acc {"-30": 0.5}: a column `Acc(-30) %` of 50.00, no warning (probe
    (H), D13): `eval paired --delta -30` is refused, so no run has such a score. Every record's Acc key is checked
    against the thresholds `--delta` takes (1 to 256, written plainly)."""
    from srunit.report.runs import score_problem

    problem = score_problem(key, 0.5)
    assert (problem is None) == shown, problem
    if not shown:
        assert problem == "a score of Acc(delta): its delta is not an integer from 1 to 256"


def test_the_report_names_an_acc_threshold_that_cannot_be_under_not_read(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """The same through a run's eval/scores.json: the bad key is named under "Not read", the good one shown."""
    from srunit.report.runs import load_run

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    (run / "eval").mkdir(exist_ok=True)
    (run / "eval" / "scores.json").write_text(json.dumps(
        {"format": "srunit-eval/1", "paired": {"dist": 10.0, "num_images": 2, "num_pixels": 8,
                                               "acc": {"30": 0.25, "-30": 0.5}}}))
    loaded = load_run(run)
    assert loaded.scores is not None and loaded.scores["paired"]["acc"] == {"30": 0.25}
    assert [w for w in loaded.warnings if "paired.acc.-30 is not a score of Acc(delta)" in w], loaded.warnings


def test_min_share_above_every_share_is_named_as_the_cause() -> None:
    """`data mismatch --min-share 10` where the class covers 6.25 % of each map that holds it: `no split ... change
    --share or --num-test, or give more images` (probe (H), D15), where no --share or --num-test gives one. The
    advice names --min-share and the largest share; followed, a split is made."""
    from srunit.datasets.mismatch import plan_mismatch

    shares = [0.0625 if i % 2 else 0.0 for i in range(12)]
    with pytest.raises(DataError) as caught:
        plan_mismatch(shares, share=0.6, min_share=0.10)
    assert str(caught.value) == ("no label map holds the class on more than --min-share 10% of its labelled pixels "
                                 "(the most is 6.25%); lower --min-share")
    assert plan_mismatch(shares, share=0.6, min_share=0.06).b_holding > 0
    # Too few for the share: only the changes that give a split are named, each one checked by following it.
    with pytest.raises(DataError, match=r"; change --share, or give more images$"):
        plan_mismatch([0.5, 0.0], share=0.5)
    assert plan_mismatch([0.5, 0.0], share=1.0).b_holding == 1
    with pytest.raises(DataError, match=r"; lower --num-test, or give more images$"):
        plan_mismatch([0.5, 0.0, 0.0], share=1.0, num_test=2)
    assert plan_mismatch([0.5, 0.0, 0.0], share=1.0, num_test=1).b_holding == 1
    with pytest.raises(DataError, match=r"of 1 images 0 hold it and 1 lack it \(0 of those for testing, 0 left out "
                                        r"with at most --min-share of it\); give more images$"):
        plan_mismatch([0.0], share=1.0)


@pytest.mark.parametrize("command", ["report", "train"])
def test_result_lines_print_a_path_holding_a_newline_as_one_line(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int], command: str) -> None:
    """The result lines of report, train, demo, tune, bench synthscapes and app printed their paths raw: a folder
    called `r<newline>srunit report: wrote ok` printed a second, forged line (probe (H), D5's variant)."""
    odd = tmp_path / "r\nsrunit report: wrote ok"
    if command == "report":
        shutil.copytree(tiny_runs["cut"], odd, symlinks=True)
        assert cli_status(["report", str(odd), "--images", "0"]) == 0
    else:
        odd.mkdir()
        shutil.copytree(tiny_runs["cut"], odd / "run", symlinks=True)
        assert cli_status(["train", "--resume", str(odd / "run"), "--train.steps", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert not [line for line in out.splitlines() if line.startswith("srunit report: wrote ok")], out
    assert "r\\nsrunit report: wrote ok" in out, out


def test_a_domain_folder_inside_the_other_is_warned_of(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`train --data.dir_a X --data.dir_b X/sub`: domain A's images held all of domain B's, without a word (a
    variant of (H) D7 and D10: one folder for both domains was warned of, one inside the other was not)."""
    from srunit.engine.trainer import warn_if_one_folder

    outer = _images(tmp_path / "a", 2)
    inner = _images(outer / "b", 2)
    for dir_a, dir_b, said in ((outer, inner, f"data.dir_a {outer} holds data.dir_b {inner}"),
                               (inner, outer, f"data.dir_b {outer} holds data.dir_a {inner}")):
        caplog.clear()
        with caplog.at_level("WARNING", logger="srunit"):
            warn_if_one_folder(dir_a, dir_b)
        assert [r for r in caplog.records if said in r.getMessage() and "in both domains" in r.getMessage()], \
            caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="srunit"):
        warn_if_one_folder(inner, _images(tmp_path / "c", 2))
    assert not caplog.records


@pytest.mark.parametrize(("val_images", "val_labels", "said"), [
    ("data/trainA", "labels", "--val-images {root}/data/trainA is the training folder {root}/data/trainA of --data"),
    ("data/trainA/val", "labels", "--val-images {root}/data/trainA/val lies inside the training folder "
                                  "{root}/data/trainA of --data"),
    ("val", "data", "--val-labels {root}/data holds the training folder {root}/data/trainA of --data"),
])
def test_tune_data_refuses_validation_folders_in_the_training_folders(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
        val_images: str, val_labels: str, said: str) -> None:
    """`tune data --data data --val-images data/trainA`: accepted without a word, each trial scored on images it
    trained on, though the help says to keep them out (probe (G), noted)."""
    for folder in ("data/trainA", "data/trainB", "data/trainA/val", "val", "labels"):
        _images(tmp_path / folder, 2)
    out = tmp_path / "study"
    assert cli_status(["tune", "data", "--preset", "cut", "--trials", "1", "--data", str(tmp_path / "data"),
                       "--val-images", str(tmp_path / val_images), "--val-labels", str(tmp_path / val_labels),
                       "--segmenter", "synthscapes", "--classes", "8", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert said.format(root=tmp_path) in err, err
    assert err.rstrip().endswith("keep the validation images and labels out of --data's trainA and trainB")
    assert not out.exists()


def test_a_share_that_rounds_to_no_image_holding_the_class_is_refused() -> None:
    """`data mismatch --share 10` with 4 trainB images wrote a split whose trainB holds none of the class, without a
    word (probe (G), noted). The advice's share, followed, gives one image that holds it."""
    from srunit.datasets.mismatch import plan_mismatch

    shares = [0.5] * 3 + [0.0] * 9
    with pytest.raises(DataError) as caught:
        plan_mismatch(shares, share=0.10)
    assert str(caught.value) == ("--share 10% of the 4 trainB images rounds to none holding the class; give --share "
                                 "11 or more, or give more images")
    assert plan_mismatch(shares, share=0.11).b_holding == 1


def test_a_run_replaced_by_its_own_copy_before_fit_is_advised_to_resume_at_the_same_path(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`r = Trainer.resume(run)`, then `cp -r run bak; rm -r run; cp -r bak run`, then `r.fit()`: refused with "if it
    was moved, continue the run with Trainer.resume and its new path ...; a deleted run cannot be continued", where
    resuming the same path does (probe (G), noted). The advice names that path too, and followed, it trains."""
    from srunit.engine import Trainer
    from srunit.errors import ConfigError

    run = tmp_path / "runs" / "r"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    trainer = Trainer.resume(run, ["train.steps=2"], show_progress=False)
    shutil.copytree(run, tmp_path / "bak", symlinks=True)
    shutil.rmtree(run)
    shutil.copytree(tmp_path / "bak", run, symlinks=True)
    with pytest.raises(ConfigError) as caught:
        trainer.fit()
    assert f"if the folder there now is this run put back (a copy), continue it with Trainer.resume({str(run)!r})" \
        in str(caught.value), caught.value
    again = Trainer.resume(str(run), ["train.steps=2"], show_progress=False)
    assert again.fit() == run.resolve() and again.step == 2


def test_a_benchmarks_records_file_is_not_called_a_studys(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`bench synthscapes --records FILE`: "give the folder of the study's records (a new one, or one a study
    wrote)", for a benchmark (probe (G), noted)."""
    records = tmp_path / "recs"
    records.write_text("")
    assert cli_status(["bench", "synthscapes", "--methods", "cut", "--baseline", "cut", "--seeds", "1",
                       "--records", str(records), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert f"--records {records} is not a folder; give the folder of the records (a new one, or one a benchmark or " \
           f"study wrote)" in err, err
    assert "study's" not in err


def test_a_data_set_made_inside_another_sets_label_folder_is_refused(
        synth_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`data synthscapes --out ss/testLabels/x` wrote a data set inside ss's label maps (round thirty-six, noted):
    `eval seg --labels ss/testLabels` reads them recursively. testLabels is refused as trainA/trainB/testA/testB
    were."""
    ss = tmp_path / "ss"
    shutil.copytree(synth_data, ss)
    inside = ss / "testLabels" / "x"
    assert cli_status(["data", "synthscapes", "--out", str(inside), "--size", "16", "--num-pool", "12",
                       "--num-test", "1"]) == 2
    err = capsys.readouterr().err
    assert f"lies inside {ss / 'testLabels'}, the testLabels folder of the data set {ss}" in err, err
    assert not inside.exists()


def test_an_api_arguments_range_advice_names_the_argument() -> None:
    """`translate_folder(..., max_pixels=-1)`: `...; pass translate_folder: max_pixels within that range`, the
    label pasted into the advice (probe (E), noted). The advice names the argument, the message the function."""
    from srunit.checks import check_int

    with pytest.raises(Exception) as caught:
        check_int(-1, "translate_folder: max_pixels", 1, maximum=2**32)
    assert str(caught.value) == ("translate_folder: max_pixels must be an integer from 1 to 4,294,967,296, got -1; "
                                 "pass max_pixels within that range")
    with pytest.raises(Exception, match=r"; pass --batch-size 1 or more$"):
        check_int(0, "--batch-size", 1)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("word", ["runs/r1", "runs/my run", "nl\nsrunit: ok/r/tensorboard", "a'b\\c\td\u202ee\x01f",
                                  "x\x7f", "caf\u00e9 \u0663"])
def test_a_pasteable_word_holding_a_newline_names_that_folder_when_pasted(word: str) -> None:
    """`  logs:       tensorboard --logdir 'nl\\nsrunit: ok/r/tensorboard'`: the word was quoted, then its newline
    escaped for the one-line result, and inside plain quotes a shell reads `\\n` as two characters, so the pasted
    command named a folder that does not exist (probe (I), D7). Such a word is written in ANSI-C quotes, one line,
    and bash reads back the very word."""
    import subprocess

    from srunit.checks import one_line
    from srunit.errors import shell_word

    quoted = one_line(shell_word(word))
    assert "\n" not in quoted and quoted == shell_word(word)
    # In any locale: `$'\\u202e'` stayed six characters under LC_ALL=C (probe (J), D1); UTF-8 bytes do not.
    for locale in ("C", "C.UTF-8"):
        pasted = subprocess.run(["bash", "-c", f"printf %s {quoted}"], capture_output=True, check=True,
                                env={**os.environ, "LC_ALL": locale})
        assert pasted.stdout == word.encode("utf-8"), (locale, quoted, pasted.stdout)


def test_a_translation_that_would_replace_another_source_names_both(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`translate --input tq/in --output tq` where tq/in/in/0000.png translates to tq/in/0000.png: `the translation
    of tq/in/0000.png would replace that source file`, the replaced file named as the one translated (probe (I),
    D2). Both are named; nothing is written."""
    from srunit.inference import Translator

    src = tmp_path / "tq" / "in"
    _images(src / "in", 1)
    _images(src, 1, value=120)
    before = (src / "00.png").read_bytes()
    translator = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    with pytest.raises(DataError) as caught:
        translator.translate_folder(src, tmp_path / "tq")
    assert str(caught.value) == (f"the translation of {src / 'in' / '00.png'} would replace the source file "
                                 f"{tmp_path / 'tq' / 'in' / '00.png'}; choose another --output (nothing was written)")
    assert (src / "00.png").read_bytes() == before


@pytest.mark.parametrize("command", ["split", "mismatch"])
def test_data_commands_refuse_one_input_folder_inside_another(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
        command: str) -> None:
    """`data split --images-a A --images-b A/B`: `4 --images-a file(s) have no --labels partner ...: A/B/0000.png,
    ...; add the missing files or remove these`, and removing them deleted domain B (probe (I), D3)."""
    a = _images(tmp_path / "A", 2)
    b = _images(a / "B", 2)
    labels = tmp_path / "L"
    labels.mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(labels / f"{i:02d}.png")
    options = ["--classes", "8"] if command == "split" else ["--class", "1", "--share", "50"]
    assert cli_status(["data", command, "--labels", str(labels), "--images-a", str(a), "--images-b", str(b),
                       "--out", str(tmp_path / "o"), *options]) == 2
    err = capsys.readouterr().err
    assert f"--images-a {a} holds --images-b {b} (folders are read with their sub-folders)" in err, err
    assert "remove these" not in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("api", ["split_folders", "mismatch_split"])
def test_the_data_apis_refuse_one_input_folder_inside_another(tmp_path: Path, api: str) -> None:
    """`split_folders(out, images_a=A, images_b=A/B, ...)` wrote a split whose trainA held domain B's images too (the
    CLI refused the nesting since probe (I)'s D3; its API did not). Refused before anything is read or written."""
    from srunit.datasets.mismatch import mismatch_split
    from srunit.datasets.split import split_folders

    a = _images(tmp_path / "A", 4)
    b = _images(a / "B", 4, value=140)
    labels = tmp_path / "L"
    labels.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8), i % 2, np.uint8)).save(labels / f"{i:02d}.png")
    with pytest.raises(ConfigError) as caught:
        if api == "split_folders":
            split_folders(tmp_path / "o", images_a=a, images_b=b, labels=labels, classes=2)
        else:
            mismatch_split(tmp_path / "o", images_a=a, images_b=b, labels=labels, class_id=1, share=0.5)
    assert f"--images-a {a} holds --images-b {b} (folders are read with their sub-folders)" in str(caught.value)
    assert not (tmp_path / "o").exists() and sorted(p.name for p in b.iterdir()) == [f"{i:02d}.png" for i in range(4)]


def test_two_merge_keys_in_one_mapping_are_refused_as_a_repeated_key() -> None:
    """`method: {<<: [{lambda_nce: 3.0}, ...], <<: {lambda_nce: 9.0}}` was taken without a word, as 3.0, where PyYAML
    reads 9.0 (probe (I), D4): `<<` twice is a repeated key, refused as every other one; the advice, one merge key
    with a list, reads as YAML's merge rule says."""
    from srunit._yaml import load_yaml

    with pytest.raises(ConfigError) as caught:
        load_yaml("method:\n  <<: [{lambda_nce: 3.0}, {nce_idt: false}]\n  <<: {lambda_nce: 9.0}\n  name: cut\n",
                  "n6.yaml")
    assert "n6.yaml" in str(caught.value) and "line 3: the merge key '<<' appears twice in one mapping" in \
        str(caught.value), caught.value
    assert load_yaml("method:\n  <<: [{lambda_nce: 3.0}, {nce_idt: false}, {lambda_nce: 9.0}]\n  name: cut\n",
                     "n6.yaml") == {"method": {"lambda_nce": 3.0, "nce_idt": False, "name": "cut"}}


def test_a_class_every_image_holds_is_named_as_such() -> None:
    """`data mismatch --class 0 --num-test 1` where every map holds class 0: `--num-test 1: only 0 of the 4 images
    lack the class; ask for fewer test images`, and `--num-test 0` then met `no split ...; give more images` (probe
    (I), D6): no --num-test gives a split."""
    from srunit.datasets.mismatch import plan_mismatch

    for num_test in (1, 0):
        with pytest.raises(DataError) as caught:
            plan_mismatch([0.3, 0.5, 0.2, 0.4], share=0.0, num_test=num_test)
        assert str(caught.value) == ("none of the 4 images lacks the class (4 hold it, 0 left out with at most "
                                     "--min-share of it): trainA and the test images are images without it; give "
                                     "images without it, or choose another --class")


def test_the_mismatch_result_line_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`data mismatch --out $'nl\\nsrunit: ok/mm'`: `... without it to nl` and a second line `srunit: ok/mm`, where
    every other data command's result line is escaped (probe (I), D8)."""
    a, b, labels = _images(tmp_path / "A", 4), _images(tmp_path / "B", 4), tmp_path / "L"
    labels.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8), i % 2, np.uint8)).save(labels / f"{i:02d}.png")
    odd = tmp_path / "nl\nsrunit: ok"
    odd.mkdir()
    assert cli_status(["data", "mismatch", "--labels", str(labels), "--class", "1", "--images-a", str(a),
                       "--images-b", str(b), "--share", "100", "--out", str(odd / "mm")]) == 0
    out = capsys.readouterr().out
    assert "nl\\nsrunit: ok/mm" in out and not [line for line in out.splitlines() if line.startswith("srunit: ok")]


@pytest.mark.parametrize(("key", "value", "said"), [
    ("per_class", [1], "segmentation.per_class is not a list of classes (objects) (got [1])"),
    ("per_class", "x", "segmentation.per_class is not a list of classes (got \"x\")"),
    ("per_class", [{"id": 0, "iou": 7}], "segmentation.per_class is not a list of classes, each with scores from 0 "
                                         "to 1"),
    ("flips", [1], "segmentation.flips is not an object (got [1])"),
    ("flips", {"flip_rate": "x"}, "segmentation.flips.flip_rate is not a finite number (got \"x\")"),
    ("hallucination", [2], "segmentation.hallucination is not an object (got [2])"),
    ("ignore_index", "x", "segmentation.ignore_index is not a label id from 0 to 65535 (got \"x\"); the flip maps "
                          "take the default, 255"),
])
def test_a_segmentation_records_parts_of_the_wrong_shape_are_named_not_a_traceback(
        tiny_runs: dict[str, Path], tmp_path: Path, key: str, value: object, said: str) -> None:
    """`report RUN` whose eval/scores.json holds `segmentation.per_class: [1]` (also `flips: [1]`,
    `ignore_index: "x"`): status 1 and a traceback from the per-class plot, the flip rates or the flip maps (probe
    (I), D25). Each is named under "Not read" and the page is written."""
    from srunit.report import build_report
    from srunit.report.runs import load_run

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    (run / "eval").mkdir(exist_ok=True)
    segmentation = {"pixel_accuracy": 0.5, "class_accuracy": 0.5, "mean_iou": 0.25, "num_classes": 2,
                    "per_class": [{"id": 0, "name": "a", "accuracy": 0.5, "iou": 0.25}], key: value}
    (run / "eval" / "scores.json").write_text(json.dumps({"format": "srunit-eval/1", "segmentation": segmentation}))
    loaded = load_run(run)
    assert [w for w in loaded.warnings if said in w], loaded.warnings
    out = build_report([run], tmp_path / "r.html", num_images=0)
    assert said.split(" (got")[0].split(";")[0] in out.read_text(encoding="utf-8")


def _animated(path: Path, first: int, second: int, size: int = 8) -> Path:
    """A two-frame GIF whose frames are filled with ``first`` and ``second``."""
    frames = [Image.fromarray(np.full((size, size, 3), v, np.uint8)) for v in (first, second)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


class _ChannelMean(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().mean((2, 3))


@pytest.mark.parametrize("api", ["paired_scores", "fid_kid", "score_segmentation"])
def test_evaluation_says_which_inputs_hold_several_frames(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          api: str) -> None:
    """An animated GIF among the translations was scored from its first frame, without a word, where `translate` says
    so of its inputs (round thirty-six, noted). Each evaluation API says it once, naming the count and a file."""
    from srunit.eval.fid import fid_kid
    from srunit.eval.paired import paired_scores
    from srunit.eval.scoring import score_segmentation

    pred = _images(tmp_path / "pred", 3)
    gif = _animated(pred / "01.gif", 200, 10)
    (pred / "01.png").unlink()
    target = _images(tmp_path / "target", 3, value=80)
    labels = tmp_path / "labels"
    labels.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), i % 2, np.uint8)).save(labels / f"{i:02d}.png")
    with caplog.at_level("WARNING", logger="srunit"):
        if api == "paired_scores":
            scores = paired_scores(pred, target)
            assert scores.num_images == 3
        elif api == "fid_kid":
            fid_kid(target, pred, feature=_ChannelMean(), kid_subset_size=2, kid_subsets=2)
        else:
            score_segmentation(pred, labels, lambda image: (image[..., 0] // 128).astype(np.int64), 2)
    done = {"paired_scores": "scored", "fid_kid": "measured", "score_segmentation": "segmented"}[api]
    said = [r.getMessage() for r in caplog.records if "several frames" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("1 ") and str(gif) in said[0], said
    assert said[0].endswith(f"each is {done} from its first frame only"), said
    caplog.clear()
    (pred / "01.gif").unlink()
    _images(pred, 3)
    with caplog.at_level("WARNING", logger="srunit"):
        paired_scores(pred, target)
    assert not [r for r in caplog.records if "several frames" in r.getMessage()]


@pytest.mark.parametrize("api", ["paired", "segmentation"])
def test_a_runs_evaluation_refuses_nested_folders_before_it_copies_a_file(
        tmp_path: Path, tiny_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, api: str) -> None:
    """`eval paired --pred t/pred --target t --run RUN` copied every prediction into the run's eval folder before the
    nesting was refused (round thirty-seven (E), noted): the check now comes first, and nothing of the run is
    touched."""
    from srunit.eval import run_records
    from srunit.eval.segmenters import Segmenter

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))

    def copied(*args: object, **kwargs: object) -> None:
        raise AssertionError("the translations were copied into the run")

    monkeypatch.setattr(run_records, "_copy_translations", copied)
    outer = _images(tmp_path / "t", 2)
    inner = _images(outer / "pred", 2, value=90)
    with pytest.raises(DataError, match="holds --pred .* \\(folders are read with their sub-folders\\)"
                       if api == "paired" else "holds --images .* \\(folders are read with their sub-folders\\)"):
        if api == "paired":
            run_records.evaluate_run_paired(run, inner, outer, (30,))
        else:
            segment: Segmenter = lambda image: (image[..., 0] // 128).astype(np.int64)  # noqa: E731
            run_records.evaluate_run_segmentation(run, inner, outer, segment, 2, segmenter="test")
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


@pytest.mark.parametrize(("text", "want"), [
    ("b: &b {lambda_nce: 1.0, nce_idt: true}\nm: &m\n  <<: *b\n  lambda_nce: 2.0\nmethod:\n  <<: *m\n",
     {"lambda_nce": 2.0, "nce_idt": True}),
    ("b: &b {lambda_nce: 1.0, nce_idt: true}\nm: &m\n  <<: *b\n  lambda_nce: 2.0\n"
     "method:\n  <<: [*m, {lambda_nce: 9.0, num_patches: 64}]\n",
     {"lambda_nce": 2.0, "nce_idt": True, "num_patches": 64}),
    ("b: &b {lambda_nce: 1.0, nce_idt: true}\nm: &m\n  <<: *b\n  lambda_nce: 2.0\nn: {<<: *m}\n"
     "method:\n  <<: *m\n  nce_idt: false\n",
     {"lambda_nce": 2.0, "nce_idt": False}),
])
def test_a_merged_mapping_that_merges_another_keeps_its_own_keys(text: str, want: dict[str, object]) -> None:
    """`m: &m {<<: *b, lambda_nce: 2.0}` then `method: {<<: *m}` gave method lambda_nce 1.0, b's value, where m is
    {lambda_nce: 2.0, ...} (probe (J), D4; PyYAML's safe_load reads 1.0 too). YAML's merge rule merges m as the
    mapping it is."""
    from srunit._yaml import load_yaml

    loaded = load_yaml(text, "chain.yaml")
    assert loaded["m"] == {"lambda_nce": 2.0, "nce_idt": True}
    assert loaded["method"] == want


def test_the_method_registry_prints_as_the_names_it_holds() -> None:
    """`print(srunit.METHODS)` showed `<srunit.registry.MethodRegistry object at 0x...>` where docs/python.md says it
    lists the registered methods (probe (J), newcomer, noted)."""
    import srunit

    shown = repr(srunit.METHODS)
    assert shown == str(srunit.METHODS) == f"MethodRegistry(methods: {', '.join(srunit.METHODS.names())})"
    assert "cut" in srunit.METHODS.names() and "srunit" in srunit.METHODS.names() and " object at " not in shown


def test_the_training_summary_names_the_tensorboard_it_can_start(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The summary advised `tensorboard --logdir runs/r/tensorboard`, where tensorboard is in .venv/bin only and the
    docs' commands carry the `.venv/bin/` prefix: `tensorboard: command not found` (probe (J), newcomer, noted). Not
    on PATH, the summary names the one beside this Python, from the working folder; on PATH, `tensorboard`."""
    import sys

    from srunit.cli import train

    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "tensorboard").write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert train._tensorboard() == ".venv/bin/tensorboard"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert train._tensorboard() == str(venv_bin / "tensorboard")
    (tmp_path / "onpath").mkdir()
    (tmp_path / "onpath" / "tensorboard").write_text("#!/bin/sh\n")
    (tmp_path / "onpath" / "tensorboard").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "onpath"))
    assert train._tensorboard() == "tensorboard"


def test_translate_says_that_an_output_named_like_an_image_is_made_a_folder(
        tiny_runs: dict[str, Path], tmp_path: Path, cli_status: Callable[[list[str]], int],
        caplog: pytest.LogCaptureFixture) -> None:
    """`translate --input one.png --output fs.png` made a folder fs.png holding 0000.png, exit 0, no hint (probe (J),
    newcomer, noted). It says so before it translates; a folder name, or an existing folder, is taken without it."""
    src = _images(tmp_path / "in", 1)
    out = tmp_path / "fs.png"
    with caplog.at_level("WARNING"):
        assert cli_status(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(src / "00.png"),
                           "--output", str(out), "--device", "cpu", "--no-progress"]) == 0
    said = [r.getMessage() for r in caplog.records if "names a folder" in r.getMessage()]
    assert said == [f"--output {out} names a folder, which is made: each translation is a PNG file inside it, named "
                    f"after its input ({out}/NAME.png)"], said
    assert (out / "00.png").is_file()
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert cli_status(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(src), "--output",
                           str(tmp_path / "out"), "--device", "cpu", "--no-progress"]) == 0
    assert not [r for r in caplog.records if "names a folder" in r.getMessage()]
