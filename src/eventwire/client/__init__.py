"""The Python client (WebSocket subscriptions) and publishers (HTTP and in-process)."""

from eventwire.client.client import Client, ErrorHandler
from eventwire.client.errors import (
    CommandFailed,
    GatewayUnreachable,
    HandshakeForbidden,
    PublishOutcomeUnknown,
    RequestTimeout,
    ServerError,
    SubscribeRefused,
    VersionsConflict,
)
from eventwire.client.publisher import (
    Batch,
    EventHelpers,
    EventSink,
    InProcessPublisher,
    Metadata,
    Published,
    PublishedLike,
    Publisher,
    Sender,
)
from eventwire.client.reconnect import Reconnected, ReconnectHandler, backoff_delay
from eventwire.client.streams import Gap, TopicPosition, TopicStream
from eventwire.client.subscription import Handler, Subscription
from eventwire.client.versions import Versions

__all__ = [
    "Batch",
    "Client",
    "CommandFailed",
    "ErrorHandler",
    "EventHelpers",
    "EventSink",
    "Gap",
    "GatewayUnreachable",
    "Handler",
    "HandshakeForbidden",
    "InProcessPublisher",
    "Metadata",
    "PublishOutcomeUnknown",
    "Published",
    "PublishedLike",
    "Publisher",
    "ReconnectHandler",
    "Reconnected",
    "RequestTimeout",
    "Sender",
    "ServerError",
    "SubscribeRefused",
    "Subscription",
    "TopicPosition",
    "TopicStream",
    "Versions",
    "VersionsConflict",
    "backoff_delay",
]
