"""eventwire: a real-time event gateway for Python back ends.

The names below are the public surface. They are imported on first use:
the pytest plugin imports this package in every pytest session, and most
programs need either the client or the server, not both.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventwire.client import (
        Client,
        CommandFailed,
        Gap,
        GatewayUnreachable,
        InProcessPublisher,
        Published,
        Publisher,
        PublishOutcomeUnknown,
        Reconnected,
        RequestTimeout,
        SubscribeRefused,
        Subscription,
        TopicPosition,
        VersionsConflict,
    )
    from eventwire.codes import CloseCode, ErrorCode
    from eventwire.envelope import Event, NewEvent
    from eventwire.errors import (
        ClientError,
        ConnectionLost,
        EventwireError,
        ProtocolError,
        PublishFailed,
        ValidationFailed,
    )
    from eventwire.server import Gateway, Settings

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ClientError",
    "CloseCode",
    "CommandFailed",
    "ConnectionLost",
    "ErrorCode",
    "Event",
    "EventwireError",
    "Gap",
    "Gateway",
    "GatewayUnreachable",
    "InProcessPublisher",
    "NewEvent",
    "ProtocolError",
    "PublishFailed",
    "PublishOutcomeUnknown",
    "Published",
    "Publisher",
    "Reconnected",
    "RequestTimeout",
    "Settings",
    "SubscribeRefused",
    "Subscription",
    "TopicPosition",
    "ValidationFailed",
    "VersionsConflict",
]

_MODULE_OF = {
    "Client": "eventwire.client",
    "CommandFailed": "eventwire.client",
    "Gap": "eventwire.client",
    "GatewayUnreachable": "eventwire.client",
    "InProcessPublisher": "eventwire.client",
    "PublishOutcomeUnknown": "eventwire.client",
    "Published": "eventwire.client",
    "Publisher": "eventwire.client",
    "Reconnected": "eventwire.client",
    "RequestTimeout": "eventwire.client",
    "SubscribeRefused": "eventwire.client",
    "Subscription": "eventwire.client",
    "TopicPosition": "eventwire.client",
    "VersionsConflict": "eventwire.client",
    "CloseCode": "eventwire.codes",
    "ErrorCode": "eventwire.codes",
    "Event": "eventwire.envelope",
    "NewEvent": "eventwire.envelope",
    "ClientError": "eventwire.errors",
    "ConnectionLost": "eventwire.errors",
    "EventwireError": "eventwire.errors",
    "ProtocolError": "eventwire.errors",
    "PublishFailed": "eventwire.errors",
    "ValidationFailed": "eventwire.errors",
    "Gateway": "eventwire.server",
    "Settings": "eventwire.server",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return [*globals(), *__all__]
