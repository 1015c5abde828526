"""HTML building blocks shared by the report's sections: escaping, inline PNG images, tables."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["esc", "img_tag", "table"]


def esc(value: Any) -> str:
    """``str(value)`` escaped for HTML text and attribute values."""
    return html.escape(str(value))


def img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` whose source is the PNG itself (a data URI), so the page needs no other file."""
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{esc(alt)}">'


def table(header: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "scores") -> str:
    """Header cells are text (escaped here); row cells are HTML, escaped by the caller. The table sits in a box
    that scrolls sideways, so a table wider than a phone's screen does not widen (and cut off) the whole page."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
