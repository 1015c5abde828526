"""`srunit translate`: translate an image or a folder with a trained generator."""

from __future__ import annotations

import argparse
import logging
import os
import time

from srunit._outputs import guard_output, output_arg, path_arg
from srunit.checks import DEFAULT_MAX_PIXELS, MAX_PIXELS_LIMIT, PRECISIONS, check_int, one_line
from srunit.cli.commands import CHECKPOINT_KINDS, COMMANDS
from srunit.data.files import IMAGE_EXTENSIONS
from srunit.errors import ConfigError
from srunit.inference import DIRECTIONS, Translator

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate",
        help=COMMANDS["translate"].summary,
        description="Translate domain-A images at their native resolution (padded to a multiple of the "
        "generator's size multiple, 4 for the built-in generators, and cropped back). Sub-folders of --input are "
        "mirrored under --output; outputs are PNG files named after their input without its extension. Sources "
        "are never written: an --output inside --input, two inputs giving one output name (a.png and a.jpg) and "
        "existing outputs (without --overwrite) are refused before anything is translated; each output is "
        "written atomically. A DRIT checkpoint also takes an attribute code: --attribute-seed N or --reference "
        "IMAGE.",
    )
    p.add_argument("--checkpoint", required=True, type=path_arg,
                   help=CHECKPOINT_KINDS)
    p.add_argument("--direction", default=None, choices=list(DIRECTIONS),
                   help="AtoB or BtoA: the B -> A generator of a two-sided run (cyclegan). Default: AtoB for a run "
                   "or checkpoint folder; a generator file (or export) translates in its own direction")
    p.add_argument("--input", required=True, type=path_arg, help="an image file or a folder (scanned recursively)")
    p.add_argument("--output", required=True, type=output_arg,
                   help="output folder (created if needed); never inside --input or a run folder")
    p.add_argument("--overwrite", action="store_true", help="replace output files that exist already")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse images with more pixels (default {DEFAULT_MAX_PIXELS}, 4096 x 4096): memory grows "
                   "with the pixels")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none where standard error is not a terminal)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps | xpu (default auto)")
    p.add_argument("--precision", default=None, choices=list(PRECISIONS),
                   help="compute dtype (default fp32; an exported file computes in its own)")
    p.add_argument("--attribute-seed", type=int, default=None, metavar="N",
                   help="multimodal (DRIT) checkpoints: draw the attribute code z_a ~ N(0, I) from seed N, one code "
                   "for every image (default 0); the same N gives the same outputs")
    p.add_argument("--reference", type=path_arg, default=None, metavar="IMAGE",
                   help="multimodal (DRIT) checkpoints: take the attribute code from this domain-B image instead")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    check_int(args.max_pixels, "--max-pixels", 1, maximum=MAX_PIXELS_LIMIT)
    if args.attribute_seed is not None and args.reference is not None:
        raise ConfigError(f"--attribute-seed {args.attribute_seed} and --reference {args.reference}: the attribute "
                          "code comes from a seed or from a reference image; give only one of them")
    guard_output(args.output, "--output", folder=True, inputs=[
        ("--input", args.input), ("--checkpoint", args.checkpoint), ("--reference", args.reference)])
    translator = Translator.from_checkpoint(args.checkpoint, device=args.device, precision=args.precision,
                                            direction=args.direction)
    if args.reference is not None:
        code = translator.attribute_code(args.reference, "--reference")
    else:
        code = translator.attribute_code(args.attribute_seed, "--attribute-seed")
    if not os.path.lexists(args.output) and args.output.suffix.lower() in IMAGE_EXTENSIONS:
        # `--output out.png` made a folder out.png holding 0000.png, with no word of it
        log.warning("--output %s names a folder, which is made: each translation is a PNG file inside it, named "
                    "after its input (%s/NAME.png)", one_line(str(args.output)), one_line(str(args.output)))
    start = time.perf_counter()
    written = translator.translate_folder(args.input, args.output, batch_size=args.batch_size, attribute=code,
                                          overwrite=args.overwrite, max_pixels=args.max_pixels,
                                          show_progress=not args.no_progress)
    print(f"translated {len(written)} image(s) into {one_line(str(args.output))} in "
          f"{time.perf_counter() - start:.1f} s")
    return 0
