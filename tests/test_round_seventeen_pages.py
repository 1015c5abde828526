"""Round seventeen (B): runs made by older srunit versions, and the pages as a person sees them in a browser.
The test reproduced a defect first: the HTML report in a narrow window (390 px asked; headless Chromium lays it
out at 500 px) showed the training-loss plot (1,190 px wide) cut off at the window's edge, three of its five
panels out of sight, and every wide table widened the whole page."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from srunit.report import build_report

# Runs once the page has loaded: the window's width, the page's, and each image's right edge and shown width.
_MEASURE = """<script>window.addEventListener("load", () => {
  const out = document.createElement("pre"); out.id = "measured";
  out.textContent = JSON.stringify({
    window: window.innerWidth, page: document.documentElement.scrollWidth,
    images: [...document.images].map(i => ({alt: i.alt, right: i.getBoundingClientRect().right,
                                             shown: i.getBoundingClientRect().width, natural: i.naturalWidth,
                                             inGrid: i.closest("table.grid") !== null}))});
  document.body.appendChild(out);
});</script>"""


def _measure(chromium: str, page: Path, width: int, profile: Path) -> dict:
    measured = page.with_name("measured.html")
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={profile}", f"--window-size={width},900", "--virtual-time-budget=5000", "--dump-dom",
         measured.as_uri()], capture_output=True, text=True, timeout=60, check=True).stdout
    start = dom.index('<pre id="measured">') + len('<pre id="measured">')
    return json.loads(dom[start:dom.index("</pre>", start)].replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
def test_the_report_fits_a_phone_wide_window_and_shows_every_plot_whole(
        tmp_path: Path, report_dataset: Path, make_report_run: Callable[..., Path], chromium: str,
        width: int) -> None:
    """At 390 px (laid out at 500) the page was 1,231 px wide: the loss plot ran off the window (G_GAN, NCE
    and G out of sight) and the tables widened the page. Now a plot is scaled down to the window, whole, and a
    wide table scrolls in its own box; the image grids keep their pixel size (cells enlarged by an integer
    factor)."""
    runs = [make_report_run(tmp_path / "runs" / name, name, data=report_dataset) for name in ("cut", "srunit")]
    page = build_report(runs, tmp_path / "report.html", num_images=3)
    seen = _measure(chromium, page, width, tmp_path / "profile")
    # Headless Chromium's window is at least 500 px wide (a 390 px window lays the page out at 500 px).
    window = seen["window"]
    assert window == max(width, 500)
    assert seen["page"] <= window  # nothing runs off the page's right edge
    plots = [i for i in seen["images"] if not i["inGrid"]]
    assert {"loss curves", "per-class IoU"} <= {i["alt"] for i in plots}
    for image in plots:
        assert image["right"] <= window, image["alt"]
        assert image["shown"] == pytest.approx(min(image["natural"], image["shown"]))  # never enlarged
    grids = [i for i in seen["images"] if i["inGrid"]]
    assert grids and all(i["shown"] == i["natural"] for i in grids)
