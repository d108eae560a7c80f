"""Brokers: in-memory by default, Redis or NATS by URL; each imported only when its URL asks for it.

::

    create_broker("memory://")                          # one process, the default
    create_broker("redis://127.0.0.1:6379/0")           # needs eventwire[redis]
    create_broker("redis://host/0?prefix=shop", history_size=100, history_age=600)
    create_broker("redis+cluster://h1:7000,h2:7000/?prefix=shop")  # Redis Cluster
    create_broker("nats://127.0.0.1:4222")              # needs eventwire[nats]
    create_broker("nats://host:4222?stream=SHOP&prefix=shop")

The Redis broker's URL is redis-py's (``rediss://`` for TLS, ``unix://`` for
a socket); its one query parameter of ours, ``prefix``, namespaces the keys.
The NATS broker's URL names one or more servers (``nats://h1:4222,h2:4222``);
``stream``, ``prefix``, ``retention`` and ``replicas`` shape its stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eventwire.brokers.base import (
    BatchPublish,
    BatchRefused,
    Broker,
    BrokerUnavailable,
    Health,
    History,
    HistoryPage,
    InboundHandler,
    NotAvailable,
    OutcomeUnknown,
    Position,
    Presence,
    PresenceRead,
    PresenceUpdate,
    ResetHandler,
    history_of,
    presence_of,
    publish_each,
)
from eventwire.brokers.memory import (
    DEFAULT_HISTORY_AGE,
    DEFAULT_HISTORY_SIZE,
    MemoryBroker,
    MemoryBus,
)

if TYPE_CHECKING:
    from eventwire.brokers.nats import NatsBroker
    from eventwire.brokers.redis import RedisBroker

__all__ = [
    "DEFAULT_HISTORY_AGE",
    "DEFAULT_HISTORY_SIZE",
    "BatchPublish",
    "BatchRefused",
    "Broker",
    "BrokerUnavailable",
    "Health",
    "History",
    "HistoryPage",
    "InboundHandler",
    "MemoryBroker",
    "MemoryBus",
    "NotAvailable",
    "OutcomeUnknown",
    "Position",
    "Presence",
    "PresenceRead",
    "PresenceUpdate",
    "ResetHandler",
    "create_broker",
    "history_of",
    "presence_of",
    "publish_each",
]

_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
_MISSING_REDIS = (
    "the Redis broker needs redis-py, which is not installed: pip install 'eventwire[redis]'"
)
_MISSING_NATS = (
    "the NATS broker needs nats-py, which is not installed: pip install 'eventwire[nats]'"
)


@contextlib.contextmanager
def _needs(package: str, missing: str) -> Iterator[None]:
    """An import of ``package`` that fails says what to install (``missing``)."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] != package:
            raise
        raise ModuleNotFoundError(missing, name=exc.name) from exc


def create_broker(
    url: str,
    *,
    history_size: int = DEFAULT_HISTORY_SIZE,
    history_age: float | None = DEFAULT_HISTORY_AGE,
) -> Broker:
    """The broker for ``url``, keeping per topic at most ``history_size`` events of at
    most ``history_age`` seconds (None: no age bound).

    Raises ValueError for an unknown scheme, ModuleNotFoundError (saying what
    to install) when the broker's client library is missing.
    """
    scheme = urlsplit(url).scheme or url
    if scheme == "memory":
        return MemoryBroker(history_size=history_size, history_age=history_age)
    if scheme in _REDIS_SCHEMES:
        return _redis_broker(url, history_size, history_age)
    if scheme == "nats":
        return _nats_broker(url, history_size, history_age)
    raise ValueError(
        f"unsupported broker URL {url!r};"
        " expected memory://, redis://host:port/db or nats://host:port"
    )


def _redis_broker(url: str, history_size: int, history_age: float | None) -> RedisBroker:
    with _needs("redis", _MISSING_REDIS):
        from eventwire.brokers.redis import DEFAULT_PREFIX, RedisBroker
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return RedisBroker(
        urlunsplit(parts._replace(query=rest)),
        prefix=prefixes[-1] if prefixes else DEFAULT_PREFIX,
        history_size=history_size,
        history_age=history_age,
    )


def _nats_broker(url: str, history_size: int, history_age: float | None) -> NatsBroker:
    with _needs("nats", _MISSING_NATS):
        from eventwire.brokers.nats import NatsBroker
    return NatsBroker.from_url(url, history_size=history_size, history_age=history_age)
