"""Round twenty-three (A): the web app over HTTP for every method, and what it serves changing under it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from srunit.app import TranslationDemo, build_app, describe_checkpoint, launch_app
from srunit.errors import ConfigError


def test_a_b_to_a_generator_is_labelled_as_one(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "two-sided"
    shutil.copytree(tiny_runs["cut"], run)
    step = run / "checkpoints" / "step_00000001"
    shutil.copy(step / "G.safetensors", step / "G_BA.safetensors")  # as a two-sided method saves its B -> A one
    assert describe_checkpoint(step / "G_BA.safetensors").label == "two-sided · cut · step 1 · B \u2192 A"
    assert describe_checkpoint(step / "G.safetensors").label == "two-sided · cut · step 1"
    for name, label in (("x_net_G_B.pth", "x_net_G_B.pth · public CycleGAN weights · B \u2192 A"),
                        ("x_net_G_A.pth", "x_net_G_A.pth · public CycleGAN weights"),
                        ("x_net_G.pth", "x_net_G.pth · public CUT/SRUNIT weights")):
        (tmp_path / name).write_bytes(b"")  # read only when translating
        assert describe_checkpoint(tmp_path / name).label == label


@pytest.mark.slow
def test_sigterm_stops_the_app_quietly_and_deletes_its_uploads_and_translations(tiny_runs: dict[str, Path],
                                                                                  tmp_path: Path, write_image) -> None:
    gradio_client = pytest.importorskip("gradio_client")
    pytest.importorskip("gradio")
    temp = tmp_path / "gradio-temp"
    image = write_image(tmp_path / "up.png", size=(12, 20))
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_TEMP_DIR": str(temp)}
    proc = subprocess.Popen([sys.executable, "-m", "srunit", "app", "--checkpoint", str(tiny_runs["cut"]),
                             "--device", "cpu", "--examples", "0", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("serving on" in line for line in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        assert any("serving on" in line for line in lines), "".join(lines)
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict(gradio_client.handle_file(str(image)), api_name="/translate")
        assert sorted(p.name for p in temp.rglob("*") if p.is_file()) == ["image.png", "up.png"]
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in rest and "Traceback" not in rest, rest
    assert [p for p in temp.rglob("*") if p.is_file()] == []


class _Blocks:
    """Stands in for a gradio Blocks: records what launch was given."""

    def __init__(self, error: OSError | None = None) -> None:
        self.error, self.given = error, {}

    def launch(self, **given):
        self.given = given
        if self.error is not None:
            raise self.error
        return None, f"http://{given['server_name']}:{given['server_port']}/", None


@pytest.mark.slow  # it starts gradio's server; the other app tests of the fast tier call it with plain hosts
def test_an_ipv6_host_is_put_in_brackets_for_gradio(tiny_runs: dict[str, Path]) -> None:
    pytest.importorskip("gradio")
    demo = TranslationDemo.from_checkpoints([tiny_runs["cut"]], device="cpu")
    for host, given in (("::1", "[::1]"), ("::", "[::]"), ("[::1]", "[::1]"), ("127.0.0.1", "127.0.0.1"),
                        ("localhost", "localhost")):
        blocks = _Blocks()
        launch_app(blocks, demo, host=host, port=7000)
        assert blocks.given["server_name"] == given, host


@pytest.mark.slow
def test_a_port_in_use_is_refused_without_gradios_advice_that_srunit_app_ignores(tiny_runs: dict[str, Path]) -> None:
    pytest.importorskip("gradio")
    demo = TranslationDemo.from_checkpoints([tiny_runs["cut"]], device="cpu")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as refused:
            launch_app(build_app(demo, device="cpu", precision="fp32"), demo, host="127.0.0.1", port=port)
    message = str(refused.value)
    assert f"--port {port}" in message and "pass a free --port" in message
    assert "GRADIO_SERVER_PORT" not in message and "launch()" not in message, message


@pytest.mark.slow
def test_a_stegogan_b_to_a_generator_given_as_the_checkpoint_shows_no_mask(tiny_config, tiny_data: Path,
                                                                           tmp_path: Path) -> None:
    from srunit.engine import Trainer

    run = Trainer(tiny_config("stegogan", "train.steps=1", "train.name=stego", data_root=tiny_data,
                              runs_dir=tmp_path), show_progress=False).fit()
    step = run / "checkpoints" / "step_00000001"
    demo = TranslationDemo.from_checkpoints([run, step / "G_BA.safetensors"], device="cpu")
    # the A -> B column has the mask of its translation; the B -> A column none (its translations lie in domain A)
    assert demo.mask_labels == ["stego · stegogan · step 1: unmatched (white)"]
    assert demo.labels[1] == "stego · stegogan · step 1 · B \u2192 A"


def test_a_checkpoint_written_while_the_app_loads_does_not_change_the_label_of_the_weights_loaded(
        tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import srunit.app
    from srunit.inference import Translator

    run = tmp_path / "training"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    checkpoints = run / "checkpoints"
    shutil.copytree(checkpoints / "step_00000001", checkpoints / "step_00000002")
    load = Translator.from_checkpoint

    def load_then_a_checkpoint_lands(path, **kwargs):  # the trainer beside the app moves `latest` on
        translator = load(path, **kwargs)
        (checkpoints / "latest").unlink()
        (checkpoints / "latest").symlink_to("step_00000002")
        return translator

    monkeypatch.setattr(srunit.app.Translator, "from_checkpoint", staticmethod(load_then_a_checkpoint_lands))
    demo = TranslationDemo.from_checkpoints([run], device="cpu")
    # the weights loaded are step 1's (latest named it when they were read): the label says so
    assert demo.labels == ["training · cut · step 1"]
    assert demo.models[0].checkpoint.path == run
