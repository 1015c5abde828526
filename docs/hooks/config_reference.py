"""MkDocs hook: the configuration reference, generated from the option definitions at build time.

Every option is a dataclass field with its help text as metadata (``srunit.options.option``), the
same text `srunit train --help` prints. The page docs/reference/configuration.md holds the marker
``<!-- config-reference -->``, which this hook replaces with one table per section and per method.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- config-reference -->"


def _cell(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text.replace("|", "\\|")


def _table(rows: list) -> list[str]:
    out = ["| option | type | default | what it sets |", "|---|---|---|---|"]
    for r in rows:
        help_text = r.help.replace("|", "\\|")
        out.append(f"| `{r.key}` | {r.type.replace('|', '&#124;')} | `{_cell(r.default)}` | {help_text} |")
    return out


def reference() -> str:
    from srunit.config import method_option_rows, option_rows
    from srunit.options import DataConfig, ModelConfig, TrainConfig
    from srunit.registry import METHODS, TERMS

    out: list[str] = []
    for title, section, cls in (("model", "model.", ModelConfig), ("data", "data.", DataConfig),
                                ("train", "train.", TrainConfig)):
        out += [f"## `{title}`", "", cls.__doc__.strip().splitlines()[0], ""] + _table(option_rows(cls, section)) + [""]
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


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, reference())
    return markdown
