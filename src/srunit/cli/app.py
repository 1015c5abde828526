"""`srunit app`: a web page that shows each checkpoint's translation of an uploaded image (Gradio)."""

from __future__ import annotations

import argparse
from pathlib import Path

from srunit.options import DEFAULT_MAX_PIXELS, PRECISIONS, check_int, check_range


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "app",
        help="a web page: drop an image, see its translation by each checkpoint side by side",
        description="Serve a Gradio page (needs the optional extra: pip install 'srunit[app]') where a person "
        "uploads a domain-A image and sees its translation by every --checkpoint side by side, at the image's "
        "native size, labelled with the run's name, method and step. The translations are the pixels `srunit "
        "translate` writes for the same file. Images of more than --max-pixels pixels are refused from their "
        "header. A few images of each run's domain-A data (ROOT/testA, else its training folder) are offered as "
        "examples when that folder exists. Serves on 127.0.0.1 (this machine only) unless --host says otherwise.",
    )
    p.add_argument("--checkpoint", required=True, action="append", type=Path, metavar="RUN",
                   help="a run folder, a checkpoint folder (.../step_N), a G.safetensors file or a *_net_G.pth file; "
                   "repeat it to compare checkpoints side by side")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS), help="compute dtype (default fp32)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse uploads with more pixels (default {DEFAULT_MAX_PIXELS}, 4096 x 4096): memory grows "
                   "with the pixels")
    p.add_argument("--examples", type=int, default=4,
                   help="example images offered from each run's domain-A folder (default 4; 0: none)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1; 0.0.0.0 lets other machines reach the page)")
    p.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from srunit.app import TranslationDemo, build_app, example_folder, example_images, import_gradio, launch_app
    from srunit.engine.device import resolve_device

    check_int(args.max_pixels, "--max-pixels", 1)
    check_int(args.examples, "--examples", 0)
    check_range(args.port, "--port", 1, 65535)
    check_int(args.port, "--port", 1)
    import_gradio()  # before loading any checkpoint: without the extra, say so at once
    demo = TranslationDemo.from_checkpoints(args.checkpoint, device=args.device, precision=args.precision,
                                            max_pixels=args.max_pixels)
    examples = []
    folders = dict.fromkeys(f for m in demo.models if (f := example_folder(m.checkpoint.data)) is not None)
    for folder in folders if args.examples else ():
        examples.append((f"Examples from {folder}", example_images(folder, args.examples, args.max_pixels)))
    blocks = build_app(demo, examples, device=str(resolve_device(args.device, "--device")), precision=args.precision)
    url = launch_app(blocks, demo, host=args.host, port=args.port)
    for label in demo.labels:
        print(f"checkpoint: {label}")
    print(f"serving on {url}  (Ctrl-C stops it)")
    try:
        blocks.block_thread()
    finally:
        blocks.close(verbose=False)
    return 0
