"""Registries of the pluggable kinds: training methods, their added loss terms, and networks.

A registry maps a name to a class. Its entries come from *provider* modules, imported the first
time the registry is asked anything (so ``import srunit`` imports none of them, and a tool that
loads networks never imports the training methods), and from plugins:

- the modules named in the environment variable ``SRUNIT_PLUGINS`` (comma-separated), imported like
  the providers; this is how a method or network of your own reaches every command
  (``SRUNIT_PLUGINS=my_method srunit train --preset my.yaml``);
- the ``srunit.plugins`` entry points of installed distributions.

A class names itself: a method by its options' ``name`` (``Options.name``), a loss term by the
section of the method options that configures it (``Options.section``: ``method.robust``), a network
by its class name, which checkpoint files record, so a file names the class that loads it. An
unknown name fails with the list of the known ones. A method may also be registered under other
names as a *variant* (`MethodRegistry.add_variant`): ``srunit`` is CUT with its ``robust`` term on.
"""

from __future__ import annotations

import copy
import importlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

from srunit.errors import ConfigError, first_line

__all__ = ["Registry", "MethodRegistry", "MethodVariant", "METHODS", "TERMS", "NETWORKS", "PLUGINS_ENV",
           "load_plugins"]

T = TypeVar("T")

PLUGINS_ENV = "SRUNIT_PLUGINS"
ENTRY_POINT_GROUP = "srunit.plugins"

_plugins_lock = threading.RLock()
_plugins_loaded: set[str] = set()


def plugin_modules() -> list[str]:
    """The plugins of ``$SRUNIT_PLUGINS`` and of the ``srunit.plugins`` entry points: module names, or for an entry
    point written ``module:function``, that (the function is called once the module is imported)."""
    names = [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    try:
        names += [ep.value.strip() for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
    except Exception:  # noqa: BLE001 - a broken distribution's metadata must not break srunit
        pass
    return names


def _plugin_error(name: str, what: str) -> ConfigError:
    return ConfigError(f"plugin module {name!r} (from ${PLUGINS_ENV} or an {ENTRY_POINT_GROUP} entry point) {what}; "
                       f"fix the plugin, or leave it out of ${PLUGINS_ENV} (uninstall the distribution whose entry "
                       f"point names it)")


def load_plugins() -> None:
    """Import every plugin module not imported yet (each registers its classes when imported), and call the
    function an entry point names after its module (``module:function``), if it names one.

    Raises:
        ConfigError: in one line naming the plugin, whatever went wrong: a name that is not a module name,
            a module that is not found, a syntax error, an exception at import or in the function, a function
            that is not there or not callable, a name registered twice.
    """
    with _plugins_lock:
        for name in plugin_modules():
            if name in _plugins_loaded:
                continue
            module, _, function = (part.strip() for part in name.partition(":"))
            if not all(part.isidentifier() for part in module.split(".")) or (
                    function and not all(part.isidentifier() for part in function.split("."))):
                raise _plugin_error(name, "is not a module name (dotted Python identifiers, such as my_pkg.methods), "
                                          "or for an entry point a module:function")
            _plugins_loaded.add(name)
            try:
                target: Any = importlib.import_module(module)
                if function:  # the entry point's function: imported and not called, it registered nothing
                    for attr in function.split("."):
                        target = getattr(target, attr)
                    if not callable(target):
                        raise TypeError(f"{function} is a {type(target).__name__}, not a function")
                    target()
            except ImportError as err:
                _plugins_loaded.discard(name)
                raise _plugin_error(name, f"cannot be imported: {err}; check the name and that its folder is on "
                                          f"PYTHONPATH") from err
            except SyntaxError as err:
                _plugins_loaded.discard(name)
                where = f"{err.filename}, line {err.lineno}" if err.filename else "its source"
                raise _plugin_error(name, f"has a syntax error ({err.msg}, {where})") from err
            except (Exception, SystemExit) as err:  # noqa: BLE001 - whatever a plugin raises at import, say which
                # plugin; a sys.exit() in it ended every command silently, with status 0 (nothing done)
                _plugins_loaded.discard(name)
                raise _plugin_error(name, f"failed while it was imported ({type(err).__name__}: "
                                          f"{first_line(err, 300)})") from err


class Registry(Generic[T]):
    """Name -> class for one kind (``kind`` names it in messages).

    ``key`` gives a class's name (``register`` is then used bare, as ``@REGISTRY.register``);
    ``providers`` are the modules that register the built-in classes, imported on first use.
    """

    def __init__(self, kind: str, key: Callable[[Any], str], providers: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._key = key
        self._providers = providers
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._lock = threading.RLock()

    def register(self, obj: T) -> T:
        """Add ``obj`` under its own name; used as a class decorator. A second class of one name is an error."""
        name = self._key(obj)
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a name, got {name!r} for {obj!r}")
        existing = self._entries.get(name)
        if existing is not None and existing is not obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({existing!r} and {obj!r})")
        self._entries[name] = obj
        return obj

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for module in self._providers:
                importlib.import_module(module)
            self._loaded = True
        load_plugins()

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())} (a {self.kind} of "
                              f"your own is added by a plugin module named in ${PLUGINS_ENV}: see "
                              f"docs/adding-a-method.md)") from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        """What `print(srunit.METHODS)` shows: the names registered (docs/python.md: it "lists the registered
        methods"; it showed `<srunit.registry.MethodRegistry object at 0x...>`). A plugin that fails to load leaves
        the names known without it, not an exception from a repr."""
        try:
            names = self.names()
        except ConfigError:
            names = sorted(self._entries)
        return f"{type(self).__name__}({self.kind}s: {', '.join(names)})"

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._entries.items())

    def provided(self, name: str) -> bool:
        """Whether the entry ``name`` comes from one of the registry's providers (srunit's own), not a plugin."""
        return getattr(self.get(name), "__module__", None) in self._providers

    def in_order(self) -> list[tuple[str, T]]:
        """(name, entry): the providers' entries in the order the providers are listed, then the plugins' in the
        order they were registered. Not the order of registration alone: a module that imports one provider
        before the registry loads would move that provider's entries first (the order of a method's loss terms,
        and of the configuration reference, depended on what had been imported before)."""
        self._load()
        rank = {module: i for i, module in enumerate(self._providers)}
        return sorted(self._entries.items(), key=lambda item: rank.get(getattr(item[1], "__module__", ""), len(rank)))


@dataclass(frozen=True)
class MethodVariant:
    """A registered method under a name of its own, with options that differ by default.

    ``srunit`` is CUT with its ``robust`` section on: a config that names the variant builds the
    ``base`` method from the variant's ``defaults`` (keys of the ``method`` section; a term's section as
    a mapping of its keys, ``{}`` for its defaults) with the config's own keys over them, and keeps
    the variant's name in ``method.name``, so its runs, checkpoints and reports carry that name.
    """

    name: str
    base: str  # a registered method's name
    defaults: Mapping[str, Any] = field(default_factory=dict)
    help: str = ""  # one line: what the variant is (listed in the configuration reference)


class MethodRegistry(Registry[T]):
    """The registry of methods, which also holds their variants (`MethodVariant`)."""

    def __init__(self, kind: str, key: Callable[[Any], str], providers: tuple[str, ...] = ()) -> None:
        super().__init__(kind, key, providers)
        self._variants: dict[str, MethodVariant] = {}

    def add_variant(self, name: str, base: str, defaults: Mapping[str, Any] | None = None, help: str = "") -> None:  # noqa: A002
        """Register ``name`` as ``base`` with ``defaults`` in its method section (see `MethodVariant`)."""
        variant = MethodVariant(name, base, dict(defaults or {}), help)
        if not name or name in self._entries:
            raise ValueError(f"{self.kind} variant {name!r}: the name is empty or a {self.kind}'s own")
        existing = self._variants.get(name)
        if existing is not None and existing != variant:
            raise ValueError(f"{self.kind} variant {name!r} is registered twice ({existing} and {variant})")
        self._variants[name] = variant

    def register(self, obj: T) -> T:
        name = self._key(obj)
        if name in self._variants:
            raise ValueError(f"{self.kind} {name!r} is the name of a variant ({self._variants[name]})")
        return super().register(obj)

    def variant(self, name: str) -> MethodVariant | None:
        """The variant registered as ``name``; None where ``name`` is a method's own name or unknown."""
        self._load()
        return self._variants.get(name)

    def get(self, name: str) -> T:
        """The class of method ``name``; a variant's is its base method's."""
        variant = self.variant(name)
        return super().get(variant.base if variant is not None else name)

    def defaults(self, name: str) -> dict[str, Any]:
        """The keys of the method section that ``name`` sets by default: a variant's ``defaults``, {} for a method."""
        variant = self.variant(name)
        return copy.deepcopy(dict(variant.defaults)) if variant is not None else {}

    def names(self) -> list[str]:
        """Every method name and variant name, sorted."""
        self._load()
        return sorted([*self._entries, *self._variants])

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries or name in self._variants


def _method_name(cls: Any) -> str:
    return cls.Options.name


def _term_section(cls: Any) -> str:
    return cls.Options.section


def _network_name(cls: Any) -> str:
    return cls.__name__


METHODS: MethodRegistry[Any] = MethodRegistry(
    "method",
    _method_name,
    providers=(
        "srunit.methods.cut",
        "srunit.methods.cyclegan",
        "srunit.methods.gcgan",
        "srunit.methods.drit",
        "srunit.methods.stegogan",
    ),
)
"""Training methods by name (``method.name`` of a config): subclasses of
``srunit.methods.TranslationMethod``, each named by its ``Options.name``, and their variants (``srunit``
and the ablations ``cut-self-distance``, ``cut-smoothness``, ``cut-lipschitz`` are CUT's)."""

TERMS: Registry[Any] = Registry(
    "loss term",
    _term_section,
    providers=(
        "srunit.methods.terms.robustness",
        "srunit.methods.terms.selfdistance",
        "srunit.methods.terms.smoothness",
        "srunit.methods.terms.lipschitz",
    ),
)
"""Loss terms a method adds to its phases (``srunit.methods.terms.Term``), by the section of the method
options that switches them on (``method.robust``, ``method.lipschitz`` ...). A method whose options
derive from ``srunit.options.TermMethodOptions`` takes every one of them; a loss term of your own is a
plugin (see the registry's plugins) that registers its ``Term`` here. They are added to a phase's loss
in the order they were registered (`Registry.in_order`)."""

NETWORKS: Registry[Any] = Registry(
    "network",
    _network_name,
    providers=(
        "srunit.networks.generator",
        "srunit.networks.discriminator",
        "srunit.networks.projection",
        "srunit.networks.statistics",
        "srunit.networks.drit",
        "srunit.networks.stegogan",
    ),
)
"""Networks by class name, as network files record it: ``srunit.runtime.load_network(path)`` builds
the class a file names without being told it."""
