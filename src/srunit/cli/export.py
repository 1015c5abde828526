"""`srunit export`: a trained generator as an ONNX file or a torch.export program (or TorchScript), checked against
PyTorch."""

from __future__ import annotations

import argparse

from srunit._outputs import output_arg, path_arg
from srunit.checks import check_int
from srunit.cli.commands import COMMANDS
from srunit.export import DEFAULT_CHECK_SIZES, DEFAULT_OPSET, FORMATS, TOLERANCES, export_generator, parse_size
from srunit.runtime.run_folder import DIRECTIONS

_DEFAULT_SIZES = ", ".join(f"{h}x{w}" for _, h, w in DEFAULT_CHECK_SIZES)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help=COMMANDS["export"].summary,
        description="Write the generator of a run as an ONNX file or a torch.export program (.pt2; TorchScript, "
        "which torch deprecates, for runtimes that read only it) with dynamic batch, height and width. Input "
        "'image': float32 (N, 3, H, W) RGB in [-1, 1], H and W multiples of the generator's size multiple (4 for "
        "the built-in generators; the file's size_multiple metadata says which) and at least its least side (8 for "
        "the built-in generators, found at export by trying sides; the file's min_size metadata); for DRIT also "
        "'attribute': float32 (N, nz); output 'translation': float32 (N, 3, H, W) RGB in [-1, 1]. Before the file "
        "is kept, the exported file itself translates random images of two sizes and must match the fp32 PyTorch "
        "generator within --tolerance; the largest difference is printed. The conventions, opset, precision and "
        "source are written into the file's metadata. `srunit translate --checkpoint FILE` runs the file "
        "(ONNX through onnxruntime: pip install 'srunit[onnx]').",
    )
    p.add_argument("checkpoint", type=path_arg, metavar="RUN_OR_CHECKPOINT",
                   help="a run folder (runs/NAME), a checkpoint folder (.../step_N), a G.safetensors file (of a DRIT "
                   "run: with E_c and E_a beside it) or G_BA.safetensors, or a *_net_G.pth / *_net_G_A.pth / "
                   "*_net_G_B.pth file of the public CUT/SRUNIT/CycleGAN code")
    p.add_argument("--output", required=True, type=output_arg,
                   help="the file to write (.onnx, .pt2 or .ts); never a file of the checkpoint or inside a run folder")
    p.add_argument("--format", choices=list(FORMATS), default=None,
                   help="onnx, export (a torch.export program, loaded with torch.export.load) or torchscript "
                   "(deprecated by torch; default: from the --output suffix, .onnx, .pt2 or .ts/.torchscript/.pt)")
    p.add_argument("--precision", choices=list(TOLERANCES), default="fp32",
                   help="the dtype the file computes in; inputs and outputs stay float32 (default fp32; bf16 is "
                   "for the torch formats only: ONNX defines convolutions for float16/32/64)")
    p.add_argument("--direction", default="AtoB", choices=list(DIRECTIONS),
                   help="AtoB (default) or BtoA: the B -> A generator of a two-sided run (cyclegan); a generator "
                   "file is exported in its own direction (G_BA.safetensors and *_net_G_B.pth: B -> A)")
    p.add_argument("--opset", type=int, default=None, help=f"ONNX opset (ONNX files only; default {DEFAULT_OPSET})")
    p.add_argument("--check-size", action="append", default=None, metavar="HxW",
                   help=f"an image size to check the exported file on (repeat for several; sides at least 16 and "
                   f"multiples of the generator's size multiple, 4 for the built-in generators; default "
                   f"{_DEFAULT_SIZES}, rounded up to the generator's size multiple, the first with a batch of 2)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest absolute difference allowed from the fp32 PyTorch generator (outputs in [-1, 1]; "
                   "default " + ", ".join(f"{k} {v:g}" for k, v in TOLERANCES.items()) + ")")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    if args.opset is not None:
        check_int(args.opset, "--opset", 1, maximum=1000)
    sizes: tuple[tuple[int, int, int], ...] | None = None  # the defaults, fitted to the generator's size multiple
    if args.check_size:
        sizes = tuple((2 if i == 0 else 1, *parse_size(text)) for i, text in enumerate(args.check_size))
    report = export_generator(args.checkpoint, args.output, args.format, precision=args.precision,
                              direction=args.direction, opset=args.opset, check_sizes=sizes,
                              tolerance=args.tolerance, overwrite=args.overwrite)
    print(report.describe())
    return 0
