"""MkDocs hook: the configuration reference, generated from the option definitions.

Every option is a dataclass field with its help text as metadata (``srunit.options.option``), the
same text `srunit train --help` prints. The page docs/reference/configuration.md holds the tables
between ``<!-- config-reference -->`` and ``<!-- /config-reference -->``: committed, so the page reads
on the repository host too, and replaced by this hook at every build, so the site is never stale.
``python docs/hooks/config_reference.py`` rewrites the committed tables (a test checks they are current).
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- config-reference -->"
END = "<!-- /config-reference -->"
PAGE = Path(__file__).resolve().parents[1] / "reference" / "configuration.md"


def _cell(value: Any) -> str:
    """A default as one types it in a YAML file (``fp32``, ``[0, 4, 8]``, ``true``, ``null``)."""
    import yaml

    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return text or "''"


def _code(text: str) -> str:
    """``text`` as inline code in a table cell. Python-Markdown keeps the backslash of ``\\|`` inside backticks,
    so a value holding a pipe is written as HTML, where ``&#124;`` renders as ``|`` (on the repository host too)."""
    if "|" not in text:
        return f"`{text}`"
    return "<code>" + html.escape(text, quote=False).replace("|", "&#124;") + "</code>"


def _table(rows: list) -> list[str]:
    out = ["| option | type | default | what it sets |", "|---|---|---|---|"]
    for r in rows:
        help_text = r.help.replace("|", "\\|")
        out.append(f"| `{r.key}` | {r.type.replace('|', '&#124;')} | {_code(_cell(r.default))} | {help_text} |")
    return out


def reference() -> str:
    from srunit.config import method_option_rows, option_rows
    from srunit.options import DataConfig, ModelConfig, TrainConfig
    from srunit.registry import METHODS, TERMS

    out: list[str] = []
    for title, section, cls in (("model", "model.", ModelConfig), ("data", "data.", DataConfig),
                                ("train", "train.", TrainConfig)):
        summary = " ".join(cls.__doc__.strip().split("\n\n")[0].split())  # the docstring's first paragraph
        out += [f"## `{title}`", "", summary, ""] + _table(option_rows(cls, section)) + [""]
    sections = ", ".join(f"`{name}`" for name, _ in TERMS.in_order())
    out += ["## `method`", "", "The options of the method that `method.name` selects. Sections of added loss terms "
            f"({sections}) are off unless given (or on in a variant such as `srunit`); each method that takes "
            "them lists them.", ""]
    for name in METHODS.names():
        cls = METHODS.get(name)
        variant = METHODS.variant(name)
        doc = variant.help if variant is not None else \
            (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        rows = method_option_rows(name)
        always = [r for r in rows if not r.section]
        optional: dict[str, list] = {}
        for r in rows:
            if r.section:
                optional.setdefault(r.section, []).append(r)
        out += [f"### `{name}`", "", doc, ""] + _table(always) + [""]
        for what, group in optional.items():
            out += [f"*{what}*", ""] + _table(group) + [""]
    return "\n".join(out)


def with_reference(markdown: str) -> str:
    """``markdown`` with the tables between the markers (re)generated."""
    block = f"{MARKER}\n{reference()}\n{END}"
    if END in markdown:
        return re.sub(re.escape(MARKER) + ".*?" + re.escape(END), lambda _: block, markdown, flags=re.S)
    return markdown.replace(MARKER, block)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER in markdown:
        return with_reference(markdown)
    return markdown


if __name__ == "__main__":
    PAGE.write_text(with_reference(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {PAGE}", file=sys.stderr)
