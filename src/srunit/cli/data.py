"""`srunit data`: build the paper's unmatched-statistics training sets (App. C, D) and StegoGAN-style mismatch
splits (a class in domain B only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from srunit._atomic import FolderWriter
from srunit._outputs import (
    building_folder,
    check_name,
    check_not_in_a_domain_folder,
    guard_output,
    output_arg,
    path_arg,
)
from srunit.checks import check_range, one_line
from srunit.cli.commands import COMMANDS
from srunit.data.files import refuse_nested_inputs
from srunit.datasets import (
    PALETTES,
    SPLIT_MODES,
    SplitResult,
    mismatch_split,
    prepare_cityscapes,
    require_empty_output,
    resolve_class,
    split_folders,
    split_side_by_side,
)
from srunit.synthscapes import make_synthscapes

_OUT_HELP = ("new or empty output folder, never inside an input; written whole or not at all (built in a hidden "
             ".OUT.partial-* folder beside it and renamed into place at the end)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help=COMMANDS["data"].summary,
        description="Dataset tools: cut pix2pix A|B images, convert Cityscapes, split images into trainA/trainB "
        "by K-means on per-image histograms so that the two domains have different content statistics, split images "
        "with label maps into domains with and without a class (StegoGAN's mismatch), and generate SynthScapes.",
    )
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    s = dsub.add_parser(
        "split",
        help="split images into trainA/trainB by histogram clustering",
        description="labels mode (Label->Image): class histograms of --labels, K-means K=2; trainA = --images-a files "
        "of the larger cluster, trainB = --images-b files of the other. maps mode: 51-bucket grey histograms of the "
        "map images, K-means K=2, ranked by the ratio of centroid distances; the first half is cluster I; trainA = "
        "cluster I's --images-a files + --other-fraction of cluster II's; trainB = cluster II's --images-b files + "
        "--other-fraction of cluster I's. Files are matched across folders by their relative path without extension. "
        "Writes OUT/trainA, OUT/trainB (symlinks unless --copy) and OUT/manifest.json.",
    )
    s.add_argument("--mode", choices=SPLIT_MODES, default="labels", help="labels (default) or maps")
    s.add_argument("--labels", type=path_arg,
                   help="folder of images the histograms are computed from: class-id label maps in labels mode "
                   "(required); map images in maps mode (default: --images-a)")
    s.add_argument("--palette", choices=list(PALETTES),
                   help="labels mode: read colour label images with this palette (cityscapes: 19 train colours -> "
                   "ids 0..18)")
    s.add_argument(
        "--classes", type=int, help="number of classes in labels mode (default 19 with --palette cityscapes)"
    )
    s.add_argument("--ignore-index", type=int, default=None,
                   help="label id not counted in histograms in labels mode (default 255)")
    s.add_argument("--images-a", type=path_arg, required=True, help="folder of the files that may go into trainA")
    s.add_argument("--images-b", type=path_arg, required=True, help="folder of the files that may go into trainB")
    s.add_argument(
        "--mix",
        type=float,
        default=0.0,
        help="App. D: percent of the opposite cluster added to each domain, 0..100 (default 0)",
    )
    s.add_argument(
        "--other-fraction",
        type=float,
        help="maps mode: fraction of the other cluster added to each domain (default 0.10, as in the paper)",
    )
    s.add_argument("--seed", type=int, default=0, help="seed for K-means and the random draws (default 0)")
    s.add_argument("--copy", action="store_true", help="copy files instead of creating symlinks")
    s.add_argument("--out", type=output_arg, required=True, help=_OUT_HELP)

    x = dsub.add_parser(
        "mismatch",
        help="split images with label maps into trainA without a class and trainB with a share of it (StegoGAN)",
        description="A non-bijective split (StegoGAN's Google_mismatch and BRATS_mismatch): an image holds --class "
        "when more than --min-share percent of its labelled pixels are that class, and lacks it when none is "
        "(images in between are left out). trainA = --images-a files of images that lack it; trainB = --images-b "
        "files, --share percent of them of images that hold it, the rest of images that lack it; both of one size, "
        "as large as the images allow. --num-test images that lack it are held out as testA (--images-a files), "
        "testB (--images-b files) and testLabels (their label maps), to score hallucinations with `srunit eval seg "
        "--hallucinated CLASS`. No image is in two parts. Files are matched across folders by their relative path "
        "without extension. Writes OUT/trainA, OUT/trainB, OUT/testA, OUT/testB, OUT/testLabels (symlinks unless "
        "--copy) and OUT/manifest.json.",
    )
    x.add_argument("--labels", type=path_arg, required=True,
                   help="folder of class-id label maps (colour label images with --palette)")
    x.add_argument("--class", dest="class_", required=True, metavar="CLASS",
                   help="the class domain A must not hold: a label id, or a Cityscapes class name with --palette "
                   "cityscapes (e.g. car)")
    x.add_argument("--palette", choices=list(PALETTES),
                   help="read colour label images with this palette (cityscapes: 19 train colours -> ids 0..18)")
    x.add_argument("--ignore-index", type=int, default=255, help="label id not counted (default 255)")
    x.add_argument("--images-a", type=path_arg, required=True, help="folder of the files that may go into trainA/testA")
    x.add_argument("--images-b", type=path_arg, required=True, help="folder of the files that may go into trainB/testB")
    x.add_argument("--share", type=float, default=60.0,
                   help="percent of trainB's images that hold the class, 0..100 (default 60, as BRATS_mismatch)")
    x.add_argument("--min-share", type=float, default=0.0,
                   help="percent of its labelled pixels above which an image holds the class (default 0: any pixel; "
                   "BRATS_mismatch: 1)")
    x.add_argument("--num-test", type=int, default=0, help="images without the class held out for testing (default 0)")
    x.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    x.add_argument("--copy", action="store_true", help="copy files instead of creating symlinks")
    x.add_argument("--out", type=output_arg, required=True, help=_OUT_HELP)

    m = dsub.add_parser(
        "maps",
        help="cut pix2pix-style A|B images into two folders",
        description="Cut each image of --input into its left and right halves, written as PNG to OUT/<left-name> "
        "and OUT/<right-name> (sub-folders mirrored). In the pix2pix maps download the left half is the aerial "
        "photo and the right half the map.",
    )
    m.add_argument("--input", type=path_arg, required=True, help="folder of side-by-side images (scanned recursively)")
    m.add_argument("--out", type=output_arg, required=True,
                   help="output folder; its two sub-folders must be new or empty, and appear whole or not at all")
    m.add_argument("--left-name", default="photo", help="folder for the left halves (default photo)")
    m.add_argument("--right-name", default="map", help="folder for the right halves (default map)")

    c = dsub.add_parser(
        "cityscapes",
        help="convert a Cityscapes download for Label->Image",
        description="Read ROOT/leftImg8bit/{train,val} and ROOT/gtFine/{train,val} and write, at 512x256, "
        "OUT/{train,val}A (colour labels, nearest), OUT/{train,val}B (photos, bicubic) and OUT/{train,val}_labels "
        "(train ids 0..18, other classes 255).",
    )
    c.add_argument("--root", type=path_arg, required=True, help="folder holding leftImg8bit/ and gtFine/")
    c.add_argument("--out", type=output_arg, required=True, help=_OUT_HELP)
    c.add_argument("--width", type=int, default=512, help="output width (default 512)")
    c.add_argument("--height", type=int, default=256, help="output height (default 256)")

    g = dsub.add_parser(
        "synthscapes",
        help="generate SynthScapes: label maps -> renderings with exact ground truth",
        description="Draw a pool of street layouts (half leafy, half urban), split it by K-means on the class "
        "histograms (as `split --mode labels`): trainA = label colour maps of cluster I, trainB = photo-like "
        "renderings of cluster II, from disjoint layouts; --mix adds the opposite cluster (App. D). testA/testB/"
        "testLabels hold fresh label maps, their exact renderings and class-id maps. Deterministic per --seed.",
    )
    g.add_argument("--out", type=output_arg, required=True, help=_OUT_HELP)
    g.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    g.add_argument("--num-pool", type=int, default=400, help="layouts in the pool before the split (default 400)")
    g.add_argument("--num-test", type=int, default=64, help="test images (default 64)")
    g.add_argument(
        "--mix",
        type=float,
        default=0.0,
        help="percent of the opposite cluster added to each domain (default 0: unmatched statistics; 100: matched)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed (default 0)")


def _new_folder(args: argparse.Namespace, *inputs: tuple[str, Path | None]) -> None:
    refuse_nested_inputs(inputs)  # before the output is checked or made
    guard_output(args.out, "--out", folder=True, inputs=inputs)
    check_not_in_a_domain_folder(args.out, "--out", "the new data set's images")
    require_empty_output(args.out)


def _split(args: argparse.Namespace) -> int:
    _new_folder(args, ("--images-a", args.images_a), ("--images-b", args.images_b), ("--labels", args.labels))
    with building_folder(args.out, "--out") as tmp:
        result = _split_into(tmp, args)
    print(f"wrote {len(result.a)} trainA and {len(result.b)} trainB file(s) to {one_line(str(args.out))}")
    return 0


def _split_into(out: FolderWriter, args: argparse.Namespace) -> SplitResult:
    return split_folders(
        out,
        images_a=args.images_a,
        images_b=args.images_b,
        mode=args.mode,
        labels=args.labels,
        palette=args.palette,
        classes=args.classes,
        ignore_index=args.ignore_index,
        mix=args.mix,
        other_fraction=args.other_fraction,
        seed=args.seed,
        link=not args.copy,
    )


def _mismatch(args: argparse.Namespace) -> int:
    class_id = resolve_class(args.class_, args.palette)  # before any file is read or written
    for option, value in (("--share", args.share), ("--min-share", args.min_share)):  # percent, as given
        check_range(value, option, 0.0, 100.0)
    _new_folder(args, ("--images-a", args.images_a), ("--images-b", args.images_b), ("--labels", args.labels))
    with building_folder(args.out, "--out") as tmp:
        split, _ = mismatch_split(tmp, images_a=args.images_a, images_b=args.images_b, labels=args.labels,
                                  class_id=class_id, share=args.share / 100, min_share=args.min_share / 100,
                                  num_test=args.num_test, palette=args.palette, ignore_index=args.ignore_index,
                                  seed=args.seed, link=not args.copy)
    print(f"class {args.class_}: {split.holding} image(s) hold it, {split.lacking} lack it, {split.left_out} left out")
    print(f"wrote {len(split.a)} trainA file(s) without it, {len(split.b)} trainB file(s) ({split.b_holding} with it, "
          f"{100 * split.b_holding / len(split.b):.0f}%) and {len(split.test)} test image(s) without it to "
          f"{one_line(str(args.out))}")
    return 0


def _synthscapes(args: argparse.Namespace) -> int:
    _new_folder(args)
    with building_folder(args.out, "--out") as tmp:
        manifest = make_synthscapes(
            tmp, num_pool=args.num_pool, num_test=args.num_test, size=args.size, seed=args.seed, mix=args.mix
        )
    for domain in ("trainA", "trainB"):
        fractions = ", ".join(f"{k} {100 * v:.0f}%" for k, v in manifest[domain]["class_fractions"].items())
        print(f"{domain}: {len(manifest[domain]['pool_indices'])} images; mean class fractions: {fractions}")
    print(f"test: {args.num_test} label maps (testA) with exact renderings (testB) and class-id maps (testLabels)")
    print(f"wrote {one_line(str(args.out))} (manifest.json lists every pool index)")
    return 0


def run(args: argparse.Namespace, extra: list[str]) -> int:
    if args.data_command == "split":
        return _split(args)
    if args.data_command == "synthscapes":
        return _synthscapes(args)
    if args.data_command == "mismatch":
        return _mismatch(args)
    if args.data_command == "maps":
        names = [check_name(args.left_name, "--left-name"), check_name(args.right_name, "--right-name")]
        guard_output(args.out, "--out", folder=True, inputs=[("--input", args.input)])
        check_not_in_a_domain_folder(args.out, "--out", "the new data set's images")
        for name in names:
            require_empty_output(args.out / name)
        with building_folder(args.out, "--out", subfolders=names) as tmp:
            n = split_side_by_side(args.input, tmp, a_name=args.left_name, b_name=args.right_name)
        print(f"split {n} image(s) into {one_line(str(args.out / args.left_name))} and "
              f"{one_line(str(args.out / args.right_name))}")
        return 0
    _new_folder(args, ("--root", args.root))
    with building_folder(args.out, "--out") as tmp:
        counts = prepare_cityscapes(args.root, tmp, size=(args.width, args.height))
    print(f"wrote {', '.join(f'{n} {s}' for s, n in counts.items())} image(s) to {one_line(str(args.out))}")
    if (args.root / "leftImg8bit" / "test").is_dir():  # its gtFine files hold no labels: nothing to score against
        print(f"not converted: {one_line(str(args.root / 'leftImg8bit' / 'test'))} (Cityscapes publishes no labels "
              f"for its test split; the paper trains on train and tests on val)")
    return 0
