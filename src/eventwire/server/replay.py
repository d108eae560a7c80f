"""Reading a topic's missed events back from history, a page at a time.

A recovering client names its last position (``since``). Whether its
missed events can be replayed is decided before SUBSCRIBED, by reading one
event (``recovery_refusal``); the events themselves are then read in pages
while they are written (``HistoryPages``), so that a connection holds one
page of history at a time, however much it missed. Page sizes follow the
events' sizes: about ``page_bytes`` each, between 1 and ``_MAX_PAGE`` events.

A page that shows the history changed under the replay (trimmed, lost,
unreachable) ends it with the reason RECOVERY_FAILED gives.
"""

from __future__ import annotations

import logging

from eventwire.brokers.base import History, HistoryPage, Position
from eventwire.errors import BrokerError

__all__ = ["HistoryPages", "ReplayBroken", "recovery_refusal"]

log = logging.getLogger("eventwire.connection")

_FIRST_PAGE = 16
"""Events in the first page, before their size is known."""
_MAX_PAGE = 500


class ReplayBroken(Exception):
    """The history could not be read to the end of a replay; ``reason`` as RECOVERY_FAILED."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def recovery_refusal(
    history: History | None, topic: str, since: Position, position: Position, max_recovery: int
) -> str | None:
    """Why the events of ``topic`` after ``since`` up to ``position`` cannot be replayed.

    None when they can (or when there are none). The reasons are those of
    RECOVERY_FAILED (docs/protocol.md). Reads at most one event.
    """
    if since.epoch != position.epoch:
        return "epoch_changed"
    if since.seq > position.seq:
        return "position_ahead"
    if position.seq - since.seq > max_recovery:
        return "too_many_missed"
    if since.seq == position.seq:
        return None  # nothing missed: nothing to read, with or without history
    if history is None:
        return "no_history"
    try:
        page = await history.history(topic, since.seq, 1)
    except BrokerError as exc:
        log.warning("reading the history of %s failed: %s", topic, exc)
        return "history_unavailable"
    return _refusal(page, since)


def _refusal(page: HistoryPage, since: Position) -> str | None:
    """Why ``page``, read after ``since``, does not continue it: lost, or trimmed."""
    if page.position.epoch != since.epoch:
        return "epoch_changed"
    if page.truncated or not page.events or page.events[0][0] != since.seq + 1:
        return "history_truncated"
    return None


class HistoryPages:
    """The events of one topic after ``since`` up to ``until``, read a page at a time."""

    def __init__(
        self, history: History, topic: str, since: Position, until: int, page_bytes: int
    ) -> None:
        self._history = history
        self._topic = topic
        self._since = since
        self._until = until
        self._page_bytes = page_bytes
        self._count = _FIRST_PAGE
        self.last = since.seq
        """The seq of the last event read so far."""

    @property
    def done(self) -> bool:
        """Whether every event up to ``until`` was read."""
        return self.last >= self._until

    async def read(self) -> list[tuple[int, bytes]]:
        """The next page; raises ReplayBroken when the history no longer has it."""
        after, topic = self.last, self._topic
        count = min(self._count, self._until - after)
        try:
            page = await self._history.history(topic, after, count)
        except BrokerError as exc:
            log.warning("reading the history of %s failed: %s", topic, exc)
            raise ReplayBroken("history_unavailable") from exc
        reason = _refusal(page, Position(after, self._since.epoch))
        if reason is not None:
            raise ReplayBroken(reason)
        events = [(seq, body) for seq, body in page.events if seq <= self._until]
        self.last = events[-1][0]
        size = sum(len(body) for _, body in events) // len(events)
        self._count = max(1, min(_MAX_PAGE, self._page_bytes // max(1, size)))
        return events
