"""`srunit eval`: score translated images (segmentation scores, paired pixel scores, FID/KID)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from srunit._atomic import write_json_atomic
from srunit._outputs import guard_optional_output, guard_output, output_arg, path_arg
from srunit._reading import same_folder
from srunit.checks import MAX_CLASSES, check_ignore_index, check_int, one_line
from srunit.cli.commands import COMMANDS
from srunit.cli.overrides import comma_list
from srunit.data.files import index_by_stem, scan_images
from srunit.errors import ConfigError, DataError
from srunit.eval import (
    PairedScores,
    SegmentationScores,
    fid_kid,
    load_segmenter,
    paired_scores,
    parse_deltas,
    score_segmentation,
)
from srunit.eval.flips import class_ids
from srunit.eval.records import EVAL_FORMAT
from srunit.eval.run_records import (
    check_own_folders,
    checked_run,
    evaluate_run_paired,
    evaluate_run_segmentation,
    resolve_class_names,
)
from srunit.eval.scoring import FolderSegmentation
from srunit.eval.segmenters import Segmenter
from srunit.runtime.run_folder import RunFolder

SYNTHSCAPES = "synthscapes"  # --segmenter and --class-names: the package's own benchmark data


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help=COMMANDS["eval"].summary,
        description="Evaluate translated images. `seg`: pixel accuracy, class accuracy and mean IoU of a "
        "fixed segmenter on the translated images against the source label maps (paper Sec. 5.1.1, App. B). "
        "`paired`: mean RGB pixel distance and Acc(delta) against ground-truth targets (Sec. 5.1.3-5.1.4). "
        "`fid`: FID and KID from a local Inception-v3 weights file.",
    )
    kinds = p.add_subparsers(dest="eval_kind", metavar="KIND", required=True)

    s = kinds.add_parser(
        "seg",
        help="segmentation scores (pixAcc, clsAcc, mIoU) with a fixed segmenter",
        description="Run --segmenter on every image of --images, compare with the label map of the same "
        "name stem in --labels (a.jpg <-> a.png, sub-folders mirrored), and accumulate one confusion matrix "
        "over all pixels. A missing partner or a size mismatch is an error, nothing is skipped. Classes "
        "absent from the labels are excluded from clsAcc and mIoU and marked in the table.",
    )
    s.add_argument("--images", required=True, type=path_arg, help="folder of translated images (scanned recursively)")
    s.add_argument("--labels", required=True, type=path_arg,
                   help="folder of label maps: single-channel PNGs (mode L, P or 16-bit) whose pixel values "
                   "are class ids 0..N-1 or the ignore index")
    s.add_argument("--segmenter", required=True, metavar="SPEC",
                   help="synthscapes (the package's SynthScapes scorer of the images' size, trained once per size and "
                   "cached in ~/.cache/srunit or $SRUNIT_CACHE; 8 classes: --classes 8 --class-names synthscapes); "
                   "PATH.pt|.ts|.torchscript (TorchScript) or PATH.onnx (ONNX, run with onnxruntime on "
                   "CPU): input float32 (1,3,H,W) RGB in [0,1], output logits (1,C,H,W) at the input size, "
                   "argmax over C; or MODULE:FUNCTION (MODULE importable or a .py file) mapping an (H,W,3) "
                   "uint8 RGB array to an (H,W) integer array of class ids")
    s.add_argument("--classes", required=True, type=int, metavar="N", help="number of classes (19 for Cityscapes)")
    s.add_argument("--ignore-index", type=int, default=255,
                   help="label value to skip (default 255); predictions outside 0..N-1 count as misses")
    s.add_argument("--class-names", default="none", metavar="NAMES",
                   help="names for the per-class table: cityscapes (the 19 train ids, needs --classes 19), "
                   "synthscapes (its 8 classes, needs --classes 8), a text "
                   "file with one name per line, a comma-separated list, or none (default; classes shown by id)")
    s.add_argument("--flip-from", type=comma_list, metavar="C1,C2",
                   help="the directed flip rate's source classes (names or ids): the classes over-represented in "
                   "domain A, e.g. sky,building; with --flip-to (SynthScapes: sky,building -> vegetation)")
    s.add_argument("--flip-to", metavar="C", help="the directed flip rate's destination: the class domain B has "
                   "most in excess (with --flip-from)")
    s.add_argument("--hallucinated", metavar="CLASSES",
                   help="classes the translated sources never hold (domain B's own, e.g. car; names of "
                   "--class-names or ids): also score the hallucination rate, the share of the labelled pixels "
                   "segmented as one of them where the source holds another class (lower is better)")
    s.add_argument("--json", type=output_arg, metavar="FILE",
                   help="also write the evaluation record to this JSON file (never inside an input or a run folder)")
    s.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    s.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none where standard error is not a terminal)")
    _run_options(s, "--images")

    q = kinds.add_parser(
        "paired",
        help="mean pixel distance and Acc(delta) against ground-truth targets",
        description="Compare each image of --pred with the --target image of the same name stem (a.png <-> "
        "a.jpg, sub-folders mirrored; same size required). Dist = mean over all pixels of all images of the "
        "L2 distance of 0-255 RGB values; Acc(delta) = share of pixels whose largest per-channel absolute "
        "difference is < delta.",
    )
    q.add_argument("--pred", required=True, type=path_arg, help="folder of translated images (scanned recursively)")
    q.add_argument("--target", required=True, type=path_arg, help="folder of ground-truth target images")
    q.add_argument("--delta", default="30,50", metavar="D1,D2,...",
                   help="comma-separated Acc thresholds in 0-255 units (default 30,50)")
    q.add_argument("--json", type=output_arg, metavar="FILE",
                   help="also write the evaluation record to this JSON file (never inside an input or a run folder)")
    q.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    q.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none where standard error is not a terminal)")
    _run_options(q, "--pred")

    f = kinds.add_parser(
        "fid",
        help="FID and KID from Inception-v3 features (local weights file, no download)",
        description="Frechet Inception Distance and Kernel Inception Distance (mean and std over random "
        "subsets) between --real and --fake (both scanned recursively), computed with torchmetrics. The "
        "paper argues these scores mislead for this task; they are given for comparison with other work.",
    )
    f.add_argument("--real", required=True, type=path_arg, help="folder of real target-domain images")
    f.add_argument("--fake", required=True, type=path_arg, help="folder of translated images")
    f.add_argument("--weights", required=True, type=path_arg, metavar="FILE",
                   help="local Inception-v3 weights: inception-2015-12-05.pt (TorchScript) or "
                   "pt_inception-2015-12-05-6726825d.pth (needs torch-fidelity); never downloaded")
    f.add_argument("--kid-subsets", type=int, default=100, metavar="N", help="KID subsets (default 100)")
    f.add_argument("--kid-subset-size", type=int, default=1000, metavar="N",
                   help="images per KID subset (default 1000; clipped to the smaller folder)")
    f.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    f.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    f.add_argument("--json", type=output_arg, metavar="FILE", help="also write the scores to this JSON file")
    f.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    f.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none where standard error is not a terminal)")


def _run_options(p: argparse.ArgumentParser, images_option: str) -> None:
    p.add_argument("--run", type=path_arg, metavar="RUN",
                   help=f"record the evaluation in this run folder: the scores in RUN/eval/scores.json (the format "
                   f"the benchmark writes; seg and paired add up), the {images_option} images in RUN/eval/translated "
                   "and, for seg, the predicted class maps in RUN/eval/predicted; `srunit report RUN` shows them")
    p.add_argument("--sources", type=path_arg, metavar="DIR",
                   help="with --run: the images that were translated, shown beside the translations in the report")
    p.add_argument("--replace-record", action="store_true",
                   help="with --run: start the run's record afresh with these images; without it, scores of other "
                   "images or of another checkpoint step than those already recorded are refused")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_json_atomic(path, data)
    print(f"wrote {one_line(str(path))}")


def _pct(x: float) -> str:
    return "  absent" if math.isnan(x) else f"{100.0 * x:8.2f}"


def _print_flips(flips: dict[str, Any]) -> None:
    print(f"flips: {100 * flips['flip_rate']:.2f}% of the labelled pixels segmented as another class"
          + (f"; {100 * flips['unrendered_rate']:.2f}% segmented as none of the classes (the SynthScapes scorer's "
             f"'not rendered')" if flips["unrendered_rate"] else ""))
    if flips.get("flip_to") is not None:
        rate = flips.get("directed_flip_rate")
        shown = "no pixel of those classes" if rate is None else f"{100 * rate:.2f}%"
        print(f"directed flip rate {', '.join(flips['flip_from'])} -> {flips['flip_to']}: {shown}")
    width = max(len(str(c["name"])) for c in flips["per_class"])
    print(f"{'class':<{width}}  {'flipped %':>9}  most went to")
    for c in flips["per_class"]:
        if c["flip_rate"] is None:
            continue
        to = f"{c['top_destination']} ({100 * c['top_destination_rate']:.1f}%)" if c["flip_rate"] > 0 else "-"
        print(f"{c['name']:<{width}}  {100 * c['flip_rate']:9.2f}  {to}")


def _flip_classes(args: argparse.Namespace, names: list[str] | None) -> tuple[tuple[int, ...], int | None]:
    """--flip-from/--flip-to as class ids (checked before any image is read)."""
    from srunit.eval.flips import class_ids
    from srunit.eval.segmentation import class_name_list

    if (args.flip_from is None) != (args.flip_to is None):
        raise ConfigError("the directed flip rate needs both --flip-from and --flip-to; give both or neither")
    if args.flip_from is None:
        return (), None
    all_names = class_name_list(names, args.classes)
    sources = class_ids(args.flip_from, all_names, "--flip-from")
    to = class_ids(args.flip_to, all_names, "--flip-to")
    if len(to) != 1:
        raise ConfigError(f"--flip-to takes one class, got {args.flip_to!r}")
    if to[0] in sources:
        raise ConfigError(f"--flip-to {args.flip_to!r} is also among --flip-from; a class cannot flip into itself")
    return sources, to[0]


def _print_seg(scores: SegmentationScores, num_images: int) -> None:
    print(f"images: {num_images}   labelled pixels: {scores.num_pixels}")
    print(f"pixAcc {100 * scores.pixel_accuracy:.2f}%   clsAcc {100 * scores.class_accuracy:.2f}%   "
          f"mIoU {100 * scores.mean_iou:.2f}%")
    width = max(len(n) for n in scores.class_names)
    print(f"{'id':>3}  {'class':<{width}}  {'acc %':>8}  {'IoU %':>8}")
    for i, name in enumerate(scores.class_names):
        print(f"{i:>3}  {name:<{width}}  {_pct(scores.per_class_accuracy[i])}  {_pct(scores.per_class_iou[i])}")
    if scores.absent_classes:
        print(f"absent from the labels (excluded from clsAcc and mIoU): {scores.absent_classes}")


def _check_json(args: argparse.Namespace, *inputs: str) -> None:
    """--json may be none of the inputs (nor inside one, nor inside a run folder), replaced only with --overwrite."""
    named = [(f"--{name}", getattr(args, name)) for name in inputs]
    segmenter = Path(str(getattr(args, "segmenter", "")).split(":", 1)[0])
    named.append(("--segmenter", segmenter if segmenter.suffix and segmenter.exists() else None))
    guard_optional_output(args.json, "--json", inputs=named, overwrite=args.overwrite)


def _check_run_options(args: argparse.Namespace, *inputs: str) -> None:
    _check_json(args, *inputs, "sources")
    if args.replace_record and args.run is None:
        raise ConfigError("--replace-record replaces a run's evaluation record; pass --run RUN as well, or leave "
                          "--replace-record out")
    if args.sources is not None and args.run is None:
        raise ConfigError("--sources only adds to a run's record; pass --run RUN as well, or leave --sources out")
    if args.sources is not None and not args.sources.is_dir():
        raise DataError(f"--sources {args.sources} is not a folder; give the folder of the images that were "
                        f"translated, or leave --sources out")
    if args.sources is not None:
        _check_sources(args.sources, getattr(args, inputs[0]), f"--{inputs[0]}")
    if args.run is not None:  # the record replaces RUN/eval/predicted: no input may live there
        # RUN/eval (or a folder in it) as a file or a link, named as such before the output checks: RUN/eval as a
        # file was "--run RUN/eval is a file; give a folder (new or empty) to write into", an option the user gave
        # as RUN, and advice that no run folder can follow
        check_own_folders(RunFolder(args.run))
        guard_output(RunFolder(args.run).eval, "--run", folder=True, run=args.run,
                     inputs=[(f"--{name}", getattr(args, name)) for name in (*inputs[1:], "sources")])


def _check_sources(sources: Path, translated: Path, option: str) -> None:
    """``--sources`` must hold the images that were translated, by name, as the report pairs them. A run folder, a
    folder without images or one whose names match none of the translations was recorded without a word, and only
    the report said, later, that it could show no grid ("rerun the evaluation")."""
    fix = "give the folder that was translated (srunit translate --input), or leave --sources out"
    found = index_by_stem(scan_images(sources, "--sources", hint=fix), sources, "--sources")
    made = index_by_stem(scan_images(translated, option, hint="check the path"), translated, option)
    missing = sorted(set(made) - set(found))
    if missing:
        raise DataError(f"--sources {sources} holds no image of the name of {len(missing)} of the {len(made)} "
                        f"translations in {option} {translated} (first: {made[missing[0]].name}); a translation "
                        f"keeps its source's name: {fix}")


def _segmenter(spec: str, num_classes: int | None, images: Path, show_progress: bool = True) -> Segmenter:
    """``--segmenter``: ``synthscapes`` (the benchmark's scorer of the size of the images of ``images``, from its
    cache or trained there once), or a spec of `load_segmenter`."""
    if num_classes is not None:  # named as the option whichever the segmenter: load_segmenter names its argument
        check_int(num_classes, "--classes", 1, maximum=MAX_CLASSES,
                  fix="pass the number of classes the segmenter predicts (19 for Cityscapes)")
    if spec != SYNTHSCAPES:
        return load_segmenter(spec, num_classes)
    from srunit.synthscapes.scenes import CLASS_NAMES
    from srunit.synthscapes.scorer import load_or_train_segmenter

    if num_classes is not None and num_classes != len(CLASS_NAMES):  # its extra output is "not rendered", no class
        raise ConfigError(f"--segmenter synthscapes scores the {len(CLASS_NAMES)} SynthScapes classes, got --classes "
                          f"{num_classes}; pass --classes {len(CLASS_NAMES)} (with more, its 'not rendered' output "
                          f"would count as a class and as flips)")
    from srunit.synthscapes.settings import scorer_settings

    size = _synthscapes_size(images)
    net, path = load_or_train_segmenter(scorer_settings(size), show_progress=show_progress)
    print(f"segmenter: the SynthScapes scorer of {size} px images {one_line(str(path))}")
    return net.segment


def _synthscapes_size(images: Path) -> int:
    """The side of the square images of ``images`` (--images), all of one size, which the SynthScapes scorer is
    trained at (the benchmark trains one per size)."""
    from srunit.data.images import image_size
    from srunit.synthscapes.dataset import MAX_SIZE, MIN_SIZE

    sizes: dict[tuple[int, int], Path] = {}
    for path in scan_images(images, "--images"):
        sizes.setdefault(image_size(path), path)
    shown = ", ".join(f"{w}x{h} ({one_line(str(path))})" for (w, h), path in list(sizes.items())[:3])
    shown += " ..." if len(sizes) > 3 else ""
    (w, h), *others = sizes
    if others or w != h:
        raise DataError(f"--images {one_line(str(images))}: --segmenter synthscapes scores square images of one size "
                        f"(its scorer is trained at that size), but these are {shown}; score the images of each "
                        "size on their own")
    if not MIN_SIZE <= w <= MAX_SIZE:
        raise DataError(f"--images {one_line(str(images))}: the images are {shown}; the SynthScapes scorer takes "
                        f"{MIN_SIZE} to {MAX_SIZE} px, the sizes `srunit data synthscapes --size` writes")
    return w


def _class_names(spec: str, num_classes: int) -> tuple[list[str] | None, Any]:
    """``--class-names`` -> (names, palette for the report: a name of PALETTES, RGB triples, or None)."""
    if spec == SYNTHSCAPES:
        from srunit.synthscapes.scenes import PALETTE

        return resolve_class_names(spec, num_classes), PALETTE.tolist()
    return resolve_class_names(spec, num_classes), "cityscapes" if spec == "cityscapes" else None


def _hallucinated(spec: str | None, names: list[str] | None, num_classes: int) -> tuple[int, ...]:
    """``--hallucinated``: class names (of --class-names) or ids -> ids; () when not given."""
    if spec is None:
        return ()
    check_int(num_classes, "--classes", 1, maximum=MAX_CLASSES)
    return class_ids(spec, names or [str(i) for i in range(num_classes)], "--hallucinated")


def _print_hallucination(result: FolderSegmentation, classes: tuple[int, ...]) -> None:
    if classes:
        h = result.hallucinations(classes)
        where = ", ".join(f"{name} {100 * share:.1f}%" for name, share in
                          sorted(h.sources.items(), key=lambda item: -item[1])[:4])
        print(f"hallucinated as {', '.join(h.classes)}: {100 * h.rate:.3f}% of the labelled pixels "
              f"({h.pixels} pixels{'; painted on ' + where if where else ''})")


def _run_seg(args: argparse.Namespace) -> int:
    check_ignore_index(args.ignore_index)
    _check_run_options(args, "images", "labels")
    names, palette = _class_names(args.class_names, args.classes)
    flips = _flip_classes(args, names)
    hallucinated = _hallucinated(args.hallucinated, names, args.classes)
    if args.run is not None:  # before a scorer is trained for the images' size (minutes), as a wrong --run was
        checked_run(Path(args.run))
    # The segmenter is loaded next: a wrong spec fails before any image is read.
    segment = _segmenter(args.segmenter, args.classes, args.images, show_progress=not args.no_progress)
    if args.run is not None:
        result, record = evaluate_run_segmentation(
            args.run, args.images, args.labels, segment, args.classes, segmenter=args.segmenter,
            ignore_index=args.ignore_index, class_names=names, palette=palette, sources=args.sources,
            replace=args.replace_record, flips=flips, hallucinated=hallucinated, show_progress=not args.no_progress)
        _print_seg(result.scores, result.num_images)
        _print_flips(record["segmentation"]["flips"])
        _print_hallucination(result, hallucinated)
        print(f"recorded in {one_line(str(RunFolder(args.run).scores))}")
    else:
        result = score_segmentation(args.images, args.labels, segment, args.classes,
                                    ignore_index=args.ignore_index, class_names=names,
                                    show_progress=not args.no_progress)
        _print_seg(result.scores, result.num_images)
        segmentation = result.to_dict(*flips)
        _print_flips(segmentation["flips"])
        _print_hallucination(result, hallucinated)
        record = {"format": EVAL_FORMAT, "segmenter": args.segmenter,
                  "segmentation": segmentation,
                  "class_names": list(result.scores.class_names),
                  "images": {"translated": str(Path(args.images).resolve()),
                             "labels": str(Path(args.labels).resolve())}}
        if hallucinated:
            record["segmentation"]["hallucination"] = result.hallucinations(hallucinated).to_dict()
    if args.json is not None:
        _write_json(args.json, record)
    return 0


def _print_paired(scores: PairedScores) -> None:
    print(f"images: {scores.num_images}   pixels: {scores.num_pixels}")
    header = f"{'Dist':>8}" + "".join(f"  {f'Acc({d}) %':>11}" for d in scores.acc)
    print(header)
    print(f"{scores.dist:8.2f}" + "".join(f"  {100 * a:11.2f}" for a in scores.acc.values()))


def _refuse_one_folder(first: str | Path | None, first_option: str, second: str | Path | None, second_option: str,
                       why: str) -> None:
    """ConfigError where two options that must name two folders name one (spelt twice, or through a link)."""
    if first is not None and second is not None and same_folder(first, second):
        raise ConfigError(f"{first_option} and {second_option} are the same folder ({Path(first).expanduser()}); "
                          f"{why}")


def _run_paired(args: argparse.Namespace) -> int:
    _check_run_options(args, "pred", "target")
    # Each target was scored against itself: Dist 0.00, Acc 100 %, status 0, without a word. (The benchmark scores its
    # ground truth against itself through paired_scores, as the upper bound, so the check is the command's.)
    _refuse_one_folder(args.pred, "--pred", args.target, "--target", "every image would be scored against itself; "
                       "pass --pred DIR with the translated images and --target DIR with the ground truth")
    # One folder inside the other is refused by paired_scores (the API's check, in these options' names).
    deltas = parse_deltas(args.delta)
    if args.run is not None:
        scores, record = evaluate_run_paired(args.run, args.pred, args.target, deltas, sources=args.sources,
                                             replace=args.replace_record, show_progress=not args.no_progress)
        _print_paired(scores)
        print(f"recorded in {one_line(str(RunFolder(args.run).scores))}")
    else:
        scores = paired_scores(args.pred, args.target, deltas, show_progress=not args.no_progress)
        _print_paired(scores)
        record = {
            "format": EVAL_FORMAT,
            "paired": scores.to_dict(),
            "images": {"translated": str(Path(args.pred).resolve()), "target": str(Path(args.target).resolve())},
        }
    if args.json is not None:
        _write_json(args.json, record)
    return 0


def _run_fid(args: argparse.Namespace) -> int:
    _check_json(args, "real", "fake", "weights")
    # One set against itself printed FID 0 and KID 0, status 0, without a word (`fid_kid` itself takes it: a sanity
    # check of a feature network).
    _refuse_one_folder(args.real, "--real", args.fake, "--fake", "FID and KID would compare the images with "
                       "themselves; pass --real DIR with real target-domain images and --fake DIR with the "
                       "translations")
    # One folder inside the other is refused by fid_kid (the API's check, in these options' names), before the
    # feature network is loaded.
    s = fid_kid(
        args.real,
        args.fake,
        weights=args.weights,
        kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size,
        batch_size=args.batch_size,
        device=args.device,
        show_progress=not args.no_progress,
    )
    print(f"FID  {s.fid:.4f}\nKID  {s.kid_mean:.6f} +- {s.kid_std:.6f}\nimages: real {s.num_real}, fake {s.num_fake}")
    if args.json is not None:
        _write_json(args.json, s.to_dict())
    return 0


def run(args: argparse.Namespace, extra: list[str]) -> int:
    runners = {"seg": _run_seg, "paired": _run_paired, "fid": _run_fid}
    return runners[args.eval_kind](args)
