"""eventwire's pytest plugin: the ``eventwire_gateway`` and ``eventwire_client`` fixtures.

pytest loads it in every session of an environment where eventwire is
installed, so importing it must never fail, warn or cost much: it imports
only pytest, and registers the fixtures (``eventwire.testing.fixtures``)
once configuration shows that pytest-asyncio is active. Without it the
fixtures still exist, and fail with a message saying what to install.
"""

from __future__ import annotations

from typing import NoReturn

import pytest

__all__ = ["pytest_configure"]

_NEEDS_ASYNCIO = (
    "eventwire's fixtures are async and need pytest-asyncio: "
    "install it (pip install pytest-asyncio) and do not disable it with -p no:asyncio"
)


class _AsyncioMissing:
    """Stand-ins that explain, rather than a 'fixture not found'."""

    @pytest.fixture
    def eventwire_gateway(self) -> NoReturn:
        pytest.fail(_NEEDS_ASYNCIO, pytrace=False)

    @pytest.fixture
    def eventwire_client(self) -> NoReturn:
        pytest.fail(_NEEDS_ASYNCIO, pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "eventwire(**settings): Settings fields for the eventwire_gateway fixture"
    )
    if config.pluginmanager.has_plugin("asyncio"):
        from eventwire.testing import fixtures

        config.pluginmanager.register(fixtures, "eventwire-fixtures")
    else:
        config.pluginmanager.register(_AsyncioMissing(), "eventwire-fixtures")
