"""The Redis broker: seq and history in Redis, live fan-out over Redis Pub/Sub.

Needs redis-py (``pip install 'eventwire[redis]'``) and Redis 5.0 or later.

A publish is one Lua script, so it is atomic: it assigns the topic's next
``seq`` (``meta.seq + 1``), appends the event to the topic's stream
(trimmed to ``history_size`` events and ``history_age`` seconds), and
publishes ``<seq>:<epoch>:<body>`` on the topic's channel. The live message
and the history therefore always agree, and seqs are contiguous from 1
under one epoch. Key layout and scripts: ``_redis_lua``.

The epoch is a random token stored beside the counter, in the same hash. A
flush or an eviction removes both together, so a counter that starts again
from 1 always comes with a new epoch.

Each node holds one Pub/Sub connection (``_redis_link``) subscribed to the
topics and patterns it has local interest in. Commands (publish, position,
history) use a small pool of other connections (``POOL_SIZE``; more commands
at once wait for one, as when a restarted node's clients all subscribe at
once). Each command takes at most ``command_timeout`` in all: the wait for a
connection, connecting, and the round trip. A publish is never sent twice:
while Redis is unreachable it raises BrokerUnavailable (nothing was sent),
and once sent and not answered in time, OutcomeUnknown (Redis may run it
later, as a frozen one does when resumed; ``_redis_wire`` tells the two
apart). A read whose connection broke is tried once more (reads change
nothing but a new topic's epoch, which they fix once), so the first command
after a Redis restart does not fail on a connection the restart closed.

On Redis Cluster (a ``redis+cluster://`` URL, ``_redis_cluster``) the
commands go through redis-py's cluster client to the master of the topic's
slot, the script sends the live message with ``SPUBLISH`` (and also
``PUBLISH`` while patterns are on), and the node holds one link per shard
master. Each topic's seq, history and channel live on its one slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)
from redis.typing import EncodableT

from eventwire.brokers._interest import Interests
from eventwire.brokers._node import LinkedBroker, check_history, check_page
from eventwire.brokers._redis_cluster import (
    CLUSTER_SCHEMES,
    ClusterLink,
    ClusterUrl,
    cluster_client,
)
from eventwire.brokers._redis_link import Link, LinkSettings, pubsub_connector
from eventwire.brokers._redis_lua import (
    CLASSIC,
    HISTORY_SCRIPT,
    POSITION_SCRIPT,
    PUBLISH_BATCH_SCRIPT,
    PUBLISH_SCRIPT,
    SHARDED,
    SHARDED_AND_CLASSIC,
    RedisKeys,
)
from eventwire.brokers._redis_wire import Flight, plain, watched
from eventwire.brokers._resume import Feed
from eventwire.brokers.base import (
    BatchRefused,
    BrokerUnavailable,
    HistoryPage,
    InboundHandler,
    NotAvailable,
    OutcomeUnknown,
    Position,
    ResetHandler,
    publish_each,
)
from eventwire.brokers.memory import DEFAULT_HISTORY_AGE, DEFAULT_HISTORY_SIZE
from eventwire.brokers.presence.redis import RedisPresence
from eventwire.errors import BrokerError
from eventwire.topics import is_pattern

__all__ = ["DEFAULT_PREFIX", "RedisBroker"]

log = logging.getLogger("eventwire.brokers.redis")

DEFAULT_PREFIX = "eventwire"
POOL_SIZE = 32
"""Command connections per node; each command holds one for a round trip."""

_UNREACHABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,
    ClusterDownError,
    TryAgainError,
    RedisClusterException,  # no seed answered, or a slot has no master
    OSError,
    TimeoutError,
)
"""Errors that mean "not now" (down, restarting, loading, failing over), not "never"."""

T = TypeVar("T")


class RedisBroker(RedisPresence, LinkedBroker[Link | ClusterLink]):
    """A node's link to Redis.

    ``url`` is a redis-py URL (``redis://[[user]:[password]@]host:port/db``,
    ``rediss://`` for TLS, ``unix://``), or a Redis Cluster's
    (``redis+cluster://host:port,host:port/``, ``rediss+cluster://``; its
    ``patterns=off`` refuses pattern interest and saves every publish its
    classic copy). ``prefix`` namespaces every key and channel, so several
    gateways can share one Redis. Timings are seconds.
    """

    _kind = "Redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = DEFAULT_PREFIX,
        history_size: int = DEFAULT_HISTORY_SIZE,
        history_age: float | None = DEFAULT_HISTORY_AGE,
        connect_timeout: float = 1.0,
        command_timeout: float = 2.0,
        health_interval: float = 1.0,
        health_timeout: float = 1.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
    ) -> None:
        check_history(history_size, history_age)
        self.url = url
        self.cluster = ClusterUrl(url) if urlsplit(url).scheme in CLUSTER_SCHEMES else None
        """The Redis Cluster this node talks to; None for one Redis."""
        if self.cluster is None:
            self._live = CLASSIC
        else:
            self._live = SHARDED_AND_CLASSIC if self.cluster.patterns else SHARDED
        self.keys = RedisKeys(prefix)
        self.history_size = history_size
        self.history_age = history_age
        self._max_age_ms = 0 if history_age is None else max(1, round(history_age * 1000))
        self._timeouts = (connect_timeout, command_timeout)
        self._link_settings = LinkSettings(
            health_interval, health_timeout, backoff_initial, backoff_max
        )
        self.interests = Interests()
        self._pool: ConnectionPool | None = None
        self._client: Redis | RedisCluster | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._feed: Feed | None = None
        self._link: Link | ClusterLink | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def shown_url(self) -> str:
        """The URL without its password, for messages and logs."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, on_event: InboundHandler, on_reset: ResetHandler | None = None) -> None:
        """Connect, then subscribe the node's link; BrokerUnavailable if Redis cannot be reached."""
        await self.close()
        connect_timeout, command_timeout = self._timeouts
        client = self._client = self._connect()
        self._scripts = {
            "publish": client.register_script(PUBLISH_SCRIPT),
            "publish_batch": client.register_script(PUBLISH_BATCH_SCRIPT),
            "position": client.register_script(POSITION_SCRIPT),
            "history": client.register_script(HISTORY_SCRIPT),
        }
        try:
            await self.ping()
        except BrokerError:
            await self.close()
            raise
        self._feed = Feed(on_event, self.history, on_reset)
        name = f"redis broker {self.shown_url}"
        if isinstance(client, RedisCluster):
            assert self.cluster is not None
            self._link = ClusterLink(
                client,
                self.keys,
                self.interests,
                self._feed,
                self._link_settings,
                name,
                patterns=self.cluster.patterns,
            )
        else:
            assert self._pool is not None
            self._link = Link(
                pubsub_connector(plain(self._pool.connection_class), self._pool.connection_kwargs),
                self.keys,
                self.interests,
                self._feed,
                self._link_settings,
                name,
            )
        self._reader = asyncio.get_running_loop().create_task(self._link.run())
        try:
            async with asyncio.timeout(connect_timeout + command_timeout):
                await self._link.wait_up()
        except TimeoutError:
            await self.close()
            raise BrokerUnavailable(
                f"Redis at {self.shown_url} answered, but its Pub/Sub link did not come up"
            ) from None

    async def close(self) -> None:
        """Stop the link and close every connection; later publishes raise BrokerUnavailable."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self._link = None
        self._feed = None
        self.interests = Interests()  # a node that starts again declares its interest again
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.disconnect()

    def _connect(self) -> Redis | RedisCluster:
        """The command client: a bounded pool that never resends (a publish is not idempotent)."""
        connect_timeout, command_timeout = self._timeouts
        if self.cluster is not None:
            return cluster_client(
                self.cluster,
                turns=POOL_SIZE,
                connect_timeout=connect_timeout,
                command_timeout=command_timeout,
            )
        self._pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=POOL_SIZE,
            timeout=command_timeout,  # waiting for a free connection, then BrokerUnavailable
            socket_connect_timeout=connect_timeout,
            socket_timeout=command_timeout,
            retry=Retry(NoBackoff(), 0),
            protocol=2,
            client_name="eventwire",
        )
        self._pool.connection_class = watched(self._pool.connection_class)
        return Redis(connection_pool=self._pool)

    # -- the Broker ----------------------------------------------------------------

    async def publish(self, topic: str, body: bytes) -> int:
        """Assign the next seq, keep the event in history and send it live, in one step."""
        keys, args = self._topic_keys(topic), self._publish_args(topic, body)
        script = self._script("publish")
        seq, _ = await self._write("publish", lambda: script(keys=keys, args=args))
        return int(seq)

    async def publish_batch(self, events: Sequence[tuple[str, bytes]]) -> list[int]:
        """Publish in order with one script: one round trip, and it stops at a failure.

        So "the first n were stored" is exact, and a publisher that retries
        the rest duplicates nothing. A refusal (not an outage) raises
        ``BatchRefused``. A Redis Cluster cannot run one script over many
        slots: there each event goes on its own, in order.
        """
        client = self._client
        if not isinstance(client, Redis) or len(events) == 1:
            return await publish_each(self, events)
        keys: list[str] = []
        args: list[EncodableT] = [self.history_size, self._max_age_ms, self._live]
        for topic, body in events:
            keys += self._topic_keys(topic)
            args += [self.keys.channel(topic), body, secrets.token_hex(8)]
        script = self._script("publish_batch")
        replies = await self._write("publish", lambda: script(keys=keys, args=args), len(events))
        seqs = [int(reply) for reply in replies if isinstance(reply, int)]
        if len(seqs) < len(events):
            reason = bytes(replies[-1]).decode(errors="replace")
            raise BatchRefused(
                f"publish: Redis at {self.shown_url} refused event {len(seqs)} of the batch:"
                f" {reason}",
                published=len(seqs),
            )
        return seqs

    def _publish_args(self, topic: str, body: bytes) -> list[EncodableT]:
        return [
            self.keys.channel(topic),
            body,
            secrets.token_hex(8),
            self.history_size,
            self._max_age_ms,
            self._live,
        ]

    async def add_interest(self, topic: str) -> None:
        """As ``LinkedBroker``; NotAvailable for a pattern on a cluster with ``patterns=off``."""
        if self.cluster is not None and not self.cluster.patterns and is_pattern(topic):
            raise NotAvailable(
                f"pattern interest {topic!r}: the Redis Cluster broker runs with"
                " patterns=off, so no publish sends the copy that patterns hear"
            )
        await super().add_interest(topic)

    async def position(self, topic: str) -> Position:
        script, keys = self._script("position"), [self.keys.meta(topic)]
        args = [secrets.token_hex(8)]
        seq, epoch = await self._read("position", lambda: script(keys=keys, args=args))
        return Position(int(seq), epoch.decode())

    async def history(self, topic: str, since: int, limit: int) -> HistoryPage:
        """At most ``limit`` events of ``topic`` after ``since``, and the position, read at once."""
        check_page(since, limit)
        args: list[EncodableT] = [secrets.token_hex(8), since, limit, self._max_age_ms]
        script, keys = self._script("history"), self._topic_keys(topic)
        reply = await self._read("history", lambda: script(keys=keys, args=args))
        seq, epoch, flat = int(reply[0]), reply[1].decode(), reply[2]
        events = [(int(flat[i]), bytes(flat[i + 1])) for i in range(0, len(flat), 2)]
        first = events[0][0] if events else seq + 1
        return HistoryPage(events, Position(seq, epoch), since < seq and first > since + 1)

    # -- health --------------------------------------------------------------------

    async def ping(self) -> float:
        """Round trip of a PING on a command connection, in seconds."""
        client = self._client
        if client is None:
            raise self._not_started()
        started = time.perf_counter()
        await self._read("ping", client.ping)
        return time.perf_counter() - started

    # -- helpers -------------------------------------------------------------------

    def _topic_keys(self, topic: str) -> list[str]:
        return [self.keys.meta(topic), self.keys.history(topic)]

    def _script(self, name: str) -> AsyncScript:
        if self._client is None:
            raise self._not_started()
        return self._scripts[name]

    async def _write(self, what: str, call: Callable[[], Awaitable[T]], events: int = 1) -> T:
        """Run ``call`` once: sent and unanswered, it raises OutcomeUnknown (``events`` of them)."""
        with Flight.track() as flight, self._converted(what, flight, events):
            return await self._within_timeout(call)

    async def _read(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call``, once more if its connection broke (one closed by a restart)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeouts[1]
        with self._converted(what):
            try:
                return await self._within_timeout(call, deadline)
            except RedisConnectionError as exc:
                if loop.time() >= deadline:
                    raise
                log.debug("%s: Redis at %s: %s; trying once more", what, self.shown_url, exc)
            return await self._within_timeout(call, deadline)

    async def _within_timeout(
        self, call: Callable[[], Awaitable[T]], deadline: float | None = None
    ) -> T:
        """``call`` bounded by ``command_timeout`` in all: pool wait, connect, round trip."""
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self._timeouts[1]
        try:
            async with asyncio.timeout_at(deadline):
                return await call()
        except TimeoutError as exc:
            if str(exc):
                raise
            raise TimeoutError(f"no answer within {self._timeouts[1]}s") from None

    @contextlib.contextmanager
    def _converted(
        self, what: str, flight: Flight | None = None, events: int = 1
    ) -> Iterator[None]:
        """Redis' errors as ours, at the boundary: refused, unreachable, or sent and unanswered."""
        try:
            yield
        except _UNREACHABLE as exc:
            if flight is not None and flight.unanswered:
                raise OutcomeUnknown(
                    f"{what}: sent to Redis at {self.shown_url}, no answer ({exc});"
                    " it may have been stored",
                    unknown=events,
                ) from exc
            raise BrokerUnavailable(
                f"{what}: Redis at {self.shown_url} is unreachable: {exc}"
            ) from exc
        except RedisError as exc:
            raise BrokerError(f"{what}: Redis at {self.shown_url} refused: {exc}") from exc
