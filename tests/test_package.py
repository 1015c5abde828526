"""The package as a whole: no import cycle between its modules, every import declared as a
dependency, and the README's layout section naming every module that exists."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "srunit"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(path: Path) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a file, module-level or inside functions (a lazy import is a dependency too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def _package_edges(name: str, path: Path) -> set[str]:
    """The srunit modules that ``name`` imports (``from srunit.x import y`` names srunit.x.y if that is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _imports(path):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        out.update(t for t in targets if t in MODULES and t != name)
    return out


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules() -> None:
    graph = {name: _package_edges(name, path) for name, path in MODULES.items()}
    # A package importing its own sub-modules (re-exports) is the normal direction; a sub-module
    # importing its package back would close a cycle and is caught like any other.
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _third_party_modules(paths: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in paths:
        for node in _imports(path):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue
            for top in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]):
                names.add(top.split(".")[0])
    return {n for n in names if n and n not in sys.stdlib_module_names and n not in ("srunit", "__future__")}


@pytest.mark.parametrize("tree", ["src", "tests"])
def test_every_import_is_a_declared_dependency(tree: str) -> None:
    """src imports need a dependency or an extra; tests may also use the dev extra."""
    declared = _requirement_names(metadata.requires("srunit") or [])
    distributions = metadata.packages_distributions()
    files = sorted((ROOT / tree).rglob("*.py"))
    missing = {}
    for module in sorted(_third_party_modules(files)):
        candidates = {d.lower().replace("_", "-") for d in distributions.get(module, [])} or {module.replace("_", "-")}
        if not candidates & declared:
            missing[module] = sorted(candidates)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def _layout_block() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Package layout", 1)[1]
    block = section.split("```", 2)[1]
    return block.splitlines()


def test_readme_layout_names_every_module() -> None:
    """Every module and sub-package of src/srunit is named in the README's layout section, and the
    section names nothing that does not exist."""
    lines = _layout_block()
    entries: dict[str, str] = {}  # top-level name -> its description, continuation lines included
    current = None
    for line in lines:
        m = re.match(r"^  (\S+)(.*)$", line)
        if m:
            current = m.group(1)
            entries[current] = m.group(2)
        elif current is not None and line.startswith("   "):
            entries[current] += " " + line.strip()
    top_level = {p.name + ("/" if p.is_dir() else "") for p in SRC.iterdir()
                 if p.name not in ("__init__.py", "__pycache__")
                 and (p.suffix == ".py" or (p / "__init__.py").is_file() or p.name == "presets")}
    named = set(entries)
    assert named == top_level, f"README names {sorted(named - top_level)} that do not exist and leaves out " \
                               f"{sorted(top_level - named)}"
    for entry, text in entries.items():
        folder = SRC / entry.rstrip("/")
        if not (folder / "__init__.py").is_file():
            continue
        words = set(re.findall(r"[\w-]+", text))
        modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
        modules |= {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
        assert modules <= words, f"README's line for {entry} leaves out {sorted(modules - words)}"
