"""StegoGAN through srunit's normal paths, end to end: `srunit train` (and --resume) with both presets, `srunit
translate` both ways, `srunit export` to ONNX, `srunit eval seg --run` with the hallucination rate and the masks,
`srunit report` showing them, and `srunit app` serving the translation beside its unmatchability mask."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.cli.main import main
from srunit.inference import Translator
from srunit.unmatched import UnmatchedMasks, mask_file


@pytest.fixture(scope="module")
def stego_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """stegogan-official trained 2 steps, stopped and resumed to 3 through `srunit train` (tiny networks)."""
    runs = tmp_path_factory.mktemp("stego")
    model = ["--model.ngf=4", "--model.ndf=4", "--model.n_blocks=6"]
    assert main(["train", "--preset", "stegogan-official", *model, "--data.root", str(tiny_data),
                 "--data.load_size", "36", "--data.crop_size", "32", "--data.num_workers", "0", "--train.device",
                 "cpu", "--train.runs_dir", str(runs), "--train.steps", "2", "--train.batch_size", "2",
                 "--method.pool_size", "3", "--train.sample_every", "1", "--no-progress"]) == 0
    run = runs / "stegogan-official"
    assert main(["train", "--resume", str(run), "--train.steps", "3", "--no-progress"]) == 0
    return run


def test_trains_resumes_and_translates_both_ways(stego_run: Path, tiny_data: Path, tmp_path: Path) -> None:
    latest = stego_run / "checkpoints" / "latest"
    assert latest.resolve().name == "step_00000003"
    assert {p.name for p in latest.glob("*.safetensors")} == {"G.safetensors", "G_BA.safetensors",
                                                            "D_B.safetensors", "D_A.safetensors"}
    state = torch.load(latest / "state.pt", weights_only=True)
    assert state["method"]["pools"]["B"]["count"] == 3
    assert int(next(iter(state["optimizers"]["G"]["state"].values()))["step"]) == 6  # two Adam steps a step
    # The sample grid: one row per image, real_A | fake_B | rec_A | real_B | mask_B | fake_A | rec_B.
    with Image.open(stego_run / "samples" / "step_00000003.png") as grid:
        assert grid.width > 6 * 32 and grid.width < 8 * 40
    image = tiny_data / "testA" / "0000.png"
    outputs = {}
    for direction in ("AtoB", "BtoA"):
        out = tmp_path / direction
        assert main(["translate", "--checkpoint", str(stego_run), "--input", str(image), "--output", str(out),
                     "--device", "cpu", "--direction", direction]) == 0
        with Image.open(out / "0000.png") as img:
            assert img.size == (40, 40)
            outputs[direction] = np.asarray(img)
    assert not np.array_equal(outputs["AtoB"], outputs["BtoA"])
    # The translation is G(x) without hidden features: the same numbers as the generator itself.
    direct = Translator.from_checkpoint(stego_run, device="cpu").translate_images([Image.open(image)])[0]
    assert np.array_equal(np.asarray(direct), outputs["AtoB"])


def test_exports_to_onnx_and_translates_with_the_file(stego_run: Path, tiny_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    onnx = tmp_path / "stego.onnx"
    assert main(["export", str(stego_run), "--output", str(onnx)]) == 0
    image = tiny_data / "testA" / "0001.png"
    for checkpoint, out in ((onnx, tmp_path / "onnx"), (stego_run, tmp_path / "torch")):
        assert main(["translate", "--checkpoint", str(checkpoint), "--input", str(image), "--output", str(out),
                     "--device", "cpu"]) == 0
    exported, native = (np.asarray(Image.open(tmp_path / d / "0001.png")).astype(int) for d in ("onnx", "torch"))
    assert np.abs(exported - native).max() <= 1
    assert mask_file(onnx) is None  # an export holds the A -> B generator alone


def test_eval_records_hallucinations_and_masks_and_the_report_shows_them(
        stego_run: Path, tiny_data: Path, tmp_path: Path, check_report_page, tiny_segmenter_settings,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from srunit.synthscapes import settings

    monkeypatch.setenv("SRUNIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(settings, "scorer_settings", lambda size: tiny_segmenter_settings)  # trains in a moment
    run = tmp_path / "run"
    subprocess.run(["cp", "-a", str(stego_run), str(run)], check=True)  # the module's run stays as it is
    translated = tmp_path / "translated"
    assert main(["translate", "--checkpoint", str(run), "--input", str(tiny_data / "testA"), "--output",
                 str(translated), "--device", "cpu"]) == 0
    assert main(["eval", "seg", "--images", str(translated), "--labels", str(tiny_data / "testLabels"),
                 "--segmenter", "synthscapes", "--classes", "8", "--class-names", "synthscapes", "--hallucinated",
                 "car", "--run", str(run), "--sources", str(tiny_data / "testA")]) == 0
    assert "hallucinated as car: " in capsys.readouterr().out
    record = json.loads((run / "eval" / "scores.json").read_text())
    assert 0 <= record["segmentation"]["hallucination"]["hallucination_rate"] <= 1
    assert record["images"]["masks"] == "masks"
    masks = sorted((run / "eval" / "masks").iterdir())
    assert [p.name for p in masks] == ["0000.png", "0001.png"]
    # Each mask is G_BA's mask of the translation, at its size, white where unmatched.
    reader = UnmatchedMasks.from_checkpoint(run, device="cpu")
    assert reader is not None
    with Image.open(masks[0]) as got:
        want = reader.mask_images([Image.open(translated / "0000.png")])[0]
        assert got.mode == "L" and got.size == (40, 40) and np.array_equal(np.asarray(got), np.asarray(want))
    assert main(["report", str(run)]) == 0
    page = check_report_page(run / "report.html")
    assert "unmatchability mask" in page.text and "hallucinated %" in page.text
    assert sum((a["alt"] or "").endswith(" unmatched") for a in page.images) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_app_shows_the_translation_beside_its_mask(stego_run: Path, tiny_runs: dict[str, Path],
                                                       tmp_path: Path, rand_rgb) -> None:
    gradio_client = pytest.importorskip("gradio_client", reason="the app extra is not installed")
    pytest.importorskip("gradio", reason="the app extra is not installed")
    cmd = [sys.executable, "-m", "srunit", "app", "--checkpoint", str(stego_run), "--checkpoint",
           str(tiny_runs["cut"]), "--device", "cpu", "--port", str(_free_port())]
    # The app computes with as many threads as this process, whose translation it must equal pixel for pixel: the
    # sums of a convolution split over other threads can round one pixel to the next level (seen once: a worker of
    # one thread beside an app of two).
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = []
    try:
        deadline = time.monotonic() + 600  # a busy machine takes minutes to import gradio and load the networks
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "srunit app ended before serving:\n" + "".join(log)
            log.append(line)
            if line.startswith("serving on "):
                break
        else:
            pytest.fail("srunit app did not serve within 600 s:\n" + "".join(log))
        url = line.split()[2]
        image = tmp_path / "up.png"
        Image.fromarray(rand_rgb(30, 42, seed=2)).save(image)
        client = gradio_client.Client(url, verbose=False)
        stego, cut, mask, status = client.predict(gradio_client.handle_file(str(image)), api_name="/translate")
        assert status.startswith("42 x 30 pixels, translated by 2 checkpoint(s)")
        translator = Translator.from_checkpoint(stego_run, device="cpu")
        expected = translator.translate_images([Image.open(image)])[0]
        with Image.open(stego) as got:
            assert np.array_equal(np.asarray(got), np.asarray(expected))
        reader = UnmatchedMasks.from_checkpoint(stego_run, device="cpu")
        assert reader is not None
        with Image.open(mask) as got:
            assert got.size == (42, 30)
            assert np.array_equal(np.asarray(got.convert("L")), np.asarray(reader.mask_images([expected])[0]))
        labels = [c["props"].get("label") for c in client.config["components"]
                  if str(c["props"].get("elem_id", "")).startswith("srunit-mask-")]
        assert labels == ["stegogan-official · stegogan · step 3: unmatched (white)"]  # the cut run has none
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the command stops the server and exits 0
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == 0, "".join(log)
