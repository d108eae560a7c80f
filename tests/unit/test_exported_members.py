"""The public surface: every module declares __all__, and every listed name exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import eventwire

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(eventwire.__path__, "eventwire.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_what_it_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [member for member in exported if not hasattr(module, member)]
    assert missing == []


def test_top_level_names_resolve_to_their_modules() -> None:
    for name in eventwire.__all__:
        assert getattr(eventwire, name).__name__ == name
    from eventwire.client import Published

    assert eventwire.Published is Published  # the client's, not the server's


def test_unknown_top_level_name_raises() -> None:
    with pytest.raises(AttributeError):
        _ = eventwire.NoSuchThing


def test_top_level_all_matches_its_lazy_table() -> None:
    assert sorted(eventwire.__all__) == sorted(eventwire._MODULE_OF)
