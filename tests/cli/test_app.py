"""`srunit app` end to end: the command serves the page, gradio_client and a headless Chromium use it.

One server (a `srunit app` process on a free localhost port, two tiny checkpoints) serves the
whole module. Its translations are compared pixel for pixel with what `srunit translate` writes.
The browser test drives Debian's chromium through the DevTools protocol over a pipe
(``--remote-debugging-pipe``: JSON messages ending in a NUL byte on file descriptors 3 and 4), so
it needs no driver, no websocket library and no download.
"""

from __future__ import annotations

import base64
import fcntl
import importlib.util
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from srunit.cli.main import main

# Skipped without the app extra; checked without importing gradio, which takes seconds at every collection.
if any(importlib.util.find_spec(m) is None for m in ("gradio", "gradio_client")):
    pytest.skip("the app extra is not installed (pip install -e '.[dev]')", allow_module_level=True)


def _client(url: str) -> Any:
    """A gradio_client for the served page (imported here: the module's collection stays fast)."""
    import gradio_client

    return gradio_client.Client(url, verbose=False)


def _client_file(path: Path) -> Any:
    import gradio_client

    return gradio_client.handle_file(str(path))

MAX_PIXELS = 100_000
LABELS = ["srunit · srunit · step 1", "cut · cut · step 1"]
REFUSED = ("image file big.png is 400 x 300 = 120,000 pixels, more than this app's limit of 100,000; upload a "
           "smaller image (whoever runs the app sets the limit with srunit app --max-pixels)")


@dataclass
class Served:
    url: str
    process: subprocess.Popen
    log: list[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_runs: dict[str, Path]) -> Iterator[Served]:
    """`srunit app` serving the tiny srunit and cut runs on CPU with a 100,000-pixel limit."""
    cmd = [sys.executable, "-m", "srunit", "app", "--checkpoint", str(tiny_runs["srunit"]), "--checkpoint",
           str(tiny_runs["cut"]), "--device", "cpu", "--max-pixels", str(MAX_PIXELS), "--examples", "2",
           "--port", str(_free_port())]
    # PYTHONFAULTHANDLER: a server that does not stop is aborted below, and prints every thread's stack.
    # SIGINT back to its default: a pytest started in the background by a non-interactive shell
    # (`make test &`) ignores SIGINT, its children inherit that, and the Ctrl-C below would be lost.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log: list[str] = []
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                pytest.fail("srunit app ended before serving:\n" + "".join(log))
            log.append(line)
            if line.startswith("serving on "):
                break
        else:
            pytest.fail("srunit app did not serve within 180 s:\n" + "".join(log))
        # keep reading what the server prints, so that a full pipe never stalls it
        reader = threading.Thread(target=lambda: log.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        yield Served(line.split()[2], proc, log)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the command stops the server and exits 0
        try:
            status = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler writes where each thread is waiting
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            time.sleep(1)  # let the reader take the last lines
            pytest.fail("srunit app did not stop within 30 s of SIGINT; its output:\n" + "".join(log))
    reader.join(timeout=10)
    proc.stdout.close()
    assert status == 0 and log[-1] == "stopped\n", "".join(log)


def _translate_with_cli(runs: dict[str, Path], image: Path, out: Path) -> list[np.ndarray]:
    arrays = []
    for name in ("srunit", "cut"):
        assert main(["translate", "--checkpoint", str(runs[name]), "--input", str(image), "--output",
                     str(out / name), "--device", "cpu"]) == 0
        arrays.append(np.asarray(Image.open(out / name / f"{image.stem}.png")))
    return arrays


def test_the_page_shows_what_srunit_translate_writes(served: Served, tiny_runs: dict[str, Path], tmp_path: Path,
                                                      rand_rgb, capsys: pytest.CaptureFixture) -> None:
    assert "".join(served.log).count("checkpoint: ") == 2
    image = tmp_path / "odd size.png"
    Image.fromarray(rand_rgb(37, 45, seed=3)).save(image)  # 45 x 37: padded to a multiple of 4 and cropped back
    expected = _translate_with_cli(tiny_runs, image, tmp_path / "cli")
    capsys.readouterr()
    client = _client(served.url)
    *outputs, status = client.predict(_client_file(image), api_name="/translate")
    assert len(outputs) == 2
    for path, want in zip(outputs, expected):
        with Image.open(path) as got:
            assert (got.format, got.mode, got.size) == ("PNG", "RGB", (45, 37))
            assert np.array_equal(np.asarray(got), want)
    assert not np.array_equal(expected[0], expected[1])  # two checkpoints, two translations
    assert status.startswith("45 x 37 pixels, translated by 2 checkpoint(s) in ") and "on cpu (fp32)" in status
    labels = [c["props"].get("label") for c in client.config["components"] if c["props"].get("elem_id", "")
              and c["props"]["elem_id"].startswith("srunit-output-")]
    assert labels == LABELS


def test_a_too_large_upload_is_refused_with_a_clear_message(served: Served, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (400, 300), (10, 20, 30)).save(big)
    client = _client(served.url)
    assert client.predict(_client_file(big), api_name="/translate") == (None, None,
                                                                                        f"Refused: {REFUSED}")
    # a file larger than any image of 100,000 pixels (8 bytes a pixel + 1 MiB) is refused before it is stored
    padded = big.read_bytes() + bytes(MAX_PIXELS * 8 + (1 << 20))
    assert _upload(served.url, "padded.png", padded[: MAX_PIXELS * 8 + (1 << 20)]) == 200
    assert _upload(served.url, "padded.png", padded) == 413


def _upload(url: str, name: str, data: bytes) -> int:
    """POST ``data`` to the server's upload route as a browser does (multipart form) -> the HTTP status."""
    boundary = "srunit-test-boundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_examples_are_the_runs_held_out_images(served: Served, tiny_data: Path) -> None:
    client = _client(served.url)
    datasets = [c["props"] for c in client.config["components"] if c["type"] == "dataset"]
    assert [d["label"] for d in datasets] == [f"Examples from {tiny_data / 'testA'}"]
    names = [sample[0]["orig_name"] for sample in datasets[0]["samples"]]
    assert names == ["0000.png", "0001.png"]


def test_bad_options_are_usage_errors(tiny_runs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    run = str(tiny_runs["cut"])
    for args, message in ((["--max-pixels", "0"], "--max-pixels must be an integer from 1 to 4,294,967,296, got 0"),
                          (["--examples", "-1"], "--examples must be an integer from 0 to 1,000, got -1"),
                          (["--port", "70000"], "--port must be between 1 and 65535, got 70000"),
                          (["--checkpoint", str(tiny_runs["cut"].parent / "nope")], "does not exist")):
        assert main(["app", "--checkpoint", run, *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("srunit app: error: ") and message in err
    with pytest.raises(SystemExit):
        main(["app", "--checkpoint", run, "--precision", "fp8"])
    assert "invalid choice: 'fp8'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a real browser


def _above_9(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe, attached to one page."""

    def __init__(self, chromium: str, profile: Path, width: int = 1280, height: int = 900) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser's ends above fd 9, so that moving them onto fds 3 and 4 cannot overwrite one with the other
        # (bash, not sh: dash takes single-digit descriptors only).
        to_browser_r, from_browser_w = (_above_9(fd) for fd in (to_browser_r, from_browser_w))
        profile.mkdir(parents=True, exist_ok=True)
        self._log_file = profile / "chromium.log"
        flags = ["--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-dev-shm-usage", "--disable-background-networking", "--hide-scrollbars",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
        # The protocol expects the browser's end on fds 3 (commands in) and 4 (replies out).
        with self._log_file.open("wb") as log:
            self.process = subprocess.Popen(
                ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}', chromium, *flags],
                pass_fds=(to_browser_r, from_browser_w), stdout=subprocess.DEVNULL, stderr=log)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise RuntimeError(f"chromium has ended; its log:\n{self.log()}") from None
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def log(self) -> str:
        """The end of chromium's own log, without its complaints about the missing system D-Bus."""
        lines = self._log_file.read_text(errors="replace").splitlines()
        return "\n".join([line for line in lines if "dbus" not in line][-30:])

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the DevTools pipe; its log:\n{self.log()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network", "DOM"):
            self.send(f"{domain}.enable")
        self.send("Page.navigate", url=url)

    def upload(self, selector: str, path: Path) -> None:
        """Choose ``path`` in the file input ``selector`` as a person would (input and change events fire)."""
        self.wait_for(f"document.querySelector({json.dumps(selector)}) !== null")
        document = self.send("DOM.getDocument")["root"]["nodeId"]
        node = self.send("DOM.querySelector", nodeId=document, selector=selector)["nodeId"]
        self.send("DOM.setFileInputFiles", nodeId=node, files=[str(path)])

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"the page never satisfied {expression}")

    def close(self) -> None:
        try:
            self.session = None
            self.send("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


_OUTPUTS_SHOWN = """(() => {
  const imgs = [...document.querySelectorAll('[id^="srunit-output-"] img')];
  if (imgs.length !== %d || !imgs.every(i => i.complete && i.naturalWidth > 0)) return null;
  return imgs.map(i => ({src: i.src, natural: [i.naturalWidth, i.naturalHeight],
                         shown: [i.getBoundingClientRect().width, i.getBoundingClientRect().height],
                         panel: [i.closest('.image-frame').clientWidth, i.closest('.image-frame').scrollWidth]}));
})()"""


@pytest.mark.browser
def test_a_person_drops_an_image_in_chromium_and_sees_both_translations(
        served: Served, tiny_runs: dict[str, Path], tiny_data: Path, chromium: str, tmp_path: Path) -> None:
    """Loads the page, uploads an image through the file input, waits for both translations, checks that
    they are shown at native size and are the pixels `srunit translate` writes, takes a screenshot, then
    uploads a too-large image and waits for the refusal on the page (screenshots to $SRUNIT_APP_SCREENSHOT
    and its -refused sibling when set), then clicks the first example and gets its translations."""
    # a street strip of label maps at 3x, 480 x 120: wider than a panel (a third of a 1280-pixel window)
    a, b = (np.asarray(Image.open(tiny_data / "testA" / f"000{i}.png").convert("RGB")) for i in (0, 1))
    upload = tmp_path / "street labels.png"
    strip = np.concatenate([a, b, a[:, ::-1], b[:, ::-1]], axis=1)
    Image.fromarray(strip).resize((480, 120), Image.NEAREST).save(upload)
    expected = _translate_with_cli(tiny_runs, upload, tmp_path / "cli")
    browser = DevTools(chromium, tmp_path / "profile")
    try:
        browser.open(served.url)
        browser.upload("#srunit-source input[type=file]", upload)
        shown = browser.wait_for(_OUTPUTS_SHOWN % len(LABELS), timeout=90)
        status = browser.wait_for(
            "(t => t.includes('translated by') && t)(document.querySelector('#srunit-status').innerText)"
        )
        page_text = browser.evaluate("document.body.innerText")
        screenshot = base64.b64decode(
            browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        )
        big = tmp_path / "big.png"
        Image.new("RGB", (400, 300), (200, 30, 30)).save(big)
        browser.upload("#srunit-source input[type=file]", big)
        browser.wait_for(
            f"document.querySelector('#srunit-status').innerText === {json.dumps('Refused: ' + REFUSED)}"
            f" && document.querySelectorAll('[id^=\"srunit-output-\"] img').length === 0",
            timeout=60,
        )
        time.sleep(0.5)  # the notice slides in
        refused = base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"])
        browser.evaluate("document.querySelector('.gallery-item').click()")  # the first example: testA/0000.png
        from_example = browser.wait_for(_OUTPUTS_SHOWN % len(LABELS), timeout=60)
        example_status = browser.wait_for("document.querySelector('#srunit-status').innerText")
    finally:
        browser.close()
    (tmp_path / "page.png").write_bytes(screenshot)
    (tmp_path / "refused.png").write_bytes(refused)
    if os.environ.get("SRUNIT_APP_SCREENSHOT"):
        target = Path(os.environ["SRUNIT_APP_SCREENSHOT"])
        target.write_bytes(screenshot)
        target.with_name(f"{target.stem}-refused.png").write_bytes(refused)
    assert status.startswith("480 x 120 pixels, translated by 2 checkpoint(s)")
    for label in LABELS:
        assert label in page_text
    for item, want in zip(shown, expected):
        assert item["natural"] == [480, 120] and item["shown"] == [480, 120]  # native size, not scaled to fit
        assert item["panel"][0] < 480 == item["panel"][1]  # the panel scrolls over the whole image
        with urllib.request.urlopen(item["src"], timeout=30) as response:  # the bytes the browser displays
            with Image.open(response) as got:
                assert np.array_equal(np.asarray(got.convert("RGB")), want)
    assert example_status.startswith("40 x 40 pixels, translated by 2 checkpoint(s)")
    assert [item["natural"] for item in from_example] == [[40, 40], [40, 40]]
    # nothing was loaded from outside the app's server (no fonts, scripts or analytics from the internet)
    requested = [
        e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requested and all(u.startswith((served.url, "data:", "blob:")) for u in requested), requested
