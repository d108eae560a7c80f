"""Server-side handlers: code in the gateway process that receives events by pattern.

Each handler has a bounded queue and one worker task, so a slow handler
delays only itself, keeps its events in order, and can never block fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable

from eventwire.envelope import Event

__all__ = ["EventHandler", "HandlerRunner"]

log = logging.getLogger("eventwire.handlers")

EventHandler = Callable[[Event], Awaitable[None] | None]


class HandlerRunner:
    """Runs one handler over its queue of events."""

    def __init__(self, pattern: str, handler: EventHandler, max_queue: int = 10_000) -> None:
        self.pattern = pattern
        self.handler = handler
        self._queue: asyncio.Queue[Event] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def submit(self, event: Event) -> bool:
        """Queue ``event``; False when the queue is full and it was dropped."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning(
                "handler for %r is %d events behind; dropped one", self.pattern, self._queue.qsize()
            )
            return False
        return True

    async def drain(self) -> None:
        """Wait until every queued event has been handled."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                result = self.handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception(
                    "handler for %r failed on %s %s", self.pattern, event.topic, event.event
                )
            finally:
                self._queue.task_done()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
