"""The documentation: the site builds without a warning, and its Python examples run as they stand
(every ```python block of the pages, in the order of the site's navigation, in one namespace, in an
empty working folder); the README's links lead to pages that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def nav_pages() -> list[Path]:
    """The pages of mkdocs.yml's nav, in order."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8").replace("!!python/name:", ""))
    pages: list[Path] = []

    def walk(entries: list) -> None:
        for entry in entries:
            for value in (entry.values() if isinstance(entry, dict) else [entry]):
                if isinstance(value, list):
                    walk(value)
                else:
                    pages.append(DOCS / value)

    walk(config["nav"])
    return pages


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a page, less those that include a file (``--8<--``), which is tested itself."""
    blocks = re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return [b for b in blocks if not b.lstrip().startswith("--8<--")]


def test_every_page_is_in_the_navigation() -> None:
    on_disk = {p for p in DOCS.rglob("*.md")}
    assert on_disk == set(nav_pages()), f"pages left out of mkdocs.yml's nav: {sorted(on_disk - set(nav_pages()))}"


def test_the_site_builds_without_warnings(tmp_path: Path) -> None:
    """`make docs`: mkdocs in strict mode (a warning, a broken link or an unknown snippet fails it)."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    config_page = (tmp_path / "site" / "reference" / "configuration.html").read_text(encoding="utf-8")
    assert "method.robust.weight" in config_page and "train.steps" in config_page  # generated from the options
    api_page = (tmp_path / "site" / "reference" / "api.html").read_text(encoding="utf-8")
    assert "srunit.inference.Translator" in api_page  # generated from the docstrings


def test_the_readme_and_docs_python_blocks_run_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python block, then every page's in navigation order, in one folder that holds what the quick
    start's and Getting started's first step writes (`srunit data synthscapes --out data/street`, smaller here).
    A block whose text already ran (the README's quick start is Getting started's) is not run twice: it would
    write the same files again."""
    from srunit.synthscapes import make_synthscapes

    monkeypatch.chdir(tmp_path)
    make_synthscapes("data/street", num_pool=24, num_test=2, size=64)
    namespace: dict[str, object] = {"__name__": "docs"}
    readme = python_blocks(ROOT / "README.md")
    assert len(readme) == 1
    done: set[str] = set()
    for page in [ROOT / "README.md", *nav_pages()]:
        for i, block in enumerate(python_blocks(page)):
            if block not in done:
                exec(compile(block, f"{page.relative_to(ROOT)} python block {i + 1}", "exec"), namespace)  # noqa: S102
                done.add(block)
    assert len(done) >= 4
    assert len(list((tmp_path / "out" / "street-py").glob("*.png"))) == 2  # README.md and getting-started.md
    assert len(list((tmp_path / "out" / "api-demo").glob("*.png"))) == 2
    assert namespace["y"].shape == (2, 3, 40, 60)  # type: ignore[attr-defined]


def test_readme_links_lead_to_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links, "the README links to the documentation"
    assert all((ROOT / link).is_file() for link in links), [link for link in links if not (ROOT / link).is_file()]
    assert len(readme.splitlines()) <= 200


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


def shell_blocks(path: Path) -> list[str]:
    """The code blocks of a page that are not Python, YAML or JSON: commands to copy."""
    blocks = re.findall(r"^[ ]*```(\w*)\n(.*?)^[ ]*```", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return [body for lang, body in blocks if lang not in ("python", "yaml", "json", "text", "toml")]


def test_every_command_in_the_docs_is_copyable_with_the_venv_prefix() -> None:
    """A command a reader copies from a code block runs from a clone after `make install`: srunit, torchrun and the
    benchmark scripts are named by their .venv/bin path (pip commands for a machine without .venv apart)."""
    bare = re.compile(r"^\s*(srunit|torchrun|python3? (benchmarks|-m srunit)|pytest|mkdocs|ruff|mypy)\b")
    found = [f"{page.relative_to(ROOT)}: {line.strip()}" for page in [*nav_pages(), ROOT / "README.md"]
             for block in shell_blocks(page) for line in block.splitlines() if bare.match(line)]
    assert not found, "commands without their .venv/bin/ prefix:\n" + "\n".join(found)


def test_every_command_the_prose_names_exists() -> None:
    """Round six: tuning.md named `srunit tune folders`, a command that does not exist (it is `srunit tune data`).
    Every `srunit COMMAND [KIND]` in inline code of the pages and the README names a command (and a kind of the
    commands that have kinds) the command line has."""
    from srunit.cli.main import build_parser

    kinds = {}
    for command in ("data", "eval", "tune", "bench"):
        parser = build_parser([command])
        sub = next(a for a in parser._subparsers._group_actions if a.choices)  # type: ignore[union-attr]
        kinds[command] = set(sub.choices[command]._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    commands = set(next(a for a in build_parser([])._subparsers._group_actions).choices)  # type: ignore[union-attr]
    wrong = []
    for page in [*nav_pages(), ROOT / "README.md"]:
        for code in re.findall(r"`([^`\n]+)`", page.read_text(encoding="utf-8")):
            match = re.match(r"(?:\.venv/bin/)?srunit ([a-z]+)(?: ([a-z]+))?", code)
            if not match:
                continue
            command, kind = match.groups()
            if command not in commands or (command in kinds and kind is not None and kind not in kinds[command]):
                wrong.append(f"{page.relative_to(ROOT)}: `{code}`")
    assert not wrong, "commands that do not exist:\n" + "\n".join(wrong)


@pytest.mark.slow
def test_every_srunit_command_in_the_docs_parses_and_its_overrides_load() -> None:
    """Round seven: each `.venv/bin/srunit ...` line of a code block (continuations joined, anything after a pipe,
    `&&` or `>` dropped) parses with the command line as it stands, and its `--section.key VALUE` overrides load
    into the preset it names (packaged, or a preset file of this repository), so a renamed option or key cannot
    leave a copyable command behind that fails."""
    import contextlib
    import io
    import shlex

    from srunit.cli.main import build_parser
    from srunit.cli.overrides import split_overrides
    from srunit.config import load_config

    wrong, parsed = [], 0
    for page in [*nav_pages(), ROOT / "README.md"]:
        for block in shell_blocks(page):
            for line in block.replace("\\\n", " ").splitlines():
                match = re.match(r"^\s*(?:[A-Z_]+=\S+ )*\.venv/bin/srunit (.*)$", line.split(" #")[0])
                if not match:
                    continue
                argv = shlex.split(re.split(r"\||&&|>", match.group(1))[0])
                parsed += 1
                errors = io.StringIO()
                try:
                    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
                        args, extra = build_parser(argv).parse_known_args(argv)
                    overrides = split_overrides(extra)
                    preset = getattr(args, "preset", None) or "srunit"
                    if overrides and (not preset.endswith(".yaml") or (ROOT / preset).is_file()):
                        load_config(str(ROOT / preset) if preset.endswith(".yaml") else preset, overrides)
                except SystemExit as exc:
                    if exc.code:
                        wrong.append(f"{page.relative_to(ROOT)}: {line.strip()}\n    {errors.getvalue().strip()}")
                except Exception as exc:  # noqa: BLE001 - every failure is reported with its command
                    wrong.append(f"{page.relative_to(ROOT)}: {line.strip()}\n    {exc}")
    assert parsed > 50, f"only {parsed} commands found: has the pattern stopped matching the pages?"
    assert not wrong, "commands in the docs that the command line refuses:\n" + "\n".join(wrong)


def test_the_committed_configuration_reference_is_current() -> None:
    """docs/reference/configuration.md holds the generated tables, so it reads on the repository host as in the
    site; `python docs/hooks/config_reference.py` rewrites them after an option changes."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("config_reference", DOCS / "hooks" / "config_reference.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    assert hook.END in page and hook.with_reference(page) == page, \
        "the configuration reference is stale: run `.venv/bin/python docs/hooks/config_reference.py`"


def test_the_cli_reference_lists_every_option_the_quick_start_uses() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme[readme.index("## Quick start"):]
    block = re.search(r"```bash\n(.*?)```", quick, flags=re.S)
    assert block is not None
    reference = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `srunit ([a-z ]+?)`.*$", reference, flags=re.M)}
    missing = []
    for command in block.group(1).replace("\\\n", " ").splitlines():
        words = command.split("#")[0].split()
        if not words or not words[0].endswith("srunit"):
            continue
        name = " ".join(w for w in words[1:3] if not w.startswith("-") and w in {
            "train", "translate", "eval", "seg", "paired", "report", "export", "app", "data", "synthscapes"})
        row = rows.get(name) or rows.get(name.split()[0], "")
        for option in (w for w in words if w.startswith("--") and "." not in w):
            if f"`{option}" not in row and f"<code>{option}" not in row:  # <code> where a value holds a |
                missing.append(f"srunit {name} {option}")
    assert not missing, f"options of the quick start missing from docs/reference/cli.md: {missing}"
