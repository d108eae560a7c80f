"""What a session hands its transport: the clock and limits going in, actions coming out.

Actions are frozen values; the transport carries them out in order
(``server/connection.py``). None of them touches I/O by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from eventwire.auth.identity import Identity
from eventwire.codes import ErrorCode
from eventwire.envelope import NewEvent

__all__ = [
    "Action",
    "Authenticated",
    "Clock",
    "Close",
    "Limits",
    "PublishEvent",
    "ReadPresence",
    "Reply",
    "SubscribeTopics",
    "UnsubscribeTopics",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits; the server's configuration fills them in."""

    max_subscriptions: int = 1000
    commands_per_second: float = 50.0
    command_burst: int = 100
    flood_threshold: int = 200
    """Commands refused for rate in a row before the connection is closed (4029)."""


@dataclass(frozen=True, slots=True)
class Clock:
    """The time, passed in so the session stays deterministic under test.

    ``now`` is the wall clock (timestamps, token times); ``monotonic`` paces
    the rate limits.
    """

    now: Callable[[], datetime]
    monotonic: Callable[[], float]
    epoch: Callable[[], float] | None = None
    """``now`` in seconds since the epoch, when there is a cheaper way to ask (``time.time``)."""

    def wall(self) -> float:
        """The wall clock in seconds since the epoch, as token times count."""
        return self.now().timestamp() if self.epoch is None else self.epoch()


@dataclass(frozen=True, slots=True)
class Reply:
    frame: bytes
    error: ErrorCode | None = None
    """The code when ``frame`` is an ERROR, so transports can count errors."""


@dataclass(frozen=True, slots=True)
class SubscribeTopics:
    """Add ``added`` to the hub, then answer SUBSCRIBED for all of ``topics``.

    ``regrouped``: topics already held whose accepted versions this SUBSCRIBE
    changed; the hub moves them to their new group. Each topic's versions are
    in the session's ``accepts``. ``since``: recover these topics (SUBSCRIBE's
    ``since``, validated): replay their events after ``seq`` of ``epoch``
    before their live ones, and say in SUBSCRIBED's ``recovered`` whether it could.
    """

    request_id: str
    topics: tuple[str, ...]
    added: tuple[str, ...]
    regrouped: tuple[str, ...] = ()
    since: tuple[tuple[str, int, str], ...] = ()
    """``(topic, seq, epoch)`` for each accepted topic whose missed events to replay."""


@dataclass(frozen=True, slots=True)
class UnsubscribeTopics:
    """Remove ``removed`` from the hub, then answer UNSUBSCRIBED for ``topics``.

    ``request_id`` None: the server ended them (close, revocation, refresh);
    nothing is answered.
    """

    request_id: str | None
    topics: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The connection now acts as ``identity``: count it under its user and tenant.

    If a connection cap refuses it, the transport answers ERROR
    TOO_MANY_CONNECTIONS under ``request_id`` and closes with 4009.
    """

    request_id: str
    identity: Identity


@dataclass(frozen=True, slots=True)
class PublishEvent:
    """Publish ``event`` (checked and stamped with the publisher), answer PUBLISHED."""

    request_id: str
    event: NewEvent


@dataclass(frozen=True, slots=True)
class ReadPresence:
    """Read who is on ``topic`` (subscribed, tracked), answer PRESENCE_STATE or ERROR."""

    request_id: str
    topic: str


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Action = (
    Reply
    | SubscribeTopics
    | UnsubscribeTopics
    | Authenticated
    | PublishEvent
    | ReadPresence
    | Close
)
