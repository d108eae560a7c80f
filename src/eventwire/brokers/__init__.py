"""Brokers: in-memory by default; chosen by URL scheme, imported lazily."""

from __future__ import annotations

from urllib.parse import urlsplit

from eventwire.brokers.base import Broker, InboundHandler, Position
from eventwire.brokers.memory import MemoryBroker

__all__ = ["Broker", "InboundHandler", "MemoryBroker", "Position", "create_broker"]


def create_broker(url: str) -> Broker:
    """The broker for ``url``: ``memory://`` (default)."""
    scheme = urlsplit(url).scheme or url
    if scheme == "memory":
        return MemoryBroker()
    raise ValueError(f"unsupported broker URL {url!r}; expected memory://")
