"""Evaluating a training run's translations into the run itself (`srunit eval seg|paired --run RUN`).

The scores go into ``RUN/eval/scores.json`` in the record format the benchmark writes
(``srunit.eval.records``), the translations into ``RUN/eval/translated`` and the segmenter's class
maps into ``RUN/eval/predicted``, so ``srunit report RUN`` shows the run's scores, per-class IoU and
image grids like a benchmark run's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from srunit._atomic import FolderWriter
from srunit._outputs import PARTIAL_INFIX, OutputLock
from srunit._reading import MAX_CONFIG_BYTES, MAX_RECORD_BYTES, check_linked_files, read_text
from srunit._yaml import load_yaml
from srunit.checks import check_path, hidden_characters
from srunit.data.files import scan_images
from srunit.data.labels import CITYSCAPES_CLASSES, PALETTES
from srunit.errors import ConfigError, DataError, shell_word
from srunit.eval.paired import PairedScores, check_pred_and_target, paired_scores
from srunit.eval.records import image_set_digest, read_run_record, stored_folder, update_run_record
from srunit.eval.scoring import FolderSegmentation, check_images_and_labels, score_segmentation
from srunit.eval.segmenters import Segmenter
from srunit.runtime.run_folder import RunFolder

__all__ = ["resolve_class_names", "evaluate_run_segmentation", "evaluate_run_paired"]

log = logging.getLogger(__name__)


def resolve_class_names(spec: str | None, num_classes: int) -> list[str] | None:
    """``--class-names``: ``cityscapes``, ``synthscapes``, ``none``/None, a text file with one name per line, or
    ``a,b,c``.

    Raises:
        ConfigError: the number of names is not ``num_classes`` (or the file is unreadable).
    """
    if spec is None or spec == "none":
        return None
    if spec == "cityscapes":
        names = list(CITYSCAPES_CLASSES)
    elif spec == "synthscapes":  # `tune data --class-names synthscapes` was read as a list of one name
        from srunit.synthscapes.scenes import CLASS_NAMES

        names = list(CLASS_NAMES)
    elif os.path.lexists(spec):
        text = read_text(spec, "--class-names", limit=MAX_RECORD_BYTES, error=ConfigError,
                         fix="give a UTF-8 text file with one class name per line")
        text = text.removeprefix("\ufeff")  # a file saved as "UTF-8 with BOM" (Windows): not part of the first name
        names = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        names = [n.strip() for n in spec.split(",")]
    if len(names) != num_classes:
        raise ConfigError(f"--class-names gives {len(names)} names but --classes is {num_classes}; give one name per "
                          f"class (cityscapes, synthscapes, a file with one name per line, or a comma-separated list)")
    shown = [(i, chars) for i, n in enumerate(names) if (chars := hidden_characters(n))]
    if shown:  # U+202E printed "car<U+202E>daor" in the tables as another text than it is
        i, chars = shown[0]
        raise ConfigError(f"--class-names gives class {i} a name holding {', '.join(chars)} (a control or "
                          f"bidirectional control character: the tables and the report would show other text); "
                          f"give names without them")
    if "" in names:  # `a,,c`: a class the tables would show without a name
        raise ConfigError(f"--class-names gives an empty name for class {names.index('')} ({spec!r:.80}); give every "
                          f"class a name")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:  # --flip-from NAME, the per-class tables and "most went to" would not say which class is meant
        which = ", ".join(f"{n!r} (ids {[i for i, m in enumerate(names) if m == n]})" for n in repeated)
        raise ConfigError(f"--class-names names more than one class {which}; give each class its own name")
    return names


def _run_info(run: Path) -> dict[str, Any]:
    """The label and method of a run folder (its config.yaml), checked to be one."""
    config_file = RunFolder(run).config
    if not config_file.is_file():
        check_linked_files(run, [config_file.name], "a run folder")
        raise DataError(f"--run {run} is not a run folder (no {config_file.name}); give the folder `srunit train` "
                        f"made")
    try:
        config = load_yaml(read_text(config_file, "the run's config", limit=MAX_CONFIG_BYTES), str(config_file)) or {}
    except (DataError, ConfigError) as e:
        raise DataError(f"cannot read {config_file} ({e}); restore the config written by `srunit train`") from None
    config = config if isinstance(config, dict) else {}
    for section in ("method", "data"):
        if not isinstance(config.get(section) or {}, dict):
            raise DataError(f"{config_file}: {section} must be a mapping of keys, got {config[section]!r:.40}; restore "
                            f"the config written by `srunit train`")
    method = (config.get("method") or {}).get("name")
    data = config.get("data") or {}
    return {"label": run.name, "method": method, "data": {k: data.get(k) for k in ("root", "dir_a", "dir_b")}}


def checked_run(run: Path) -> tuple[RunFolder, dict[str, Any]]:
    """The run folder ``run`` (--run) an evaluation is recorded in, and its label and method (its config.yaml):
    checked to be a run folder whose RUN/eval folders are its own, before anything is read, or trained, for it."""
    folder = RunFolder(run)
    info = _run_info(run)  # before the lock, which would make the folder of a mistyped --run
    check_own_folders(folder)
    return folder, info


def check_own_folders(folder: RunFolder) -> None:
    """RUN/eval and the folders an evaluation replaces in it must be the run's own: through a symbolic link (planted,
    or made to share a folder) replacing RUN/eval/translated deleted the files of the folder the link points to."""
    for path in (folder.eval, folder.translated, folder.predicted, folder.masks):
        if path.is_symlink():
            raise DataError(f"--run {folder.path}: {path} is a symbolic link (to {os.readlink(path)}); an evaluation "
                            f"replaces the folders in RUN/eval, and through a link it would replace what the link "
                            f"points to. Remove the link (rm {shell_word(path)}) or {_copy_advice(folder.path)} "
                            f"(nothing was written)")
        if os.path.lexists(path) and not path.is_dir():  # a file where the folder belongs: replacing it failed
            # half-way, after the translations were replaced and before the record was (they no longer matched)
            raise DataError(f"--run {folder.path}: {path} is a file, not a folder; an evaluation replaces the folders "
                            f"in RUN/eval. Move it away (mv {shell_word(path)} {shell_word(f'{path}.old')}) or "
                            f"{_copy_advice(folder.path)} "
                            f"(nothing was written)")


def _copy_advice(run: Path) -> str:
    """How to evaluate into a copy of ``run``: a plain copy (cp -r) holds the record (or the link) the copy was
    meant to avoid, and was refused as the run was."""
    copy = run.with_name(f"{run.name}-2")
    return (f"evaluate into a copy of the run without its eval folder (cp -r {shell_word(run)} {shell_word(copy)} "
            f"&& rm -r {shell_word(RunFolder(copy).eval)}, then --run {shell_word(copy)})")


def _staged(eval_dir: FolderWriter, name: str) -> FolderWriter:
    """A hidden folder beside RUN/eval/NAME where its replacement is built; `_commit` moves it into place once the
    scores are computed, so an evaluation that fails (unpaired files, a bad label map) leaves the record whole."""
    return eval_dir.subfolder(f".{name}{PARTIAL_INFIX}{secrets.token_hex(4)}")


EVALUATION = "the evaluation"  # `FolderWriter.check_in_place`'s words for what stopped


@contextlib.contextmanager
def _evaluating(folder: RunFolder) -> Iterator[FolderWriter]:
    """Hold RUN/eval for one evaluation (an `OutputLock`, RUN/.eval.lock): two at once (two shells, a script's loop)
    replaced each other's folders half-way, so the record could hold the scores of one and the translations of the
    other, and the later rename failed as `Directory not empty`. The staged folders found then were left by an
    evaluation that was killed: they are removed.

    Yields RUN/eval opened once (`FolderWriter`): every file, folder, rename and removal of the evaluation is made
    relative to it, so RUN/eval moved away and a link (to a folder of the user's) put in its place while it runs
    cannot send a write, a replacement or a deletion there."""
    with OutputLock(folder.eval, "--run: the evaluation record"), FolderWriter(folder.eval) as writer:
        check_own_folders(folder)  # the folder opened is the one checked: not a link swapped in since
        writer.check_in_place(EVALUATION)
        for name in (RunFolder.TRANSLATED, RunFolder.PREDICTED, RunFolder.MASKS):
            for stale in sorted(n for n in writer.names() if n.startswith(f".{name}{PARTIAL_INFIX}")):
                log.warning("removing %s, left by an evaluation that was interrupted", folder.eval / stale)
                writer.remove(stale)
        yield writer


def _commit(eval_dir: FolderWriter, staged: FolderWriter | Path, final: Path) -> None:
    """Put the staged folder in the place of RUN/eval/NAME (``final``), relative to the folder opened."""
    if isinstance(staged, FolderWriter):
        staged.close()
        eval_dir.replace_folder(staged.folder, final)


def _discard(eval_dir: FolderWriter, *staged: FolderWriter | Path | None) -> None:
    for folder in staged:
        if isinstance(folder, FolderWriter):
            folder.close()
            eval_dir.remove(folder.folder)


def _check_in_place(eval_dir: FolderWriter, *staged: FolderWriter | Path | None) -> None:
    """Before anything of the run's record is replaced: stop, naming both places, where RUN/eval was moved or
    replaced since it was opened (the staged folders are removed from the folder opened)."""
    try:
        eval_dir.check_in_place(EVALUATION)
    except DataError:
        _discard(eval_dir, *staged)
        raise


def _copy_translations(images: Path, eval_dir: FolderWriter) -> FolderWriter | Path:
    """The translations copied for RUN/eval/translated (sub-folders kept), so the run keeps what it shows: into a
    staged folder (`_staged`), or RUN/eval/translated itself (its path) where ``images`` is that folder."""
    target = eval_dir.folder / RunFolder.TRANSLATED
    if images.resolve() == target.resolve():
        return target
    if target.resolve() in images.resolve().parents or images.resolve() in target.resolve().parents:
        raise ConfigError(f"the translations {images} and the run's copy of them {target} overlap; translate into a "
                          f"folder outside {eval_dir.folder}, or pass {target} itself")
    files = scan_images(images, "translated image", hint="pass the folder `srunit translate` wrote")
    staged = _staged(eval_dir, RunFolder.TRANSLATED)
    try:
        for src in files:
            staged.write_bytes(src.relative_to(images), src.read_bytes())
    except BaseException:
        _discard(eval_dir, staged)
        raise
    return staged


def _stage_masks(folder: RunFolder, eval_dir: FolderWriter, images: Path) -> FolderWriter | None:
    """The unmatchability masks of ``images`` by the run's latest checkpoint, if it has one (StegoGAN), into a staged
    folder (`_staged`) that `_commit` moves to RUN/eval/masks with the other folders; None where it has none. Built
    before anything is replaced: masks that could not be made (a damaged B -> A generator, an interruption) left
    RUN/eval/translated replaced while the record still described the images before."""
    from srunit.unmatched import UnmatchedMasks

    if not folder.has_checkpoint():
        return None
    masks = UnmatchedMasks.from_checkpoint(folder.path)
    if masks is None:
        return None
    staged = _staged(eval_dir, RunFolder.MASKS)
    try:
        masks.write_into(images, staged)
    except BaseException:
        _discard(eval_dir, staged)
        raise
    return staged


def _latest_step(run: Path) -> int | None:
    """The step of RUN/checkpoints/latest (None: the run has no checkpoint)."""
    return RunFolder(run).latest_step()


def _provenance(run: Path, images: Path, option: str, replace: bool) -> dict[str, Any]:
    """What the scores of ``images`` belong to (the digest of the images, the run's checkpoint step), checked against
    the run's record: scores of other images or of another step are never merged into it."""
    digest, step = image_set_digest(images), _latest_step(run)
    record = read_run_record(RunFolder(run).eval)
    if record is not None and not replace:
        scored = [k for k in ("segmentation", "paired") if k in record]
        old_digest, old_step = record.get("images_digest"), record.get("checkpoint_step", step)
        if scored and (old_digest != digest or old_step != step):
            if old_digest is None:
                what = "images it cannot compare with these (it records no image digest: the benchmark or an older " \
                       "srunit wrote it)"
            elif old_digest != digest:
                what = f"other images (digest {old_digest[:12]}; these {option} {images}: {digest[:12]})"
            else:
                what = f"the checkpoint of step {old_step} (the run is at step {step} now)"
            raise DataError(
                f"--run {run}: its evaluation record {RunFolder(run).scores} holds {' and '.join(scored)} "
                f"scores of {what}; scores of two image sets or checkpoints are never mixed in one record. Pass "
                f"--replace-record to start the record afresh with these images (its scores are dropped), or "
                f"{_copy_advice(Path(run))}, or evaluate without --run (--json FILE)")
    return {"images_digest": digest, "num_translated": len(scan_images(images, "translated image")),
            "checkpoint_step": step}


def _folders(folder: RunFolder, sources: str | Path | None, **folders: Path) -> dict[str, str]:
    """The record's image folders (`stored_folder`): the run's own relative to RUN/eval/, the user's data (which
    may lie anywhere, and stays where it is when the run is moved) by absolute name."""
    if sources:
        folders["source"] = Path(sources)
    return {role: stored_folder(path, folder.eval, folder.path) for role, path in folders.items()}


def evaluate_run_segmentation(run: str | Path, images: str | Path, labels: str | Path, segment: Segmenter,
                              num_classes: int, *, segmenter: str, ignore_index: int = 255,
                              class_names: Sequence[str] | None = None,
                              palette: str | Sequence[Sequence[int]] | None = None,
                              sources: str | Path | None = None, replace: bool = False,
                              flips: tuple[tuple[int, ...], int | None] = ((), None),
                              hallucinated: Sequence[int] = (), show_progress: bool = False
                              ) -> tuple[FolderSegmentation, dict[str, Any]]:
    """Segment the run's translations (``images``), score them against ``labels`` and record it in ``run``.

    ``sources`` (the images that were translated) and ``palette`` (a name of ``PALETTES``, or RGB triples) only
    add to what the report shows; ``flips`` are the directed flip rate's source class ids and destination id
    (`srunit.eval.flips`); ``hallucinated`` (class ids the sources never hold) adds the hallucination rate
    (`srunit.eval.hallucination`); ``show_progress``: a bar of the images scored (`score_segmentation`). Where
    the run's checkpoint has an unmatchability mask (StegoGAN), the masks of the translations go to
    RUN/eval/masks (`srunit.unmatched`), for the report. Returns the scores and the run's whole evaluation record.

    Raises:
        DataError: the run's record holds scores of other images or of another checkpoint step (unless ``replace``:
            the record is then started afresh).
    """
    run, images = Path(run), Path(images)
    folder, info = checked_run(run)
    # Before the images are copied into the run
    check_images_and_labels(check_path(images, "evaluate_run_segmentation: images").expanduser(),
                            check_path(labels, "evaluate_run_segmentation: labels").expanduser())
    with _evaluating(folder) as eval_dir:
        info.update(_provenance(run, images, "--images", replace))
        # Copied and scored beside the record, which is replaced once the scores are in: a failure (unpaired files, a
        # bad label map) leaves it as it was. The user's folder is scored, so that errors name it.
        staged = _copy_translations(images, eval_dir)
        predicted = _staged(eval_dir, RunFolder.PREDICTED)
        masks: FolderWriter | None = None
        try:
            result = score_segmentation(images, labels, segment, num_classes, ignore_index=ignore_index,
                                        class_names=class_names, predicted=predicted, show_progress=show_progress)
            masks = _stage_masks(folder, eval_dir, images)
        except BaseException:
            _discard(eval_dir, staged, predicted, masks)
            raise
        _check_in_place(eval_dir, staged, predicted, masks)
        translated = folder.translated
        _commit(eval_dir, staged, translated)
        _commit(eval_dir, predicted, folder.predicted)
        if masks is not None:
            _commit(eval_dir, masks, folder.masks)
        else:  # masks of another checkpoint's translations
            eval_dir.remove(folder.masks)
        part = {**info, "segmenter": segmenter,
                "segmentation": result.to_dict(*flips),
                "class_names": list(result.scores.class_names),
                "images": _folders(folder, sources, translated=translated, labels=Path(labels),
                                   predicted=folder.predicted)}
        if hallucinated:
            part["segmentation"]["hallucination"] = result.hallucinations(hallucinated).to_dict()
        if masks is not None:
            part["images"].update(_folders(folder, None, masks=folder.masks))
        if palette is not None:
            part["palette"] = [list(c) for c in (PALETTES[palette] if isinstance(palette, str) else palette)]
        return result, update_run_record(folder.eval, part, replace=replace, writer=eval_dir)


def evaluate_run_paired(run: str | Path, pred: str | Path, target: str | Path, deltas: Sequence[int], *,
                        sources: str | Path | None = None, replace: bool = False, show_progress: bool = False
                        ) -> tuple[PairedScores, dict[str, Any]]:
    """Score the run's translations (``pred``) against ground truth ``target`` and record it in ``run``;
    returns the scores and the run's whole evaluation record. Refused as `evaluate_run_segmentation` is.
    ``show_progress``: a bar of the pairs scored (`paired_scores`)."""
    run, pred = Path(run), Path(pred)
    folder, info = checked_run(run)
    check_pred_and_target(check_path(pred, "evaluate_run_paired: pred").expanduser(),  # before pred is copied
                          check_path(target, "evaluate_run_paired: target").expanduser())
    with _evaluating(folder) as eval_dir:
        info.update(_provenance(run, pred, "--pred", replace))
        staged = _copy_translations(pred, eval_dir)  # as `evaluate_run_segmentation`: the record is replaced after
        try:
            scores = paired_scores(pred, target, deltas, show_progress=show_progress)
        except BaseException:
            _discard(eval_dir, staged)
            raise
        _check_in_place(eval_dir, staged)
        translated = folder.translated
        _commit(eval_dir, staged, translated)
        if replace:  # the class maps of the images replaced
            eval_dir.remove(folder.predicted)
        part = {**info, "paired": scores.to_dict(),
                "images": _folders(folder, sources, translated=translated, target=Path(target))}
        return scores, update_run_record(folder.eval, part, replace=replace, writer=eval_dir)
