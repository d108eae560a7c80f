"""Local fan-out: who on this node is subscribed to what, and delivery to them.

An event is spliced with its ``seq`` once, framed once, and the same bytes
are handed to every subscriber. Nothing here is created per recipient.

Tenant in data: an event whose ``data.tenant_id`` is set reaches only the
subscribers of that tenant and those who see every tenant (global admins,
and every connection while authentication is off). So each topic keeps its
subscribers grouped by *audience* (``Subscriber.audience``), and a tagged
event is handed to two groups instead of being checked against each
recipient. The tenant is read once per event, and only when some recipient
could be refused it: a node without tenants never parses a body.

Versions: within an audience, subscribers are grouped again by the event
versions they accept (SUBSCRIBE's ``versions``, an ``Accept``; None for
"as published", the group almost everyone is in). Only when a group that
receives an event declared versions, and a catalog is loaded, is the event
routed through :func:`eventwire.catalog.delivery.route_versions`: decoded
once, converted once per version needed, each version spliced and framed
once. A group for which no accepted version can be produced gets one ERROR
UNSUPPORTED_VERSION per (topic, event type) and subscriber, never the event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Set
from typing import TYPE_CHECKING, Protocol

import orjson
from websockets.frames import Frame, Opcode

from eventwire.codes import ErrorCode
from eventwire.envelope import Event, splice_seq, utc_now
from eventwire.errors import ProtocolError
from eventwire.protocol.frames import CONNECTION, ERROR_TOPIC, error_frame
from eventwire.server.handlers import EventHandler, HandlerRunner
from eventwire.server.metrics import Metrics
from eventwire.topics import PatternIndex, is_pattern

if TYPE_CHECKING:
    from eventwire.catalog import Catalog
    from eventwire.catalog.delivery import Accept, UnsupportedVersion

__all__ = [
    "EVERYONE",
    "NO_TENANT",
    "Audience",
    "Hub",
    "Outbound",
    "Subscriber",
    "admits",
    "text_frame",
    "unsupported_outbound",
    "visible_to",
]

log = logging.getLogger("eventwire.hub")


def text_frame(data: bytes) -> bytes:
    """``data`` as one unmasked WebSocket text frame, valid on every server connection."""
    return Frame(Opcode.TEXT, data).serialize(mask=False)


class Outbound:
    """One event ready to send: its JSON, and the same JSON as a WebSocket frame.

    ``seq``: the event's place in its topic (None for frames that are not a
    topic's event); a recovering connection compares it with what it replayed.
    """

    __slots__ = ("_text", "data", "frame", "seq", "topic")

    def __init__(self, topic: str, data: bytes, seq: int | None = None) -> None:
        self.topic = topic
        self.data = data
        self.seq = seq
        self.frame = text_frame(data)
        self._text: str | None = None

    @property
    def text(self) -> str:
        """The JSON as ``str``, decoded once for every transport that needs text (ASGI)."""
        if self._text is None:
            self._text = self.data.decode()
        return self._text


Audience = str | None
"""Which tenant-tagged events a subscriber may receive: EVERYONE (None) all of them,
a tenant id only that tenant's, NO_TENANT none. Untagged events reach every audience."""
EVERYONE: Audience = None
NO_TENANT: Audience = ""  # tenant ids are never empty

_UNREADABLE = "\x00unreadable"
"""The tenant of a body whose tenant cannot be read: reaches EVERYONE only (fails closed)."""


class Subscriber(Protocol):
    @property
    def audience(self) -> Audience:
        """Fixed while subscribed; the hub's ``regroup`` follows a change."""

    def deliver(self, message: Outbound) -> None:
        """Queue ``message``; never blocks, never raises."""

    def first_unsupported(self, key: tuple[str, str]) -> bool:
        """Whether UNSUPPORTED_VERSION for ``(topic, event)`` is news to it; remember it."""


Group = dict[Subscriber, None]
Groups = dict[Audience, dict["Accept | None", Group]]
"""A topic's subscribers: by audience, then by the versions they accept."""


class Hub:
    """Topic → local subscribers, pattern → watching subscribers, pattern → handlers.

    Pattern subscriptions (``gift-list:*``) are for privileged connections such
    as the inspector; they live in a trie beside the exact topics, so a node
    without any costs nothing extra per event.
    """

    def __init__(self, metrics: Metrics, catalog: Catalog | None = None) -> None:
        self._topics: dict[str, Groups] = {}
        self._watchers: PatternIndex[Subscriber] = PatternIndex()
        self._watched: dict[str, int] = {}  # pattern -> number of watchers
        self._handlers: PatternIndex[HandlerRunner] = PatternIndex()
        self._metrics = metrics
        self.subscription_count = 0
        """Subscriptions here, pattern ones included (a connection on two topics counts two)."""
        metrics.subscriptions.set_function(lambda: self.subscription_count)
        metrics.topics.set_function(lambda: self.topic_count)
        self.catalog = catalog
        """Converts versions for the subscribers that declare some; None: all get the published."""

    def subscribe(self, topic: str, subscriber: Subscriber, accept: Accept | None = None) -> bool:
        """Add a local subscriber to a topic or pattern; True when it is the first here.

        ``accept``: the event versions it understands on ``topic`` (patterns
        ignore it). Subscribing again with other versions moves it.
        """
        if is_pattern(topic):
            return self._watch(topic, subscriber)
        groups = self._topics.get(topic)
        first = groups is None
        if groups is None:
            groups = self._topics[topic] = {}
        audience = subscriber.audience
        group = groups.get(audience, {}).get(accept)
        if group is None or subscriber not in group:
            moved, _ = _remove(groups, audience, subscriber)
            if not moved:
                self.subscription_count += 1
            groups.setdefault(audience, {}).setdefault(accept, {})[subscriber] = None
        return first

    def unsubscribe(self, topic: str, subscriber: Subscriber) -> bool:
        """Remove a local subscriber; True when it was the topic's (or pattern's) last here."""
        if is_pattern(topic):
            return self._unwatch(topic, subscriber)
        groups = self._topics.get(topic)
        if groups is None or not _remove(groups, subscriber.audience, subscriber)[0]:
            return False
        self.subscription_count -= 1
        if groups:
            return False
        del self._topics[topic]
        return True

    def regroup(self, subscriber: Subscriber, topics: Iterable[str], old: Audience) -> None:
        """``subscriber``'s audience changed from ``old``: move its ``topics`` to the new group.

        (An anonymous connection that signs in.) Counts do not change.
        """
        new = subscriber.audience
        if new == old:
            return
        for topic in topics:
            groups = self._topics.get(topic)
            if groups is None:
                continue
            found, accept = _remove(groups, old, subscriber)
            if found:
                groups.setdefault(new, {}).setdefault(accept, {})[subscriber] = None

    def _watch(self, pattern: str, subscriber: Subscriber) -> bool:
        before = len(self._watchers)
        self._watchers.add(pattern, subscriber)
        if len(self._watchers) == before:
            return False
        self.subscription_count += 1
        self._watched[pattern] = self._watched.get(pattern, 0) + 1
        return self._watched[pattern] == 1

    def _unwatch(self, pattern: str, subscriber: Subscriber) -> bool:
        before = len(self._watchers)
        self._watchers.discard(pattern, subscriber)
        if len(self._watchers) == before:
            return False
        self.subscription_count -= 1
        self._watched[pattern] -= 1
        if self._watched[pattern]:
            return False
        del self._watched[pattern]
        return True

    def holds(self, topic: str, subscriber: Subscriber) -> bool:
        """Whether ``subscriber`` is one of ``topic``'s subscribers here (not its watchers)."""
        groups = self._topics.get(topic)
        return groups is not None and _member(groups, subscriber.audience, subscriber)

    def subscriber_count(self, topic: str) -> int:
        return len(self.subscribers_of(topic))

    def subscribers_of(self, topic: str) -> list[Subscriber]:
        """Every local subscriber of ``topic`` (not the pattern watchers), once each."""
        groups = self._topics.get(topic, {})
        found = {
            subscriber: None
            for by_accept in groups.values()
            for group in by_accept.values()
            for subscriber in group
        }
        return list(found)

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
        groups = self._topics.get(topic)
        watchers = self._watchers.match(topic) if len(self._watchers) else None
        runners = self._handlers.match(topic) if len(self._handlers) else ()
        if not groups and not watchers and not runners:
            return 0
        data = splice_seq(body, seq)
        count = 0
        if groups or watchers:
            # A subscriber may leave while we write (a slow consumer is closed):
            # it unsubscribes later, from the loop, never during this walk.
            message = Outbound(topic, data, seq)
            done = _fan_out(message, body, groups, watchers)
            count = done if isinstance(done, int) else self._versions(message, body, seq, *done)
            self._metrics.deliveries.inc(count)
        if runners:
            event = Event.model_validate_json(data)
            for runner in runners:
                if not runner.submit(event):
                    self._metrics.drops.labels("handler_queue_full").inc()
        return count

    def _versions(
        self, message: Outbound, body: bytes, seq: int, count: int, versioned: list[VersionedGroup]
    ) -> int:
        """Serve the groups that declared versions; ``count`` recipients were served before.

        ``route_versions`` converts once per version, never per subscriber;
        each version is spliced and framed once. Returns the recipient count.
        """
        catalog = self.catalog
        if catalog is None:  # nothing to convert with: as published, like an undeclared event
            for _, group in versioned:
                for subscriber in group:
                    subscriber.deliver(message)
                count += len(group)
            return count
        from eventwire.catalog.delivery import route_versions

        try:
            routed = route_versions(catalog, message.topic, body, [a for a, _ in versioned])
        except Exception:  # never a payload it cannot read; never a broken fan-out
            log.exception("converting an event of %s failed", message.topic)
            return count
        outbound: dict[int, Outbound] = {id(body): message}
        refused = 0
        for accept, group in versioned:
            found = routed[accept]
            if isinstance(found, bytes):
                converted = outbound.get(id(found))
                if converted is None:
                    converted = Outbound(message.topic, splice_seq(found, seq), seq)
                    outbound[id(found)] = converted
                for subscriber in group:
                    subscriber.deliver(converted)
                count += len(group)
                continue
            error, key = unsupported_outbound(found), found.key
            for subscriber in group:
                if subscriber.first_unsupported(key):
                    subscriber.deliver(error)
                    refused += 1
        if refused:
            self._metrics.errors.labels(ErrorCode.UNSUPPORTED_VERSION.value).inc(refused)
        return count


VersionedGroup = tuple["Accept", Group]


def unsupported_outbound(refusal: UnsupportedVersion) -> Outbound:
    """The ERROR UNSUPPORTED_VERSION frame for ``refusal``, built once for its whole group."""
    payload = refusal.to_payload()
    error = ProtocolError(ErrorCode.UNSUPPORTED_VERSION, payload["message"], payload["details"])
    return Outbound(ERROR_TOPIC, error_frame(CONNECTION, error, utc_now()))


def _remove(
    groups: Groups, audience: Audience, subscriber: Subscriber
) -> tuple[bool, Accept | None]:
    """Take ``subscriber`` out of its group of ``audience``: (whether it was in one, its Accept)."""
    by_accept = groups.get(audience)
    if by_accept is None:
        return False, None
    for accept, group in by_accept.items():
        if subscriber in group:
            del group[subscriber]
            if not group:
                del by_accept[accept]
                if not by_accept:
                    del groups[audience]
            return True, accept
    return False, None


def _fan_out(
    message: Outbound, body: bytes, groups: Groups | None, watchers: Set[Subscriber] | None
) -> int | tuple[int, list[VersionedGroup]]:
    """Hand ``message`` to every group (and watcher) whose audience admits the event.

    Returns the recipient count, or, when admitted groups declared versions,
    the count so far and those groups, still to serve.
    """
    tenant = _event_tenant(body) if _may_refuse(groups, watchers) else None
    count = 0
    versioned: list[VersionedGroup] | None = None
    if groups:
        admitted = groups.values() if tenant is None else _groups_of(groups, tenant)
        for by_accept in admitted:
            for accept, group in by_accept.items():
                if accept is not None:
                    versioned = versioned or []
                    versioned.append((accept, group))
                    continue
                for subscriber in group:
                    subscriber.deliver(message)
                count += len(group)
    for watcher in watchers or ():
        audience = watcher.audience
        if not admits(audience, tenant):
            continue
        if groups and _member(groups, audience, watcher):
            continue  # had it as the topic's subscriber: one copy each
        watcher.deliver(message)
        count += 1
    return count if versioned is None else (count, versioned)


def admits(audience: Audience, tenant: str | None) -> bool:
    """Whether a subscriber of ``audience`` may receive an event tagged ``tenant``."""
    return tenant is None or audience is EVERYONE or audience == tenant


def visible_to(audience: Audience, body: bytes) -> bool:
    """Whether an encoded event (a replayed one) may reach ``audience``: the live path's rule."""
    return audience is EVERYONE or admits(audience, _event_tenant(body))


def _member(groups: Groups, audience: Audience, subscriber: Subscriber) -> bool:
    return any(subscriber in group for group in groups.get(audience, {}).values())


def _groups_of(groups: Groups, tenant: str) -> list[dict[Accept | None, Group]]:
    return [by_accept for key in (tenant, EVERYONE) if (by_accept := groups.get(key))]


def _may_refuse(groups: Groups | None, watchers: Set[Subscriber] | None) -> bool:
    """Whether some recipient does not see every tenant (so the event's tenant matters)."""
    if groups and (len(groups) > 1 or EVERYONE not in groups):
        return True
    return bool(watchers) and any(w.audience is not EVERYONE for w in watchers or ())


def _event_tenant(body: bytes) -> str | None:
    """``data.tenant_id`` of an encoded event, parsed at most once per event."""
    if b'"tenant_id"' not in body:
        return None
    try:
        data = orjson.loads(body).get("data")
    except (orjson.JSONDecodeError, AttributeError):
        return _UNREADABLE
    tenant = data.get("tenant_id") if isinstance(data, dict) else None
    return tenant if isinstance(tenant, str) or tenant is None else _UNREADABLE
