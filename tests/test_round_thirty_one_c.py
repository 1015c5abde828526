"""Round thirty-one (C): outputs of `eval --run`, `report` and `demo` written relative to a folder opened once.

Round thirty-one (B) moved an output folder away while the command wrote and put a link to a folder of the user's in
its place: the command wrote, replaced and deleted through the link. Each test does that swap at a set moment (from a
function srunit calls between two writes) and checks the user's folder byte for byte."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.config import Config
from srunit.errors import DataError


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) below ``folder``, links not followed."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def _png(path: Path, value: int, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)


def _label(path: Path, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((size, size), dtype=np.uint8)).save(path)


def _run_with_record(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A run folder (config.yaml only) with a record of two images; the images, labels and a victim folder of the
    user's laid out as RUN/eval is (scores.json, translated/, predicted/)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("method: {name: cut}\ndata: {}\n")
    images, labels = tmp_path / "images", tmp_path / "labels"
    for i in range(2):
        _png(images / f"{i}.png", 40 * i)
        _label(labels / f"{i}.png")
    victim = tmp_path / "victim"
    (victim / "translated").mkdir(parents=True)
    (victim / "predicted").mkdir()
    (victim / "scores.json").write_text('{"mine": true}\n')
    (victim / "translated" / "a.png").write_bytes(b"the user's translation")
    (victim / "predicted" / "b.png").write_bytes(b"the user's class map")
    return run, images, labels, victim


def _zeros(rgb: np.ndarray) -> np.ndarray:
    return np.zeros(rgb.shape[:2], dtype=np.int64)


def _swap(folder: Path, moved: Path, victim: Path) -> None:
    """`mv FOLDER MOVED; ln -s VICTIM FOLDER`, as round thirty-one (B) did."""
    os.rename(folder, moved)
    os.symlink(victim, folder)


def test_eval_seg_run_with_its_eval_folder_swapped_for_a_link_while_scoring_leaves_the_linked_folder(
        tmp_path: Path) -> None:
    """31B: `eval seg --run R --replace-record`, R/eval moved and linked to the user's folder while it scored:
    victim/scores.json was overwritten, victim/translated deleted, victim/predicted replaced. Now the evaluation
    stops with one line naming both places; the user's folder is as it was, and the moved folder keeps its record
    whole, without the staged folders."""
    from srunit.eval.run_records import evaluate_run_segmentation

    run, images, labels, victim = _run_with_record(tmp_path)
    evaluate_run_segmentation(run, images, labels, _zeros, 8, segmenter="zeros")
    record = (run / "eval" / "scores.json").read_bytes()
    victim_before = _tree(victim)
    moved = tmp_path / "moved"
    calls = []

    def swapping(rgb: np.ndarray) -> np.ndarray:
        if not calls:  # after the translations were staged, before any class map was written
            _swap(run / "eval", moved, victim)
        calls.append(1)
        return _zeros(rgb)

    with pytest.raises(DataError, match=rf"^{re.escape(str(run / 'eval'))} was moved or replaced while the evaluation "
                                        rf"wrote into it \(.*it is now at {re.escape(str(moved))}\): the evaluation "
                                        rf"stopped without writing into {re.escape(str(run / 'eval'))}"):
        evaluate_run_segmentation(run, images, labels, swapping, 8, segmenter="zeros", replace=True)
    assert _tree(victim) == victim_before
    assert (moved / "scores.json").read_bytes() == record
    assert sorted(p.name for p in moved.iterdir()) == ["predicted", "scores.json", "translated"]


def test_eval_seg_run_swapped_after_its_check_finishes_into_the_folder_it_opened(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    """The swap between the last check and the replacement of RUN/eval/translated: every rename, removal and the
    record are made relative to RUN/eval opened once, so they land in the moved folder, never in the linked one."""
    from srunit._atomic import FolderWriter
    from srunit.eval.run_records import evaluate_run_segmentation

    run, images, labels, victim = _run_with_record(tmp_path)
    evaluate_run_segmentation(run, images, labels, _zeros, 8, segmenter="zeros")
    (run / "eval" / "predicted" / "extra.png").write_bytes(b"a class map of the images before")
    victim_before = _tree(victim)
    moved = tmp_path / "moved"
    replace_folder = FolderWriter.replace_folder

    def swap_first(self: FolderWriter, src: Path, dst: Path) -> None:
        if not moved.exists():
            _swap(run / "eval", moved, victim)
        replace_folder(self, src, dst)

    monkeypatch.setattr(FolderWriter, "replace_folder", swap_first)
    evaluate_run_segmentation(run, images, labels, _zeros, 8, segmenter="zeros", replace=True)
    assert _tree(victim) == victim_before
    assert sorted(p.name for p in moved.iterdir()) == ["predicted", "scores.json", "translated"]
    assert sorted(p.name for p in (moved / "predicted").iterdir()) == ["0.png", "1.png"]
    assert sorted(p.name for p in (moved / "translated").iterdir()) == ["0.png", "1.png"]
    assert (moved / "translated" / "1.png").read_bytes() == (images / "1.png").read_bytes()


def test_eval_paired_run_with_its_eval_folder_swapped_for_a_link_leaves_the_linked_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`eval paired --run` writes the record as `eval seg --run` does: the same swap while it scores."""
    import srunit.eval.run_records as run_records

    run, images, _, victim = _run_with_record(tmp_path)
    run_records.evaluate_run_paired(run, images, images, (30, 50))
    record = (run / "eval" / "scores.json").read_bytes()
    victim_before = _tree(victim)
    moved = tmp_path / "moved"
    scores = run_records.paired_scores

    def swapping(*args: object, **kwargs: object) -> object:
        _swap(run / "eval", moved, victim)
        return scores(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run_records, "paired_scores", swapping)
    with pytest.raises(DataError, match=rf"it is now at {re.escape(str(moved))}\): the evaluation stopped"):
        run_records.evaluate_run_paired(run, images, images, (30, 50), replace=True)
    assert _tree(victim) == victim_before
    assert (moved / "scores.json").read_bytes() == record
    assert sorted(p.name for p in moved.iterdir()) == ["scores.json", "translated"]


def test_eval_run_with_its_eval_folder_a_link_when_locked_writes_nothing_there(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch
                                                                                ) -> None:
    """The swap before the first write (between the first check of RUN/eval and the lock): refused, nothing of the
    linked folder touched (the stale-folder clean-up removed what matched its names there)."""
    import srunit.eval.run_records as run_records

    run, images, labels, victim = _run_with_record(tmp_path)
    run_records.evaluate_run_segmentation(run, images, labels, _zeros, 8, segmenter="zeros")
    (victim / ".translated.partial-0badf00d").mkdir()  # a name the clean-up of killed evaluations removes
    victim_before = _tree(victim)
    check = run_records.check_own_folders
    calls = []

    def swap_after_first_check(folder: object) -> None:
        check(folder)  # type: ignore[arg-type]
        if not calls:
            _swap(run / "eval", tmp_path / "moved", victim)
        calls.append(1)

    monkeypatch.setattr(run_records, "check_own_folders", swap_after_first_check)
    with pytest.raises(DataError, match="is a symbolic link"):
        run_records.evaluate_run_segmentation(run, images, labels, _zeros, 8, segmenter="zeros", replace=True)
    assert _tree(victim) == victim_before


def _metrics_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text('{"step": 1, "G": 1.0}\n{"step": 2, "G": 0.5}\n')
    return folder


def test_report_out_folder_swapped_for_a_link_while_it_renders_leaves_the_linked_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """31B: `report B --out rdir/r.html`, rdir moved and linked to the user's folder once its lock was taken: the
    user's victim2/r.html was replaced without --overwrite. Now the report stops naming both places."""
    import srunit.report.page as page

    run = _metrics_run(tmp_path / "B")
    rdir, moved, victim = tmp_path / "rdir", tmp_path / "rdir-moved", tmp_path / "victim2"
    rdir.mkdir()
    victim.mkdir()
    (victim / "r.html").write_text("the user's own page")
    (victim / ".r.html.lock").write_text("a file of the user's")  # the lock's name: never removed there
    render = page.render_report

    def swapping(*args: object, **kwargs: object) -> str:
        _swap(rdir, moved, victim)
        return render(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(page, "render_report", swapping)
    with pytest.raises(DataError, match=rf"^{re.escape(str(rdir))} was moved or replaced while the report wrote into "
                                        rf"it \(.*it is now at {re.escape(str(moved))}\): the report stopped"):
        page.build_report([run], rdir / "r.html")
    assert (victim / "r.html").read_text() == "the user's own page"
    assert _tree(victim) == {".r.html.lock": b"a file of the user's", "r.html": b"the user's own page"}
    assert [p.name for p in moved.iterdir()] == [".r.html.lock"]  # its lock, left where the folder went


def test_report_of_a_run_swapped_for_a_link_while_it_reads_writes_nothing_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """31B: `report B --overwrite` with B moved and linked to the user's folder while it read: the report (B's
    own report.html) replaced the user's and was read partly through the link. Now it stops, naming B."""
    import srunit.report.page as page

    run = _metrics_run(tmp_path / "B")
    victim = _metrics_run(tmp_path / "victim")
    (victim / "report.html").write_text("the user's own page")
    load = page.load_item

    def swapping(path: Path) -> object:
        item = load(path)
        _swap(run, tmp_path / "B-moved", victim)
        return item

    monkeypatch.setattr(page, "load_item", swapping)
    with pytest.raises(DataError, match=rf"^PATH {re.escape(str(run))} was moved or replaced while the report read "
                                        rf"it: the report stopped without writing"):
        page.build_report([run])
    assert (victim / "report.html").read_text() == "the user's own page"
    assert sorted(p.name for p in (tmp_path / "B-moved").iterdir()) == ["metrics.jsonl"]


def _swap_on_first_load(monkeypatch: pytest.MonkeyPatch, folder: Path, moved: Path, victim: Path) -> None:
    """`mv FOLDER MOVED; ln -s VICTIM FOLDER` while a Trainer loads its data (after it was configured, before it
    makes its run folder), as round thirty-one (B)'s swap 2 s into a demo's first run did."""
    import srunit.engine.trainer as trainer

    load = trainer.UnalignedDataset.for_training

    def swapping(config: object) -> object:
        dataset = load(config)  # type: ignore[arg-type]
        if not moved.exists():
            _swap(folder, moved, victim)
        return dataset

    monkeypatch.setattr(trainer.UnalignedDataset, "for_training", staticmethod(swapping))


def test_a_run_whose_folder_is_moved_and_linked_while_the_trainer_loads_is_not_made_in_the_linked_folder(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """31B (demo): the folder that holds the run moved and linked to the user's folder after the Trainer was
    configured, before its run folder was made: the run (config, logs, lock, samples) was made in the user's
    folder. Now the Trainer refuses, naming the folder and where it is now, and nothing is written there."""
    from srunit.engine.trainer import Trainer

    home, moved, victim = tmp_path / "dS", tmp_path / "dS-moved", tmp_path / "victimD"
    (home / "unmatched").mkdir(parents=True)
    victim.mkdir()
    (victim / "mine.txt").write_text("the user's")
    config = tiny_config("cut", data_root=tiny_data, runs_dir=home / "unmatched")
    _swap_on_first_load(monkeypatch, home, moved, victim)
    with pytest.raises(DataError, match=rf"^{re.escape(str(home / 'unmatched'))} was moved or replaced while the run "
                                        rf"{re.escape(str(home / 'unmatched'))}/\S+ wrote into it \(.*it is now at "
                                        rf"{re.escape(str(moved / 'unmatched'))}\)"):
        Trainer(config, show_progress=False)
    assert _tree(victim) == {"mine.txt": b"the user's"}
    assert list((moved / "unmatched").iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("when", ["while the first run loads its data", "between the data sets and the first run"])
def test_demo_folder_moved_and_linked_leaves_the_linked_folder(when: str, tmp_path: Path, tiny_bench_segmenter: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """31B: `demo --runs-dir dm --name dS`, dm/dS moved and linked to the user's folder once its first run began:
    victimD/unmatched/cut-seed0/ (config, logs, lock, samples) was made in the user's folder. Now the demo stops with
    one line naming both places; the user's folder is as it was."""
    import srunit.synthscapes.benchmark as bench
    from srunit.cli.main import main

    dm = tmp_path / "dm"
    home, moved, victim = dm / "dS", dm / "dS-moved", tmp_path / "victimD"
    victim.mkdir()
    (victim / "mine.txt").write_text("the user's")
    if when == "while the first run loads its data":
        _swap_on_first_load(monkeypatch, home, moved, victim)
    else:
        heldout = bench.condition_heldout

        def swapping(*args: object) -> Path:
            folder = heldout(*args)  # type: ignore[arg-type]
            _swap(home, moved, victim)
            return folder

        monkeypatch.setattr(bench, "condition_heldout", swapping)
    code = main(["demo", "--runs-dir", str(dm), "--name", "dS", "--methods", "cut", "--steps", "2", "--size", "32",
                 "--device", "cpu", "--no-progress", "--cache-dir", str(tiny_bench_segmenter)])
    assert code != 0
    assert _tree(victim) == {"mine.txt": b"the user's"}
    said = capsys.readouterr().err
    assert "Traceback" not in said
    assert re.search(rf"{re.escape(str(home))}\S* was moved or replaced while .* it is now at {re.escape(str(moved))}",
                     said), said
    assert not (moved / "unmatched" / "cut-seed0" / "checkpoints").exists()


def test_bench_scoring_with_the_runs_eval_folder_swapped_for_a_link_leaves_the_linked_folder(
        tiny_data: Path, tmp_path: Path) -> None:
    """`bench synthscapes` and `demo` score a run (and their references) into RUN/eval as `eval --run` does: the same
    swap while the segmenter runs writes no class map or record through the link."""
    from srunit.synthscapes.benchmark import evaluate_images

    eval_dir, moved, victim = tmp_path / "run" / "eval", tmp_path / "moved", tmp_path / "victim"
    eval_dir.mkdir(parents=True)
    victim.mkdir()
    (victim / "scores.json").write_text('{"mine": true}\n')
    calls = []

    def swapping(rgb: np.ndarray) -> np.ndarray:
        if not calls:
            _swap(eval_dir, moved, victim)
        calls.append(1)
        return _zeros(rgb)

    with pytest.raises(DataError, match=rf"^{re.escape(str(eval_dir))} was moved or replaced while the scoring wrote "
                                        rf"into it \(.*it is now at {re.escape(str(moved))}\)"):
        evaluate_images(tiny_data / "testB", eval_dir, tiny_data, swapping, {"label": "x"})
    assert _tree(victim) == {"scores.json": b'{"mine": true}\n'}
    assert sorted(p.name for p in (moved / "predicted").iterdir()) == sorted(
        p.name for p in (tiny_data / "testLabels").iterdir())


@pytest.mark.parametrize("writer", ["write_train_split", "write_nonbijective_split", "write_test_set"])
def test_synthscapes_data_moved_and_linked_while_written_go_into_the_folder_opened(
        writer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A demo's data sets moved and linked to the user's folder while they were written (the demo's folder swapped
    mid-way): the rest of the images and the manifest were written into the user's folder. Now they go into the
    folder opened, wherever it is; the demo stops at its next step (`test_demo_folder_moved_and_linked_...`)."""
    import srunit.synthscapes.dataset as dataset

    root, moved, victim = tmp_path / "data" / "unmatched", tmp_path / "moved", tmp_path / "victim"
    victim.mkdir()
    (victim / "mine.txt").write_text("the user's")
    render = dataset.render_photo

    def swapping(*args: object) -> object:
        if not moved.exists():
            _swap(root, moved, victim)
        return render(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(dataset, "render_photo", swapping)
    write = getattr(dataset, writer)
    if writer == "write_test_set":
        write(root, num_test=2, size=16, seed=0, summary_file="test.json")  # the benchmark's mark of a whole set
        expected = {"test.json", *(f"{folder}/{name}" for folder in ("testA", "testB", "testLabels")
                                   for name in ("0000.png", "0001.png"))}
    else:
        manifest = write(root, num_pool=16, size=16, seed=0)
        expected = {"manifest.json", *(f"{d}/{n:04d}.png" for d in ("trainA", "trainB")
                                       for n in range(len(manifest[d]["pool_indices"])))}
    assert _tree(victim) == {"mine.txt": b"the user's"}
    assert {k for k, v in _tree(moved).items() if v is not None} == expected


def test_folder_writer_removes_a_tree_without_following_its_links(tmp_path: Path) -> None:
    """`FolderWriter.remove` (and so `replace_folder`) removes a folder below it relative to descriptors: a link
    inside (to a folder of the user's) is removed as a link, what it points to is kept."""
    from srunit._atomic import FolderWriter

    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "sub" / "a.txt").write_text("the user's")
    out = tmp_path / "out"
    (out / "old" / "deeper").mkdir(parents=True)
    (out / "old" / "deeper" / "x.png").write_bytes(b"x")
    os.symlink(mine, out / "old" / "deeper" / "link")
    (out / "new").mkdir()
    (out / "new" / "y.png").write_bytes(b"y")
    with FolderWriter(out) as writer:
        writer.replace_folder("new", "old")
    assert _tree(out) == {"old": None, "old/y.png": b"y"}
    assert _tree(mine) == {"sub": None, "sub/a.txt": b"the user's"}
