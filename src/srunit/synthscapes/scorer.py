"""The SynthScapes scorer: a small fully convolutional segmenter trained on renderings.

It plays the role of the paper's DRN trained on real Cityscapes photos (Sec. 5.1.1): a fixed
model of the *target* domain that tells which class a translated pixel looks like. It is
trained once per (size, seed, training length) on fresh renderings of the two-mode layout
mixture, with photometric jitter and noise so that it keys on what a class looks like rather
than on exact pixel values, and cached as safetensors; a cached file is reused only when its
recorded settings match. A share of its training images are the flat label colour maps of the
same layouts with the target ``NOT_RENDERED`` everywhere, so an output that still looks like
the input label map scores as a miss rather than as the right class.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import nn
from tqdm.auto import tqdm

from srunit._atomic import write_bytes_atomic
from srunit._progress import stderr_is_terminal
from srunit.checks import MAX_STEPS, check_int, check_range
from srunit.errors import CheckpointError, ConfigError
from srunit.synthscapes.dataset import MAX_IMAGES, MAX_SIZE, MIN_SIZE, SPLIT_CODES, mixture_layout
from srunit.synthscapes.scenes import CLASS_NAMES, render_labels, render_photo

__all__ = [
    "NOT_RENDERED", "SceneSegmenter", "SegmenterSettings", "train_segmenter", "load_or_train_segmenter",
    "default_cache_dir",
]

log = logging.getLogger(__name__)
_VERSION = 2  # bump when the architecture or the training recipe changes: old cache files are then ignored
# Extra output class: "this looks like a flat label map, not a rendering". A translator that
# leaves the label colours in place must not be credited with the right classes; the id lies
# outside the 8 scored classes, so ``ConfusionMatrix`` counts it as a miss.
NOT_RENDERED = len(CLASS_NAMES)


def _conv(cin: int, cout: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SceneSegmenter(nn.Module):
    """Encoder (1/4 resolution, dilated context) + skip connection at full resolution.

    forward: x (B, 3, H, W) RGB in [0, 1] -> logits (B, num_classes, H, W); by default the 8
    SynthScapes classes plus ``NOT_RENDERED``.
    """

    def __init__(self, num_classes: int = len(CLASS_NAMES) + 1, width: int = 32) -> None:
        super().__init__()
        self.stem = _conv(3, width)
        self.down = nn.Sequential(_conv(width, width, stride=2), _conv(width, 2 * width, stride=2))
        self.context = nn.Sequential(*(_conv(2 * width, 2 * width, dilation=d) for d in (1, 2, 4, 1)))
        self.fuse = _conv(3 * width, width)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.stem(x)
        deep = self.context(self.down(skip))
        deep = F.interpolate(deep, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.fuse(torch.cat([skip, deep], dim=1)))

    @torch.no_grad()
    def segment(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) uint8 ids in [0, 8]: a class, or ``NOT_RENDERED`` (8) where
        the image looks like a label colour map (the ``srunit eval seg`` callable convention)."""
        x = torch.tensor(np.asarray(image, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255
        return self(x).argmax(1)[0].to(torch.uint8).numpy()


@dataclass(frozen=True)
class SegmenterSettings:
    """What a cached segmenter was trained with; any change trains a new one."""

    size: int = 64
    seed: int = 0
    num_images: int = 512
    steps: int = 1200
    batch_size: int = 16
    width: int = 24
    lr: float = 2e-3
    label_map_share: float = 0.25  # share of training images that are label colour maps -> NOT_RENDERED

    def __post_init__(self) -> None:
        # Built through the API: steps 0 was torch's "Expected positive integer total_steps", a share of 2 trained a
        # scorer on label maps alone, without a word.
        check_int(self.size, "SegmenterSettings: size", MIN_SIZE, maximum=MAX_SIZE)
        for key, top in (("num_images", MAX_IMAGES), ("steps", MAX_STEPS), ("batch_size", MAX_IMAGES), ("width", 4096)):
            check_int(getattr(self, key), f"SegmenterSettings: {key}", 1, maximum=top)
        number = isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool)
        if not (number and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"SegmenterSettings: lr must be a finite number > 0, got {self.lr!r:.40}")
        check_range(self.label_map_share, "SegmenterSettings: label_map_share", 0.0, 1.0)

    def key(self) -> str:
        text = json.dumps({"version": _VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def default_cache_dir() -> Path:
    """$SRUNIT_CACHE, else $XDG_CACHE_HOME/srunit, else ~/.cache/srunit.

    A relative $XDG_CACHE_HOME is ignored, as the XDG base directory specification says: it would name another
    cache in every working folder.
    """
    if os.environ.get("SRUNIT_CACHE"):
        return Path(os.environ["SRUNIT_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "srunit"


def _training_set(s: SegmenterSettings) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fresh mixture layouts: (N, 3, S, S) uint8 renderings, the same layouts as (N, 3, S, S) uint8
    label colour maps, and (N, S, S) int64 labels."""
    images, maps, labels = [], [], []
    for i in range(s.num_images):
        lab, rng = mixture_layout(SPLIT_CODES["segmenter"], i, s.size, s.seed)
        images.append(render_photo(lab, rng))
        maps.append(render_labels(lab))
        labels.append(lab)

    def chw(arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    return chw(images), chw(maps), torch.from_numpy(np.stack(labels)).long()


def _jitter(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (B, 3, H, W) in [0, 1]; random flip, per-image gain/offset/colour cast, blur and noise."""
    b = x.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    flip = u(b) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    gain = 0.75 + 0.5 * u(b, 1, 1, 1)
    cast = 1.0 + 0.16 * (u(b, 3, 1, 1) - 0.5)
    offset = 0.16 * (u(b, 1, 1, 1) - 0.5)
    x = x * gain * cast + offset
    soft = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    blur = u(b, 1, 1, 1)
    x = blur * soft + (1 - blur) * x
    x = x + 0.06 * u(b, 1, 1, 1) * torch.randn(x.shape, generator=gen)
    return x.clamp(0, 1), flip


def train_segmenter(settings: SegmenterSettings, *, device: str | torch.device = "cpu",
                    log_every: int = 250, show_progress: bool = True) -> SceneSegmenter:
    """Train a ``SceneSegmenter`` from scratch and return it on the CPU, in eval mode.

    With ``show_progress`` and a terminal on stderr, a bar with the time left (minutes on a CPU: the first
    SynthScapes score of a machine trains it once, later ones read the cache); a log line every ``log_every``
    steps in any case.

    Seeded: batches and augmentation are drawn on the CPU from ``settings.seed``, so the run is
    repeatable on one device and thread count (a GPU gives slightly different weights).
    """
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    images, maps, labels = _training_set(settings)
    device = torch.device(device)
    net = SceneSegmenter(len(CLASS_NAMES) + 1, settings.width).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings.lr, total_steps=settings.steps, pct_start=0.1)
    net.train()
    bar = tqdm(total=settings.steps, desc="training the SynthScapes segmenter (once; cached)", unit="step",
               disable=not (show_progress and stderr_is_terminal()), dynamic_ncols=True)
    start = time.perf_counter()
    for step in range(1, settings.steps + 1):
        idx = torch.randint(0, len(images), (settings.batch_size,), generator=gen)
        as_map = torch.rand(settings.batch_size, generator=gen) < settings.label_map_share
        x = torch.where(as_map[:, None, None, None], maps[idx], images[idx])
        y = torch.where(as_map[:, None, None], NOT_RENDERED, labels[idx])
        x, flip = _jitter(x.float() / 255, gen)
        y = torch.where(flip[:, None, None], y.flip(-1), y)
        loss = F.cross_entropy(net(x.to(device)), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.update(1)
        if step % log_every == 0 or step == settings.steps:
            value = loss.item()  # the host sync of a log line
            bar.set_postfix({"cross-entropy": f"{value:.3f}"}, refresh=False)
            left = (settings.steps - step) * (time.perf_counter() - start) / step
            log.info("segmenter step %d/%d  cross-entropy %.4f  (about %s left)", step, settings.steps, value,
                     tqdm.format_interval(left))
    bar.close()
    return net.cpu().eval()


def _check_cache_writable(cache_dir: Path, given: bool) -> None:
    """ConfigError naming the cache folder where the segmenter, once trained, could not be written: a file, a FIFO
    or a device in its place, or a folder without write permission. ``given``: the caller named the folder (bench's,
    demo's or tune's --cache-dir or --records), else it is `default_cache_dir`'s."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        problem = None if os.access(cache_dir, os.W_OK | os.X_OK) else "it is not writable"
    except FileExistsError:
        problem = "it is not a folder"
    except OSError as err:
        problem = err.strerror or str(err)
    if problem:
        source = ("it was given as the cache folder (--cache-dir or --records of bench, demo and tune): point it at "
                  "a writable folder") if given else (
            "it comes from $SRUNIT_CACHE, else $XDG_CACHE_HOME/srunit, else ~/.cache/srunit: point $SRUNIT_CACHE at "
            "a writable folder")
        raise ConfigError(f"the segmenter cache folder {cache_dir} cannot hold the segmenter srunit would train "
                          f"({problem}); {source}")


def load_or_train_segmenter(settings: SegmenterSettings, cache_dir: str | Path | None = None, *,
                            device: str | torch.device = "cpu", show_progress: bool = True
                            ) -> tuple[SceneSegmenter, Path]:
    """The cached segmenter for ``settings`` (on the CPU), trained on ``device`` and written
    atomically on first use (a progress bar with the time left where ``show_progress``, see `train_segmenter`)."""
    given = cache_dir is not None
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"synthscapes-segmenter-{settings.size}px-{settings.key()}.safetensors"
    net = SceneSegmenter(len(CLASS_NAMES) + 1, settings.width)
    if path.is_file():
        try:
            net.load_state_dict(load_file(path))
        except Exception as e:  # a truncated or foreign file: say which and how to recover
            raise CheckpointError(f"cached segmenter {path} cannot be read ({e}); delete it and it will be "
                                  f"retrained") from e
        log.info("using cached segmenter %s", path)
        return net.eval(), path
    _check_cache_writable(cache_dir, given)  # before minutes of training, not after them
    log.info("training the SynthScapes segmenter (%d steps on %d renderings of %dpx); cached at %s",
             settings.steps, settings.num_images, settings.size, path)
    net = train_segmenter(settings, device=device, show_progress=show_progress)
    metadata = {"settings": json.dumps(asdict(settings)), "version": str(_VERSION)}
    write_bytes_atomic(path, save(net.state_dict(), metadata=metadata))
    return net, path
