"""One node's Redis Pub/Sub link: one connection, and a reader that never dies silently.

The reader task owns the connection. It subscribes to every interest, reads
messages and hands each event on once, and sends a PING whenever the link
has been quiet for ``health_interval``; no reply within ``health_timeout``
means a half-open link. Whatever breaks it (a Redis restart, ``CLIENT KILL
TYPE pubsub``, a dead TCP peer, a bug), the reader logs it, counts it,
reports not-ready, reconnects with jittered backoff and subscribes to every
interest again; the ``Feed`` then fills what was missed from history.

Commands go out on the same connection from any task; a command is written
to the transport in one piece, so commands never interleave. Redis answers
subscriptions in order, which is how confirmations are matched to waiters.

On Redis Cluster a node holds one such link per shard (``_redis_cluster``):
its ``Channels`` say which topics it carries, that they are sharded
(``SSUBSCRIBE``), whether it carries the node's patterns, and whom to tell
when the shard answers that a channel lives elsewhere now.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import AskError, ClusterDownError, MovedError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError

from eventwire.brokers._interest import Interests
from eventwire.brokers._node import LinkState, LinkStatus, backoff, log_attempt
from eventwire.brokers._redis_lua import RedisKeys, parse_message
from eventwire.brokers._resume import Feed
from eventwire.errors import BrokerError
from eventwire.topics import is_pattern

__all__ = ["Channels", "Link", "LinkSettings", "pubsub_connector"]

log = logging.getLogger("eventwire.brokers.redis")

_TOKEN = b"eventwire-health"
_CHUNK = 500
"""Channels per SUBSCRIBE command when (re)subscribing everything."""


class _Unresponsive(Exception):
    """The link stopped answering."""


class _Moved(Exception):
    """A shard no longer serves a channel of ours: the cluster's slots moved."""


_TOPOLOGY = (MovedError, AskError, ClusterDownError, _Moved)
"""What a shard answers when its slots moved (or the cluster is failing over)."""


def pubsub_connector(
    connection_class: type[AbstractConnection], connection_kwargs: dict[str, Any]
) -> Callable[[], AbstractConnection]:
    """Connections of the link's own, like the command client's but outside its pool.

    No socket timeout (the link's reads wait for events; its PING finds a
    dead peer), and no health check of redis-py's, which would read replies
    meant for the reader.
    """
    kwargs: dict[str, Any] = {**connection_kwargs}
    kwargs.update(socket_timeout=None, client_name="eventwire:link", health_check_interval=0)

    def connect() -> AbstractConnection:
        return connection_class(**kwargs)

    return connect


def _everything(topic: str) -> bool:
    return True


@dataclass(frozen=True)
class Channels:
    """What one link carries: which topics, over which commands, and the patterns or not.

    The default is a whole Redis: every topic with ``SUBSCRIBE``, every
    pattern with ``PSUBSCRIBE``. A shard's link on Redis Cluster carries the
    topics whose slots it owns with ``SSUBSCRIBE`` (one channel per command:
    a command may not cross slots), and calls ``on_moved`` when the shard
    answers that a channel moved.
    """

    sharded: bool = False
    carries: Callable[[str], bool] = _everything
    patterns: bool = True
    on_moved: Callable[[], None] | None = None
    on_up: Callable[[], None] | None = None

    @property
    def subscribe(self) -> bytes:
        return b"SSUBSCRIBE" if self.sharded else b"SUBSCRIBE"

    @property
    def unsubscribe(self) -> bytes:
        return b"SUNSUBSCRIBE" if self.sharded else b"UNSUBSCRIBE"

    @property
    def message(self) -> bytes:
        return b"smessage" if self.sharded else b"message"


class LinkSettings:
    """Timing of the link, in seconds."""

    def __init__(
        self,
        health_interval: float = 1.0,
        health_timeout: float = 1.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
    ) -> None:
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

    def backoff(self, attempt: int) -> float:
        """Exponential with jitter: nodes of one restarted Redis spread their return."""
        return backoff(attempt, initial=self.backoff_initial, maximum=self.backoff_max, cap=30)


class Link(LinkStatus):
    """The Pub/Sub connection of one node and the task that reads it."""

    def __init__(
        self,
        connect: Callable[[], AbstractConnection],
        keys: RedisKeys,
        interests: Interests,
        feed: Feed,
        settings: LinkSettings,
        name: str,
        channels: Channels | None = None,
    ) -> None:
        super().__init__(name, interests)
        self._new_connection = connect
        self._keys = keys
        self._feed = feed
        self._settings = settings
        self._channels = channels or Channels()
        self._conn: AbstractConnection | None = None
        self._batch = 0  # confirmations still owed to the (re)subscription of everything
        self._waiters: defaultdict[bytes, deque[asyncio.Future[None]]] = defaultdict(deque)
        self._leaving: Counter[bytes] = Counter()  # sharded channels we unsubscribe from

    def carries(self, name: str) -> bool:
        """Whether ``name``, a topic or a pattern, is subscribed on this link."""
        return self._channels.patterns if is_pattern(name) else self._channels.carries(name)

    def needed(self) -> bool:
        """Whether this link carries any interest of the node (its readiness counts)."""
        if self._channels.patterns and self._interests.patterns:
            return True
        return any(self._channels.carries(topic) for topic in self._interests.topics)

    # -- interest ----------------------------------------------------------------

    async def subscribe(self, name: str) -> None:
        """Subscribe the live connection to an interest already recorded; await its confirmation.

        With the link down this returns at once: the reconnection subscribes
        to every recorded interest.
        """
        conn = self._conn
        if conn is None or self._state is LinkState.DOWN:
            return
        command, target = self._subscription(name)
        confirmed = asyncio.get_running_loop().create_future()
        self._waiters[command + b" " + target].append(confirmed)
        try:
            await self._send(conn, [(command, target)])
            limit = self._settings.health_interval + self._settings.health_timeout
            await asyncio.wait_for(asyncio.shield(confirmed), limit)
        except (OSError, TimeoutError, RedisError) as exc:
            # The reader notices the broken link, reconnects and subscribes again.
            log.debug(
                "%s: subscribing %s failed (%s); the reconnection will", self._name, name, exc
            )

    async def unsubscribe(self, name: str) -> None:
        conn = self._conn
        if conn is None or self._state is LinkState.DOWN:
            return
        command, target = self._subscription(name)
        undo = b"PUNSUBSCRIBE" if command == b"PSUBSCRIBE" else self._channels.unsubscribe
        if undo == b"SUNSUBSCRIBE":
            self._leaving[target] += 1  # its confirmation is not a moved slot
        try:
            await self._send(conn, [(undo, target)])
        except (OSError, RedisError) as exc:
            log.debug("%s: unsubscribing %s failed (%s)", self._name, name, exc)

    def _subscription(self, name: str) -> tuple[bytes, bytes]:
        if is_pattern(name):
            return b"PSUBSCRIBE", self._keys.glob(name)
        return self._channels.subscribe, self._keys.channel(name)

    # -- the reader ----------------------------------------------------------------

    async def run(self) -> None:
        """Keep the link up until cancelled."""
        attempt = 0
        while True:
            moved = False
            try:
                await self._session()
            except asyncio.CancelledError:
                await self._drop()
                raise
            except _Unresponsive as exc:
                reason = str(exc)
            except _TOPOLOGY as exc:
                reason = f"the cluster's slots moved ({type(exc).__name__}: {exc})"
                if self._channels.on_moved is not None:
                    self._channels.on_moved()  # the rebuild of every link counts the loss
                    moved = True
            except (OSError, TimeoutError, RedisError, BrokerError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a bug must not leave the node deaf: log it, reconnect
                log.exception("%s: the link reader failed", self._name)
                reason = f"{type(exc).__name__}: {exc}"
            was_up = self._state is LinkState.UP
            await self._drop()
            if was_up:
                self.losses += 0 if moved else 1
                attempt = 0
                log.warning("%s: link lost (%s); reconnecting", self._name, reason)
            else:
                log_attempt(
                    log,
                    attempt,
                    "%s: link still down after %d attempts (%s)",
                    self._name,
                    attempt,
                    reason,
                )
            attempt += 1
            await asyncio.sleep(self._settings.backoff(attempt))

    async def _session(self) -> None:
        conn = self._new_connection()
        self._conn = conn
        # A peer that accepts and never answers (a failover behind an address, a
        # proxy whose backend died) must not hold the reconnection forever.
        async with asyncio.timeout(self._settings.health_interval + self._settings.health_timeout):
            await conn.connect()  # type: ignore[no-untyped-call]
        self._state = LinkState.SYNCING
        self._leaving.clear()
        channels = self._channels
        commands = [
            (channels.subscribe, self._keys.channel(t))
            for t in self._interests.topics
            if channels.carries(t)
        ]
        if channels.patterns:
            commands += [(b"PSUBSCRIBE", self._keys.glob(p)) for p in self._interests.patterns]
        self._batch = len(commands)
        if commands:
            await self._send(conn, _chunked(commands))
        else:
            self._mark_up()
        await self._read(conn)

    async def _read(self, conn: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        interval, timeout = self._settings.health_interval, self._settings.health_timeout
        next_ping, pong_due = loop.time() + interval, None
        while True:
            now = loop.time()
            if pong_due is not None and now >= pong_due:
                raise _Unresponsive(f"no reply to PING within {timeout}s")
            if pong_due is None and now >= next_ping:
                await self._send(conn, [(b"PING", _TOKEN)])
                pong_due = now + timeout
                continue
            wait = (pong_due if pong_due is not None else next_ping) - now
            response = await conn.read_response(timeout=max(wait, 0.001))
            if response is None:
                continue  # quiet: time to check the link
            next_ping, pong_due = loop.time() + interval, None  # anything read proves it
            await self._handle(response)

    async def _handle(self, response: Any) -> None:
        if not isinstance(response, list) or not response:
            return  # PING's reply while subscribed to nothing
        kind = response[0]
        if kind == self._channels.message:
            topic = self._keys.name_of(response[1])
            if topic is not None and topic in self._interests.topics:
                await self._deliver(topic, response[2])
        elif kind == b"pmessage":
            pattern, topic = self._keys.name_of(response[1]), self._keys.name_of(response[2])
            if (
                pattern is not None
                and topic is not None
                and self._interests.pattern_copy_wanted(pattern, topic)
            ):
                await self._deliver(topic, response[3])
        elif kind in (b"subscribe", b"ssubscribe", b"psubscribe"):
            await self._confirmed(kind, response[1])
        elif kind == b"sunsubscribe":
            self._left(response[1])

    def _left(self, channel: bytes) -> None:
        """A sharded channel is gone: ours to leave, or its slot moved to another shard."""
        if self._leaving[channel] > 0:
            self._leaving[channel] -= 1
            return
        topic = self._keys.name_of(channel)
        if topic is not None and topic in self._interests.topics:
            raise _Moved(f"the shard unsubscribed {channel!r}")

    async def _deliver(self, topic: str, data: bytes) -> None:
        try:
            seq, epoch, body = parse_message(data)
        except ValueError:  # not ours: someone else publishes on our channel
            log.warning("%s: ignored a malformed message on %s: %.80r", self._name, topic, data)
            return
        await self._feed.message(topic, seq, epoch, body)

    async def _confirmed(self, kind: bytes, target: bytes) -> None:
        topic = self._keys.name_of(target)
        if kind != b"psubscribe" and topic is not None and topic in self._interests.topics:
            await self._feed.catch_up(topic)
        if self._batch:
            self._batch -= 1
            if not self._batch:
                self._mark_up()
            return
        waiters = self._waiters.get(kind.upper() + b" " + target)
        if waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _mark_up(self) -> None:
        self._state = LinkState.UP
        self._up.set()
        self._log_up(log)
        if self._channels.on_up is not None:
            self._channels.on_up()

    async def _drop(self) -> None:
        """Forget the connection; everyone waiting on it is released."""
        self._state = LinkState.DOWN
        self._up.clear()
        conn, self._conn = self._conn, None
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self._waiters.clear()
        if conn is not None:
            await conn.disconnect(nowait=True)

    async def _send(self, conn: AbstractConnection, commands: Iterable[tuple[bytes, ...]]) -> None:
        """Write ``commands`` in one piece; a write that cannot drain in time breaks the link.

        Only on the live connection: redis-py would quietly reconnect a
        dropped one, leaving a connection that nobody reads.
        """
        if conn is not self._conn or not conn.is_connected:
            raise RedisConnectionError("the Pub/Sub link is down")
        packed = conn.pack_commands(list(commands))
        async with asyncio.timeout(self._settings.health_timeout):
            await conn.send_packed_command(packed, check_health=False)


def _chunked(commands: list[tuple[bytes, bytes]]) -> list[tuple[bytes, ...]]:
    """``SUBSCRIBE a``, ``SUBSCRIBE b`` … as a few commands of up to ``_CHUNK`` channels.

    ``SSUBSCRIBE`` stays one channel per command: its channels may not cross slots.
    """
    grouped: dict[bytes, list[bytes]] = {}
    for command, target in commands:
        grouped.setdefault(command, []).append(target)
    chunked: list[tuple[bytes, ...]] = []
    for command, targets in grouped.items():
        size = 1 if command == b"SSUBSCRIBE" else _CHUNK
        chunked += [(command, *targets[i : i + size]) for i in range(0, len(targets), size)]
    return chunked
