"""The README's Python examples run as they stand: every ```python block, in order, in one namespace,
in an empty working folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.M | re.S)


def test_readme_has_python_examples() -> None:
    assert len(python_blocks()) >= 2


def test_readme_python_blocks_run_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    for i, block in enumerate(python_blocks()):
        exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)  # noqa: S102
    assert len(list((tmp_path / "out" / "api-demo").glob("*.png"))) == 2
    assert namespace["y"].shape == (2, 3, 40, 60)  # type: ignore[attr-defined]


def test_public_names_are_exported_and_documented() -> None:
    import srunit

    for name in srunit.__all__:
        obj = getattr(srunit, name)
        if name != "__version__":
            assert (getattr(obj, "__doc__", None) or "").strip(), f"srunit.{name} has no docstring"
    from srunit import Trainer, Translator

    for cls in (Trainer, Translator):
        for attr, member in vars(cls).items():
            fn = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
            if not attr.startswith("_") and callable(fn):
                assert (fn.__doc__ or "").strip(), f"{cls.__name__}.{attr} has no docstring"
    assert (Path(srunit.__file__).parent / "py.typed").is_file()
