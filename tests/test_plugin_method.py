"""A method of your own plugs in through one file: tests/plugins/toy_translation.py.

With ``SRUNIT_PLUGINS=toy_translation`` (and its folder on PYTHONPATH) srunit's unchanged commands
train it, resume it, translate with it, export it and serve it in the app, each through the normal
paths: the config names the method, the checkpoint files name their network class, and the
translator interface carries the rest. docs/adding-a-method.md walks through the same file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PLUGINS = Path(__file__).resolve().parent / "plugins"
ENV = {**os.environ, "SRUNIT_PLUGINS": "toy_translation",
       "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")])}

pytestmark = pytest.mark.e2e


def srunit(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "srunit", *args], env=ENV, capture_output=True, text=True,
                          timeout=600)
    if check:
        assert done.returncode == 0, f"srunit {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def toy_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy run trained 3 steps, stopped, and resumed to 5 through `srunit train`."""
    root = tmp_path_factory.mktemp("toy")
    preset = root / "toy.yaml"
    preset.write_text("method:\n  name: toy\n  width: 6\nmodel:\n  ndf: 4\ntrain:\n  name: toy\n")
    srunit("train", "--preset", str(preset), "--data.root", str(tiny_data), "--data.load_size", "36",
           "--data.crop_size", "32", "--data.num_workers", "0", "--train.device", "cpu", "--train.steps", "3",
           "--train.runs_dir", str(root / "runs"), "--no-progress")
    run = root / "runs" / "toy"
    srunit("train", "--resume", str(run), "--train.steps", "5", "--no-progress")
    return run


def test_the_toy_method_trains_and_resumes(toy_run: Path) -> None:
    assert (toy_run / "checkpoints" / "latest").resolve().name == "step_00000005"
    assert {p.name for p in (toy_run / "checkpoints" / "latest").glob("*.safetensors")} == {"G.safetensors",
                                                                                           "D.safetensors"}
    history = (toy_run / "history.jsonl").read_text().splitlines()
    assert len(history) == 2 and '"resume"' in history[1]


@pytest.fixture
def toy_imported_here() -> Iterator[None]:
    """The test imports the toy plugin into this process; afterwards its method and network leave the registries
    and the module leaves sys.modules. Under pytest-xdist a later module in the same worker (the configuration
    reference, the package's registered methods) otherwise saw `toy`."""
    from srunit.registry import METHODS, NETWORKS, TERMS

    registries = (METHODS, TERMS, NETWORKS)
    for registry in registries:
        registry.names()  # loaded before the snapshot, so what is restored holds srunit's own entries
    saved = [dict(registry._entries) for registry in registries]
    variants = dict(METHODS._variants)
    yield
    for registry, entries in zip(registries, saved):
        registry._entries.clear()
        registry._entries.update(entries)
    METHODS._variants.clear()
    METHODS._variants.update(variants)
    sys.modules.pop("toy_translation", None)


@pytest.mark.usefixtures("toy_imported_here")
def test_translate_export_and_the_app_give_the_same_translation(toy_run: Path, tmp_path: Path, rand_rgb) -> None:
    image = tmp_path / "in.png"
    Image.fromarray(rand_rgb(30, 42, seed=5)).save(image)
    srunit("translate", "--checkpoint", str(toy_run), "--input", str(image), "--output", str(tmp_path / "out"),
           "--device", "cpu")
    translated = np.asarray(Image.open(tmp_path / "out" / "in.png"))
    assert translated.shape == (30, 42, 3)

    # The same numbers computed here, from the network file alone (its class found by name).
    sys.path.insert(0, str(PLUGINS))
    try:
        import importlib

        importlib.import_module("toy_translation")
        from srunit.inference import Translator

        direct = Translator.from_checkpoint(toy_run, device="cpu").translate_images([Image.open(image)])[0]
    finally:
        sys.path.remove(str(PLUGINS))
    assert np.array_equal(np.asarray(direct), translated)

    onnx = pytest.importorskip("onnxruntime")
    assert onnx is not None
    srunit("export", str(toy_run), "--output", str(tmp_path / "toy.onnx"))
    srunit("translate", "--checkpoint", str(tmp_path / "toy.onnx"), "--input", str(image), "--output",
           str(tmp_path / "out-onnx"))
    exported = np.asarray(Image.open(tmp_path / "out-onnx" / "in.png")).astype(int)
    assert np.abs(exported - translated).max() <= 1  # onnxruntime's rounding, at most one grey level

    gradio_client = pytest.importorskip("gradio_client")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = subprocess.Popen([sys.executable, "-m", "srunit", "app", "--checkpoint", str(toy_run), "--device", "cpu",
                            "--port", str(port)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline, url = time.monotonic() + 180, None
        while url is None and time.monotonic() < deadline:
            line = app.stdout.readline()
            assert line, "srunit app ended before serving"
            if line.startswith("serving on "):
                url = line.split()[2]
        assert url, "srunit app did not serve within 180 s"
        client = gradio_client.Client(url, verbose=False)
        served, _status = client.predict(gradio_client.handle_file(str(image)), api_name="/translate")
        assert np.array_equal(np.asarray(Image.open(served).convert("RGB")), translated)
    finally:
        app.send_signal(signal.SIGINT)
        app.wait(timeout=60)


def test_an_unknown_plugin_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "srunit", "train", "--preset", "cut", "--dry-run"],
                          env={**os.environ, "SRUNIT_PLUGINS": "no_such_module_here"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "plugin module 'no_such_module_here'" in done.stderr
    assert "Traceback" not in done.stderr
