"""Round eighteen (B): a newcomer's first hour on today's docs (docs/what-survives-what.md). Each test reproduced a
defect first."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_cli_references_key_table_names_every_key_of_its_sections() -> None:
    # docs/reference/cli.md's table "section | keys (defaults)" left out `model.projector_norm` (which
    # `srunit-official` sets), `method.robust.form` (the E3-E5 ablations) and the added terms' sections
    # (`method.distance`, `method.smooth`, `method.lipschitz`), while it named every other key of those sections.
    from srunit.config import method_option_rows, option_rows
    from srunit.options import DataConfig, ModelConfig, TrainConfig

    reference = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(model|data|train|method)` \|(.*)\|$", reference, re.M)}
    assert set(rows) == {"model", "data", "train", "method"}
    named = {section: set(re.findall(r"`([a-z_][a-z0-9_.*]*)`", text)) for section, text in rows.items()}
    missing = []
    for section, cls in (("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig)):
        missing += [r.key for r in option_rows(cls, f"{section}.") if r.key.split(".")[-1] not in named[section]]
    keys = {r.key for name in ("cut", "srunit") for r in method_option_rows(name)}
    for key in sorted(keys):
        parts = key.split(".")[1:]  # method.robust.form -> robust, form
        if len(parts) == 1:
            ok = parts[0] in named["method"]
        else:
            ok = f"{parts[0]}.*" in named["method"] and parts[1] in named["method"]
        if not ok:
            missing.append(key)
    assert not missing, f"docs/reference/cli.md's key table leaves out {missing}"


def test_a_python_block_that_uses_a_run_it_does_not_train_says_which_page_trains_it() -> None:
    # docs/translating.md's first Python block opened `runs/api-demo` and `data/synthscapes/testA/0000.png` without
    # a word on where they come from (the Python API page's example); a newcomer reading the pages in the order of
    # the docs' index got `CheckpointError: checkpoint path runs/api-demo does not exist`. Each block that uses a
    # run it does not train names, in the block or in the lines just above it, a page whose Python block trains it.
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    text = {page: page.read_text(encoding="utf-8") for page in pages}
    trained_on: dict[str, set[str]] = {}
    for page, body in text.items():
        for block in re.findall(r"^```python\n(.*?)^```", body, flags=re.M | re.S):
            for name in re.findall(r"train\.name=([\w.-]+)", block):
                trained_on.setdefault(name, set()).add(page.name)
    unexplained = []
    for page, body in text.items():
        for match in re.finditer(r"^```python\n(.*?)^```", body, flags=re.M | re.S):
            block = match.group(1)
            before = body[max(0, match.start() - 400):match.start()]
            for name in sorted(set(re.findall(r"[\"']runs/([\w.-]+)", block))):
                if name in re.findall(r"train\.name=([\w.-]+)", block):
                    continue
                makers = trained_on.get(name, set())
                if not any(m in block or m in before for m in makers):
                    unexplained.append(f"{page.name}: runs/{name} (trained on {sorted(makers) or 'no page'})")
    assert not unexplained, "Python blocks that use a run without naming the page that trains it:\n" + \
        "\n".join(unexplained)
