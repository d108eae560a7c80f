"""A client for tests: it records every event and waits for the ones a test expects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from eventwire.client import Client
from eventwire.client.reconnect import Signal
from eventwire.envelope import Event

__all__ = ["ClientFactory", "EventFilter", "TestClient"]

EventFilter = Callable[[Event], bool]

_SHOWN = 50
"""Events listed in a failed expectation; the most recent ones."""


class TestClient(Client):
    """A ``Client`` that records every event delivered and can ``expect`` them.

    Each event delivered to a subscription is also appended to ``received``.
    ``expect`` returns the earliest recorded event that matches and that no
    earlier ``expect`` returned, waiting for it if needed, so a test reads
    events in order without racing the network. Failures are
    ``AssertionError``s that list what did arrive.

    Defaults suit tests: reconnection backoff of 0.05 s up to 1 s and
    five-second request and connect timeouts; any ``Client`` option may be
    given.
    """

    __test__ = False  # a helper, not a test class for pytest to collect

    def __init__(self, url: str | Sequence[str], **options: Any) -> None:
        options.setdefault("backoff_initial", 0.05)
        options.setdefault("backoff_max", 1.0)
        options.setdefault("request_timeout", 5.0)
        options.setdefault("connect_timeout", 5.0)
        super().__init__(url, **options)
        self.received: list[Event] = []
        self._consumed: set[int] = set()
        self._arrived = Signal()

    def _deliver(self, event: Event) -> None:
        self.received.append(event)
        self._arrived.fire()
        super()._deliver(event)

    async def expect(
        self,
        topic: str,
        event: str | None = None,
        *,
        timeout: float = 2.0,
        where: EventFilter | None = None,
    ) -> Event:
        """The next unconsumed event of ``topic`` (named ``event``, passing ``where``).

        Raises AssertionError, listing what was received, if none arrives
        within ``timeout`` seconds.
        """
        index = await self._wait_for(topic, event, where, timeout)
        if index is None:
            wanted = f"{event or 'an event'} on {topic!r}"
            raise AssertionError(self._report(f"expected {wanted} within {timeout}s"))
        self._consumed.add(index)
        return self.received[index]

    async def expect_nothing(
        self,
        topic: str,
        event: str | None = None,
        *,
        within: float = 0.2,
        where: EventFilter | None = None,
    ) -> None:
        """Assert that no unconsumed matching event is received, waiting ``within`` seconds."""
        index = await self._wait_for(topic, event, where, within)
        if index is not None:
            found = _describe(index, self.received[index])
            raise AssertionError(
                self._report(f"expected no {event or 'event'} on {topic!r}, got {found}")
            )

    async def _wait_for(
        self, topic: str, event: str | None, where: EventFilter | None, timeout: float
    ) -> int | None:
        try:
            async with asyncio.timeout(timeout):
                while (index := self._find(topic, event, where)) is None:
                    await self._arrived.wait()
                return index
        except TimeoutError:
            return None

    def _find(self, topic: str, event: str | None, where: EventFilter | None) -> int | None:
        for index, candidate in enumerate(self.received):
            if (
                index not in self._consumed
                and candidate.topic == topic
                and (event is None or candidate.event == event)
                and (where is None or where(candidate))
            ):
                return index
        return None

    def _report(self, problem: str) -> str:
        count = len(self.received)
        lines = [f"{problem}; received {count} event{'s' * (count != 1)}:"]
        start = max(0, count - _SHOWN)
        if start:
            lines.append(f"  ... {start} earlier events")
        for index in range(start, count):
            mark = " (consumed)" if index in self._consumed else ""
            lines.append(f"  {_describe(index, self.received[index])}{mark}")
        return "\n".join(lines)


def _describe(index: int, event: Event) -> str:
    return (
        f"#{index} {event.topic} {event.event} seq={event.seq} "
        f"entity_id={event.entity_id} payload={event.payload!r:.120}"
    )


class ClientFactory(Protocol):
    """The ``eventwire_client`` fixture: ``await eventwire_client()`` connects a TestClient.

    ``url`` defaults to the ``eventwire_gateway`` fixture's gateway; the
    other keywords are ``TestClient`` options.
    """

    async def __call__(self, url: str | None = None, **options: Any) -> TestClient: ...
