"""`srunit app`: a web page that shows each checkpoint's translation of an uploaded image (Gradio)."""

from __future__ import annotations

import argparse
import logging
import signal
import time

from srunit._outputs import path_arg
from srunit.checks import DEFAULT_MAX_PIXELS, MAX_PIXELS_LIMIT, PRECISIONS, check_int, check_range, one_line
from srunit.cli.commands import CHECKPOINT_KINDS, COMMANDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "app",
        help=COMMANDS["app"].summary,
        description="Serve a Gradio page (needs the optional extra: pip install 'srunit[app]') where a person "
        "uploads a domain-A image and sees its translation by every --checkpoint side by side, at the image's "
        "native size, labelled with the run's name, method and step. The translations are the pixels `srunit "
        "translate` writes for the same file. Images of more than --max-pixels pixels are refused from their "
        "header. A few images of each run's domain-A data (ROOT/testA, else its training folder) are offered as "
        "examples when that folder exists. Serves on 127.0.0.1 (this machine only) unless --host says otherwise.",
    )
    p.add_argument("--checkpoint", required=True, action="append", type=path_arg, metavar="RUN",
                   help=CHECKPOINT_KINDS + "; repeat it to compare checkpoints side by side")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps | xpu (default auto)")
    p.add_argument("--precision", default=None, choices=list(PRECISIONS),
                   help="compute dtype (default fp32; an exported file computes in its own)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse uploads with more pixels (default {DEFAULT_MAX_PIXELS}, 4096 x 4096): memory grows "
                   "with the pixels")
    p.add_argument("--examples", type=int, default=4,
                   help="example images offered from each run's domain-A folder (default 4; 0: none)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1; 0.0.0.0 lets other machines reach the page)")
    p.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from srunit.app import (
        TranslationDemo,
        build_app,
        check_host,
        check_temp_folder,
        example_folder,
        example_images,
        import_gradio,
        launch_app,
    )

    check_int(args.max_pixels, "--max-pixels", 1, maximum=MAX_PIXELS_LIMIT)
    check_int(args.examples, "--examples", 0, maximum=1000)
    check_range(args.port, "--port", 1, 65535)
    check_host(args.host)  # before gradio is imported: a malformed name was the server thread's tracebacks
    import_gradio()  # before loading any checkpoint: without the extra, say so at once
    check_temp_folder()  # and a GRADIO_TEMP_DIR the server could not write
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's requests to itself at start-up
    demo = TranslationDemo.from_checkpoints(args.checkpoint, device=args.device, precision=args.precision,
                                            max_pixels=args.max_pixels)
    folders = dict.fromkeys(f for m in demo.models if (f := example_folder(m.checkpoint.data)) is not None)
    examples = [(f"Examples from {folder}", example_images(folder, args.examples, args.max_pixels))
                for folder in folders] if args.examples else []
    device = str(demo.models[0].translator.device)
    # Each checkpoint's own: an exported fp16 file was shown as computed in fp32.
    precision = " / ".join(dict.fromkeys(m.translator.precision for m in demo.models))
    blocks = build_app(demo, examples, device=device, precision=precision)
    url = launch_app(blocks, demo, host=args.host, port=args.port)
    for label in demo.labels:
        print(f"checkpoint: {one_line(label)}")
    print(f"serving on {url}  (Ctrl-C stops it)", flush=True)
    # SIGTERM (kill, docker stop, systemd) stops the server as Ctrl-C does, so that closing it deletes its files
    # (uploads, translations); the default action ended the process at once and left them.
    previous = signal.signal(signal.SIGTERM, _stop)
    status = 0
    try:
        while blocks.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("stopped")
    except _Terminated:
        status = 128 + signal.SIGTERM
        print("stopped by SIGTERM")
    finally:
        signal.signal(signal.SIGTERM, previous)
        blocks.close(verbose=False)
    return status


class _Terminated(Exception):
    """Raised in the main thread by SIGTERM while the app serves."""


def _stop(signum: int, frame: object) -> None:
    raise _Terminated
