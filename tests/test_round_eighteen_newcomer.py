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
