"""Local fan-out: who on this node is subscribed to what, and delivery to them.

An event is spliced with its ``seq`` once, framed once, and the same bytes
are handed to every subscriber. Nothing here is created per recipient.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Protocol

from websockets.frames import Frame, Opcode

from eventwire.envelope import Event, splice_seq
from eventwire.server.handlers import EventHandler, HandlerRunner
from eventwire.server.metrics import Metrics
from eventwire.topics import PatternIndex, is_pattern

__all__ = ["Hub", "Outbound", "Subscriber", "text_frame"]

log = logging.getLogger("eventwire.hub")


def text_frame(data: bytes) -> bytes:
    """``data`` as one unmasked WebSocket text frame, valid on every server connection."""
    return Frame(Opcode.TEXT, data).serialize(mask=False)


class Outbound:
    """One event ready to send: its JSON, and the same JSON as a WebSocket frame."""

    __slots__ = ("_text", "data", "frame", "topic")

    def __init__(self, topic: str, data: bytes) -> None:
        self.topic = topic
        self.data = data
        self.frame = text_frame(data)
        self._text: str | None = None

    @property
    def text(self) -> str:
        """The JSON as ``str``, decoded once for every transport that needs text (ASGI)."""
        if self._text is None:
            self._text = self.data.decode()
        return self._text


class Subscriber(Protocol):
    def deliver(self, message: Outbound) -> None:
        """Queue ``message``; never blocks, never raises."""


class Hub:
    """Topic → local subscribers, pattern → watching subscribers, pattern → handlers.

    Pattern subscriptions (``gift-list:*``) are for privileged connections such
    as the inspector; they live in a trie beside the exact topics, so a node
    without any costs nothing extra per event.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._topics: dict[str, dict[Subscriber, None]] = {}
        self._watchers: PatternIndex[Subscriber] = PatternIndex()
        self._watched: dict[str, int] = {}  # pattern -> number of watchers
        self._handlers: PatternIndex[HandlerRunner] = PatternIndex()
        self._metrics = metrics

    def subscribe(self, topic: str, subscriber: Subscriber) -> bool:
        """Add a local subscriber to a topic or pattern; True when it is the first here."""
        if is_pattern(topic):
            return self._watch(topic, subscriber)
        subscribers = self._topics.get(topic)
        first = subscribers is None
        if subscribers is None:
            subscribers = self._topics[topic] = {}
            self._metrics.topics.inc()
        if subscriber not in subscribers:
            subscribers[subscriber] = None
            self._metrics.subscriptions.inc()
        return first

    def unsubscribe(self, topic: str, subscriber: Subscriber) -> bool:
        """Remove a local subscriber; True when it was the topic's (or pattern's) last here."""
        if is_pattern(topic):
            return self._unwatch(topic, subscriber)
        subscribers = self._topics.get(topic)
        if subscribers is None or subscriber not in subscribers:
            return False
        del subscribers[subscriber]
        self._metrics.subscriptions.dec()
        if subscribers:
            return False
        del self._topics[topic]
        self._metrics.topics.dec()
        return True

    def _watch(self, pattern: str, subscriber: Subscriber) -> bool:
        before = len(self._watchers)
        self._watchers.add(pattern, subscriber)
        if len(self._watchers) == before:
            return False
        self._metrics.subscriptions.inc()
        self._watched[pattern] = self._watched.get(pattern, 0) + 1
        return self._watched[pattern] == 1

    def _unwatch(self, pattern: str, subscriber: Subscriber) -> bool:
        before = len(self._watchers)
        self._watchers.discard(pattern, subscriber)
        if len(self._watchers) == before:
            return False
        self._metrics.subscriptions.dec()
        self._watched[pattern] -= 1
        if self._watched[pattern]:
            return False
        del self._watched[pattern]
        return True

    def subscriber_count(self, topic: str) -> int:
        return len(self._topics.get(topic, ()))

    @property
    def topic_count(self) -> int:
        return len(self._topics)

    def add_handler(self, pattern: str, handler: EventHandler) -> HandlerRunner:
        runner = HandlerRunner(pattern, handler)
        self._handlers.add(pattern, runner)
        return runner

    def remove_handler(self, runner: HandlerRunner) -> None:
        self._handlers.discard(runner.pattern, runner)

    def handlers(self) -> list[HandlerRunner]:
        return [runner for _, runner in self._handlers.patterns()]

    def dispatch(self, topic: str, seq: int, body: bytes) -> int:
        """Deliver one event to every local subscriber and handler; return the recipient count."""
        subscribers: Collection[Subscriber] | None = self._topics.get(topic)
        if len(self._watchers):
            watchers = self._watchers.match(topic)
            if watchers:  # one copy each, even for a connection with both kinds
                subscribers = watchers.union(subscribers) if subscribers else watchers
        runners = self._handlers.match(topic) if len(self._handlers) else ()
        if not subscribers and not runners:
            return 0
        data = splice_seq(body, seq)
        count = 0
        if subscribers:
            message = Outbound(topic, data)
            # A subscriber may leave while we write (a slow consumer is closed):
            # it unsubscribes later, from the loop, never during this walk.
            for subscriber in subscribers:
                subscriber.deliver(message)
            count = len(subscribers)
            self._metrics.deliveries.inc(count)
        if runners:
            event = Event.model_validate_json(data)
            for runner in runners:
                if not runner.submit(event):
                    self._metrics.drops.labels("handler_queue_full").inc()
        return count
