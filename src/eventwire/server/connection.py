"""What every transport's connection shares: its session and how actions are carried out.

A transport supplies three things (write a frame's JSON, close with a code,
its own liveness rules); this base runs the session's actions against the
hub, the broker and the connection limits, in order, so both transports
behave identically. It also keeps the session's one timer (auth timeout,
token expiry, grace): armed at the session's ``next_deadline`` and moved
whenever a frame, a revocation or the timer itself changed it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from typing import TYPE_CHECKING

from eventwire.auth.errors import AuthError
from eventwire.auth.identity import Identity
from eventwire.auth.limits import Ticket
from eventwire.auth.revocation import RevokeRequest
from eventwire.brokers.base import History, Position
from eventwire.codes import CloseCode, ErrorCode
from eventwire.envelope import splice_seq
from eventwire.errors import BrokerError, ProtocolError, ValidationFailed
from eventwire.protocol import (
    Action,
    Authenticated,
    Close,
    PublishEvent,
    ReadPresence,
    Reply,
    Session,
    SubscribeTopics,
    UnsubscribeTopics,
)
from eventwire.protocol.frames import PUBLISHED_EVENT, errors_at
from eventwire.server.guard import audience_of
from eventwire.server.hub import (
    EVERYONE,
    NO_TENANT,
    Audience,
    Outbound,
    unsupported_outbound,
    visible_to,
)
from eventwire.server.replay import HistoryPages, ReplayBroken, recovery_refusal
from eventwire.topics import is_pattern

if TYPE_CHECKING:
    from eventwire.server.gateway import Gateway

__all__ = ["ConnectionBase"]

log = logging.getLogger("eventwire.connection")

_PROCESS = secrets.token_hex(4)
_sessions = itertools.count(1)
"""Session ids: this process's random prefix and a count, unique without a system call each."""


class ConnectionBase:
    """A subscriber driven by a Session; subclasses provide the transport."""

    __slots__ = (
        "_catching_up",
        "_closing",
        "_floors",
        "_gateway",
        "_held_bytes",
        "_pace",
        "_recovering",
        "_ticket",
        "_timer",
        "_timer_at",
        "_token",
        "_turn",
        "_unsupported",
        "audience",
        "held_events",
        "session",
    )

    def __init__(
        self, gateway: Gateway, ticket: Ticket | None = None, token: str | None = None
    ) -> None:
        self._gateway = gateway
        self._closing = False
        self._ticket = ticket
        self._token = token  # the ?token= of the handshake, verified (and dropped) by _greet
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._unsupported: dict[str, set[str]] | None = None  # topic -> event types told
        self._recovering: dict[str, list[Outbound]] = {}
        """Topics being replayed -> their live events held meanwhile; empty almost always."""
        self._catching_up: dict[str, asyncio.Task[None]] = {}
        """Topics whose replay is being written -> the task writing it, beside the commands."""
        self._held_bytes = 0  # of every topic's held events
        self._floors: dict[str, int] = {}
        """Topics replayed up to a seq -> that seq, until a later event came live (see deliver)."""
        self._turn: asyncio.Lock | None = None
        self.held_events = 0
        """Live events this connection has held behind a replay, in all."""
        self._pace = max(1, gateway.settings.max_outbound_buffer // 4)
        """Bytes of replay a transport lets wait unread before it waits for the peer."""
        auth = gateway.guard.session_auth
        self.audience: Audience = EVERYONE if auth is None else NO_TENANT
        self.session = Session(
            f"{_PROCESS}{next(_sessions):08x}",
            gateway.clock,
            gateway.limits,
            auth=auth,
            may_watch=gateway.settings.allow_pattern_subscriptions,
            node=gateway.node_id,
        )

    def deliver(self, message: Outbound) -> None:
        raise NotImplementedError

    def _hold(self, message: Outbound) -> bool:
        """Hold a live event of a topic being recovered; True when held (or dropped).

        Transports call it from ``deliver`` only while ``_recovering`` is not empty.
        What is held is what the peer has yet to read, like a live outbound queue,
        so it has the same bounds: a peer more than ``max_recovery`` events of one
        topic or ``max_outbound_buffer`` bytes behind is a slow consumer, closed
        at once with 4008 and its held events dropped, not when its replay ends.
        """
        held = self._recovering.get(message.topic)
        if held is None:
            return False
        if self._closing:
            return True  # going away: nothing more is kept for it
        held.append(message)
        self._held_bytes += len(message.data)
        self.held_events += 1
        settings = self._gateway.settings
        if len(held) > settings.max_recovery or self._held_bytes > settings.max_outbound_buffer:
            for topic in self._recovering:
                self._recovering[topic] = []
            self._held_bytes = 0
            self._slow_consumer()
        return True

    def _take_held(self, topic: str, *, live: bool) -> list[Outbound]:
        """The live events held for ``topic`` so far; ``live``: hold no more of them."""
        held = self._recovering.pop(topic, [])
        if not live:
            self._recovering[topic] = []
        self._held_bytes -= sum(len(message.data) for message in held)
        return held

    def first_unsupported(self, key: tuple[str, str]) -> bool:
        """Whether this connection has yet to hear UNSUPPORTED_VERSION for (topic, event)."""
        topic, event = key
        told = self._unsupported
        if told is None:
            told = self._unsupported = {}
        events = told.setdefault(topic, set())
        if event in events:
            return False
        events.add(event)
        return True

    def close(self, code: int, reason: str = "") -> None:
        raise NotImplementedError

    def heartbeat(self, now: float, deadline: float) -> None:
        """Ping the peer, or close it if it has been silent since ``deadline``."""
        raise NotImplementedError

    def abort(self) -> None:
        """Drop the connection now, without a close handshake."""
        raise NotImplementedError

    def _send(self, data: bytes) -> None:
        """Write one server frame's JSON to the peer."""
        raise NotImplementedError

    async def _write_paced(self, message: Outbound) -> bool:
        """Write one replayed event, first waiting while much is unread; False once closing.

        Bypasses the hold of recovering topics; the wait keeps what the peer
        has not read under ``max_outbound_buffer``.
        """
        raise NotImplementedError

    def _slow_consumer(self) -> None:
        """Close a peer that does not keep up (4008), counted; the publisher never waits for it."""
        self._gateway.metrics.drops.labels("slow_consumer").inc()
        log.warning("closing slow consumer %s", self.session.session_id)
        self.close(CloseCode.SLOW_CONSUMER, "slow consumer")

    # -- session life --------------------------------------------------------------

    def _greet(self) -> None:
        self._gateway.register(self)
        token, self._token = self._token, None
        heartbeat = self._gateway.settings.heartbeat_interval
        for action in self.session.start(heartbeat, token):
            self._carry_out(action)
        self._rearm()

    async def _handle(self, data: str | bytes) -> None:
        """Carry out everything one inbound frame asks for."""
        for action in self.session.receive(data):
            await self._apply(action)
        self._rearm()

    def revoke(self, request: RevokeRequest) -> tuple[bool, int]:
        """Apply a revocation; return (connection ended, subscriptions ended)."""
        actions = self.session.revoke(request)
        ended = any(isinstance(action, Close) for action in actions)
        removed = sum(len(a.removed) for a in actions if isinstance(a, UnsubscribeTopics))
        for action in actions:
            self._carry_out(action)
        self._rearm()
        return ended, removed

    def _release(self) -> None:
        """The socket is gone: stop the timer, leave every topic, free the connection slot."""
        self._cancel_timer()
        for task in self._catching_up.values():
            task.cancel()
        self._leave()
        self._gateway.guard.release(self._ticket)
        self._gateway.unregister(self)

    def _leave(self) -> None:
        """Leave every topic; safe to call more than once, never during fan-out."""
        for topic in self.session.close().removed:
            self._gateway.leave(topic, self)

    # -- actions ----------------------------------------------------------------------

    async def _apply(self, action: Action) -> None:
        match action:
            case SubscribeTopics():
                await self._subscribe(action)
            case PublishEvent():
                await self._publish(action)
            case ReadPresence():
                presence = self._gateway.presence
                self._carry_out(await presence.reply(self.session, self.audience, action))
            case _:
                self._carry_out(action)

    def _carry_out(self, action: Action) -> None:
        """The actions that need no waiting (all that ``tick`` and ``revoke`` return)."""
        gateway = self._gateway
        match action:
            case Reply(frame, error):
                if error is not None:
                    gateway.metrics.errors.labels(error.value).inc()
                self._send(frame)
            case UnsubscribeTopics(request_id, topics, removed):
                for topic in removed:
                    gateway.leave(topic, self)
                    self._forget_unsupported(topic)
                if request_id is not None:
                    self._send(self.session.unsubscribed(request_id, topics))
            case Authenticated(request_id, identity):
                self._authenticated(request_id, identity)
            case Close(code, reason):
                self.close(code, reason)
            case _:
                raise AssertionError(f"{action!r} must be awaited")

    async def _subscribe(self, action: SubscribeTopics) -> None:
        if self._closing:
            return
        for topic in action.topics:  # one topic's replays and subscriptions stay in order
            if (running := self._catching_up.get(topic)) is not None:
                await asyncio.wait([running])
        if self._closing:
            return
        since = {topic: Position(seq, epoch) for topic, seq, epoch in action.since}
        for topic in since:  # hold their live events from the moment we join
            self._recovering.setdefault(topic, [])
        limit = self._gateway.settings.max_recovery
        joined: dict[str, Position] | None = None
        try:
            joined = await self._join(action)
            refusals = {
                topic: await recovery_refusal(self._history, topic, start, joined[topic], limit)
                for topic, start in since.items()
                if topic in joined
            }
        except BrokerError as exc:
            joined = None
            self._subscribe_failed(action, exc)
        finally:
            if self._closing or joined is None:
                for topic in since:
                    self._take_held(topic, live=True)
        if joined is None or self._closing:
            return
        self._subscribed(action, joined, since, refusals)

    @property
    def _page_turn(self) -> asyncio.Lock:
        """Held by the replay writing a page: one page of history in memory at a time."""
        if self._turn is None:
            self._turn = asyncio.Lock()
        return self._turn

    @property
    def _history(self) -> History | None:
        broker = self._gateway.broker
        return broker if isinstance(broker, History) else None

    async def _join(self, action: SubscribeTopics) -> dict[str, Position]:
        """Join the hub (and the broker) for the topics; their positions, patterns aside."""
        gateway, subscriptions = self._gateway, self.session.subscriptions
        for topic in (*action.added, *action.regrouped):
            # A revocation or a close may have ended it while an earlier join waited.
            if topic in subscriptions:
                self._forget_unsupported(topic)  # new versions: say again what cannot be had
                await gateway.join(topic, self, self.session.accepts.get(topic))
        topics = [topic for topic in action.topics if topic in subscriptions]
        return {
            topic: await gateway.broker.position(topic)
            for topic in topics
            if not is_pattern(topic)  # a pattern spans topics: no one position
        }

    def _subscribe_failed(self, action: SubscribeTopics, exc: BrokerError) -> None:
        """The broker could not be reached: nothing of this SUBSCRIBE stays, the client retries."""
        log.warning("SUBSCRIBE on %s failed: %s", self.session.session_id, exc)
        for topic in self.session.drop(action.added):
            self._gateway.leave(topic, self)
        error = ProtocolError(
            ErrorCode.BROKER_UNAVAILABLE,
            "the broker is unreachable: nothing was subscribed; retry",
            {"topics": list(action.topics)},
        )
        self._carry_out(self.session.error(action.request_id, error))

    def _subscribed(
        self,
        action: SubscribeTopics,
        joined: dict[str, Position],
        since: dict[str, Position],
        refusals: dict[str, str | None],
    ) -> None:
        """Answer SUBSCRIBED (and RECOVERY_FAILED), then replay or go live, topic by topic."""
        rid = action.request_id
        topics = tuple(topic for topic in action.topics if topic in self.session.subscriptions)
        positions = {topic: position.to_wire() for topic, position in joined.items()}
        recovered = {topic: refusal is None for topic, refusal in refusals.items()}
        self._send(self.session.subscribed(rid, topics, positions, recovered))
        for topic, refusal in refusals.items():
            if refusal is not None:
                self._send(self.session.recovery_failed(rid, topic, positions[topic], refusal))
        for topic, start in since.items():
            position = joined.get(topic)
            if position is None:  # ended (revoked) while we waited: nothing to send
                self._take_held(topic, live=True)
            elif refusals[topic] is None and start.seq < position.seq:
                self._start_catch_up(rid, topic, start, position)
            else:
                # Nothing to replay: release what was held, without waiting, so that no
                # live event can slip between the position read and the release.
                last = position.seq if refusals[topic] is None else -1
                self._go_live(topic, last)

    def _go_live(self, topic: str, last: int) -> None:
        """Deliver the live events held for ``topic`` after ``last``; no more are held."""
        for message in self._take_held(topic, live=True):
            if message.seq is None or message.seq > last:
                self.deliver(message)
        if last > 0:
            self._floors[topic] = last  # the node may still be catching up to there

    def _below_floor(self, message: Outbound) -> bool:
        """Whether ``message`` was already given in a replay: never twice on the wire.

        After a replay up to seq N, the node's own catch-up with its broker
        (after an outage) may still deliver events up to N to every local
        subscriber. The floor drops those; the first event past it lifts it.
        """
        floor = self._floors.get(message.topic)
        if floor is None or message.seq is None:
            return False
        if message.seq <= floor:
            return True
        del self._floors[message.topic]
        return False

    def _start_catch_up(self, rid: str, topic: str, since: Position, position: Position) -> None:
        """Write a topic's replay in a task of its own, so that commands (PING, AUTH,
        more SUBSCRIBEs) are answered meanwhile and each topic turns live as soon
        as its own replay is out, not after those of the topics before it."""
        work = self._catch_up(rid, topic, since, position)
        task = asyncio.get_running_loop().create_task(work)
        self._catching_up[topic] = task
        task.add_done_callback(lambda done: self._caught_up(topic, done))

    def _caught_up(self, topic: str, task: asyncio.Task[None]) -> None:
        if self._catching_up.get(topic) is task:
            del self._catching_up[topic]
        if task.cancelled() or (error := task.exception()) is None:
            return
        log.error("replaying %s failed on %s", topic, self.session.session_id, exc_info=error)
        self.close(CloseCode.INTERNAL_ERROR, "internal error")

    async def _catch_up(self, rid: str, topic: str, since: Position, position: Position) -> None:
        """Write the missed events, then the live events held meanwhile, at the pace the peer reads.

        A replay may hold more than ``max_outbound_buffer`` (a slow consumer
        closed with 4008 has missed at least that much): written at once, it
        would close its peer as a slow consumer again, at every reconnection.
        So it is read from history a page at a time and goes out as fast as
        the peer takes it, while the topic's live events stay held behind it;
        the topic turns live once nothing is left held. A peer that falls too
        far behind meanwhile cannot keep up: ``_hold`` closes it (4008).

        The topics of one connection take turns page by page (``_page_turn``),
        so however many recover at once, one page of history is held at a time.
        History that changed under the replay (trimmed, lost, unreachable)
        ends it with RECOVERY_FAILED, and the topic goes live from ``position``.
        """
        history = self._history
        assert history is not None  # recovery_refusal said so
        pages = HistoryPages(history, topic, since, position.seq, self._pace)
        last = position.seq  # held events up to it are in the replay
        try:
            while not pages.done:
                async with self._page_turn:
                    page = self._prepare(topic, await pages.read())
                    if not await self._write_all(topic, page):
                        return
            while self._recovering.get(topic):
                held = self._take_held(topic, live=False)
                fresh = [m for m in held if m.seq is None or m.seq > last]
                last = max([last, *(m.seq for m in fresh if m.seq is not None)])
                if not await self._write_all(topic, fresh):
                    return
        except ReplayBroken as broken:
            if topic in self.session.subscriptions and not self._closing:
                wire = position.to_wire()
                self._send(self.session.recovery_failed(rid, topic, wire, broken.reason))
        finally:
            if not self._closing and topic in self.session.subscriptions:
                self._go_live(topic, last)
            else:
                self._take_held(topic, live=True)

    async def _write_all(self, topic: str, messages: list[Outbound]) -> bool:
        """Write ``messages`` paced; False once closing or no longer subscribed (revoked)."""
        for message in messages:
            if topic not in self.session.subscriptions or not await self._write_paced(message):
                return False
        return True

    def _prepare(self, topic: str, events: list[tuple[int, bytes]]) -> list[Outbound]:
        """Replayed events as this connection may see them: its tenant, its versions."""
        audience, catalog = self.audience, self._gateway.hub.catalog
        accept = self.session.accepts.get(topic)
        prepared: list[Outbound] = []
        for seq, body in events:
            if not visible_to(audience, body):
                continue
            if accept is None or catalog is None:
                prepared.append(Outbound(topic, splice_seq(body, seq), seq))
                continue
            from eventwire.catalog.delivery import route_versions

            try:
                found = route_versions(catalog, topic, body, [accept])[accept]
            except Exception:  # like the live path: never a payload it cannot read
                log.exception("converting a replayed event of %s failed", topic)
                continue
            if isinstance(found, bytes):
                prepared.append(Outbound(topic, splice_seq(found, seq), seq))
            elif self.first_unsupported(found.key):
                prepared.append(unsupported_outbound(found))
        return prepared

    async def _publish(self, action: PublishEvent) -> None:
        rid = action.request_id
        try:
            published = await self._gateway.publish(action.event)
        except ValidationFailed as exc:  # the catalog's: named from the frame's root
            self._carry_out(self.session.error(rid, errors_at(exc, PUBLISHED_EVENT)))
            return
        except ProtocolError as exc:
            self._carry_out(self.session.error(rid, exc))
            return
        except BrokerError as exc:
            log.warning("client publish on %s failed: %s", action.event.topic, exc)
            error = ProtocolError(ErrorCode.INTERNAL_ERROR, "the event could not be stored")
            self._carry_out(self.session.error(rid, error))
            return
        self._send(self.session.published(rid, published.to_wire()))

    def _authenticated(self, request_id: str, identity: Identity) -> None:
        """Count the connection under its user and tenant (4009 over a cap), then regroup it."""
        gateway = self._gateway
        if self._ticket is not None:
            try:
                gateway.guard.conn_limits.authenticate(self._ticket, identity)
            except AuthError as err:
                self._carry_out(self.session.error(request_id, err))
                self.close(err.close_code or CloseCode.TOO_MANY_CONNECTIONS, err.code.value)
                return
        old, self.audience = self.audience, audience_of(identity)
        gateway.hub.regroup(self, self.session.subscriptions, old)
        gateway.presence.regroup(self, self.session.subscriptions)

    def _forget_unsupported(self, topic: str) -> None:
        if self._unsupported is not None:
            self._unsupported.pop(topic, None)

    # -- the session's timer -----------------------------------------------------------

    def _rearm(self) -> None:
        """Arm the timer at the session's next deadline, if that moved."""
        deadline = None if self._closing else self.session.next_deadline()
        if deadline == self._timer_at:
            return
        self._cancel_timer()
        if deadline is None:
            return
        self._timer_at = deadline
        delay = max(0.0, deadline - self._gateway.clock.wall())
        self._timer = asyncio.get_running_loop().call_later(delay, self._deadline)

    def _deadline(self) -> None:
        self._timer = self._timer_at = None
        if self._closing:
            return
        for action in self.session.tick(self._gateway.clock.wall()):
            self._carry_out(action)
        self._rearm()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None
