"""Prometheus metrics of one gateway, in a registry of its own.

Counters on the fan-out path are incremented once per event with the number
of recipients, never once per recipient. The gauges of what is open now
(connections, subscriptions, topics) are read from their owners when scraped
(``set_function``): a reconnect storm takes no lock per connection for them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("eventwire_connections", "Open WebSocket connections", registry=r)
        self.subscriptions = Gauge(
            "eventwire_subscriptions", "Subscriptions across all connections", registry=r
        )
        self.topics = Gauge(
            "eventwire_topics", "Topics with at least one local subscriber", registry=r
        )
        self.published = Counter(
            "eventwire_events_published", "Events accepted for publishing", registry=r
        )
        self.deliveries = Counter(
            "eventwire_deliveries", "Events written to subscriber connections", registry=r
        )
        self.drops = Counter(
            "eventwire_drops", "Deliveries not made, by reason", ["reason"], registry=r
        )
        self.errors = Counter("eventwire_errors", "Errors answered, by code", ["code"], registry=r)
        self.disconnects = Counter(
            "eventwire_disconnects",
            "Connections closed by the server, by close code",
            ["code"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
