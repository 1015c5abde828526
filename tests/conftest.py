"""Shared fixtures: tiny configs, tiny generated data and file helpers, so every test runs fast on CPU.

Tests run with ``--import-mode=importlib``: test modules cannot import this file or each other, so
everything two test modules share is a fixture here. GPU-only tests carry ``@pytest.mark.gpu`` and
are skipped where CUDA is not available; tests that drive a real headless browser carry
``@pytest.mark.browser`` and are skipped where Chromium or the app extra is missing
(``pytest_collection_modifyitems`` below).
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import yaml
from PIL import Image

from srunit.config import Config, load_config, parse_overrides, read_preset
from srunit.registry import METHODS

# torch (and what imports it) is imported where a fixture or hook needs it: pytest-xdist's controller process, which
# runs no test, loads this file too, and importing torch there held back the workers' start by about 1.5 s.
if TYPE_CHECKING:
    import torch

    from srunit.synthscapes import BenchSettings, SegmenterSettings


def pytest_configure(config: pytest.Config) -> None:
    """Two torch threads in one process, or one per process where pytest-xdist runs two workers (`make test-fast`):
    either way the tests use this machine's two cores without oversubscribing them. Nothing in xdist's controller."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return
    import torch

    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)

# The tiny settings every training test uses: 4-channel networks, 32 px crops, no worker processes.
TINY_MODEL = ("model.ngf=4", "model.ndf=4", "model.n_blocks=6", "model.projector_dim=8")
# Applied where the method has the option. DRIT's discriminators shrink to fit 32 px crops (8 px codes).
TINY_METHOD = {"num_patches": "16", "dis_layers": "3", "content_dis_layers": "0"}
TINY_DATA_TRAIN = ("data.load_size=36", "data.crop_size=32", "data.num_workers=0", "train.device=cpu")


def chromium_executable() -> str | None:
    """Path of a Chromium/Chrome to drive headless: $SRUNIT_CHROMIUM, else the first on PATH (Debian: chromium)."""
    named = os.environ.get("SRUNIT_CHROMIUM")
    if named:
        return shutil.which(named)
    return next((p for name in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(name))), None)


# Tiers (Makefile: `make test` runs everything, `make test-fast` leaves these out): tests of a whole
# file get their mark from where they live, single tests carry it themselves.
PATH_MARKS = {
    "tests/cli/": "e2e",  # every command end to end, through srunit.cli.main
    "tests/benchmarks/test_speed_vs_public.py": "e2e",
    "tests/synthscapes/test_benchmark.py": "e2e",
    "tests/synthscapes/test_parallel.py": "e2e",
    "tests/engine/test_distributed.py": "torchrun",
    "tests/engine/test_fault_injection.py": "fault",
    "tests/engine/test_speed.py": "e2e",
    "tests/test_app.py": "e2e",
    "tests/test_docs.py": "e2e",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of the tiers' files (PATH_MARKS); skip every test marked ``gpu`` when torch sees no CUDA
    device, and every test marked ``browser`` when no Chromium or no gradio/gradio_client (the app extra) is
    installed."""
    import torch

    root = Path(__file__).resolve().parent.parent
    for item in items:
        where = Path(str(item.fspath)).resolve().relative_to(root).as_posix()
        for prefix, mark in PATH_MARKS.items():
            if where.startswith(prefix):
                item.add_marker(getattr(pytest.mark, mark))
    skips = {}
    if not torch.cuda.is_available():
        skips["gpu"] = pytest.mark.skip(reason="gpu test: torch.cuda.is_available() is False on this machine")
    missing = [m for m in ("gradio", "gradio_client") if importlib.util.find_spec(m) is None]
    if chromium_executable() is None or missing:
        why = "no chromium on PATH (apt-get install chromium, or set SRUNIT_CHROMIUM)" if not missing else \
            f"{', '.join(missing)} not installed (pip install -e '.[dev]')"
        skips["browser"] = pytest.mark.skip(reason=f"browser test: {why}")
    for item in items:
        for marker, skip in skips.items():
            if item.get_closest_marker(marker) is not None:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable browser tests drive (tests that use it carry ``@pytest.mark.browser``)."""
    path = chromium_executable()
    assert path is not None, "browser tests are skipped where chromium is missing; mark the test browser"
    return path


# ----------------------------------------------------------------------------- the command line


def _cli_status(argv: list[str]) -> int:
    from srunit.cli.main import main

    try:
        return main(argv)
    except SystemExit as stop:  # argparse's refusals, and --help
        return int(stop.code or 0)


@pytest.fixture(scope="session")
def cli_status() -> Callable[[list[str]], int]:
    """``(argv) -> the exit status of srunit argv``, run in this process (its output stays in capsys), argparse's
    refusals (SystemExit 2) and ``--help`` (0) included."""
    return _cli_status


# ----------------------------------------------------------------------------- plugins


TEST_PLUGINS = Path(__file__).resolve().parent / "plugins"


@pytest.fixture
def load_test_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``(*modules)``: import modules of tests/plugins as srunit imports plugins ($SRUNIT_PLUGINS); afterwards the
    registries and sys.modules are as before."""
    import sys

    from srunit import registry
    from srunit.registry import METHODS, NETWORKS, TERMS

    registries = (METHODS, TERMS, NETWORKS)
    for reg in registries:
        reg.names()
    saved = [dict(reg._entries) for reg in registries]
    loaded: list[str] = []

    def load(*modules: str) -> None:
        monkeypatch.syspath_prepend(str(TEST_PLUGINS))
        monkeypatch.setenv("SRUNIT_PLUGINS", ",".join(modules))
        registry.load_plugins()
        loaded.extend(modules)

    yield load
    for reg, entries in zip(registries, saved):
        reg._entries.clear()
        reg._entries.update(entries)
    for name in loaded:
        registry._plugins_loaded.discard(name)
        sys.modules.pop(name, None)


# ----------------------------------------------------------------------------- configs and batches


def _method_name(preset: str | Path | None, overrides: tuple[str, ...]) -> str | None:
    name = parse_overrides(overrides).get("method", {}).get("name")
    if name is None and preset is not None:
        name = read_preset(preset).get("method", {}).get("name")
    return None if name is None else str(name)


@pytest.fixture(scope="session")
def tiny_model_of() -> Callable[..., list[str]]:
    """``(preset) -> the tiny model settings``: see `_tiny_model_of`."""
    return _tiny_model_of


def _tiny_model_of(preset: str | None, method: str | None = None) -> list[str]:
    """The tiny model settings a preset's networks read (or, given ``method`` and no preset, that method's), as
    ``--model.key=value`` arguments."""
    return [f"--{o}" for o in _tiny_model_read_by(method if preset is None else load_config(preset).method.name)]


def _tiny_model_read_by(method: str | None) -> list[str]:
    """The tiny model settings ``method``'s networks read (DRIT's read model.ngf and model.ndf only; CycleGAN's,
    GcGAN's and StegoGAN's no projector option): `srunit train` refuses the others
    (`MethodOptions.void_model_options`), and a run's config.yaml would hold them as the user's."""
    if method is None or method not in METHODS:
        return list(TINY_MODEL)
    unread = METHODS.get(method).Options().void_model_options()
    return [o for o in TINY_MODEL if o.split("=")[0].removeprefix("model.") not in unread]


@pytest.fixture
def tiny_model_overrides() -> list[str]:
    """The tiny model settings as ``section.key=value`` overrides (CLI tests pass them as ``--model.ngf=4``)."""
    return list(TINY_MODEL)


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., Config]:
    """``(preset="srunit", *overrides, data_root=None, runs_dir=None) -> Config`` with the tiny settings.

    ``preset=None`` starts from the defaults, so ``tiny_config(None, "method.name=cut")`` is the
    registered method with its own default options. Later overrides win over the tiny ones.
    """

    def build(preset: str | Path | None = "srunit", *overrides: str, data_root: Path | None = None,
              runs_dir: Path | None = None) -> Config:
        name = _method_name(preset, overrides)
        tiny = [*_tiny_model_read_by(name), *TINY_DATA_TRAIN]
        if name is not None and name in METHODS:
            fields = {f.name for f in dataclasses.fields(METHODS.get(name).Options)}
            tiny += [f"method.{k}={v}" for k, v in TINY_METHOD.items() if k in fields]
        paths = [f"data.root={data_root}"] if data_root is not None else []
        if runs_dir is not None:
            paths.append(f"train.runs_dir={runs_dir}")
        return load_config(preset, [*tiny, *paths, *overrides])

    return build


@pytest.fixture(scope="session")
def method_checkpoint(tiny_config: Callable[..., Config]) -> Callable[..., tuple[Any, Path]]:
    """``(root, name, step=5) -> (method in eval mode, run folder)``: method ``name`` built tiny (seed 0), its
    generators saved as the checkpoint of ``step`` in ``root/name`` beside its config.yaml."""
    import torch

    from srunit.engine.checkpoint import save_checkpoint
    from srunit.methods import build_method

    def make(root: Path, name: str, step: int = 5) -> tuple[Any, Path]:
        config = tiny_config(None, f"method.name={name}", "model.n_blocks=2")
        torch.manual_seed(0)
        method = build_method(config.method, config.model)
        run = root / name
        generators = {k: v for k, v in method.networks().items() if k in ("G", "G_BA", "E_c", "E_a")}
        save_checkpoint(run / "checkpoints", step, generators, {"step": step}, keep=True)
        (run / "config.yaml").write_text(config.to_yaml())
        return method.eval(), run

    return make


@pytest.fixture(scope="session")
def random_batch() -> Callable[..., dict[str, torch.Tensor]]:
    """``(batch_size=2, size=32, seed=0) -> {"A": (B, 3, S, S), "B": ...}``, uniform in [-1, 1], seeded."""
    import torch

    def make(batch_size: int = 2, size: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        return {k: torch.rand(batch_size, 3, size, size, generator=g) * 2 - 1 for k in ("A", "B")}

    return make


@pytest.fixture(scope="session")
def latest_weights() -> Callable[[Path], dict[str, torch.Tensor]]:
    """``(run_dir) -> {"G.layers.1.weight": tensor, ...}``: every network weight of the run's latest checkpoint."""
    from safetensors.torch import load_file

    def read(run_dir: Path) -> dict[str, torch.Tensor]:
        out = {}
        for f in sorted((run_dir / "checkpoints" / "latest").glob("*.safetensors")):
            out.update({f"{f.stem}.{k}": v for k, v in load_file(str(f)).items()})
        return out

    return read


@pytest.fixture(scope="session")
def normalised_away() -> Callable[[torch.nn.Module], set[str]]:
    """``(module) -> {parameter names}``: the biases of convolutions whose output goes straight into an
    InstanceNorm. The norm subtracts them again, so their true gradient is zero and what autograd
    returns is rounding noise (which Adam turns into steps of +-lr); comparisons of gradients or
    weights between two computations that differ only in rounding leave these out."""
    import torch

    def names(module: torch.nn.Module) -> set[str]:
        out = set()
        for prefix, parent in module.named_modules():
            children = list(parent.named_children())
            for (name, a), (_, b) in zip(children, children[1:]):
                if isinstance(a, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and a.bias is not None \
                        and isinstance(b, torch.nn.InstanceNorm2d):
                    out.add(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
        return out

    return names


# ----------------------------------------------------------------------------- generated data


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SynthScapes folder of 40x40 images: trainA and trainB of about 8 images each (11 with this
    seed), testA/testB/testLabels of 2, written by the real SynthScapes writer."""
    from srunit.synthscapes import make_synthscapes

    root = tmp_path_factory.mktemp("tiny_data") / "synthscapes"
    make_synthscapes(root, num_pool=32, num_test=2, size=40, seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_runs(tiny_config: Callable[..., Config], tiny_data: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Path]:
    """{"srunit": run folder, "cut": run folder}: tiny runs of one training step on ``tiny_data`` (seeds 0 and 1,
    so their generators differ), trained once per session (read-only for tests: copy a run before changing it)."""
    from srunit.engine import Trainer

    runs = tmp_path_factory.mktemp("tiny_runs")
    return {preset: Trainer(tiny_config(preset, "train.steps=1", f"train.seed={seed}", f"train.name={preset}",
                                        data_root=tiny_data, runs_dir=runs), show_progress=False).fit()
            for seed, preset in enumerate(("srunit", "cut"))}


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SynthScapes with a pool of 24 layouts of 32x32, 3 test images, seed 1 (read-only for tests)."""
    from srunit.synthscapes import make_synthscapes

    root = tmp_path_factory.mktemp("synth") / "ss"
    make_synthscapes(root, num_pool=24, num_test=3, size=32, seed=1)
    return root


@pytest.fixture(scope="session")
def tiny_segmenter_settings() -> SegmenterSettings:
    """A SynthScapes scoring segmenter that trains in a fraction of a second."""
    from srunit.synthscapes import SegmenterSettings

    return SegmenterSettings(size=32, num_images=8, steps=2, batch_size=2, width=4)


@pytest.fixture
def tiny_settings(tiny_model_overrides: list[str], tiny_segmenter_settings: SegmenterSettings):
    """Tiny benchmark settings (SynthScapes benchmark and study tests): make(**changes) overrides any field."""
    from srunit.synthscapes import BenchSettings

    def make(**changes: object) -> BenchSettings:
        base = dict(methods=("cut", "srunit"), conditions=("unmatched", "matched"), seeds=1, size=32, steps=2,
                    num_pool=24, num_test=2, device="cpu",
                    overrides=(*tiny_model_overrides, "method.num_patches=16"), segmenter=tiny_segmenter_settings)
        base.update(changes)
        return BenchSettings(**base)

    return make


@pytest.fixture
def tiny_bench_segmenter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         tiny_segmenter_settings: SegmenterSettings) -> Path:
    """Make the benchmark use the tiny segmenter (cached in tmp_path/cache) whatever its profile asks for."""
    import srunit.synthscapes.benchmark as bench_module
    from srunit.synthscapes import load_or_train_segmenter

    cache = tmp_path / "cache"
    load_or_train_segmenter(tiny_segmenter_settings, cache)
    monkeypatch.setattr(bench_module, "load_or_train_segmenter",
                        lambda settings, cache_dir=None, device="cpu", **_: load_or_train_segmenter(
                            tiny_segmenter_settings, cache))
    return cache


@pytest.fixture(scope="session")
def rand_rgb() -> Callable[..., np.ndarray]:
    """``(h, w, seed=0) -> (h, w, 3) uint8`` random pixels."""

    def make(h: int, w: int, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)

    return make


@pytest.fixture(scope="session")
def write_image(rand_rgb: Callable[..., np.ndarray]) -> Callable[..., Path]:
    """``(path, array=None, *, size=(30, 40), seed=0, **save_options) -> path``: save ``array`` (or random
    RGB pixels of ``size`` = (height, width)) with PIL, creating parent folders."""

    def write(path: Path, array: np.ndarray | None = None, *, size: tuple[int, int] = (30, 40), seed: int = 0,
              **save_options: Any) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rand_rgb(*size, seed=seed) if array is None else array).save(path, **save_options)
        return path

    return write


@pytest.fixture
def paired_folders(tmp_path: Path) -> tuple[Path, Path]:
    """pred/ and target/ with known per-pixel differences: a.png (4 pixels at distance 5, max channel
    difference 4) and sub/b (2 pixels at distance 40, max difference 40; .png vs .bmp pairs by stem)."""
    pred, target = tmp_path / "pred", tmp_path / "target"
    files = ((pred / "a.png", (10, 10, 10), (2, 2)), (target / "a.png", (13, 14, 10), (2, 2)),
             (pred / "sub" / "b.png", (0, 0, 0), (2, 1)), (target / "sub" / "b.bmp", (0, 40, 0), (2, 1)))
    for path, rgb, size in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, rgb).save(path)
    return pred, target


# ----------------------------------------------------------------------------- segmenters

_SEGMENTER_PY = """
import numpy as np

def segment(image):
    # strongest channel = class id (same as an identity 1x1 conv followed by argmax)
    return image.argmax(axis=2)

def bad(image):
    return np.zeros((1, 1), dtype=np.int64)
"""


@pytest.fixture(scope="session")
def rgb_strip() -> tuple[np.ndarray, list[list[int]]]:
    """A (1, 4, 3) image of pure red, green, blue and dark red pixels and its ids by strongest channel."""
    image = np.array([[[255, 0, 0], [0, 200, 0], [0, 0, 90], [60, 10, 20]]], dtype=np.uint8)
    return image, [[0, 1, 2, 0]]


@pytest.fixture
def python_segmenter(tmp_path: Path) -> Path:
    """A .py file with ``segment`` (argmax over the channels) and ``bad`` (wrong output shape)."""
    path = tmp_path / "myseg.py"
    path.write_text(_SEGMENTER_PY)
    return path


# ----------------------------------------------------------------------------- report folders

REPORT_SIZE = 12
REPORT_NAMES = ("a", "b", "c")
REPORT_PALETTE = [[70, 130, 180], [70, 70, 70], [128, 64, 128]]
_VOID_TAGS = {"img", "meta", "br", "hr", "link", "input"}


class HtmlPage(HTMLParser):
    """Collects the text, the <img> attributes and the tag structure of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.mismatched: list[str] = []
        self.seen: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.chunks: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag not in _VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.mismatched.append(tag)

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(self.chunks)


def _save_array(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _report_labels(i: int) -> np.ndarray:
    """(SIZE, SIZE) uint8 ids 0..2 in bands; the last row is the ignore label 255."""
    labels = ((np.arange(REPORT_SIZE)[:, None] + np.arange(REPORT_SIZE)[None, :] + i) // 8 % 3).astype(np.uint8)
    labels[-1, :] = 255
    return labels


def _report_scores(
    label: str, method: str, pixel_accuracy: float, data: Path | None, translated: str = "translated"
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "format": "srunit-eval/1",
        "label": label,
        "method": method,
        "condition": "unmatched",
        "seed": 0,
        "benchmark": "synthscapes",
        "segmentation": {
            "pixel_accuracy": pixel_accuracy,
            "class_accuracy": 0.52,
            "mean_iou": 0.40,
            "per_class": [
                {"id": 0, "name": "sky", "accuracy": 0.9, "iou": 0.8},
                {"id": 1, "name": "building", "accuracy": 0.5, "iou": 0.3},
                {"id": 2, "name": "road", "accuracy": None, "iou": None},
            ],
            "absent_classes": [2],
        },
        "paired": {"dist": 61.2, "acc": {"30": 0.41, "50": 0.60}},
        "class_names": ["sky", "building", "road"],
        "palette": REPORT_PALETTE,
    }
    if data is not None:
        record["images"] = {
            "source": str(data / "source"),
            "target": str(data / "target"),
            "labels": str(data / "labels"),
            "translated": translated,
            "predicted": "predicted",
        }
    return record


@pytest.fixture
def report_dataset(tmp_path: Path) -> Path:
    """labels/, source/ (label colours) and target/ for the report's three 12x12 images a, b, c."""
    root = tmp_path / "data"
    for i, name in enumerate(REPORT_NAMES):
        labels = _report_labels(i)
        colours = np.asarray(REPORT_PALETTE + [[0, 0, 0]] * 253, dtype=np.uint8)[labels]
        _save_array(root / "labels" / f"{name}.png", labels)
        _save_array(root / "source" / f"{name}.png", colours)
        _save_array(root / "target" / f"{name}.png", (colours // 2 + 60).astype(np.uint8))
    return root


@pytest.fixture(scope="session")
def make_report_run() -> Callable[..., Path]:
    """``(folder, method="cut", *, data=None, label=None, pixel_accuracy=0.71, metrics=True, flips=12)``:
    a run folder as the trainer and the evaluation write it. Image 'a' has ``flips`` flipped pixels in
    its first row, and every run also disagrees with the labels on the ignore row."""

    def make(
        folder: Path,
        method: str = "cut",
        *,
        data: Path | None = None,
        label: str | None = None,
        pixel_accuracy: float = 0.71,
        metrics: bool = True,
        flips: int = 12,
    ) -> Path:
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(
            yaml.safe_dump({"model": {}, "data": {}, "train": {}, "method": {"name": method}})
        )
        if metrics:
            lines = [
                {"step": s, "D": 0.3 - s / 1000, "G_GAN": 0.4, "NCE": 3.4 - s / 100, "images_per_s": 6.4, "lr": 2e-4}
                for s in (50, 100, 150)
            ]
            (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        if data is not None or label is not None:
            scores = _report_scores(label or f"{method} / unmatched / seed 0", method, pixel_accuracy, data)
            (folder / "eval").mkdir()
            (folder / "eval" / "scores.json").write_text(json.dumps(scores))
        if data is not None:
            for i, name in enumerate(REPORT_NAMES):
                labels = _report_labels(i)
                pred = labels.copy()
                pred[-1, :] = 1  # the ignore row: never a flip
                if name == "a":
                    pred[0, :flips] = (labels[0, :flips] + 1) % 3
                _save_array(folder / "eval" / "predicted" / f"{name}.png", pred)
                _save_array(
                    folder / "eval" / "translated" / f"{name}.png",
                    np.full((REPORT_SIZE, REPORT_SIZE, 3), 90, dtype=np.uint8),
                )
        return folder

    return make


@pytest.fixture(scope="session")
def make_report_bench(make_report_run: Callable[..., Path]) -> Callable[[Path, Path], Path]:
    """``(root, data) -> root``: a bench folder with two cut seeds, one srunit run, the upper bound
    and summary.json; cut-seed0 flips 6 pixels of image 'a'."""

    def make(root: Path, data: Path) -> Path:
        make_report_run(root / "unmatched" / "cut-seed0", "cut", data=data, flips=6)
        make_report_run(root / "unmatched" / "cut-seed1", "cut", data=data, label="cut / unmatched / seed 1")
        make_report_run(root / "unmatched" / "srunit-seed0", "srunit", data=data, flips=3)
        upper = make_report_run(
            root / "upper_bound", "none", label="segmenter on ground-truth renderings", metrics=False
        )
        (upper / "eval" / "scores.json").write_text(
            json.dumps(
                _report_scores(
                    "segmenter on ground-truth renderings", "none", 0.95, data, translated=str(data / "target")
                )
            )
        )
        for i, name in enumerate(REPORT_NAMES):
            _save_array(upper / "eval" / "predicted" / f"{name}.png", _report_labels(i))
        summary = {
            "format": "srunit-bench/1",
            "benchmark": "synthscapes",
            "command": "srunit bench synthscapes --methods cut,srunit --seeds 2",
            "machine": "2-core Xeon, CPU",
            "settings": {"size": REPORT_SIZE, "steps": 150},
            "metrics": ["pixel_accuracy", "class_accuracy", "mean_iou", "dist", "acc_30", "acc_50"],
            "rows": [
                {
                    "method": "cut",
                    "condition": "unmatched",
                    "n": 2,
                    "mean": {
                        "pixel_accuracy": 0.71,
                        "class_accuracy": 0.52,
                        "mean_iou": 0.4,
                        "dist": 60.1,
                        "acc_30": 0.4,
                        "acc_50": 0.6,
                    },
                    "std": {
                        "pixel_accuracy": 0.01,
                        "class_accuracy": 0.02,
                        "mean_iou": 0.03,
                        "dist": 1.5,
                        "acc_30": 0.01,
                        "acc_50": 0.02,
                    },
                    "runs": ["unmatched/cut-seed0", "unmatched/cut-seed1"],
                },
                {
                    "method": "srunit",
                    "condition": "unmatched",
                    "n": 1,
                    "mean": {
                        "pixel_accuracy": 0.765,
                        "class_accuracy": 0.6,
                        "mean_iou": 0.45,
                        "dist": None,
                        "acc_30": 0.5,
                        "acc_50": 0.7,
                    },
                    "std": {
                        "pixel_accuracy": None,
                        "class_accuracy": None,
                        "mean_iou": None,
                        "dist": None,
                        "acc_30": None,
                        "acc_50": None,
                    },
                    "runs": ["unmatched/srunit-seed0"],
                },
            ],
            "upper_bound": {
                "label": "segmenter on ground-truth renderings",
                "pixel_accuracy": 0.95,
                "class_accuracy": 0.9,
                "mean_iou": 0.85,
                "run": "upper_bound",
            },
        }
        (root / "summary.json").write_text(json.dumps(summary))
        return root

    return make


@pytest.fixture(scope="session")
def check_report_page() -> Callable[[Path], HtmlPage]:
    """``(path) -> HtmlPage``: parse a report and check that it is well-formed and self-contained (one
    html/head/body/h1, every image a decodable inline PNG, no external reference)."""

    def check(path: Path) -> HtmlPage:
        text = path.read_text(encoding="utf-8")
        page = HtmlPage(text)
        assert page.stack == [] and page.mismatched == []
        for tag in ("html", "head", "body", "h1"):
            assert page.seen.count(tag) == 1
        for attrs in page.images:
            src = attrs["src"] or ""
            assert src.startswith("data:image/png;base64,")
            with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True))) as img:
                assert img.format == "PNG"
                img.load()
        for external in ("http://", "https://", "<script", "<link", 'src="/', "href="):
            assert external not in text
        return page

    return check


@pytest.fixture(scope="session")
def file_snapshot() -> Callable[[Path], dict[str, tuple[int, int]]]:
    """``(root) -> {relative path: (size, mtime_ns)}`` of every file below ``root``."""

    def snapshot(root: Path) -> dict[str, tuple[int, int]]:
        return {
            p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")
            if p.is_file()
        }

    return snapshot
