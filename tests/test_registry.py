"""srunit.registry: registering, looking up and listing by name."""

from __future__ import annotations

import importlib
import re
import sys

import pytest

from srunit.errors import ConfigError
from srunit.methods import TranslationMethod
from srunit.options import MethodOptions
from srunit.registry import METHODS, Registry


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
    assert cls.Options().name == name  # the default options select the method itself
