"""Reconnection pieces of the client: the backoff schedule, the notice, a wake-up signal."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eventwire.client.streams import Gap

__all__ = ["ReconnectHandler", "Reconnected", "Signal", "backoff_delay", "notify"]

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
