"""What the Redis and NATS brokers share: interest bookkeeping, link status, health, backoff.

``LinkStatus`` is the state every live link reports (down, syncing, up),
with its loss counter; ``LinkedBroker`` is the half of a broker that only
talks to its link and ``Feed``: adding and removing interest, readiness and
the counters. ``backoff`` is the jittered exponential delay both use
between reconnection attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from typing import Generic, Protocol, TypeVar

from eventwire.brokers._interest import Interests
from eventwire.brokers._resume import Feed
from eventwire.brokers.base import BrokerUnavailable, Position
from eventwire.topics import is_pattern

__all__ = [
    "LinkState",
    "LinkStatus",
    "LinkedBroker",
    "backoff",
    "check_history",
    "check_page",
    "log_attempt",
]


def check_history(history_size: int, history_age: float | None) -> None:
    """ValueError unless ``history_size`` is 0 or more and ``history_age`` positive or None."""
    if history_size < 0:
        raise ValueError(f"history_size must be 0 or more, got {history_size}")
    if history_age is not None and history_age <= 0:
        raise ValueError(f"history_age must be positive or None, got {history_age}")


def check_page(since: int, limit: int) -> None:
    """ValueError unless ``since`` is 0 or more and ``limit`` 1 or more."""
    if since < 0:
        raise ValueError(f"since must be 0 or more, got {since}")
    if limit < 1:
        raise ValueError(f"limit must be 1 or more, got {limit}")


def backoff(attempt: int, *, initial: float, maximum: float, cap: int) -> float:
    """Exponential with jitter: nodes of one restarted server spread their return."""
    ceiling = min(maximum, initial * 2.0 ** min(attempt, cap))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def log_attempt(log: logging.Logger, attempt: int, message: str, *args: object) -> None:
    """A failed reconnection attempt: a warning on the first and every 20th, else debug.

    A long outage then leaves a trace every few minutes rather than a flood.
    """
    log.log(logging.WARNING if attempt % 20 == 1 else logging.DEBUG, message, *args)


class LinkState(enum.Enum):
    DOWN = "down"  # no connection: interests are recorded, subscribed on reconnect
    SYNCING = "syncing"  # connected: subscriptions (and catch-up) being confirmed
    UP = "up"  # subscribed to every interest: events flow


class LinkStatus:
    """A link's state, the event that waits for it to be up, and its losses."""

    def __init__(self, name: str, interests: Interests) -> None:
        self._name = name
        self._interests = interests
        self._state = LinkState.DOWN
        self._up = asyncio.Event()
        self.losses = 0
        """Times an established link was lost."""

    @property
    def up(self) -> bool:
        return self._state is LinkState.UP

    async def wait_up(self) -> None:
        await self._up.wait()

    def _log_up(self, log: logging.Logger) -> None:
        log.info(
            "%s: link up, subscribed to %d topics and %d patterns",
            self._name,
            len(self._interests.topics),
            len(self._interests.patterns),
        )


class _Link(Protocol):
    @property
    def up(self) -> bool: ...

    @property
    def losses(self) -> int: ...

    async def subscribe(self, name: str) -> None: ...

    async def unsubscribe(self, name: str) -> None: ...


L = TypeVar("L", bound=_Link)


class LinkedBroker(Generic[L]):
    """Interest, readiness and counters of a broker with a live link and a ``Feed``."""

    _kind = "?"
    """The server's name in messages: ``Redis``, ``NATS``."""

    interests: Interests
    _link: L | None
    _feed: Feed | None

    @property
    def shown_url(self) -> str:
        raise NotImplementedError

    async def position(self, topic: str) -> Position:
        raise NotImplementedError

    async def add_interest(self, topic: str) -> None:
        """Subscribe this node; returns once the server has it (at once while the link is down).

        It never fails for an unreachable server: the interest is recorded
        and the link subscribes to it when it is back. For a topic, its
        position is read first, and events published between that read and
        the subscription are caught up from history.
        """
        link, feed = self._started()
        start = None
        if not is_pattern(topic):
            # If the server is unreachable the link is down too: it subscribes when it is back.
            with contextlib.suppress(BrokerUnavailable):
                start = await self.position(topic)
        if not self.interests.add(topic):
            return
        if not is_pattern(topic):
            feed.track(topic, start)
        await link.subscribe(topic)

    async def remove_interest(self, topic: str) -> None:
        if self._link is None or self._feed is None or not self.interests.remove(topic):
            return
        self._feed.forget(topic)
        await self._link.unsubscribe(topic)

    @property
    def ready(self) -> bool:
        """True while the node's link is subscribed to every interest (and caught up)."""
        return self._link is not None and self._link.up

    def counters(self) -> dict[str, int]:
        """``link_losses``, events ``recovered`` from history or ``missed``, epoch changes,
        and ``history_regressions`` (a topic's position went back under its epoch)."""
        link, feed = self._link, self._feed
        return {
            "link_losses": link.losses if link is not None else 0,
            "events_recovered": feed.recovered if feed is not None else 0,
            "events_missed": feed.missed if feed is not None else 0,
            "epoch_changes": feed.epoch_changes if feed is not None else 0,
            "history_regressions": feed.regressions if feed is not None else 0,
        }

    def _not_started(self) -> BrokerUnavailable:
        return BrokerUnavailable(f"the {self._kind} broker for {self.shown_url} is not started")

    def _started(self) -> tuple[L, Feed]:
        if self._link is None or self._feed is None:
            raise self._not_started()
        return self._link, self._feed
