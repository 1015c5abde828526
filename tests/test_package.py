"""The package as a whole: no import cycle between its modules, every import declared as a
dependency, the layering contracts, every method and network registered, and the layout section of
docs/contributing.md naming every module that exists."""

from __future__ import annotations

import ast
import functools
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
    """Every import statement of a file, module-level or inside functions (a lazy import is a dependency
    too), except those under ``if TYPE_CHECKING:``, which only the type checker runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
                   for stmt in node.body for n in ast.walk(stmt)}
    return [node for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in typing_only]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


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
    graph = _import_graph()
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


@pytest.mark.slow  # parses every file of the tree: 2.5 s for the two
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
    page = (ROOT / "docs" / "contributing.md").read_text(encoding="utf-8")
    section = page.split("## Package layout", 1)[1]
    block = section.split("```", 2)[1]
    return block.splitlines()


def test_layout_section_names_every_module() -> None:
    """Every module and sub-package of src/srunit is named in docs/contributing.md's layout section, and the
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
    assert named == top_level, f"docs/contributing.md names {sorted(named - top_level)} that do not exist and " \
                               f"leaves out {sorted(top_level - named)}"
    for entry, text in entries.items():
        folder = SRC / entry.rstrip("/")
        if not (folder / "__init__.py").is_file():
            continue
        words = set(re.findall(r"[\w-]+", text))
        modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
        modules |= {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
        assert modules <= words, f"docs/contributing.md's line for {entry} leaves out {sorted(modules - words)}"


# ----------------------------------------------------------------------------- layering

# (who, what they must never import, why): checked on the static import graph, lazy imports
# inside functions included, `if TYPE_CHECKING:` imports left out.
CONTRACTS = [
    (("srunit.inference", "srunit.export", "srunit.exported", "srunit.app", "srunit.runtime"),
     ("srunit.engine", "srunit.methods", "srunit.losses", "srunit.config", "srunit.options"),
     "running a trained network needs no training code, nor the config sections (srunit.checks has the checks)"),
    (("srunit.cli.main", "srunit.cli.commands", "srunit.cli.translate", "srunit.cli.export", "srunit.cli.app"),
     ("srunit.engine", "srunit.methods", "srunit.losses", "srunit.synthscapes"),
     "a command imports only what it runs: the deploy commands need no training code (tests/cli/test_imports.py)"),
    (("srunit.cli.translate", "srunit.cli.export", "srunit.cli.app"), ("srunit.options", "srunit.config"),
     "the deploy commands check their arguments with srunit.checks, not the config sections"),
    (("srunit.runtime",), ("srunit._outputs", "srunit.data", "srunit.eval", "srunit.report"),
     "the run folder and the network files are below everything that reads or writes them"),
    (("srunit.eval", "srunit.report"), ("srunit.datasets",), "scoring and reporting read results, not data sets"),
    (("srunit.networks", "srunit.nn"), ("srunit.methods", "srunit.losses", "srunit.engine"),
     "networks are below the methods that train them"),
    (("srunit.losses",), ("srunit.methods", "srunit.engine"), "losses are below the methods that use them"),
    (("srunit.methods",), ("srunit.engine",), "methods know nothing of the training loop"),
]


@functools.cache
def _import_graph() -> dict[str, set[str]]:
    """{module: the srunit modules it imports}, parsed once per session (read-only for tests)."""
    return {name: _package_edges(name, path) for name, path in MODULES.items()}


def _closure(start: str, graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(("who", "forbidden", "why"), CONTRACTS, ids=[c[0][0] for c in CONTRACTS])
def test_layering_contracts(who: tuple[str, ...], forbidden: tuple[str, ...], why: str) -> None:
    graph = _import_graph()
    broken = {}
    for name in MODULES:
        if _within(name, who):
            bad = sorted(m for m in _closure(name, graph) if _within(m, forbidden))
            if bad:
                broken[name] = bad
    assert not broken, f"{why}: {broken}"


@pytest.mark.slow  # a subprocess per loader; the fast tier checks the layering statically (test_layering_contracts)
def test_loading_translators_imports_no_training_code(tmp_path: Path) -> None:
    """The same contract at run time, where registries import their providers on first use: loading
    a CUT and a DRIT generator file and an exported-file reader import no method, loss or trainer."""
    import subprocess

    from srunit.networks import ResnetGenerator
    from srunit.networks.drit import DRITAttributeEncoder, DRITContentEncoder, DRITGenerator
    from srunit.runtime import save_network

    save_network(ResnetGenerator(ngf=4, n_blocks=1), tmp_path / "cut" / "G.safetensors")
    for name, net in (("E_c", DRITContentEncoder(ngf=4)), ("E_a", DRITAttributeEncoder(ngf=4, nz=2)),
                      ("G", DRITGenerator(ngf=4, nz=2))):
        save_network(net, tmp_path / "drit" / f"{name}.safetensors")
    code = (
        "import sys\n"
        "import srunit.exported\n"
        "from srunit.inference import load_generator\n"
        f"assert not load_generator({str(tmp_path / 'cut' / 'G.safetensors')!r}).multimodal\n"
        f"assert load_generator({str(tmp_path / 'drit' / 'G.safetensors')!r}).multimodal\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('srunit'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = done.stdout.split()
    assert "srunit.networks.drit" in loaded
    assert not [m for m in loaded if _within(m, ("srunit.methods", "srunit.losses", "srunit.engine", "srunit.config"))]


def test_every_method_and_its_networks_are_registered(tiny_config) -> None:
    """Every TranslationMethod class of srunit.methods is registered under its Options.name, and every
    network a registered method saves is registered under its class name (a file names it)."""
    import importlib
    import inspect

    from srunit.methods import TranslationMethod, build_method
    from srunit.registry import METHODS, NETWORKS

    unregistered = []
    for name in MODULES:
        if not _within(name, ("srunit.methods",)):
            continue
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass):
            if issubclass(cls, TranslationMethod) and "Options" in vars(cls) and cls.__module__ == name:
                if cls.Options.name not in METHODS or METHODS.get(cls.Options.name) is not cls:
                    unregistered.append(f"{name}.{cls.__name__}")
    assert not unregistered, f"method classes without a registry entry (@METHODS.register): {unregistered}"
    # In a fresh interpreter the registry finds them all through its providers (srunit.registry).
    import subprocess

    fresh = subprocess.run([sys.executable, "-c", "import srunit; print(' '.join(srunit.METHODS.names()))"],
                           capture_output=True, text=True, timeout=120)
    assert fresh.stdout.split() == METHODS.names(), f"a method module is missing from METHODS' providers: {fresh}"
    missing = set()
    for method_name in METHODS.names():
        config = tiny_config(method_name if method_name in ("cut", "srunit", "cyclegan", "gcgan", "drit") else "cut",
                             *([f"method.name={method_name}"] if method_name.startswith("cut-") else []))
        method = build_method(config.method, config.model)
        missing |= {type(net).__name__ for net in method.networks().values() if type(net).__name__ not in NETWORKS}
    assert not missing, f"networks saved in checkpoints but not in NETWORKS (@NETWORKS.register): {sorted(missing)}"
