"""A subscription: the events of some topics, as an async iterator and through handlers."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from eventwire.client.streams import Gap
from eventwire.envelope import Event

__all__ = ["Handler", "Subscription"]

log = logging.getLogger("eventwire.client")

Handler = Callable[[Event], Awaitable[None] | None]
"""A sync or async callable taking one event."""

H = TypeVar("H", bound=Handler)

CATCH_ALL = "*"


class _End:
    """Queued last: the iteration is over, with ``error`` if it ended badly."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class Subscription:
    """The events of ``topics``, in the order they arrive, each delivered once.

    Read them with ``async for event in sub``, or register handlers with
    ``sub.on("ADDED", handler)``; handlers run one event at a time, in order,
    in a task of their own, so a slow handler never holds up the connection.
    A subscription that has handlers and has never been iterated does not
    queue events for iteration.

    The iterator waits across reconnects, ends after ``unsubscribe()`` or
    ``Client.close()``, and raises ``ConnectionLost`` if the client gives up.
    Missed events are recorded in ``gaps``; events dropped because nobody
    read them (more than ``max_queue`` waiting) are counted in ``dropped``.
    """

    def __init__(
        self,
        topics: tuple[str, ...],
        unsubscribe: Callable[[Subscription], Awaitable[None]],
        max_queue: int = 10_000,
    ) -> None:
        self.topics = topics
        self.gaps: list[Gap] = []
        self.dropped = 0
        self._unsubscribe = unsubscribe
        self._max_queue = max_queue
        self._queue: asyncio.Queue[Event | _End] = asyncio.Queue()
        self._handlers: list[tuple[str, Handler]] = []
        self._work: asyncio.Queue[Event | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._iterated = False
        self._ended = False

    def __repr__(self) -> str:
        return f"<Subscription {', '.join(self.topics)}{' (ended)' if self._ended else ''}>"

    @property
    def active(self) -> bool:
        """False once unsubscribed or closed."""
        return not self._ended

    @overload
    def on(self, event: str | None, handler: H) -> H: ...

    @overload
    def on(self, event: str | None = None) -> Callable[[H], H]: ...

    def on(self, event: str | None = None, handler: H | None = None) -> H | Callable[[H], H]:
        """Call ``handler`` for each event named ``event`` (every event when None or ``"*"``).

        Usable directly, ``sub.on("ADDED", handler)``, or as a decorator,
        ``@sub.on("ADDED")``. Exceptions from a handler are logged and the
        next event is handled.
        """

        def register(fn: H) -> H:
            self._handlers.append((event or CATCH_ALL, fn))
            return fn

        return register if handler is None else register(handler)

    async def unsubscribe(self) -> None:
        """Stop receiving; events already queued are still yielded, then iteration ends."""
        if not self._ended:
            await self._unsubscribe(self)

    def __aiter__(self) -> Subscription:
        self._iterated = True
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # every later or concurrent reader ends too
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    # -- called by the client --------------------------------------------------

    def _push(self, event: Event) -> None:
        if self._ended:
            return
        if self._handlers:
            self._to_handlers(event)
        if self._iterated or not self._handlers:
            if self._queue.qsize() >= self._max_queue:
                self._queue.get_nowait()
                self._count_drop()
            self._queue.put_nowait(event)

    def _gap(self, gap: Gap) -> None:
        self.gaps.append(gap)

    def _end(self, error: BaseException | None = None) -> None:
        """No more events: end the iteration and let the handlers finish their queue."""
        if self._ended:
            return
        self._ended = True
        self._queue.put_nowait(_End(error))
        self._work.put_nowait(None)

    async def _stop_handlers(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for handlers to finish, then cancel them."""
        worker = self._worker
        if worker is None:
            return
        _, pending = await asyncio.wait({worker}, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _to_handlers(self, event: Event) -> None:
        if self._work.qsize() >= self._max_queue:
            self._count_drop()
            return
        self._work.put_nowait(event)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run_handlers())

    def _count_drop(self) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning("%r dropped %d events: nobody reads them fast enough", self, self.dropped)

    async def _run_handlers(self) -> None:
        while (event := await self._work.get()) is not None:
            for name, handler in list(self._handlers):
                if name in (CATCH_ALL, event.event):
                    await _call(handler, event)


async def _call(handler: Handler, event: Event) -> None:
    try:
        result: Any = handler(event)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception(
            "handler %r failed on %s %s seq=%s", handler, event.topic, event.event, event.seq
        )
