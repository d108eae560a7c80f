"""Reading a topic's stored messages back from the JetStream stream.

The stream numbers every message with one global sequence; a topic's
messages are scattered along it, each carrying its own ``Ew-Seq`` and the
stream sequence of the topic's previous message (``Ew-Prev``). A page of
events after ``since`` is found in one of two ways:

- **a few events back** (the usual catch-up after a short outage): walk
  ``Ew-Prev`` back from the topic's last message, one read per event;
- **further back**: bisect the stream sequence for the first message that is
  still wanted (``Ew-Seq > since``, young enough), reading "the topic's next
  message from stream sequence p", then read forward from it.

Both are single-message reads (``STREAM.MSG.GET``), answered by the stream's
leader, so they see every acknowledged publish. Wanted-ness is monotonic
along the stream (seq and storage time only grow within one epoch), which
is what makes bisection correct.
"""

from __future__ import annotations

from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from eventwire.brokers._nats_subjects import NatsNames, Stored, stored_of

__all__ = ["StreamMissing", "StreamReader", "read_page"]

_NO_MESSAGE = 10037
_NO_STREAM = 10059
_WALK = 16
"""Up to this many events back, walk ``Ew-Prev``; further, bisect."""

_Wanted = Callable[[Stored], bool]


class StreamMissing(Exception):
    """The stream is gone (deleted, or a server restarted without its storage)."""


class StreamReader:
    """Single-message reads of one stream."""

    def __init__(self, js: JetStreamContext, names: NatsNames) -> None:
        self._js = js
        self._stream = names.stream

    async def last(self, subject: str) -> Stored | None:
        """The subject's last message, None if it has none."""
        return await self._get(subject=subject)

    async def next_from(self, subject: str, stream_seq: int) -> Stored | None:
        """The subject's first message at or after ``stream_seq``."""
        return await self._get(subject=subject, seq=stream_seq, following=True)

    async def at(self, subject: str, stream_seq: int) -> Stored | None:
        """The message at ``stream_seq`` if it is still kept and is the subject's."""
        return await self._get(seq=stream_seq, only=subject)

    async def _get(
        self,
        *,
        subject: str | None = None,
        seq: int | None = None,
        following: bool = False,
        only: str | None = None,
    ) -> Stored | None:
        try:
            raw = await self._js.get_msg(self._stream, seq=seq, subject=subject, next=following)
        except NotFoundError as exc:
            if exc.err_code == _NO_STREAM:
                raise StreamMissing(self._stream) from exc
            if exc.err_code == _NO_MESSAGE:
                return None
            raise
        if only is not None and raw.subject != only:
            return None
        if raw.seq is None:
            raise ValueError("the stream answered a message without its sequence")
        return stored_of(raw.headers, raw.seq, raw.time, raw.data)


async def read_page(
    reader: StreamReader,
    subject: str,
    last: Stored,
    since: int,
    limit: int,
    *,
    history_size: int,
    cutoff: float | None,
) -> list[tuple[int, bytes]]:
    """Up to ``limit`` kept events after ``since`` up to ``last``, oldest first.

    Kept means among the ``history_size`` most recent and stored at or after
    ``cutoff`` (server time), whatever more the stream still holds.
    """
    lower = max(since, last.seq - history_size)

    def wanted(m: Stored) -> bool:
        return m.seq > lower and m.epoch == last.epoch and (cutoff is None or m.time >= cutoff)

    if not wanted(last):
        return []
    if last.seq - lower <= _WALK:
        found = await _walk_back(reader, subject, last, wanted)
        return [(m.seq, m.body) for m in found[:limit]]
    first = await _first_wanted(reader, subject, last, wanted)
    return await _forward(reader, subject, first, last, limit)


async def _walk_back(
    reader: StreamReader, subject: str, last: Stored, wanted: _Wanted
) -> list[Stored]:
    found = [last]
    while found[-1].prev:
        previous = await reader.at(subject, found[-1].prev)
        if previous is None or previous.seq != found[-1].seq - 1 or not wanted(previous):
            break
        found.append(previous)
    found.reverse()
    return found


async def _first_wanted(
    reader: StreamReader, subject: str, last: Stored, wanted: _Wanted
) -> Stored:
    """The subject's first wanted message: bisect ``p`` for "its next message from p is wanted"."""
    oldest = await reader.next_from(subject, 1)
    if oldest is None or wanted(oldest):
        return oldest or last
    lo, hi, found = oldest.stream_seq + 1, last.stream_seq, last
    while lo < hi:
        mid = (lo + hi) // 2
        probe = await reader.next_from(subject, mid)
        if probe is None or probe.stream_seq >= found.stream_seq:
            hi = mid  # nothing of the subject between mid and found
        elif wanted(probe):
            hi, found = mid, probe
        else:
            lo = probe.stream_seq + 1
    return found


async def _forward(
    reader: StreamReader, subject: str, first: Stored, last: Stored, limit: int
) -> list[tuple[int, bytes]]:
    events, current = [(first.seq, first.body)], first
    while len(events) < limit and current.stream_seq < last.stream_seq:
        following = await reader.next_from(subject, current.stream_seq + 1)
        if (
            following is None
            or following.stream_seq > last.stream_seq
            or following.seq != current.seq + 1
            or following.epoch != last.epoch
        ):
            break
        events.append((following.seq, following.body))
        current = following
    return events
