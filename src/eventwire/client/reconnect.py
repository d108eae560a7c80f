"""Reconnection pieces of the client: the backoff schedule, the notice, a wake-up signal."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eventwire.client.streams import Gap

__all__ = ["Backoff", "ReconnectHandler", "Reconnected", "Signal", "backoff_delay", "notify"]

log = logging.getLogger("eventwire.client")


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A finished reconnection: connected again and every topic resubscribed.

    ``gaps`` are the events missed while disconnected, per topic; with
    ``history_lost`` the topic's history itself was lost.
    """

    count: int
    """Reconnections of this client so far, this one included."""
    close_code: int
    """The close code that ended the previous connection (1006 when it just dropped)."""
    gaps: tuple[Gap, ...] = ()


ReconnectHandler = Callable[[Reconnected], Awaitable[None] | None]


def backoff_delay(
    attempt: int, initial: float, maximum: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before reconnection ``attempt`` (0-based): exponential, full jitter.

    A uniform draw in ``[0, min(maximum, initial * 2**attempt)]``, so clients
    dropped together by one restart do not all come back at the same instant.
    """
    ceiling = min(maximum, initial * 2.0 ** min(attempt, 62))
    return ceiling * rand()


class Backoff:
    """Where the reconnection backoff stands: it grows with every attempt, across connections.

    Only a connection that stayed open ``stable_after`` seconds starts it
    again from the initial delay. Resetting on every successful open would
    let a node that accepts and then closes at once (4008, 4010, 1011) be
    hammered every few hundred milliseconds, forever, by all its clients.
    ``step`` maps the attempt count to the backoff exponent (one per round of
    URLs); ``clock`` and ``rand`` are there for tests.
    """

    def __init__(
        self,
        stable_after: float,
        *,
        step: Callable[[int], int] = lambda attempt: attempt,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.stable_after = stable_after
        self.attempts = 0
        """Reconnection attempts since the last connection that lasted."""
        self._step = step
        self._clock = clock
        self._rand = rand
        self._opened_at: float | None = None

    def delay(self, initial: float, maximum: float) -> float:
        """Seconds to wait before the next attempt, which it counts."""
        step = self._step(self.attempts)
        self.attempts += 1
        return backoff_delay(step, initial, maximum, self._rand)

    def opened(self) -> None:
        """A connection is open (its greeting read)."""
        self._opened_at = self._clock()

    def closed(self) -> None:
        """The connection ended: if it lasted, the next attempt starts from the initial delay."""
        if self._opened_at is not None and self._clock() - self._opened_at >= self.stable_after:
            self.attempts = 0
        self._opened_at = None


class Signal:
    """Wakes every current waiter each time it fires; waiters re-check their condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


async def notify(handler: ReconnectHandler, notice: Reconnected) -> None:
    """Call a sync or async reconnect handler; its failure is logged, never raised."""
    try:
        result = handler(notice)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("on_reconnect handler %r failed", handler)
