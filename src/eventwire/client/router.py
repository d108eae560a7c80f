"""Which subscriptions receive which topic, and each topic's stream: the client's inbound side.

The router does no I/O and never waits. The client feeds it the events and
SUBSCRIBED replies it reads; the router asks each topic's ``TopicStream``
what is new, records gaps, and hands new events to ``deliver``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from eventwire.client.streams import Gap, TopicPosition, TopicStream
from eventwire.client.subscription import Subscription
from eventwire.envelope import Event
from eventwire.topics import PatternIndex, is_pattern

__all__ = ["Router"]

log = logging.getLogger("eventwire.client")


class Router:
    """Topic → subscriptions, and topic → stream (kept after unsubscribing, for its position)."""

    def __init__(self, deliver: Callable[[Event], None]) -> None:
        self.gaps: list[Gap] = []
        self._deliver = deliver
        self._streams: dict[str, TopicStream] = {}
        self._routes: dict[str, dict[Subscription, None]] = {}
        self._patterns: PatternIndex[str] = PatternIndex()
        """Wildcard subscriptions (privileged connections); they have no stream or position."""

    @property
    def topics(self) -> list[str]:
        """Topics some subscription receives."""
        return list(self._routes)

    @property
    def positions(self) -> dict[str, TopicPosition]:
        return {t: p for t, s in self._streams.items() if (p := s.position) is not None}

    def subscriptions(self) -> list[Subscription]:
        """Every subscription routed, once each."""
        return list({sub: None for routes in self._routes.values() for sub in routes})

    def add(self, sub: Subscription) -> list[str]:
        """Route ``sub`` its topics' events; return the topics nobody received before."""
        new = []
        for topic in sub.topics:
            routes = self._routes.setdefault(topic, {})
            if not routes:
                if is_pattern(topic):
                    self._patterns.add(topic, topic)
                else:
                    self._streams.setdefault(topic, TopicStream(topic)).subscribing(resume=False)
                new.append(topic)
            routes[sub] = None
        return new

    def remove(self, sub: Subscription) -> list[str]:
        """Stop routing ``sub``; return the topics nobody receives any more."""
        gone = []
        for topic in sub.topics:
            routes = self._routes.get(topic)
            if routes is None or sub not in routes:
                continue
            del routes[sub]
            if not routes:
                del self._routes[topic]
                if is_pattern(topic):
                    self._patterns.discard(topic, topic)
                else:
                    self._streams[topic].abandon()
                gone.append(topic)
        return gone

    def clear(self) -> list[Subscription]:
        """Forget every route; return the subscriptions that had one."""
        subscriptions = self.subscriptions()
        self._routes.clear()
        self._patterns = PatternIndex()
        return subscriptions

    def resuming(self) -> list[str]:
        """A new connection is about to resubscribe every topic: missed events become gaps."""
        for topic in self._routes:
            if not is_pattern(topic):
                self._streams[topic].subscribing(resume=True)
        return self.topics

    def connection_lost(self) -> None:
        """SUBSCRIBEs in flight will never be answered: release what their topics held."""
        for topic, stream in self._streams.items():
            if stream.awaiting:
                self._release(topic, *stream.abandon())

    def subscribed(self, payload: dict[str, Any]) -> None:
        """SUBSCRIBED: each topic's position sets its baseline and releases held events."""
        positions = payload.get("positions")
        positions = positions if isinstance(positions, dict) else {}
        recovered = payload.get("recovered")
        recovered = recovered if isinstance(recovered, dict) else {}
        for topic in payload.get("topics") or ():
            stream = self._streams.get(topic)
            if stream is None:
                continue
            position = positions.get(topic)
            if isinstance(position, dict):
                seq, epoch = position.get("seq"), position.get("epoch")
                if isinstance(seq, int) and isinstance(epoch, str):
                    answer = recovered.get(topic)
                    answer = answer if isinstance(answer, bool) else None
                    self._release(topic, *stream.subscribed(seq, epoch, answer))
                    continue
            self._release(topic, *stream.abandon())  # no position: judge held events as is

    def recovery_failed(self, payload: dict[str, Any]) -> None:
        """RECOVERY_FAILED: the topic's missed events will not come; report them lost."""
        topic, position = payload.get("topic"), payload.get("position")
        stream = self._streams.get(topic) if isinstance(topic, str) else None
        if stream is None or not isinstance(position, dict) or stream.awaiting:
            return
        seq, epoch = position.get("seq"), position.get("epoch")
        if isinstance(seq, int) and isinstance(epoch, str):
            self._release(stream.topic, [], stream.recovery_failed(seq, epoch))

    def event(self, event: Event) -> None:
        """One event read from the connection."""
        stream = self._streams.get(event.topic)
        if stream is not None and event.topic in self._routes:
            self._release(event.topic, *stream.receive(event))
        elif len(self._patterns) and self._patterns.match(event.topic):
            self._deliver(event)  # through patterns only: no position to check it against

    def push(self, event: Event) -> None:
        """Give ``event`` to every subscription of its topic, directly or through a pattern."""
        receivers = dict(self._routes.get(event.topic, {}))
        if len(self._patterns):
            for pattern in self._patterns.match(event.topic):
                receivers.update(self._routes.get(pattern, {}))
        for sub in receivers:
            sub._push(event)

    def _release(self, topic: str, events: Iterable[Event], gaps: Iterable[Gap]) -> None:
        routes = self._routes.get(topic, {})
        for gap in gaps:
            log.info("gap in %s: %s", topic, gap)
            self.gaps.append(gap)
            for sub in routes:
                sub._gap(gap)
        for event in events:
            self._deliver(event)
