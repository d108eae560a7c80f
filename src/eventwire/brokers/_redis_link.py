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
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from eventwire.brokers._interest import Interests
from eventwire.brokers._node import LinkState, LinkStatus, backoff
from eventwire.brokers._redis_lua import RedisKeys, parse_message
from eventwire.brokers._resume import Feed
from eventwire.errors import BrokerError
from eventwire.topics import is_pattern

__all__ = ["Link", "LinkSettings"]

log = logging.getLogger("eventwire.brokers.redis")

_TOKEN = b"eventwire-health"
_CHUNK = 500
"""Channels per SUBSCRIBE command when (re)subscribing everything."""


class _Unresponsive(Exception):
    """The link stopped answering."""


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
    ) -> None:
        super().__init__(name, interests)
        self._new_connection = connect
        self._keys = keys
        self._feed = feed
        self._settings = settings
        self._conn: AbstractConnection | None = None
        self._batch = 0  # confirmations still owed to the (re)subscription of everything
        self._waiters: defaultdict[bytes, deque[asyncio.Future[None]]] = defaultdict(deque)

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
        undo = b"PUNSUBSCRIBE" if command == b"PSUBSCRIBE" else b"UNSUBSCRIBE"
        try:
            await self._send(conn, [(undo, target)])
        except (OSError, RedisError) as exc:
            log.debug("%s: unsubscribing %s failed (%s)", self._name, name, exc)

    def _subscription(self, name: str) -> tuple[bytes, bytes]:
        if is_pattern(name):
            return b"PSUBSCRIBE", self._keys.glob(name)
        return b"SUBSCRIBE", self._keys.channel(name)

    # -- the reader ----------------------------------------------------------------

    async def run(self) -> None:
        """Keep the link up until cancelled."""
        attempt = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                await self._drop()
                raise
            except _Unresponsive as exc:
                reason = str(exc)
            except (OSError, TimeoutError, RedisError, BrokerError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a bug must not leave the node deaf: log it, reconnect
                log.exception("%s: the link reader failed", self._name)
                reason = f"{type(exc).__name__}: {exc}"
            was_up = self._state is LinkState.UP
            await self._drop()
            if was_up:
                self.losses += 1
                attempt = 0
                log.warning("%s: link lost (%s); reconnecting", self._name, reason)
            else:
                log.log(
                    logging.WARNING if attempt % 20 == 1 else logging.DEBUG,
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
        commands = [(b"SUBSCRIBE", self._keys.channel(t)) for t in self._interests.topics]
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
        if kind == b"message":
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
        elif kind in (b"subscribe", b"psubscribe"):
            await self._confirmed(kind, response[1])

    async def _deliver(self, topic: str, data: bytes) -> None:
        try:
            seq, epoch, body = parse_message(data)
        except ValueError:  # not ours: someone else publishes on our channel
            log.warning("%s: ignored a malformed message on %s: %.80r", self._name, topic, data)
            return
        await self._feed.message(topic, seq, epoch, body)

    async def _confirmed(self, kind: bytes, target: bytes) -> None:
        topic = self._keys.name_of(target)
        if kind == b"subscribe" and topic is not None and topic in self._interests.topics:
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
    """``SUBSCRIBE a``, ``SUBSCRIBE b`` … as a few commands of up to ``_CHUNK`` channels."""
    grouped: dict[bytes, list[bytes]] = {}
    for command, target in commands:
        grouped.setdefault(command, []).append(target)
    return [
        (command, *targets[i : i + _CHUNK])
        for command, targets in grouped.items()
        for i in range(0, len(targets), _CHUNK)
    ]
