"""This node's side of presence: local counts, the broker's cluster-wide view, the announcements.

Each tracked topic keeps, on this node, which connections count as which
member (``holders``) and how many each member has here (``local``). A
change marks the member *dirty*; one task per topic then writes the dirty
counts to the broker (``Presence.presence_update``) and learns, in the same
atomic step, each member's count on every node before and after: 0 → n is
a join, n → 0 a leave, cluster-wide. So a user with two tabs, on one node
or two, joins once and leaves once, when the last tab goes.

Leases: this node renews its lease on each topic it holds every third of
``presence_ttl``. A node that stops (crash, SIGKILL, partition) stops
renewing; the first node to touch the topic after the lease has passed
drops it, and that node alone is told who went, and announces USER_LEFT
(``reason: "timeout"``). A node whose own lease was dropped while it lived
(it was paused) learns so from its next write and writes its members again:
they join again.

Order and convergence: one topic's writes and announcements on this node
happen in one task, one after the other, so this node's events of a topic
follow the order of its transitions. Across nodes, two transitions of one
user a few milliseconds apart (a tab closing on one node as one opens on
another) may be published in either order. So after announcing, the task
reads the members it announced again and, where their state is no longer
what it said, announces the state they are in now: the last USER_JOINED or
USER_LEFT of a user on a topic always says where they are, and the same
event twice in a row (a second JOINED) can happen. Clients apply them as
set operations.

Graceful stop: the node does not announce its users gone. From the freeze
on, connections closing change nothing here. What was owed before it is
still done: the tasks finish (the gateway publishes its own announcements
until its broker is closed), then one last write per topic stores the
counts as they stood at the freeze under a short lease (``HANDOFF``)
instead of ``presence_ttl``, and what it owes is announced: a user who left
just before the stop is told gone, as a leave. Clients reconnecting to
another node are counted there before the lease passes: a rolling restart
moves users without a USER_LEFT and a second USER_JOINED, and those who do
not come back are announced gone once it passes.

Broker trouble is told once for every topic it holds up (``outage``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eventwire.brokers import BrokerUnavailable, Presence, presence_of
from eventwire.codes import ErrorCode
from eventwire.errors import BrokerError, ProtocolError, broker_unavailable
from eventwire.protocol import ReadPresence, Reply, Session
from eventwire.server.connection import ConnectionBase
from eventwire.server.hub import Audience, Subscriber
from eventwire.server.presence.members import Member, PresenceTopics, listing, presence_event
from eventwire.server.presence.outage import Outage, Throttled

if TYPE_CHECKING:
    from eventwire.server.gateway import Gateway

__all__ = ["HANDOFF", "PresenceTracker", "transitions"]

log = logging.getLogger("eventwire.presence")

HANDOFF = 5.0
"""Seconds a gracefully stopped node's members stay counted, for their clients to reconnect."""
_CONCURRENCY = 32
"""Topics whose broker round trip may be in flight at once."""
_ROUNDS = 3
"""Announce-and-check rounds per step before the rest waits for the next renewal."""
_BACKOFF = (0.05, 2.0)
_TRY_AGAIN = (ErrorCode.BROKER_UNAVAILABLE, ErrorCode.PUBLISH_OUTCOME_UNKNOWN)
"""Refusals of an announcement that the broker's return may undo: publish it again then."""

Announcement = tuple[Member, bool, str]
"""(member, joined, reason of a leave)."""


@dataclass(eq=False)
class _Topic:
    """One tracked topic on this node."""

    holders: dict[Subscriber, Member] = field(default_factory=dict)
    local: dict[Member, int] = field(default_factory=dict)
    dirty: set[Member] = field(default_factory=set)
    """Members whose local count the broker has yet to be told."""
    news: list[Announcement] = field(default_factory=list)
    """Announcements owed that no write produced (members a read found gone)."""
    unsure: set[Member] = field(default_factory=set)
    """Members whose last announcement may not be what they are: read and announce again."""
    renew: bool = False
    held: bool = False
    """Whether this node holds a lease on the topic at the broker."""
    task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Whether a write or an announcement is owed now (``unsure`` waits for a renewal)."""
        return bool(self.dirty or self.renew or self.news)

    @property
    def idle(self) -> bool:
        return not (self.busy or self.unsure or self.holders or self.held)

    def count(self, member: Member, delta: int) -> None:
        left = self.local.get(member, 0) + delta
        if left > 0:
            self.local[member] = left
        else:
            self.local.pop(member, None)
        self.dirty.add(member)


def member_of(subscriber: Subscriber) -> Member | None:
    """Who ``subscriber`` counts as; None for what is not a client connection."""
    if not isinstance(subscriber, ConnectionBase):
        return None
    identity = subscriber.session.identity
    if identity is None:
        return Member(None, None)
    return Member(identity.tenant_id, None if identity.anonymous else identity.user_id)


class PresenceTracker:
    """Presence on the topics the settings name, kept with the broker, announced on some."""

    def __init__(self, gateway: Gateway) -> None:
        settings = gateway.settings
        self.topics = PresenceTopics(settings.presence_topics, settings.presence_events)
        self.ttl = settings.presence_ttl
        self.node = ""
        """This node's name at the broker, drawn at every start."""
        self._gateway = gateway
        self._store: Presence | None = None
        self._states: dict[str, _Topic] = {}
        self._frozen = True
        self._renewals: asyncio.Task[None] | None = None
        self._limit: asyncio.Semaphore | None = None
        self._refusals: set[tuple[str, str]] = set()
        self._handing_over = False
        """Set for the last writes of a stop: the lease is HANDOFF's."""
        self._outage = Outage(log)
        self._lost = Throttled(log, self.ttl)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Begin tracking; NotAvailable when topics are named and the broker keeps no presence."""
        if not self.topics:
            return
        self._store = presence_of(self._gateway.broker)
        # A name of its own per start: what a previous run left behind is another node's.
        self.node = f"{self._gateway.node_id}-{secrets.token_hex(4)}"
        self._frozen = self._handing_over = False
        self._outage = Outage(log)
        self._limit = asyncio.Semaphore(_CONCURRENCY)
        self._renewals = asyncio.get_running_loop().create_task(self._renew_every())

    def freeze(self) -> None:
        """The node is stopping: connections closing from now on leave their entries as they are."""
        self._frozen = True

    async def stop(self) -> None:
        """Finish what is owed, then hand this node's entries over under a short lease.

        Announcements owed are still published (``Gateway.announce``). Each of
        the two steps is given ``shutdown_grace`` (a second at least).
        """
        self._frozen = True
        if self._renewals is not None:
            self._renewals.cancel()
            self._renewals = None
        if self._store is None:
            return
        grace = max(1.0, self._gateway.settings.shutdown_grace)
        await self._finish(grace)
        await self._hand_over(grace)
        self._states.clear()
        self._store = None

    async def _finish(self, grace: float) -> None:
        """Let the topics' tasks write and announce what they owe; cancel them after ``grace``."""
        tasks = [state.task for state in self._states.values() if state.task is not None]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _hand_over(self, grace: float) -> None:
        """One last write per topic, the counts of the freeze under HANDOFF, and its announcements.

        What a task cut short left owed (counts, announcements, checks) is
        done here too; a topic this node holds is written even with nothing
        changed, for its short lease.
        """
        self._handing_over = True
        last = [(t, s) for t, s in self._states.items() if s.held or s.busy or s.unsure]
        handed: list[str] = []
        errors: list[Exception] = []

        async def hand_over(topic: str, state: _Topic) -> None:
            state.renew = state.held
            assert self._limit is not None
            try:
                async with self._limit:
                    await self._step(topic, state)
            except BrokerError as exc:
                errors.append(exc)
            except Exception:
                log.exception("presence of %s could not be handed over", topic)
            else:
                handed.append(topic)

        try:
            async with asyncio.timeout(grace):
                await asyncio.gather(*(hand_over(topic, state) for topic, state in last))
        except TimeoutError:
            errors.append(TimeoutError(f"no answer within {grace:.1f} s"))
        if len(handed) < len(last):
            log.warning(
                "presence: %d of %d topics could not be handed over (%s); their users go"
                " when this node's last lease passes",
                len(last) - len(handed),
                len(last),
                errors[0] if errors else "see above",
            )

    # -- what connections do -----------------------------------------------------------

    def add(self, topic: str, subscriber: Subscriber) -> None:
        """``subscriber`` is on ``topic`` (again: nothing changes)."""
        member = member_of(subscriber) if self.topics.tracks(topic) else None
        if member is None or self._frozen:
            return
        state = self._states.get(topic)
        if state is None:
            state = self._states[topic] = _Topic()
        old = state.holders.get(subscriber)
        if old == member:
            return
        if old is not None:
            state.count(old, -1)
        state.holders[subscriber] = member
        state.count(member, +1)
        self._schedule(topic, state)

    def remove(self, topic: str, subscriber: Subscriber) -> None:
        """``subscriber`` left ``topic`` (or never was on it: nothing changes)."""
        state = self._states.get(topic)
        if state is None or self._frozen:
            return
        member = state.holders.pop(subscriber, None)
        if member is None:
            return
        state.count(member, -1)
        self._schedule(topic, state)

    def regroup(self, subscriber: Subscriber, topics: Iterable[str]) -> None:
        """``subscriber`` signed in as someone else (an anonymous connection that sent AUTH)."""
        for topic in topics:
            state = self._states.get(topic)
            if state is not None and subscriber in state.holders:
                self.add(topic, subscriber)

    # -- what readers ask ----------------------------------------------------------------

    def counted_here(self, topic: str) -> dict[Member, int]:
        """This node's own connections on ``topic`` per member, told to the broker or not yet."""
        state = self._states.get(topic)
        return {} if state is None else dict(state.local)

    async def state_of(self, topic: str, audience: Audience) -> dict[str, Any]:
        """``topic``'s presence on every node, as ``audience`` may see it.

        ProtocolError NOT_SUPPORTED for a topic presence is not tracked on;
        BrokerError when the broker cannot be read.
        """
        if not self.topics.tracks(topic) or self._store is None:
            raise ProtocolError(
                ErrorCode.NOT_SUPPORTED,
                f"presence is not tracked on {topic!r} (see presence_topics)",
                {"topic": topic},
            )
        read = await self._store.presence_read(self.node, topic)
        if read.expired:  # this read dropped a dead node: its users' USER_LEFT falls to us
            state = self._states.setdefault(topic, _Topic())
            state.news += [(m, False, "timeout") for m in _members(read.expired)]
            self._schedule(topic, state)
        return listing(topic, read.counts, audience)

    async def reply(self, session: Session, audience: Audience, action: ReadPresence) -> Reply:
        """The answer to a connection's PRESENCE: PRESENCE_STATE, or an ERROR."""
        try:
            state = await self.state_of(action.topic, audience)
        except ProtocolError as exc:
            return session.error(action.request_id, exc)
        except BrokerError as exc:
            return session.error(action.request_id, broker_unavailable(exc))
        return Reply(session.presence_state(action.request_id, state))

    # -- keeping the broker in step ------------------------------------------------------

    def _schedule(self, topic: str, state: _Topic) -> None:
        if self._frozen or state.task is not None or not (state.busy or state.unsure):
            return
        state.task = asyncio.get_running_loop().create_task(self._drain(topic, state))

    async def _renew_every(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            for topic, state in list(self._states.items()):
                state.renew = state.renew or state.held
                self._schedule(topic, state)

    async def _drain(self, topic: str, state: _Topic) -> None:
        """Write and announce until nothing is owed; retry with backoff while the broker is away.

        It runs on once the node is frozen: what was owed before is still owed.
        """
        failures, pending = 0, True
        try:
            while pending:
                try:
                    assert self._limit is not None
                    async with self._limit:
                        await self._step(topic, state)
                    failures, pending = 0, state.busy
                    self._outage.answered(topic)
                except BrokerError as exc:
                    failures += 1
                    self._outage.failed(topic, exc, len(self._states))
                    initial, maximum = _BACKOFF
                    await asyncio.sleep(min(maximum, initial * 2.0 ** min(failures, 6)))
                    pending = state.busy or bool(state.unsure)
        except Exception:
            log.exception("presence of %s failed", topic)
        finally:
            self._outage.gave_up(topic)
            state.task = None
            if state.idle and self._states.get(topic) is state:
                del self._states[topic]

    async def _step(self, topic: str, state: _Topic) -> None:
        """One write of the dirty counts (or a renewal), then its announcements."""
        owed, state.news = state.news, []
        if state.dirty or state.renew:
            try:
                owed += await self._write(topic, state)
            except BaseException:
                state.news = owed + state.news
                raise
        await self._announce(topic, state, owed)

    async def _write(self, topic: str, state: _Topic) -> list[Announcement]:
        assert self._store is not None
        members, renewed = set(state.dirty), state.renew
        state.dirty.clear()
        state.renew = False
        lease = min(self.ttl, HANDOFF) if self._handing_over else self.ttl
        if not state.local:
            lease = 0.0  # no one here any more: release the topic
        was_held = state.held
        state.held = was_held or lease > 0  # a write cut short may have taken a lease
        counts = {member.key: state.local.get(member, 0) for member in members}
        try:
            update = await self._store.presence_update(self.node, topic, counts, lease)
        except BaseException:
            state.dirty |= members
            state.renew = state.renew or renewed
            raise
        state.held = lease > 0
        if was_held and not update.known and state.local and not self._handing_over:
            self._lost.warn(
                "presence of %s: this node's entries were lost; writing them again", topic
            )
            state.dirty |= set(state.local)
        return transitions(update.counts, update.expired, members)

    async def _announce(self, topic: str, state: _Topic, owed: list[Announcement]) -> None:
        """Publish ``owed``, then read the members announced and correct what changed since."""
        if not self.topics.announces(topic):
            state.unsure.clear()
            return
        assert self._store is not None
        owed = [announcement for announcement in owed if announcement[0].user_id is not None]
        unsure, state.unsure = state.unsure, set()
        for _ in range(_ROUNDS):
            said = await self._say(topic, state, owed, unsure)
            if not said:
                return
            try:
                read = await self._store.presence_read(self.node, topic, [m.key for m in said])
            except BaseException:
                state.unsure |= set(said)
                raise
            gone = [m for m in _members(read.expired) if m.user_id and said.get(m) is not False]
            owed = [(member, False, "timeout") for member in gone]  # first, as in a write
            away = set(gone)
            owed += [  # told None (unsure): announce what they are now
                (member, present, "left")
                for member, told in said.items()
                if member not in away and told != (present := read.counts.get(member.key, 0) > 0)
            ]
            unsure = set()
            if not owed:
                return
        state.unsure |= {member for member, _, _ in owed}  # checked again at the next renewal

    async def _say(
        self, topic: str, state: _Topic, owed: list[Announcement], unsure: set[Member]
    ) -> dict[Member, bool | None]:
        """Publish ``owed`` in order; what each member was said to be (None: unsure, to check)."""
        said: dict[Member, bool | None] = dict.fromkeys(unsure)
        for index, (member, joined, reason) in enumerate(owed):
            try:
                published = await self._publish(topic, member, joined, reason)
            except BaseException:
                state.unsure |= set(said) | {m for m, _, _ in owed[index:]}
                raise
            if published:
                said[member] = joined
            else:
                said.pop(member, None)  # refused for good (a catalog): nothing to check
        return said

    async def _publish(self, topic: str, member: Member, joined: bool, reason: str) -> bool:
        """Publish one announcement; False if refused for good, BrokerError to try again later."""
        try:
            await self._gateway.announce(presence_event(topic, member, joined, reason))
        except ProtocolError as exc:
            if exc.code in _TRY_AGAIN:  # not stored, or maybe: said again later, as before
                raise BrokerUnavailable(exc.message) from exc
            self._refused(topic, "USER_JOINED" if joined else "USER_LEFT", exc)
            return False
        return True

    def _refused(self, topic: str, event: str, exc: ProtocolError) -> None:
        """Say once per kind of topic why an announcement cannot be published (a catalog)."""
        kind = (topic.split(":", 1)[0], event)
        if kind not in self._refusals:
            self._refusals.add(kind)
            log.error(
                "presence: %s on %s was refused (%s: %s); declare it in the catalog"
                " or leave the topic out of presence_events",
                event,
                topic,
                exc.code.value,
                exc.message,
            )


def transitions(
    counts: Mapping[str, tuple[int, int]], expired: Iterable[str], written: Iterable[Member]
) -> list[Announcement]:
    """What one write owes, in order: who went with a dead node, then joins and leaves.

    ``counts`` and ``expired`` are the write's ``PresenceUpdate``; ``written``
    the members it wrote. A member the write found gone with a dead node and
    counts again here (back on this node after the lease) is told joined
    only: they never were away for anyone told of them, and a JOINED said
    twice is harmless where a LEFT then JOINED flickers.
    """
    by_key = {member.key: member for member in written}
    joins_and_leaves: list[Announcement] = []
    for key, (before, after) in counts.items():
        if before == 0 < after:
            joins_and_leaves.append((by_key[key], True, ""))
        elif after == 0 < before:
            joins_and_leaves.append((by_key[key], False, "left"))
    back = {member for member, joined, _ in joins_and_leaves if joined}
    timeouts = [(m, False, "timeout") for m in _members(expired) if m not in back]
    return timeouts + joins_and_leaves


def _members(keys: Iterable[str]) -> list[Member]:
    found = []
    for key in keys:
        with contextlib.suppress(ValueError):
            found.append(Member.from_key(key))
    return found
