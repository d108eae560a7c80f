"""The NATS broker: seq and history in one JetStream stream, live fan-out by republish.

Needs nats-py (``pip install 'eventwire[nats]'``) and nats-server 2.9 or later
with JetStream enabled (``nats-server -js``).

Every topic is a subject of one stream (``EVENTWIRE``, subjects ``ew.>``;
names: ``_nats_subjects``). JetStream numbers messages per stream, not per
subject, so a topic's ``seq`` travels in the message itself (``Ew-Seq``)
and a publish is a compare-and-set on the subject:

1. read the topic's last message (``Ew-Seq`` N, ``Ew-Epoch`` E, stream seq S);
2. publish with ``Ew-Seq: N+1``, ``Ew-Epoch: E`` and
   ``Nats-Expected-Last-Subject-Sequence: S``: JetStream stores it only if S
   is still the topic's last message, else answers "wrong last sequence"
   and the publisher reads again and retries.

Whoever wins, every stored ``Ew-Seq`` is its predecessor's plus one, so
seqs are contiguous under any number of publishing nodes. A topic with no
message starts a new epoch: its first message (or the seq-0 marker that a
position read leaves, so an empty topic's epoch holds through its first
publish) draws a random one, and every later message copies it. Losing the
history (a deleted or purged stream, a server restarted without storage,
a topic quiet for longer than ``retention``) therefore always comes with a
new epoch. The stream keeps ``history_size`` messages per subject (at
least one, the counter); ``history_age`` is applied when reading.

The stream republishes what it stored on ``ew-live.<topic>``; nodes
subscribe there (``_nats_link``), so a publish refused by the
compare-and-set never reaches anyone, and events arrive in stream order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import APIError, BadRequestError, NoStreamResponseError

from eventwire.brokers._interest import Interests
from eventwire.brokers._nats_history import StreamMissing, StreamReader, read_page
from eventwire.brokers._nats_link import Link
from eventwire.brokers._nats_stream import TopicLocks, ensure_stream, stream_config
from eventwire.brokers._nats_subjects import (
    EPOCH,
    EXPECTED_LAST,
    PREV,
    SEQ,
    NatsNames,
    Stored,
)
from eventwire.brokers._node import LinkedBroker, backoff, check_history, check_page
from eventwire.brokers._resume import Feed
from eventwire.brokers.base import (
    BrokerUnavailable,
    HistoryPage,
    InboundHandler,
    OutcomeUnknown,
    Position,
    ResetHandler,
)
from eventwire.brokers.memory import DEFAULT_HISTORY_AGE, DEFAULT_HISTORY_SIZE
from eventwire.brokers.presence.nats import NatsPresence
from eventwire.errors import BrokerError

__all__ = ["DEFAULT_PREFIX", "DEFAULT_STREAM", "IDLE_RETENTION", "NatsBroker"]

log = logging.getLogger("eventwire.brokers.nats")

DEFAULT_STREAM = "EVENTWIRE"
DEFAULT_PREFIX = "ew"
IDLE_RETENTION = 86400.0
"""Seconds a topic's last message outlives ``history_age`` by default (it holds the counter)."""

_WRONG_LAST_SEQUENCE = 10071
_URL_OPTIONS = frozenset({"stream", "prefix", "retention", "replicas"})

T = TypeVar("T")


class NatsBroker(NatsPresence, LinkedBroker[Link]):
    """A node's link to NATS JetStream.

    ``url`` is ``nats://[user:password@]host:port`` (several servers:
    ``nats://h1:4222,h2:4222``). ``stream`` and ``prefix`` name the stream
    and its subjects, so several gateways can share one NATS. ``retention``
    is how long the stream keeps a message (at least ``history_age``; by
    default ``history_age`` plus a day); ``replicas`` its replication in a
    cluster. Timings are seconds.
    """

    _kind = "NATS"

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str = DEFAULT_STREAM,
        prefix: str = DEFAULT_PREFIX,
        history_size: int = DEFAULT_HISTORY_SIZE,
        history_age: float | None = DEFAULT_HISTORY_AGE,
        retention: float | None = None,
        replicas: int = 1,
        connect_timeout: float = 1.0,
        command_timeout: float = 2.0,
        health_interval: float = 1.0,
        reconnect_wait: float = 0.25,
        backoff_max: float = 2.0,
    ) -> None:
        check_history(history_size, history_age)
        if retention is None and history_age is not None:
            retention = history_age + IDLE_RETENTION
        if retention is not None and history_age is not None and retention < history_age:
            raise ValueError(f"retention ({retention}s) must be at least history_age")
        self.url = url
        self.names = NatsNames(stream, prefix)
        self.history_size = history_size
        self.history_age = history_age
        self.retention = retention
        self.replicas = replicas
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._health_interval = health_interval
        self._reconnect_wait = reconnect_wait
        self._backoff_max = backoff_max
        self.interests = Interests()
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._feed: Feed | None = None
        self._link: Link | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks = TopicLocks()
        self._closing = True
        self.publish_conflicts = 0
        """Publishes that lost the compare-and-set to another one and were tried again."""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        history_age: float | None = DEFAULT_HISTORY_AGE,
    ) -> NatsBroker:
        """A broker for ``nats://host:port?stream=…&prefix=…&retention=…&replicas=…``."""
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = set(options) - _URL_OPTIONS
        if unknown:
            raise ValueError(
                f"unknown NATS URL options {sorted(unknown)}; known: {sorted(_URL_OPTIONS)}"
            )
        retention = options.get("retention")
        return cls(
            parts._replace(query="").geturl(),
            stream=options.get("stream", DEFAULT_STREAM),
            prefix=options.get("prefix", DEFAULT_PREFIX),
            history_size=history_size,
            history_age=history_age,
            retention=float(retention) if retention else None,
            replicas=int(options.get("replicas", "1")),
        )

    @property
    def servers(self) -> list[str]:
        """The URL as nats-py's server list (``nats://a,b`` is two servers)."""
        parts = urlsplit(self.url)
        auth, _, hosts = parts.netloc.rpartition("@")
        prefix = f"{parts.scheme}://{auth}@" if auth else f"{parts.scheme}://"
        return [prefix + host for host in hosts.split(",")]

    @property
    def shown_url(self) -> str:
        """The URL without its password, for messages and logs."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        return self.url.replace(f":{parts.password}@", ":***@", 1)

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, on_event: InboundHandler, on_reset: ResetHandler | None = None) -> None:
        """Connect, make sure the stream exists, bring the link up; BrokerUnavailable if not."""
        await self.close()
        self._closing = False
        self._feed = Feed(on_event, self.history, on_reset)
        self._link = Link(
            self.names,
            self.interests,
            self._feed,
            self._ensure_stream,
            timeout=self._command_timeout,
            backoff_max=self._backoff_max,
            name=f"nats broker {self.shown_url} stream {self.names.stream}",
        )
        try:
            await self._use(await self._connect(self._link))
            self._spawn(self._link.run())
            await self._link.bind(self._connected()[0])
            async with asyncio.timeout(self._connect_timeout + 2 * self._command_timeout):
                await self._link.wait_up()
        except TimeoutError:
            await self.close()
            raise BrokerUnavailable(
                f"NATS at {self.shown_url} answered, but stream {self.names.stream} did not come up"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the link and close the connection; later publishes raise BrokerUnavailable."""
        self._closing = True
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        nc, self._nc, self._js = self._nc, None, None
        if self._link is not None:
            self._link.unbind(lost=False)
        self._link, self._feed = None, None
        self.interests = Interests()  # a node that starts again declares its interest again
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(NatsError, OSError):
                await nc.close()

    async def _connect(self, link: Link) -> NatsClient:
        nc = NatsClient()

        async def disconnected() -> None:
            if nc is self._nc and not self._closing:
                link.disconnected()

        async def reconnected() -> None:
            if nc is self._nc and not self._closing:
                link.reconnected()

        async def closed() -> None:
            if nc is self._nc and not self._closing:
                self._spawn(self._replace(link))

        async def error(exc: Exception) -> None:
            if not self._closing:
                log.debug("nats broker %s: %s: %s", self.shown_url, type(exc).__name__, exc)

        try:
            await nc.connect(
                self.servers,
                name="eventwire",
                connect_timeout=self._connect_timeout,  # type: ignore[arg-type]
                allow_reconnect=False,  # the first connection fails fast (two tries)...
                max_reconnect_attempts=1,
                reconnect_time_wait=self._reconnect_wait,  # type: ignore[arg-type]
                ping_interval=self._health_interval,  # type: ignore[arg-type]
                max_outstanding_pings=2,
                pending_size=0,  # nothing is buffered while disconnected: publishes fail at once
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                closed_cb=closed,
                error_cb=error,
            )
        except (NatsError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"NATS at {self.shown_url} is unreachable: {exc!r}") from exc
        nc.options["allow_reconnect"] = True  # ...then reconnects for as long as it takes
        nc.options["max_reconnect_attempts"] = -1
        return nc

    async def _use(self, nc: NatsClient) -> None:
        self._nc, self._js = nc, nc.jetstream(timeout=self._command_timeout)
        with self._converted("creating the stream"):
            await self._ensure_stream()

    async def _replace(self, link: Link) -> None:
        """nats-py gave the connection up: open a new one, with backoff, until closed."""
        log.error("nats broker %s: the connection was closed; opening a new one", self.shown_url)
        link.unbind(lost=True)
        attempt = 0
        while not self._closing:
            try:
                nc = await self._connect(link)
                try:
                    await self._use(nc)
                    await link.bind(nc)
                    return
                except BrokerError:
                    self._nc = self._js = None  # so that closing it does not call us again
                    with contextlib.suppress(NatsError, OSError):
                        await nc.close()
                    raise
            except BrokerError as exc:
                attempt += 1
                delay = backoff(attempt, initial=0.05, maximum=self._backoff_max, cap=10)
                log.debug("nats broker %s: reconnecting failed (%s)", self.shown_url, exc)
                await asyncio.sleep(delay)

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the stream ----------------------------------------------------------------

    def stream_config(self) -> StreamConfig:
        """What this node needs of the stream."""
        return stream_config(self.names, self.history_size, self.retention, self.replicas)

    async def _ensure_stream(self) -> None:
        await ensure_stream(self._connected()[1], self.stream_config())

    async def _with_stream(
        self, step: Callable[[], Awaitable[T]], deadline: float | None = None
    ) -> T:
        """Run ``step``; if the stream is gone, make it again (a new epoch) and run it once more.

        Making it again ends by ``deadline`` (loop time) when one is given.
        """
        try:
            return await step()
        except (StreamMissing, NoStreamResponseError):
            log.warning("NATS stream %s is missing; creating it again", self.names.stream)
            async with self._until(deadline):
                await self._ensure_stream()
            return await step()

    @contextlib.asynccontextmanager
    async def _until(self, deadline: float | None) -> AsyncIterator[None]:
        """A step that must end by ``deadline`` (loop time; None: its own timeouts bound it)."""
        try:
            async with asyncio.timeout_at(deadline):
                yield
        except TimeoutError as exc:
            if str(exc):
                raise
            raise TimeoutError(f"no answer within {self._command_timeout}s") from None

    # -- the Broker ----------------------------------------------------------------

    async def publish(self, topic: str, body: bytes) -> int:
        """Store the event as the topic's next seq (compare-and-set), which also sends it live.

        Takes ``command_timeout`` at most, waiting behind this node's earlier
        publishes to the topic included: a publish that cannot be sent by
        then raises BrokerUnavailable, so a frozen server leaves no queue
        behind it. One sent and not acknowledged raises OutcomeUnknown.
        """
        subject = self.names.stored(topic)
        self._connected()
        deadline = asyncio.get_running_loop().time() + self._command_timeout
        with self._converted("publish"):
            async with self._locks.hold(topic, deadline):  # this node's publishes never race
                return await self._with_stream(
                    lambda: self._append(subject, body, deadline), deadline
                )

    async def _append(self, subject: str, body: bytes, deadline: float) -> int:
        loop, conflicts = asyncio.get_running_loop(), 0
        while True:
            async with self._until(deadline):
                last = await self._reader().last(subject)
            seq = 1 if last is None else last.seq + 1
            epoch = secrets.token_hex(8) if last is None else last.epoch
            prev = 0 if last is None else last.stream_seq
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no answer within {self._command_timeout}s")
            if await self._store(subject, body, seq, epoch, prev, left) is not None:
                return seq
            conflicts += 1
            self.publish_conflicts += 1
            if loop.time() >= deadline:
                raise BrokerUnavailable(
                    f"publish to {subject}: still contended after {conflicts} attempts"
                )
            if conflicts > 2:  # several nodes publishing to one topic: spread them out
                pause = random.uniform(0, min(0.05, 0.001 * 2.0**conflicts))
                await asyncio.sleep(min(pause, deadline - loop.time()))

    async def _store(
        self, subject: str, body: bytes, seq: int, epoch: str, prev: int, timeout: float
    ) -> int | None:
        """Publish if ``prev`` is still the subject's last message: its stream seq, else None.

        OutcomeUnknown when the publish went out and no acknowledgement came
        within ``timeout``: JetStream may have stored it.
        """
        headers = {SEQ: str(seq), EPOCH: epoch, PREV: str(prev), EXPECTED_LAST: str(prev)}
        js = self._connected()[1]
        try:
            ack = await js.publish(subject, body, timeout=timeout, headers=headers)
        except BadRequestError as exc:
            if exc.err_code == _WRONG_LAST_SEQUENCE:
                return None
            raise
        except TimeoutError as exc:
            raise OutcomeUnknown(
                f"{subject}: sent to NATS at {self.shown_url}, not acknowledged within"
                f" {timeout:.2f}s; it may have been stored"
            ) from exc
        return ack.seq

    async def position(self, topic: str) -> Position:
        subject = self.names.stored(topic)
        with self._converted("position"):
            last = await self._with_stream(lambda: self._last_or_mark(subject))
        return Position(last.seq, last.epoch)

    async def _last_or_mark(self, subject: str) -> Stored:
        """The subject's last message; for an empty one, the marker fixing its next epoch."""
        for _ in range(3):
            last = await self._reader().last(subject)
            if last is not None:
                return last
            epoch = secrets.token_hex(8)
            try:
                stream_seq = await self._store(subject, b"", 0, epoch, 0, self._command_timeout)
            except OutcomeUnknown as exc:  # a read: whether the marker landed, it is tried again
                raise BrokerUnavailable(str(exc)) from exc
            if stream_seq is not None:
                return Stored(0, epoch, stream_seq, 0, time.time(), b"")
        raise BrokerUnavailable(f"{subject}: its epoch could not be settled (purged repeatedly?)")

    async def history(self, topic: str, since: int, limit: int) -> HistoryPage:
        """At most ``limit`` events of ``topic`` after ``since``, and the position they end at."""
        check_page(since, limit)
        subject = self.names.stored(topic)
        with self._converted("history"):
            last = await self._with_stream(lambda: self._last_or_mark(subject))
            cutoff = None if self.history_age is None else time.time() - self.history_age
            events = await read_page(
                self._reader(),
                subject,
                last,
                since,
                limit,
                history_size=self.history_size,
                cutoff=cutoff,
            )
        first = events[0][0] if events else last.seq + 1
        truncated = since < last.seq and first > since + 1
        return HistoryPage(events, Position(last.seq, last.epoch), truncated)

    # -- health --------------------------------------------------------------------

    async def ping(self) -> float:
        """Round trip of a PING to the server, in seconds."""
        nc = self._connected()[0]
        started = time.perf_counter()
        with self._converted("ping"):
            await nc.flush(self._command_timeout)  # type: ignore[arg-type]
        return time.perf_counter() - started

    def counters(self) -> dict[str, int]:
        """Link losses, events recovered or missed, epoch changes, publish conflicts."""
        return {**super().counters(), "publish_conflicts": self.publish_conflicts}

    # -- helpers -------------------------------------------------------------------

    def _connected(self) -> tuple[NatsClient, JetStreamContext]:
        nc, js = self._nc, self._js
        if nc is None or js is None:
            raise self._not_started()
        if not nc.is_connected:
            raise BrokerUnavailable(f"NATS at {self.shown_url} is unreachable (reconnecting)")
        return nc, js

    def _reader(self) -> StreamReader:
        return StreamReader(self._connected()[1], self.names)

    @contextlib.contextmanager
    def _converted(self, what: str) -> Iterator[None]:
        """NATS' errors as ours, at the boundary: unreachable or refused."""
        try:
            yield
        except BrokerError:
            raise
        except MaxPayloadError as exc:
            raise BrokerError(f"{what}: the event is larger than NATS accepts") from exc
        except (APIError, ValueError) as exc:
            if isinstance(exc, APIError) and exc.code == 503:
                raise BrokerUnavailable(f"{what}: JetStream is unavailable: {exc}") from exc
            raise BrokerError(f"{what}: NATS at {self.shown_url} refused: {exc}") from exc
        except (NatsError, StreamMissing, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(
                f"{what}: NATS at {self.shown_url} is unreachable: {exc!r}"
            ) from exc
