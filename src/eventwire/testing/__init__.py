"""eventwire's test kit: a gateway per test, clients that ``expect`` events.

With pytest the fixtures ``eventwire_gateway`` and ``eventwire_client`` are
available wherever eventwire is installed (plugin ``eventwire.testing.plugin``).
Without pytest, use ``running_gateway()`` and ``TestClient`` directly.

The names below are imported on first use, so that loading the pytest
plugin, which happens in every pytest session, stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventwire.testing.client import TestClient
    from eventwire.testing.gateway import running_gateway

__all__ = ["TestClient", "running_gateway"]


def __getattr__(name: str) -> Any:
    if name == "TestClient":
        from eventwire.testing.client import TestClient

        return TestClient
    if name == "running_gateway":
        from eventwire.testing.gateway import running_gateway

        return running_gateway
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
