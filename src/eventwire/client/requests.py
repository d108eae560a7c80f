"""Commands in flight, matched to their replies by request id.

A command's reply echoes its request id in ``data.entity_id``. A command is
finished by its reply (SUBSCRIBED, UNSUBSCRIBED, PONG) or by an ERROR that
names no topic (the whole command failed). SUBSCRIBE may first draw one
ERROR per refused topic (``details.topic``); those are collected, and its
SUBSCRIBED, which always ends it, finishes it.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from eventwire.client.errors import ServerError

__all__ = ["Answer", "Requests"]


@dataclass(slots=True)
class Answer:
    """A finished command: the reply's payload (None when there was none) and its ERRORs."""

    payload: Any = None
    errors: list[ServerError] = field(default_factory=list)


@dataclass(slots=True)
class _Pending:
    command: str
    future: asyncio.Future[Answer]
    answer: Answer = field(default_factory=Answer)

    def finish(self) -> None:
        if not self.future.done():
            self.future.set_result(self.answer)


class Requests:
    """Request ids and the futures waiting for their answers."""

    def __init__(self, prefix: str = "r") -> None:
        self._ids = itertools.count(1)
        self._prefix = prefix
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def open(self, command: str) -> tuple[str, asyncio.Future[Answer]]:
        """A new request id for ``command`` and the future its answer resolves."""
        request_id = f"{self._prefix}{next(self._ids)}"
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(command, future)
        return request_id, future

    def forget(self, request_id: str) -> None:
        """The caller stopped waiting (answered, timed out or cancelled)."""
        self._pending.pop(request_id, None)

    def reply(self, request_id: str, payload: Any) -> bool:
        """A system reply arrived; False when no request waits for it."""
        pending = self._pending.get(request_id)
        if pending is None:
            return False
        pending.answer.payload = payload
        pending.finish()
        return True

    def error(self, error: ServerError) -> bool:
        """An ERROR arrived; False when it answers no request in flight."""
        pending = self._pending.get(error.request_id)
        if pending is None:
            return False
        pending.answer.errors.append(error)
        if pending.command != "SUBSCRIBE" or "topic" not in error.details:
            pending.finish()  # a SUBSCRIBE's per-topic refusals wait for its SUBSCRIBED
        return True

    def fail_all(self, exc: BaseException) -> None:
        """The connection is gone: every request in flight fails with ``exc``."""
        pending, self._pending = self._pending, {}
        for request in pending.values():
            if not request.future.done():
                request.future.set_exception(exc)
