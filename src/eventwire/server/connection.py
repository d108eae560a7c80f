"""What every transport's connection shares: its session and how actions are carried out.

A transport supplies three things (write a frame's JSON, close with a code,
its own liveness rules); this base runs the session's actions against the
hub and the broker, in order, so both transports behave identically.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from eventwire.protocol.session import (
    Action,
    Close,
    Reply,
    Session,
    SubscribeTopics,
    UnsubscribeTopics,
)
from eventwire.topics import is_pattern

if TYPE_CHECKING:
    from eventwire.server.gateway import Gateway
    from eventwire.server.hub import Outbound

__all__ = ["ConnectionBase"]

log = logging.getLogger("eventwire.connection")


class ConnectionBase:
    """A subscriber driven by a Session; subclasses provide the transport."""

    __slots__ = ("_closing", "_gateway", "session")

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._closing = False
        self.session = Session(
            secrets.token_hex(8),
            gateway.clock,
            gateway.limits,
            may_watch=gateway.settings.allow_pattern_subscriptions,
        )

    def deliver(self, message: Outbound) -> None:
        raise NotImplementedError

    def close(self, code: int, reason: str = "") -> None:
        raise NotImplementedError

    def heartbeat(self, now: float, deadline: float) -> None:
        """Ping the peer, or close it if it has been silent since ``deadline``."""
        raise NotImplementedError

    def _send(self, data: bytes) -> None:
        """Write one server frame's JSON to the peer."""
        raise NotImplementedError

    def _greet(self) -> None:
        self._gateway.register(self)
        self._send(self.session.connected(self._gateway.settings.heartbeat_interval))

    async def _handle(self, data: str | bytes) -> None:
        """Carry out everything one inbound frame asks for."""
        for action in self.session.receive(data):
            await self._apply(action)

    async def _apply(self, action: Action) -> None:
        gateway = self._gateway
        match action:
            case Reply(frame, error):
                if error is not None:
                    gateway.metrics.errors.labels(error.value).inc()
                self._send(frame)
            case SubscribeTopics(request_id, topics, added):
                if self._closing:
                    return
                for topic in added:
                    await gateway.join(topic, self)
                positions = {
                    topic: (await gateway.broker.position(topic)).to_wire()
                    for topic in topics
                    if not is_pattern(topic)  # a pattern spans topics: no one position
                }
                self._send(self.session.subscribed(request_id, topics, positions))
            case UnsubscribeTopics(request_id, topics, removed):
                for topic in removed:
                    gateway.leave(topic, self)
                if request_id is not None:
                    self._send(self.session.unsubscribed(request_id, topics))
            case Close(code, reason):
                self.close(code, reason)

    def _leave(self) -> None:
        """Leave every topic; safe to call more than once, never during fan-out."""
        for topic in self.session.close().removed:
            self._gateway.leave(topic, self)
