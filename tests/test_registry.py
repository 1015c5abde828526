"""srunit.registry: registering, looking up and listing by name."""

from __future__ import annotations

import re

import pytest

from srunit.errors import ConfigError
from srunit.methods import TranslationMethod
from srunit.options import MethodOptions
from srunit.registry import METHODS, Registry


def test_registry_register_get_names_and_errors() -> None:
    widgets: Registry[type] = Registry("widget")

    @widgets.register("zeta")
    class Zeta:
        pass

    widgets.register("alpha")(int)
    assert widgets.get("zeta") is Zeta and widgets.get("alpha") is int
    assert widgets.names() == ["alpha", "zeta"]
    assert "zeta" in widgets and "beta" not in widgets
    with pytest.raises(ConfigError, match=re.escape("unknown widget 'beta'; known: alpha, zeta")):
        widgets.get("beta")
    with pytest.raises(ValueError, match="widget 'zeta' is registered twice"):
        widgets.register("zeta")(str)
    assert widgets.get("zeta") is Zeta


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
