"""The web demo behind `srunit app`: drop an image, see its translation by each checkpoint side by side.

The page is a Gradio app (the optional extra ``srunit[app]``; gradio is imported only when the
page is built, so the package and the other commands work without it). Each checkpoint's translation is
`Translator.translate_images` applied to the uploaded file as `load_rgb` decodes it, which is what
`srunit translate` writes for the same file, shown at the image's native size in pixels. An upload
of more than ``max_pixels`` pixels is refused from its header, before a pixel is decoded, with a
message naming its size and the limit. A checkpoint whose B -> A generator has an unmatchability mask
(StegoGAN) also shows that mask of each translation (`srunit.unmatched`): the regions its backward generator
finds without a counterpart in domain A, so a reader sees what the model treats as unmatched.
"""

from __future__ import annotations

import html
import inspect
import ipaddress
import logging
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from srunit._reading import link_to_nothing, path_kind
from srunit.checks import DEFAULT_MAX_PIXELS, MAX_PIXELS_LIMIT, check_int, check_not_one
from srunit.data import image_size, load_rgb, scan_images
from srunit.data.images import TooManyPixels, image_header
from srunit.errors import ConfigError, DataError, SrunitError
from srunit.exported import ExportedGenerator, load_exported
from srunit.inference import Translator
from srunit.runtime.run_folder import CheckpointSource, RunFolder, method_name
from srunit.runtime.translation import check_seed
from srunit.unmatched import UnmatchedMasks

__all__ = ["GRADIO_INSTALL", "Checkpoint", "DemoModel", "TranslationDemo", "build_app", "check_host",
           "check_temp_folder", "describe_checkpoint", "example_folder", "example_images", "import_gradio",
           "launch_app"]

log = logging.getLogger(__name__)

GRADIO_INSTALL = "pip install 'srunit[app]'"
_UPLOAD_FIX = "upload a PNG, JPEG, BMP, GIF, TIFF or WebP image"
# The largest file a max_pixels image can be: 16-bit RGBA stored uncompressed (8 bytes a pixel),
# plus room for headers and metadata. Larger uploads are refused by the server before they are stored.
_BYTES_PER_PIXEL = 8
_HEADER_ROOM = 1 << 20
# Gradio keeps each upload and each translation in its temporary folder (GRADIO_TEMP_DIR, else /tmp/gradio) and, left
# alone, never deletes them: a server up for weeks kept every visitor's image. Files of this page older than an hour
# are deleted every hour, and all of them when the server stops.
_KEEP_SECONDS = 3600
# Images at their pixel size (no scaling; pixelated if the browser zooms), below the floating label, scrolled
# when larger than the column ("safe" centring keeps the left edge reachable).
_CSS = """
.srunit-native img { width: auto !important; height: auto !important; max-width: none !important;
                     max-height: none !important; object-fit: none !important; image-rendering: pixelated; }
.srunit-native .image-frame { overflow: auto; max-width: 100%; justify-content: safe center !important;
                              align-items: safe center !important; padding-top: 2.25rem; }
.srunit-native .upload-container { max-width: 100%; }
"""


@dataclass(frozen=True)
class Checkpoint:
    """What the page says about one checkpoint: its label and, for a run, the run's data section."""

    path: Path
    run: str  # run folder name, or the file name of a lone weights file
    method: str  # method name from the run's config.yaml ("public CUT/SRUNIT weights" for a *_net_G.pth)
    step: int | None  # training step of the checkpoint, when known
    data: dict[str, Any] | None  # the run's config.yaml data section
    direction: str = "AtoB"  # what the checkpoint translates: AtoB, or BtoA (a G_BA file, a *_net_G_B.pth, an export)

    @property
    def label(self) -> str:
        """``run · method · step N``, the step left out when unknown, and `` · B → A`` appended for a B -> A generator
        (the page asks for a domain-A image: its panel says that it translates the other way)."""
        step = "" if self.step is None else f" · step {self.step}"
        direction = " · B \u2192 A" if self.direction == "BtoA" else ""
        return f"{self.run} · {self.method}{step}{direction}"


def describe_checkpoint(path: str | Path, generator: Any = None) -> Checkpoint:
    """Name, method, step and data section of a checkpoint given as `srunit translate` takes it.

    A run folder, a checkpoint folder (step_N, latest) or a G.safetensors inside one belongs to a run
    (RUN/config.yaml); a lone G.safetensors or a public ``*_net_G.pth`` is named after its file, and
    a file of `srunit export` after its file with the method and step its metadata gives (read from
    ``generator`` when that file is already loaded).
    """
    path = Path(path)
    source = CheckpointSource.resolve(path)  # raises CheckpointError naming the path
    if source.kind == "exported":
        meta = (generator if isinstance(generator, ExportedGenerator) else load_exported(path)[0]).metadata
        recorded = meta.get("step", "")
        return Checkpoint(path, path.name, f"{meta.get('method', 'method unknown')} (exported)",
                          int(recorded) if recorded.isdigit() else None, None, meta.get("direction") or "AtoB")
    # A G_BA file or a *_net_G_B.pth was labelled as its run's (or public CUT/SRUNIT) A -> B generator.
    direction = source.direction or "AtoB"
    if source.kind == "public":
        return Checkpoint(path, path.name, f"public {source.public_code} weights", None, None, direction)
    if source.run is None:
        return Checkpoint(path, path.name, f"method unknown (no run {RunFolder.CONFIG})", source.step, None, direction)
    config = source.run.read_config()
    data = config.get("data")
    return Checkpoint(path, source.run.name, method_name(config) or "method unknown", source.step,
                      data if isinstance(data, dict) else None, direction)


def example_folder(data: dict[str, Any] | None) -> Path | None:
    """The run's held-out domain-A folder (ROOT/testA) if it exists, else its training domain-A folder
    (data.dir_a or ROOT/trainA); None when neither exists from the current folder."""
    if not data:
        return None
    root = Path(data["root"]) if data.get("root") else None
    candidates = [root / "testA"] if root is not None else []
    if data.get("dir_a"):
        candidates.append(Path(data["dir_a"]))
    elif root is not None:
        candidates.append(root / "trainA")
    return next((c for c in candidates if c.is_dir()), None)


def example_images(folder: Path, count: int, max_pixels: int) -> list[Path]:
    """Up to ``count`` images of ``folder`` (sorted as `scan_images` lists them) within the pixel limit;
    unreadable and too-large files are passed over."""
    picked: list[Path] = []
    try:
        files = scan_images(folder, role="example")
    except DataError as err:
        log.info("no examples from %s: %s", folder, err)
        return picked
    for path in files:
        if len(picked) == count:
            break
        try:
            image_size(path, max_pixels=max_pixels, limit_option="--max-pixels")
        except DataError as err:
            log.info("example passed over: %s", err)
            continue
        picked.append(path)
    return picked


@dataclass
class DemoModel:
    """One checkpoint on the page: its description, its translator and, where it has them, its masks."""

    checkpoint: Checkpoint
    translator: Translator
    masks: UnmatchedMasks | None = None  # what its B -> A generator finds unmatched (StegoGAN), or None

    @property
    def multimodal(self) -> bool:
        """Whether the translator takes an attribute code (a DRIT checkpoint, where inference supports it)."""
        return bool(getattr(self.translator, "multimodal", False)) and \
            "attribute" in inspect.signature(self.translator.translate_images).parameters

    def translate(self, image: Image.Image, seed: int) -> Image.Image:
        """(H, W) RGB image -> its (H, W) translation; ``seed`` picks a multimodal checkpoint's attribute code."""
        if self.multimodal:
            return self.translator.translate_images([image], attribute=seed)[0]
        return self.translator.translate_images([image])[0]

    def mask(self, translation: Image.Image) -> Image.Image | None:
        """The unmatchability mask of a translation, (H, W) grey, white = unmatched; None without masks."""
        return None if self.masks is None else self.masks.mask_images([translation])[0]


class TranslationDemo:
    """The page's logic without the page: load checkpoints, check and translate one uploaded file."""

    def __init__(self, models: Sequence[DemoModel], max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        check_int(max_pixels, "--max-pixels", 1, maximum=MAX_PIXELS_LIMIT)
        # A run folder given here was an AttributeError traceback ('str' object has no attribute 'checkpoint').
        fix = "load run or checkpoint folders with TranslationDemo.from_checkpoints([RUN, ...])"
        if not isinstance(models, (list, tuple)):
            raise TypeError(f"TranslationDemo: models must be a list of DemoModel objects, got "
                            f"{type(models).__name__} {models!r:.60}; {fix}")
        for i, model in enumerate(models):
            if not isinstance(model, DemoModel):
                raise TypeError(f"TranslationDemo: models[{i}] must be a DemoModel, got {type(model).__name__} "
                                f"{model!r:.60}; {fix}")
        if not models:
            raise ConfigError("srunit app needs at least one --checkpoint RUN")
        self.models = list(models)
        self.max_pixels = max_pixels
        self.labels = _unique([m.checkpoint.label for m in self.models])
        self._one_at_a_time = threading.Lock()  # the page's events (upload, button, examples) share the device

    @classmethod
    def from_checkpoints(cls, paths: Sequence[str | Path], device: str = "auto", precision: str | None = None,
                         max_pixels: int = DEFAULT_MAX_PIXELS) -> TranslationDemo:
        """Load every checkpoint (see `srunit.inference`) on ``device`` in ``precision``.

        Raises:
            TypeError: ``paths`` is one path (a str, bytes or Path), not a list of them.
        """
        check_not_one(paths, "TranslationDemo.from_checkpoints: paths", "run or checkpoint folders")
        check_int(max_pixels, "--max-pixels", 1, maximum=MAX_PIXELS_LIMIT)
        models = []
        for path in paths:
            # `latest` is read once: a checkpoint written while these load (the run training beside the app) gave
            # the label of one step over the weights of another, and the masks of a third.
            source = CheckpointSource.resolve(path)
            pinned = source.folder if source.kind == "checkpoint" and source.folder is not None else path
            translator = Translator.from_checkpoint(pinned, device=device, precision=precision)
            masks = UnmatchedMasks.from_checkpoint(pinned, device=device, precision=precision or "fp32")
            checkpoint = replace(describe_checkpoint(pinned, translator.generator), path=Path(path))
            models.append(DemoModel(checkpoint, translator, masks))
        return cls(models, max_pixels)

    @property
    def multimodal(self) -> bool:
        """Whether any checkpoint takes an attribute code (the page then offers an attribute seed)."""
        return any(m.multimodal for m in self.models)

    @property
    def mask_labels(self) -> list[str]:
        """One label per checkpoint that shows masks, in the order of the checkpoints."""
        return [f"{label}: unmatched (white)" for label, m in zip(self.labels, self.models) if m.masks is not None]

    @property
    def max_upload_bytes(self) -> int:
        """The largest upload the server stores (an image of max_pixels pixels in any format fits)."""
        return self.max_pixels * _BYTES_PER_PIXEL + _HEADER_ROOM

    def translate_file(self, path: str | Path, seed: int = 0) -> list[Image.Image]:
        """The uploaded file's translation by each checkpoint, in the order of the checkpoints: RGB images
        of the upload's (W, H); ``seed`` (>= 0) picks a multimodal checkpoint's attribute code.

        Raises:
            DataError: the file is not an image, or it has more than ``max_pixels`` pixels (checked
                from its header); the message names the file as the person uploaded it.
        """
        return self._translate(path, seed, with_masks=False)[0]

    def translate_file_with_masks(self, path: str | Path, seed: int = 0
                                  ) -> tuple[list[Image.Image], list[Image.Image]]:
        """`translate_file`, and the unmatchability mask of each translation by a checkpoint that has one (in the
        order of `mask_labels`): grey images of the upload's (W, H), white where the content is unmatched."""
        outputs, masks, _ = self._translate(path, seed, with_masks=True)
        return outputs, masks

    def translate_upload(self, path: str | Path, seed: int = 0
                         ) -> tuple[list[Image.Image], list[Image.Image], str]:
        """`translate_file_with_masks`, and a notice for the person who uploaded the file ("" where none): a file of
        several frames (an animated GIF or PNG, a multi-page TIFF) is translated from its first frame only, which
        `srunit translate` warns of and the page showed without a word."""
        outputs, masks, several = self._translate(path, seed, with_masks=True)
        notice = (f"{Path(path).name} holds several frames (an animation or pages); only its first frame is "
                  f"translated" if several else "")
        return outputs, masks, notice

    def _translate(self, path: str | Path, seed: int, with_masks: bool
                   ) -> tuple[list[Image.Image], list[Image.Image], bool]:
        """The translations, the masks (``with_masks``), and whether the file holds several frames."""
        path = Path(path)
        check_seed(check_int(seed, "attribute seed", 0), "attribute seed")
        several = False
        try:
            try:
                (w, h), several = image_header(path, fix=_UPLOAD_FIX)
                pixels, size = w * h, f"{w} x {h} = {w * h:,}"
            except TooManyPixels as err:  # a header Pillow itself refuses: only the count is known
                pixels, size = err.pixels, f"{err.pixels:,}"
            if pixels > self.max_pixels:
                raise DataError(f"image file {path} is {size} pixels, more than this app's limit of "
                                f"{self.max_pixels:,}; upload a smaller image (whoever runs the app sets the limit "
                                f"with srunit app --max-pixels)")
            image = load_rgb(path, max_pixels=self.max_pixels, limit_option="--max-pixels", fix=_UPLOAD_FIX)
        except DataError as err:
            # The server stores an upload as <cache>/<hash>/<name as uploaded>: show only that name.
            raise DataError(str(err).replace(str(path), path.name)) from None
        with self._one_at_a_time:
            outputs = [m.translate(image, seed) for m in self.models]
            masks = [m.mask(out) for m, out in zip(self.models, outputs)] if with_masks else []
        if several:
            log.warning("upload %s holds several frames; it is translated from its first frame only", path.name)
        return outputs, [m for m in masks if m is not None], several


def page_seed(value: object) -> int:
    """The page's attribute seed field (a number, possibly empty, fractional, inf or nan, as a browser or an API
    client sends it) -> the seed, or ConfigError saying what the field takes."""
    if value is None or value == "":
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"attribute seed must be a whole number from 0 to 2**64 - 1, got {value!r}; enter one")
    return check_seed(value, "attribute seed")


def _unique(labels: list[str]) -> list[str]:
    """Labels with ' (2)', ' (3)' ... appended where a label repeats, so every output is told apart."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def import_gradio() -> Any:
    """The gradio module, or a ConfigError saying how to install the extra."""
    # Gradio's usage statistics go to its makers over the network; a demo started here sends nothing unless asked.
    given = sorted(k for k in os.environ if k.startswith("GRADIO_"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError as err:
        raise ConfigError(f"srunit app needs gradio, the optional extra 'app', which is not installed here ({err}); "
                          f"{GRADIO_INSTALL}") from None
    except Exception as err:  # noqa: BLE001 - gradio reads its GRADIO_* variables at import: `GRADIO_SERVER_PORT=abc`
        names = ", ".join(given) or "none set"
        raise ConfigError(f"importing gradio failed ({type(err).__name__}: {err}); gradio reads its GRADIO_* "
                          f"environment variables when it is imported ({names}): fix or unset the one it "
                          f"names") from None
    return gradio


def check_temp_folder() -> Path:
    """Gradio's temporary folder (GRADIO_TEMP_DIR, else TMPDIR/gradio), made where it is missing, once a file can be
    made in it; ConfigError naming the variable, its value and the fix otherwise. Gradio makes it only as the server
    starts, and its error ("vibe_edit_history: Not a directory", "File exists", "Read-only file system") named
    neither the variable nor the fix."""
    given = os.environ.get("GRADIO_TEMP_DIR")
    default = Path(tempfile.gettempdir()) / "gradio"
    folder = Path(given) if given else default
    reason = link_to_nothing(folder)
    if reason is not None:
        reason = reason.removeprefix(str(folder) + " ")
    elif folder.exists() and not folder.is_dir():
        reason = f"is {path_kind(folder)}, not a folder"
    else:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):  # deleted at once: the server writes there what visitors upload
                pass
        except OSError as err:
            reason = f"cannot be written: {err.strerror or err}"
    if reason is None:
        return folder
    if given:
        raise ConfigError(f"GRADIO_TEMP_DIR={given} {reason}; gradio keeps the page's uploads and translations "
                          f"there: set GRADIO_TEMP_DIR to a folder this user can write, or unset it (then {default})")
    raise ConfigError(f"gradio's temporary folder {default} {reason} (GRADIO_TEMP_DIR is not set); gradio keeps the "
                      f"page's uploads and translations there: set GRADIO_TEMP_DIR to a folder this user can write")


def build_app(demo: TranslationDemo, examples: Sequence[tuple[str, Sequence[Path]]] = (), *,
              device: str = "", precision: str = "") -> Any:
    """The Gradio page (a ``gradio.Blocks``) for ``demo``: an upload, one output per checkpoint, the
    examples (a caption and its image files per folder). Its API endpoint ``/translate`` takes the
    image file (and the attribute seed when a checkpoint is multimodal) and returns one PNG per checkpoint,
    then one mask per checkpoint that shows masks (`TranslationDemo.mask_labels`), and a status line; for a
    refused upload, no image and "Refused: " with the reason. Launch it with `launch_app`."""
    gr = import_gradio()

    def translate(upload: dict[str, Any] | None, *seed: float) -> tuple:
        """The upload as Gradio stored it (not preprocessed: no pixel is decoded before `translate_file` has
        checked the header) -> one image per checkpoint and the status line (plain text, HTML-escaped); a
        refused upload clears the outputs and says why in the status line and in a notice."""
        empty = [None] * (len(demo.models) + len(demo.mask_labels))
        if upload is None:
            return (*empty, "")
        start = time.perf_counter()
        try:
            if not upload.get("path"):  # an inline data: URL, which the pixel limit would only see decoded
                raise DataError("the image came inline, not as a file upload; upload it as a file")
            outputs, masks, notice = demo.translate_upload(upload["path"], page_seed(seed[0]) if seed else 0)
        except SrunitError as err:
            message = html.escape(str(err), quote=False)
            gr.Warning(message)
            return (*empty, f"Refused: {message}")
        if notice:
            notice = html.escape(notice, quote=False)
            gr.Warning(notice)
            notice = f"; {notice}"
        w, h = outputs[0].size
        return (*outputs, *masks, f"{w} x {h} pixels, translated by {len(outputs)} checkpoint(s) in "
                                  f"{time.perf_counter() - start:.2f} s on {device} ({precision}){notice}")

    with gr.Blocks(title="srunit: translate an image", analytics_enabled=False,
                   delete_cache=(_KEEP_SECONDS, _KEEP_SECONDS)) as blocks:
        unmatched = (" A StegoGAN checkpoint also shows its mask of the translation: white where its B \u2192 A "
                     "generator finds content without a counterpart in domain A (what the model treats as "
                     "unmatched)." if demo.mask_labels else "")
        gr.Markdown(f"### Translate an image\nDrop a domain-A image: each checkpoint's translation appears beside "
                    f"it at the image's own size in pixels.{unmatched} Computed on {device} in {precision}; images of "
                    f"more than {demo.max_pixels:,} pixels are refused.")
        with gr.Row(equal_height=False):
            source = gr.Image(label="Your image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                              elem_id="srunit-source", elem_classes="srunit-native")
            results = [gr.Image(label=label, type="pil", format="png", interactive=False, buttons=["download"],
                                elem_id=f"srunit-output-{i}", elem_classes="srunit-native")
                       for i, label in enumerate(demo.labels)]
            results += [gr.Image(label=label, type="pil", format="png", interactive=False, buttons=["download"],
                                 elem_id=f"srunit-mask-{i}", elem_classes="srunit-native")
                        for i, label in enumerate(demo.mask_labels)]
        inputs = [source]
        if demo.multimodal:
            inputs.append(gr.Number(value=0, precision=0, minimum=0, label="attribute seed (multimodal checkpoints)"))
        status = gr.HTML(elem_id="srunit-status")
        button = gr.Button("Translate", variant="primary")
        gr.on([source.upload, button.click], translate, inputs=inputs, outputs=[*results, status],
              api_name="translate", preprocess=False)
        for caption, files in examples:
            if files:
                shown = gr.Examples([[str(f)] for f in files], inputs=[source], cache_examples=False, label=caption)
                # a click puts the example in the upload box, then translates it like an upload
                shown.load_input_event.then(translate, inputs=inputs, outputs=[*results, status], preprocess=False,
                                            api_visibility="private")
    return blocks


def check_host(host: str) -> None:
    """Refuse a ``--host`` that names no address or cannot be a host name or address at all (ConfigError naming the
    value and the fix), before gradio is imported or a checkpoint loaded. A name with an empty label or one of more
    than 63 characters (``not..a..host``) was five tracebacks from the server's thread (``encoding with 'idna' codec
    failed``) and then a "Cannot find empty port" that blamed the port. A well-formed name that is not this machine's
    is left to the server, whose refusal `launch_app` words."""
    if not host.strip():  # gradio takes a name that is empty as none: it served on 127.0.0.1, where '' means
        # every interface to Python's own servers
        raise ConfigError(f"--host {host!r} names no address; give 0.0.0.0 to serve on every interface, or "
                          f"127.0.0.1 (the default) for this machine only")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1], as a URL writes it
    try:
        ipaddress.ip_address(bare)
        return
    except ValueError:
        pass
    try:
        bare.encode("idna")  # what the server's getaddrinfo does with a name
    except UnicodeError as err:
        reason = err.__cause__ or err
        raise ConfigError(f"--host {host} is not a valid host name or address ({reason}: a name is parts of 1 to 63 "
                          f"characters joined by single dots); give a name or address of this machine, 0.0.0.0 to "
                          f"serve on every interface, or 127.0.0.1 (the default) for this machine only") from None


def launch_app(blocks: Any, demo: TranslationDemo, *, host: str = "127.0.0.1", port: int | None = None) -> str:
    """Serve ``blocks`` on host:port from a background thread (port None: the first free one from 7860)
    and return the page's URL; ``blocks.block_thread()`` waits on it, ``blocks.close()`` stops it.

    The page uses the system's fonts, so a browser loads nothing from outside this server.
    """
    check_host(host)
    gr = import_gradio()
    check_temp_folder()
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    # An IPv6 address is written in brackets in a URL; gradio puts the name into its own URL as given, so `::1` was an
    # httpx.InvalidURL traceback after the server had started (`[::1]` served).
    server_name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    try:
        _, url, _ = blocks.launch(server_name=server_name, server_port=port, prevent_thread_lock=True, share=False,
                                  inbrowser=False, quiet=True, show_error=True, max_file_size=demo.max_upload_bytes,
                                  theme=theme, css=_CSS, footer_links=[])
    except OSError as err:  # the port is taken, or the address is not this machine's
        # gradio's message goes on to advise GRADIO_SERVER_PORT or launch()'s server_port, which `srunit app` (always
        # passing --port) ignores or does not have: keep its first sentence.
        reason = str(err).split(". You can specify")[0]
        raise ConfigError(f"cannot serve on --host {host} --port {port}: {reason} (the port is in use, or the address "
                          f"is not this machine's); pass a free --port, or a --host address of this machine") from None
    return url
