"""Turn a broker's live messages and its history into a gapless feed per topic.

A live channel (Redis Pub/Sub) loses what is published while a node's link
is down, and may repeat what a node already has (a topic's own copy and a
pattern's copy around an interest change). For each topic a node is
subscribed to by name, ``Feed`` keeps a cursor, the last ``(seq, epoch)``
handed on, and so:

- drops a message at or below the cursor (a duplicate);
- fills a jump past the cursor from history before handing the message on,
  and catches up from history when a subscription is (re-)established, so
  an outage of the link costs no event that history still holds;
- on a new epoch (the topic's history was lost, e.g. a flush), tells
  ``on_reset`` and starts the cursor again from 0 of the new epoch;
- when the broker went back under the same epoch (a failover to a replica
  that had not received the last writes, a restore from an older snapshot),
  tells ``on_reset`` too: the new events reuse seqs the node already handed
  on, and dropping them as duplicates would lose them in silence. It shows
  as a position below the cursor, or as a different body at the cursor's
  seq (live, or read back when catching up).

Events of topics reached only through patterns are handed on as they come:
a node cannot know which topics it missed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from eventwire.brokers.base import HistoryPage, InboundHandler, Position, ResetHandler

__all__ = ["Feed", "FetchHistory"]

log = logging.getLogger("eventwire.brokers")

FetchHistory = Callable[[str, int, int], Awaitable[HistoryPage]]
"""``(topic, since, limit)`` → a page of history."""

_PAGE = 500


class Feed:
    """Cursors of the exact topics of one node, and the handler they feed."""

    def __init__(
        self, on_event: InboundHandler, fetch: FetchHistory, on_reset: ResetHandler | None = None
    ) -> None:
        self._on_event = on_event
        self._fetch = fetch
        self._on_reset = on_reset
        self._cursors: dict[str, Position | None] = {}
        self.recovered = 0
        """Events handed on from history because the live channel missed them."""
        self.missed = 0
        """Events missed by the live channel that history no longer held."""
        self.epoch_changes = 0
        self.regressions = 0
        """Times a topic's position went back under the same epoch."""
        self._digests: dict[str, int] = {}  # topic -> hash of the body at its cursor

    def track(self, topic: str, start: Position | None) -> None:
        """Follow ``topic`` from ``start``, its position read before subscribing.

        With no ``start`` (the broker could not be asked) the cursor starts
        at the first event that arrives.
        """
        if self._cursors.get(topic) is None:
            self._cursors[topic] = start

    def forget(self, topic: str) -> None:
        self._cursors.pop(topic, None)
        self._digests.pop(topic, None)

    def tracks(self, topic: str) -> bool:
        return topic in self._cursors

    async def message(self, topic: str, seq: int, epoch: str, body: bytes) -> None:
        """Hand on one live event: once, in order, after whatever it reveals was missed."""
        if topic not in self._cursors:
            self._hand_on(topic, seq, body)
            return
        cursor = self._cursors[topic]
        if cursor is None:
            cursor = Position(seq - 1, epoch)
        elif epoch != cursor.epoch:
            cursor = self._new_epoch(topic, cursor, epoch)
        elif seq == cursor.seq and self._digests.get(topic, hash(body)) != hash(body):
            cursor = self._went_back(topic, cursor, Position(seq - 1, epoch))
        if seq <= cursor.seq:
            return
        if seq > cursor.seq + 1:
            await self._fill(topic, cursor, until=seq - 1)
            if topic not in self._cursors:
                return  # the interest was dropped while history was read
        self._advance(topic, Position(seq, epoch), body)
        self._hand_on(topic, seq, body)

    async def catch_up(self, topic: str) -> None:
        """Hand on every event after the cursor that history holds (after a (re)subscribe)."""
        cursor = self._cursors.get(topic)
        if cursor is not None:
            await self._fill(topic, cursor, until=None)

    async def _fill(self, topic: str, cursor: Position, until: int | None) -> Position:
        """Deliver history after ``cursor`` up to ``until`` (None: all); return the new cursor.

        Catching up (``until`` None) reads the event at the cursor too, to
        check that the broker still has the one this node handed on.
        """
        check = until is None and cursor.seq > 0 and topic in self._digests
        while until is None or cursor.seq < until:
            wanted = _PAGE if until is None else min(_PAGE, until - cursor.seq)
            since = cursor.seq - 1 if check else cursor.seq
            page = await self._fetch(topic, since, wanted)
            if self._cursors.get(topic) is None:
                return cursor  # the interest was dropped meanwhile
            if page.position.epoch != cursor.epoch:
                check = False
                cursor = self._new_epoch(topic, cursor, page.position.epoch)
                continue
            if page.position.seq < cursor.seq or (check and self._differs(topic, cursor, page)):
                check = False
                cursor = self._went_back(topic, cursor, page.position)
                continue
            check = False
            last = min(page.position.seq, until) if until is not None else page.position.seq
            if page.truncated or not page.events:
                lost = (page.events[0][0] if page.events else last + 1) - cursor.seq - 1
                if lost > 0:
                    self.missed += lost
                    log.warning(
                        "%s: %d events were missed and history no longer has them", topic, lost
                    )
            for seq, body in page.events:
                if seq > cursor.seq and (until is None or seq <= until):
                    cursor = Position(seq, cursor.epoch)
                    self._advance(topic, cursor, body)
                    self.recovered += 1
                    self._hand_on(topic, seq, body)
            if not page.has_more or (page.events and page.events[-1][0] >= last):
                if last > cursor.seq:  # past events history no longer had
                    cursor = Position(last, cursor.epoch)
                    self._cursors[topic] = cursor
                    self._digests.pop(topic, None)
                return cursor
        return cursor

    def _advance(self, topic: str, cursor: Position, body: bytes) -> None:
        self._cursors[topic] = cursor
        self._digests[topic] = hash(body)

    def _differs(self, topic: str, cursor: Position, page: HistoryPage) -> bool:
        """Whether the page's event at the cursor is not the one this node handed on."""
        at_cursor = [body for seq, body in page.events if seq == cursor.seq]
        return bool(at_cursor) and hash(at_cursor[0]) != self._digests.get(topic)

    def _hand_on(self, topic: str, seq: int, body: bytes) -> None:
        try:
            self._on_event(topic, seq, body)
        except Exception:  # the node's failure must not stop the feed of every other topic
            log.exception("node failed to take event %s seq %d", topic, seq)

    def _new_epoch(self, topic: str, cursor: Position, epoch: str) -> Position:
        log.warning("%s: history was lost (epoch %s -> %s)", topic, cursor.epoch, epoch)
        self.epoch_changes += 1
        return self._reset(topic, Position(0, epoch))

    def _went_back(self, topic: str, cursor: Position, now: Position) -> Position:
        """The broker lost events this node handed on, and reuses their seqs: a reset."""
        log.warning(
            "%s: the broker went back from seq %d to %d under epoch %s (lost writes:"
            " a failover to a lagging replica, or an older snapshot)",
            topic,
            cursor.seq,
            now.seq,
            cursor.epoch,
        )
        self.regressions += 1
        return self._reset(topic, now)

    def _reset(self, topic: str, fresh: Position) -> Position:
        self._cursors[topic] = fresh
        self._digests.pop(topic, None)
        if self._on_reset is not None:
            try:
                self._on_reset(topic, fresh)
            except Exception:
                log.exception("node failed to take the reset of %s", topic)
        return fresh
