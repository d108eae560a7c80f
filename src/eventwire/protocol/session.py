"""One connection's protocol state, without I/O.

The transport feeds it frames and the current time; it answers with actions
the transport carries out. It never touches a socket, the loop or a broker.

States and transitions, all of them::

    state     input                               next      actions
    -------   ---------------------------------   -------   ---------------------------------
    OPEN      SUBSCRIBE                           OPEN      Reply(ERROR per refused topic),
                                                            SubscribeTopics(accepted, added)
    OPEN      UNSUBSCRIBE                         OPEN      Unsubscribe(topics, removed)
    OPEN      PING                                OPEN      Reply(PONG)
    OPEN      AUTH / client publish / since       OPEN      Reply(ERROR NOT_SUPPORTED)
    OPEN      bad frame or unknown command        OPEN      Reply(ERROR with its code)
    OPEN      frame over the rate limit           OPEN      Reply(ERROR RATE_LIMITED)
    OPEN      rejected frames past flood limit    CLOSED    Close(4029)
    OPEN      close()                             CLOSED    Unsubscribe(all)
    CLOSED    anything                            CLOSED    (nothing)
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from eventwire.codes import CloseCode, ErrorCode
from eventwire.envelope import format_timestamp
from eventwire.errors import ProtocolError
from eventwire.protocol.frames import (
    PROTOCOL_VERSION,
    Auth,
    Ping,
    Publish,
    Rejected,
    Subscribe,
    Unsubscribe,
    decode_command,
    error_frame,
    system_frame,
)
from eventwire.topics import is_pattern, validate_pattern, validate_topic

__all__ = [
    "Action",
    "Clock",
    "Close",
    "Limits",
    "Reply",
    "Session",
    "SessionState",
    "SubscribeTopics",
    "UnsubscribeTopics",
]


class SessionState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


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
    """The time, passed in so the session stays deterministic under test."""

    now: Callable[[], datetime]
    monotonic: Callable[[], float]


@dataclass(frozen=True, slots=True)
class Reply:
    frame: bytes
    error: ErrorCode | None = None
    """The code when ``frame`` is an ERROR, so transports can count errors."""


@dataclass(frozen=True, slots=True)
class SubscribeTopics:
    """Add ``added`` to the hub, then answer SUBSCRIBED for all of ``topics``."""

    request_id: str
    topics: tuple[str, ...]
    added: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnsubscribeTopics:
    """Remove ``removed`` from the hub, then answer UNSUBSCRIBED for ``topics``."""

    request_id: str | None
    topics: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Action = Reply | SubscribeTopics | UnsubscribeTopics | Close


class Session:
    """Protocol state of one WebSocket connection."""

    __slots__ = (
        "_clock",
        "_limits",
        "_refused_in_row",
        "_tokens",
        "_updated",
        "may_watch",
        "session_id",
        "state",
        "subscriptions",
        "user_id",
    )

    def __init__(
        self,
        session_id: str,
        clock: Clock,
        limits: Limits,
        user_id: str | None = None,
        may_watch: bool = False,
    ) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.may_watch = may_watch
        """Whether this connection may subscribe to wildcard patterns (privileged)."""
        self.state = SessionState.OPEN
        self.subscriptions: set[str] = set()
        self._clock = clock
        self._limits = limits
        self._tokens = float(limits.command_burst)
        self._updated = clock.monotonic()
        self._refused_in_row = 0

    def connected(self, heartbeat_interval: float) -> bytes:
        """The CONNECTED frame the server sends first."""
        payload: dict[str, object] = {
            "session_id": self.session_id,
            "server_time": self._now_text(),
            "protocol": PROTOCOL_VERSION,
            "heartbeat_interval": heartbeat_interval,
        }
        if self.user_id is not None:
            payload = {"user_id": self.user_id, **payload}
        return system_frame(
            "CONNECTED", self.user_id or self.session_id, payload, self._clock.now()
        )

    def receive(self, data: str | bytes) -> list[Action]:
        """Handle one inbound frame."""
        if self.state is SessionState.CLOSED:
            return []
        command = decode_command(data)
        if not self._take_token():
            self._refused_in_row += 1
            if self._refused_in_row > self._limits.flood_threshold:
                self.state = SessionState.CLOSED
                return [Close(CloseCode.FLOODING, "command flood")]
            rid = command.request_id
            return [self._error(rid, ErrorCode.RATE_LIMITED, "too many commands; slow down")]
        self._refused_in_row = 0
        match command:
            case Rejected(request_id, error):
                return [self._reply_error(request_id, error)]
            case Subscribe():
                return self._subscribe(command)
            case Unsubscribe(request_id, topics):
                return [self._unsubscribe(request_id, topics)]
            case Ping(request_id):
                pong = {"server_time": self._now_text()}
                return [Reply(system_frame("PONG", request_id, pong, self._clock.now()))]
            case Auth(request_id):
                return [
                    self._error(
                        request_id,
                        ErrorCode.NOT_SUPPORTED,
                        "authentication is not enabled on this gateway",
                    )
                ]
            case Publish(request_id):
                return [
                    self._error(
                        request_id,
                        ErrorCode.NOT_SUPPORTED,
                        "client-published events are not enabled on this gateway",
                    )
                ]

    def subscribed(
        self, request_id: str, topics: tuple[str, ...], positions: Mapping[str, object]
    ) -> bytes:
        """The SUBSCRIBED reply, once the transport has joined the hub and read positions."""
        payload = {"topics": list(topics), "positions": dict(positions)}
        return system_frame("SUBSCRIBED", request_id, payload, self._clock.now())

    def unsubscribed(self, request_id: str, topics: tuple[str, ...]) -> bytes:
        return system_frame("UNSUBSCRIBED", request_id, {"topics": list(topics)}, self._clock.now())

    def close(self) -> UnsubscribeTopics:
        """The connection ended: leave every topic."""
        self.state = SessionState.CLOSED
        topics = tuple(self.subscriptions)
        self.subscriptions.clear()
        return UnsubscribeTopics(None, topics, topics)

    def _subscribe(self, command: Subscribe) -> list[Action]:
        actions: list[Action] = []
        rid = command.request_id
        if command.since is not None:
            return [
                self._error(
                    rid,
                    ErrorCode.NOT_SUPPORTED,
                    "recovery with 'since' is not enabled on this gateway",
                    field="since",
                )
            ]
        accepted: list[str] = []
        added: list[str] = []
        for topic in dict.fromkeys(command.topics):
            try:
                if self.may_watch and is_pattern(topic):
                    validate_pattern(topic)
                else:
                    validate_topic(topic)
            except ProtocolError as exc:
                actions.append(self._reply_error(rid, exc))
                continue
            if topic not in self.subscriptions:
                if len(self.subscriptions) >= self._limits.max_subscriptions:
                    actions.append(
                        self._error(
                            rid,
                            ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                            f"at most {self._limits.max_subscriptions} subscriptions a connection",
                            topic=topic,
                        )
                    )
                    continue
                self.subscriptions.add(topic)
                added.append(topic)
            accepted.append(topic)
        # Every SUBSCRIBE ends with SUBSCRIBED, even when it accepted nothing,
        # so a client always knows when its request is over.
        actions.append(SubscribeTopics(rid, tuple(accepted), tuple(added)))
        return actions

    def _unsubscribe(self, request_id: str, topics: tuple[str, ...]) -> Action:
        removed = tuple(t for t in dict.fromkeys(topics) if t in self.subscriptions)
        self.subscriptions.difference_update(removed)
        return UnsubscribeTopics(request_id, tuple(dict.fromkeys(topics)), removed)

    def _take_token(self) -> bool:
        now = self._clock.monotonic()
        limits = self._limits
        self._tokens = min(
            float(limits.command_burst),
            self._tokens + (now - self._updated) * limits.commands_per_second,
        )
        self._updated = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _error(self, request_id: str, code: ErrorCode, message: str, **details: object) -> Reply:
        return self._reply_error(request_id, ProtocolError(code, message, dict(details)))

    def _reply_error(self, request_id: str, error: ProtocolError) -> Reply:
        return Reply(error_frame(request_id, error, self._clock.now()), error.code)

    def _now_text(self) -> str:
        return format_timestamp(self._clock.now())
