"""srunit.registry: registering, looking up and listing by name."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from srunit.config import method_options
from srunit.errors import ConfigError
from srunit.methods import TranslationMethod
from srunit.options import MethodOptions
from srunit.registry import METHODS, MethodRegistry, Registry


def test_registry_register_get_names_and_errors() -> None:
    widgets: Registry[type] = Registry("widget", key=lambda cls: cls.label)

    @widgets.register
    class Zeta:
        label = "zeta"

    class Alpha:
        label = "alpha"

    widgets.register(Alpha)
    assert widgets.get("zeta") is Zeta and widgets.get("alpha") is Alpha
    assert widgets.names() == ["alpha", "zeta"]
    assert "zeta" in widgets and "beta" not in widgets
    with pytest.raises(ConfigError, match=re.escape("unknown widget 'beta'; known: alpha, zeta")):
        widgets.get("beta")

    class Other:
        label = "zeta"

    with pytest.raises(ValueError, match="widget 'zeta' is registered twice"):
        widgets.register(Other)
    assert widgets.get("zeta") is Zeta
    assert widgets.register(Zeta) is Zeta  # the same class again (a module imported twice) is no error


def test_providers_are_imported_on_first_use(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry imports its provider modules the first time it is asked, not before."""
    (tmp_path / "widget_provider.py").write_text(
        "from test_widgets_registry import WIDGETS\n\n@WIDGETS.register\nclass Gear:\n    label = 'gear'\n")
    (tmp_path / "test_widgets_registry.py").write_text(
        "from srunit.registry import Registry\nWIDGETS = Registry('widget', key=lambda c: c.label, "
        "providers=('widget_provider',))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("test_widgets_registry")
    assert "widget_provider" not in sys.modules
    assert module.WIDGETS.names() == ["gear"] and "widget_provider" in sys.modules

    class Axle:  # a plugin's entry, registered after the providers'
        label = "axle"

    module.WIDGETS.register(Axle)
    assert [name for name, _ in module.WIDGETS.in_order()] == ["gear", "axle"]  # registration order
    assert module.WIDGETS.names() == ["axle", "gear"]  # sorted
    assert module.WIDGETS.provided("gear") and not module.WIDGETS.provided("axle")


def test_registry_lists_methods_and_rejects_unknown() -> None:
    assert {"cut", "srunit", "cyclegan", "gcgan"} <= set(METHODS.names())
    known = ", ".join(sorted(METHODS.names()))
    with pytest.raises(Exception, match=re.escape(f"unknown method 'pix2pix'; known: {known}")):
        METHODS.get("pix2pix")


@pytest.mark.parametrize("name", METHODS.names())
def test_every_registered_method_follows_the_contract(name: str) -> None:
    cls = METHODS.get(name)
    assert issubclass(cls, TranslationMethod)
    assert issubclass(cls.Options, MethodOptions)
    variant = METHODS.variant(name)
    if variant is None:
        assert cls.Options().name == name  # the default options select the method itself
    else:  # a variant is its base method with options set by default, under its own name
        assert cls is METHODS.get(variant.base) and METHODS.variant(variant.base) is None
        options = method_options({"name": name})
        assert isinstance(options, cls.Options) and options.name == name
        assert options != method_options({"name": variant.base}) and variant.help


def test_variants_resolve_to_their_base_with_its_defaults_under_the_given_keys() -> None:
    """SRUNIT and the ablations E1, E2, E6 are CUT with one term on: the names of existing run folders'
    configs resolve to CUT with that term, whose keys the config sets over the defaults."""
    from srunit.methods import CUT, RobustnessOptions

    for name, section in (("srunit", "robust"), ("cut-self-distance", "distance"), ("cut-smoothness", "smooth"),
                          ("cut-lipschitz", "lipschitz")):
        assert METHODS.get(name) is CUT and METHODS.defaults(name) == {section: {}}
        assert list(method_options({"name": name}).terms) == [section]
    tuned = method_options({"name": "srunit", "robust": {"weight": 0.5}})
    assert tuned.terms["robust"] == RobustnessOptions(weight=0.5)
    assert METHODS.defaults("srunit") == {"robust": {}}  # the defaults are not changed by a config
    assert method_options({"name": "srunit", "robust": None}).terms == {}  # switched off


def test_a_variant_cannot_take_a_method_name_and_a_method_cannot_take_a_variant_name() -> None:
    methods: MethodRegistry[type] = MethodRegistry("gadget", key=lambda cls: cls.label)

    @methods.register
    class Base:
        label = "base"

    methods.add_variant("base-plus", "base", {"x": 1}, "base with x")
    methods.add_variant("base-plus", "base", {"x": 1}, "base with x")  # the same again: no error
    assert methods.get("base-plus") is Base and methods.names() == ["base", "base-plus"] and "base-plus" in methods
    with pytest.raises(ValueError, match="variant 'base-plus' is registered twice"):
        methods.add_variant("base-plus", "base", {"x": 2}, "base with x")
    with pytest.raises(ValueError, match="the name is empty or a gadget's own"):
        methods.add_variant("base", "base")

    class Clash:
        label = "base-plus"

    with pytest.raises(ValueError, match="'base-plus' is the name of a variant"):
        methods.register(Clash)


@pytest.mark.parametrize(("source", "says"), [
    ("def broken(:\n", r"has a syntax error \(.*, .*{module}\.py, line 1\)"),
    ("raise RuntimeError('the GPU driver is too old')\n",
     r"failed while it was imported \(RuntimeError: the GPU driver is too old\)"),
    ("import no_such_dependency_of_a_plugin\n",
     r"cannot be imported: No module named 'no_such_dependency_of_a_plugin'"),
    ("from srunit.registry import NETWORKS\n\n@NETWORKS.register\nclass ResnetGenerator:\n    pass\n",
     r"failed while it was imported \(ValueError: network 'ResnetGenerator' is registered twice"),
    (None, r"is not a module name"),
    ("import sys\nsys.exit(0)\n", r"failed while it was imported \(SystemExit: 0\)"),  # ended every command, status 0
], ids=["syntax", "raises", "dependency", "twice", "bad-name", "exits"])
def test_a_plugin_that_fails_in_any_way_is_one_line_naming_it(source: str | None, says: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              request: pytest.FixtureRequest) -> None:
    from srunit.registry import NETWORKS, load_plugins

    NETWORKS.names()  # the providers first, as any command loads them before its plugins
    module = f"round_five_plugin_{request.node.callspec.id.replace('-', '_')}"
    if source is None:
        module = "my-plugin.py"
    else:
        (tmp_path / f"{module}.py").write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SRUNIT_PLUGINS", module)
    with pytest.raises(ConfigError) as err:
        load_plugins()
    message = str(err.value)
    assert message.startswith(f"plugin module {module!r} (from $SRUNIT_PLUGINS")
    assert re.search(says.format(module=module), message), message
    assert "\n" not in message
    monkeypatch.delitem(sys.modules, module, raising=False)


@pytest.mark.parametrize(("function", "says"), [
    ("register", None),
    ("nothing_here", r"failed while it was imported \(AttributeError: .*nothing_here"),
    ("NOT_CALLABLE", r"failed while it was imported \(TypeError: NOT_CALLABLE is a int, not a function\)"),
    ("register()", r"is not a module name .*or for an entry point a module:function"),
])
def test_an_entry_point_naming_a_function_has_it_called(function: str, says: str | None, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`toy = "pkg.plugin:register"` imported pkg.plugin only: a plugin registering in a function registered nothing."""
    from importlib import metadata

    from srunit import registry

    module = "entry_point_plugin_with_a_function"
    (tmp_path / f"{module}.py").write_text("CALLS = []\nNOT_CALLABLE = 3\n\n\ndef register():\n    CALLS.append(1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("SRUNIT_PLUGINS", raising=False)
    point = metadata.EntryPoint(name="toy", value=f"{module}:{function}", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(metadata, "entry_points",
                        lambda group=None: [point] if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_plugins_loaded", set())
    try:
        if says is None:
            registry.load_plugins()
            registry.load_plugins()  # once per process
            assert sys.modules[module].CALLS == [1]
        else:
            with pytest.raises(ConfigError, match=f"^plugin module '{module}:{re.escape(function)}' .*{says}"):
                registry.load_plugins()
    finally:
        monkeypatch.delitem(sys.modules, module, raising=False)


def test_an_unknown_method_names_the_plugin_mechanism() -> None:
    with pytest.raises(ConfigError, match=r"unknown method 'pix2pix'; .*added by a plugin module named in "
                                          r"\$SRUNIT_PLUGINS: see docs/adding-a-method.md"):
        METHODS.get("pix2pix")


def test_in_order_lists_the_providers_entries_in_their_order_whatever_was_imported_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A method's loss terms and the configuration reference follow `in_order`. It was the order of registration,
    so importing the second provider before the registry loaded put its entry first (under pytest-xdist the
    configuration reference came out in another order)."""
    things: Registry[type] = Registry("thing", lambda cls: cls.__name__.lower(),
                                      providers=("order_first_provider", "order_second_provider"))
    monkeypatch.setitem(sys.modules, "order_things", type(sys)("order_things"))
    sys.modules["order_things"].THINGS = things  # type: ignore[attr-defined]
    for name, cls in (("order_first_provider", "Alpha"), ("order_second_provider", "Beta")):
        (tmp_path / f"{name}.py").write_text(f"from order_things import THINGS\n\n\n@THINGS.register\nclass {cls}:\n"
                                             f"    pass\n")
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("order_second_provider")  # imported first, as a test or a command may
    plugin = things.register(type("Gamma", (), {}))  # registered by a plugin
    assert [name for name, _ in things.in_order()] == ["alpha", "beta", "gamma"]
    assert things.get("gamma") is plugin
