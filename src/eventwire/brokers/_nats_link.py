"""One node's live side on NATS: its subscriptions, and a reader that never goes deaf in silence.

The stream republishes every message it stores on ``<prefix>-live.<topic>``;
a node subscribes (plain NATS, no consumer) to the live subject of each
topic it has interest in and to a covering wildcard of each pattern, one
subscription per distinct subject. nats-py hands each subscription's
messages to a callback of its own; every callback only queues, and a single
reader task takes the queue in order, so the ``Feed`` (cursors, gap filling,
catch-up) sees one topic's events one at a time, exactly as on Redis.

The link follows nats-py's connection (its callbacks call ``disconnected``,
``reconnected``): down, it reports not ready and counts the loss; back,
nats-py has already sent every subscription again, and the reader
"resyncs": makes sure the stream exists (a server restarted without its
storage has none), confirms the subscriptions with a PING, catches every
topic up from history, and only then reports ready. A resync that fails
while connected is tried again after a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from eventwire.brokers._interest import Interests
from eventwire.brokers._nats_history import StreamMissing
from eventwire.brokers._nats_subjects import NatsNames, parse_place
from eventwire.brokers._node import LinkState, LinkStatus, backoff
from eventwire.brokers._resume import Feed
from eventwire.errors import BrokerError
from eventwire.topics import is_pattern

__all__ = ["Link"]

log = logging.getLogger("eventwire.brokers.nats")

_FAILURES = (NatsError, BrokerError, StreamMissing, OSError, TimeoutError)
"""What a resync or a catch-up may meet while the server comes and goes."""


@dataclass(frozen=True, slots=True)
class _Live:
    via: str  # the subscription's subject
    msg: Msg


@dataclass(frozen=True, slots=True)
class _CatchUp:
    topic: str
    done: asyncio.Future[None] = field(compare=False)


class _Resync:
    pass


class Link(LinkStatus):
    """The live subscriptions of one node and the task that hands their events on."""

    def __init__(
        self,
        names: NatsNames,
        interests: Interests,
        feed: Feed,
        ensure_stream: Callable[[], Awaitable[None]],
        *,
        timeout: float,
        backoff_max: float,
        name: str,
    ) -> None:
        super().__init__(name, interests)
        self._names = names
        self._feed = feed
        self._ensure_stream = ensure_stream
        self._timeout = timeout
        self._backoff_max = backoff_max
        self._nc: NatsClient | None = None
        self._users: dict[str, set[str]] = {}  # live subject -> interests it serves
        self._subs: dict[str, Subscription] = {}
        self._queue: asyncio.Queue[_Live | _CatchUp | _Resync] = asyncio.Queue()
        self._failed_resyncs = 0
        self._retry: asyncio.TimerHandle | None = None

    # -- the connection ------------------------------------------------------------

    async def bind(self, nc: NatsClient) -> None:
        """Use ``nc`` from now on: subscribe every interest on it, then resync."""
        self._nc = nc
        self._subs = {}
        for subject in self._users:
            await self._subscribe(subject)
        self._state = LinkState.SYNCING
        self._queue.put_nowait(_Resync())

    def disconnected(self) -> None:
        if self._state is LinkState.UP:
            self.losses += 1
            log.warning("%s: link lost; nats-py is reconnecting", self._name)
        self._mark(LinkState.DOWN)

    def reconnected(self) -> None:
        self._mark(LinkState.SYNCING)
        self._queue.put_nowait(_Resync())

    def unbind(self, *, lost: bool) -> None:
        """Forget the connection (``lost``: not by our own close); the interests stay."""
        if lost:
            self.disconnected()
        self._mark(LinkState.DOWN)
        self._nc = None
        self._subs = {}
        if self._retry is not None:
            self._retry.cancel()

    # -- interest ------------------------------------------------------------------

    async def subscribe(self, name: str) -> None:
        """Hear ``name`` (recorded in the interests already); for a topic, catch it up.

        Returns once the server has the subscription and, for a topic, the
        events published since its position was read were handed on. With
        the link down it returns at once: the resync does both.
        """
        subject = self._subject_of(name)
        users = self._users.setdefault(subject, set())
        users.add(name)
        if len(users) == 1:
            await self._subscribe(subject)
        nc = self._nc
        if nc is None or not nc.is_connected:
            return
        try:
            await nc.flush(self._timeout)  # type: ignore[arg-type]
        except (NatsError, TimeoutError) as exc:
            log.debug("%s: confirming %s failed (%s); the resync will", self._name, name, exc)
            return
        if not is_pattern(name):
            done = asyncio.get_running_loop().create_future()
            self._queue.put_nowait(_CatchUp(name, done))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(done), self._timeout * 2)

    async def unsubscribe(self, name: str) -> None:
        subject = self._subject_of(name)
        users = self._users.get(subject)
        if users is None:
            return
        users.discard(name)
        if users:
            return
        del self._users[subject]
        sub = self._subs.pop(subject, None)
        if sub is not None:
            try:
                await sub.unsubscribe()
            except NatsError as exc:
                log.debug("%s: unsubscribing %s failed (%s)", self._name, subject, exc)

    def _subject_of(self, name: str) -> str:
        return self._names.covering(name) if is_pattern(name) else self._names.live(name)

    async def _subscribe(self, subject: str) -> None:
        nc = self._nc
        if nc is None or nc.is_closed:
            return  # the next connection subscribes
        try:
            self._subs[subject] = await nc.subscribe(subject, cb=self._taker(subject))
        except NatsError as exc:
            log.debug("%s: subscribing %s failed (%s)", self._name, subject, exc)

    def _taker(self, via: str) -> Callable[[Msg], Awaitable[None]]:
        async def take(msg: Msg) -> None:
            self._queue.put_nowait(_Live(via, msg))

        return take

    # -- the reader ----------------------------------------------------------------

    async def run(self) -> None:
        """Hand on what the subscriptions receive, in order, until cancelled."""
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, _Live):
                    await self._deliver(item.via, item.msg)
                elif isinstance(item, _CatchUp):
                    await self._catch_up(item)
                else:
                    await self._resync()
            except Exception:  # a bug must not leave the node deaf: log it, go on
                log.exception("%s: the link reader failed on %r", self._name, item)

    async def _deliver(self, via: str, msg: Msg) -> None:
        topic = self._names.topic_of_live(msg.subject)
        if topic is None:
            return
        try:
            seq, epoch, _ = parse_place(msg.headers)
        except ValueError:  # not ours: someone else publishes on our subjects
            log.warning("%s: ignored a foreign message on %s", self._name, msg.subject)
            return
        if seq == 0 or not self._wanted(via, topic):
            return  # an epoch marker, or the copy another subscription hands on
        await self._feed.message(topic, seq, epoch, msg.data)

    def _wanted(self, via: str, topic: str) -> bool:
        """Whether the copy of a ``topic`` event heard ``via`` this subscription is the one kept.

        A topic's own subscription wins; otherwise the smallest matching
        pattern's (patterns are matched exactly: covering wildcards are wider).
        """
        users = self._users.get(via, ())
        if topic in users:
            return True
        return any(
            is_pattern(name) and self._interests.pattern_copy_wanted(name, topic) for name in users
        )

    async def _catch_up(self, item: _CatchUp) -> None:
        try:
            if self._feed.tracks(item.topic):
                await self._feed.catch_up(item.topic)
        except _FAILURES as exc:
            log.debug("%s: catching %s up failed (%s)", self._name, item.topic, exc)
        finally:
            if not item.done.done():
                item.done.set_result(None)

    async def _resync(self) -> None:
        nc = self._nc
        if nc is None or not nc.is_connected or self._state is not LinkState.SYNCING:
            return  # down again (a later reconnection resyncs), or done already
        try:
            await self._ensure_stream()
            await nc.flush(self._timeout)  # type: ignore[arg-type]
            for topic in list(self._interests.topics):
                if self._feed.tracks(topic):
                    await self._feed.catch_up(topic)
        except _FAILURES as exc:
            self._failed_resyncs += 1
            delay = backoff(self._failed_resyncs, initial=0.05, maximum=self._backoff_max, cap=10)
            log.log(
                logging.WARNING if self._failed_resyncs % 20 == 1 else logging.DEBUG,
                "%s: resync failed (%s: %s); again in %.2fs",
                self._name,
                type(exc).__name__,
                exc,
                delay,
            )
            loop = asyncio.get_running_loop()
            self._retry = loop.call_later(delay, self._queue.put_nowait, _Resync())
            return
        self._failed_resyncs = 0
        self._mark(LinkState.UP)

    def _mark(self, state: LinkState) -> None:
        if state is LinkState.UP and self._state is not LinkState.UP:
            self._log_up(log)
        self._state = state
        if state is LinkState.UP:
            self._up.set()
        else:
            self._up.clear()
