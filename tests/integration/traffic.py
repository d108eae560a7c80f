"""Counted load for fault tests: what publishers were told, what subscribers got.

Every event a test publishes carries a number ``n`` of its own in its
payload. A ``Ledger`` keeps, per topic, every ``n`` sent and the ``seq`` of
every one the gateway accepted (HTTP 200), and counts refusals (503
BROKER_UNAVAILABLE, 504 PUBLISH_OUTCOME_UNKNOWN, a node that is gone). A
``Recorder`` is a TestClient that keeps every event delivered to the
application with the epoch it belongs to. ``check_delivery`` then holds the gateway to its promises:

- in order: ``seq`` rises within an epoch, and an old epoch never returns;
- none twice: no ``n`` is delivered twice;
- none missing: every accepted ``n`` was delivered, with the ``seq`` its
  publisher was told, and ``seq`` has no hole; unless the client was told
  the topic's history was lost (``recovered: false``, a ``history_lost``
  gap), the only excuse the promises allow;
- nothing invented: every ``n`` delivered was sent (a publish whose answer
  was lost, a 504 after a timeout, may still have been stored: at least
  once, for publishers).

Publishing runs open loop at a steady rate (a new publish every
``interval``, however long the earlier ones take, with a cap on those in
flight), as real traffic does, so a frozen broker meets a queue of
publishes rather than a publisher politely waiting.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from eventwire.client.reconnect import Signal
from eventwire.envelope import Event
from eventwire.testing import TestClient

__all__ = [
    "Delivered",
    "Ledger",
    "Recorder",
    "SteadyPublisher",
    "check_delivery",
    "post_unpooled",
]

SETTLE = 20.0
"""Seconds the last event may take to reach every client once the faults are over."""


@dataclass(repr=False)
class Ledger:
    """What the publishers of one test were told, per topic."""

    sent: defaultdict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    accepted: defaultdict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    """topic -> n -> the seq the gateway answered."""
    refused: Counter[str] = field(default_factory=Counter)
    """Why publishes were not accepted: ``503 BROKER_UNAVAILABLE``, ``ConnectError``, ..."""
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: Signal = field(default_factory=Signal)

    def __repr__(self) -> str:
        sent = sum(len(numbers) for numbers in self.sent.values())
        accepted, refused = self.count_accepted(), dict(self.refused)
        return f"<Ledger sent {sent}, accepted {accepted}, refused {refused}>"

    def number(self, topic: str) -> int:
        """A new event number, recorded as sent to ``topic``."""
        n = next(self._numbers)
        self.sent[topic].add(n)
        return n

    def count_accepted(self) -> int:
        return sum(len(by_n) for by_n in self.accepted.values())

    async def accepted_at_least(self, count: int, timeout: float = SETTLE) -> None:
        """Return once ``count`` publishes were accepted, in all topics together."""
        async with asyncio.timeout(timeout):
            while self.count_accepted() < count:
                await self._changed.wait()

    async def refused_at_least(self, count: int, timeout: float = SETTLE) -> None:
        """Return once ``count`` publishes were refused."""
        async with asyncio.timeout(timeout):
            while self.refused.total() < count:
                await self._changed.wait()

    def record(self, topic: str, n: int, outcome: int | str) -> None:
        """``outcome``: the seq of an accepted publish, else why it was not."""
        if isinstance(outcome, int):
            self.accepted[topic][n] = outcome
        else:
            self.refused[outcome] += 1
        self._changed.fire()


class SteadyPublisher:
    """POSTs numbered events to ``topics`` through ``nodes`` (round robin) at a steady rate.

    ``http`` None: each publish on a connection of its own (``post_unpooled``),
    for hundreds in flight at once.
    """

    def __init__(
        self,
        http: httpx.AsyncClient | None,
        nodes: Sequence[str],
        topics: Sequence[str],
        ledger: Ledger,
        *,
        padding: int = 0,
    ) -> None:
        self.http = http
        self.topics = topics
        self.ledger = ledger
        self.timings: list[tuple[float, float]] = []
        """``(started, seconds)`` of every publish: its loop time when sent, how long it took."""
        self._nodes = itertools.cycle(nodes)
        self._padding = "x" * padding

    async def run(
        self,
        count: int,
        interval: float,
        *,
        in_flight: int = 64,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Send ``count`` publishes (spread over the topics), one every ``interval`` seconds.

        With ``stop``, no new publish is sent once it is set; those sent are awaited.
        """
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(in_flight)
        tasks: list[asyncio.Task[None]] = []
        due = loop.time()
        for i in range(count):
            await slots.acquire()
            if stop is not None and stop.is_set():
                break
            tasks.append(loop.create_task(self._one(self.topics[i % len(self.topics)], slots)))
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))
        await asyncio.gather(*tasks)

    async def until_accepted(self, topic: str, attempts: int = 100) -> int:
        """Publish to ``topic`` until one is accepted (after the faults); return its ``n``."""
        for _ in range(attempts):
            n = self.ledger.number(topic)
            if await self._send(topic, n) is not None:
                return n
            await asyncio.sleep(0.05)  # a node still reconnecting to its broker: try again
        refused = dict(self.ledger.refused)
        raise AssertionError(f"no publish to {topic} accepted in {attempts} attempts: {refused}")

    async def _one(self, topic: str, slots: asyncio.Semaphore) -> None:
        try:
            await self._send(topic, self.ledger.number(topic))
        finally:
            slots.release()

    async def _send(self, topic: str, n: int) -> int | None:
        """One publish; the seq if accepted."""
        payload = {"n": n, "padding": self._padding} if self._padding else {"n": n}
        data = {"entity_id": f"e{n}", "payload": payload}
        body = {"topic": topic, "event": "ADDED", "data": data}
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            status, answer = await self._post(next(self._nodes), body)
        except (httpx.TransportError, OSError, EOFError) as exc:  # a node gone, no answer
            self.ledger.record(topic, n, type(exc).__name__)
            return None
        finally:
            self.timings.append((started, loop.time() - started))
        if status != 200:
            code = answer.get("code") if isinstance(answer, dict) else None
            self.ledger.record(topic, n, f"{status} {code}")
            return None
        seq = int(answer["seq"])
        self.ledger.record(topic, n, seq)
        return seq

    async def _post(self, node: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self.http is None:
            return await post_unpooled(node, "/v1/publish", body)
        response = await self.http.post(node + "/v1/publish", json=body)
        return response.status_code, response.json() if response.content else None


async def post_unpooled(base_url: str, path: str, body: Any) -> tuple[int, Any]:
    """POST ``body`` as JSON on a connection of its own; the status and the decoded answer.

    No client pool to queue in: httpx's holds requests past its connection
    limit and slows down with hundreds in flight, which would be measured as
    the gateway's latency.
    """
    host, _, port = urlsplit(base_url).netloc.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        data = orjson.dumps(body)
        writer.write(
            b"POST %b HTTP/1.1\r\nHost: %b\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%b"
            % (path.encode(), host.encode(), len(data), data)
        )
        raw = await reader.read()
    finally:
        writer.close()
    head, _, content = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        raise EOFError(f"no HTTP answer from {base_url}: {raw[:80]!r}")
    return int(head.split(b" ", 2)[1]), orjson.loads(content) if content else None


@dataclass(frozen=True, slots=True)
class Delivered:
    """One event handed to the application: its place, its number, the connection it came on."""

    seq: int
    epoch: str | None
    n: int
    session: str | None


class Recorder(TestClient):
    """A TestClient that keeps, per topic, every event delivered and the epoch it was in."""

    def __init__(self, url: str | Sequence[str], **options: Any) -> None:
        super().__init__(url, **options)
        self.log: defaultdict[str, list[Delivered]] = defaultdict(list)
        self._numbers: defaultdict[str, set[int]] = defaultdict(set)
        self._progress = Signal()

    def _deliver(self, event: Event) -> None:
        position = self.positions.get(event.topic)
        payload = event.payload if isinstance(event.payload, dict) else {}
        n, seq = int(payload.get("n", 0)), event.seq or 0
        epoch = position.epoch if position else None
        self.log[event.topic].append(Delivered(seq, epoch, n, self.session_id))
        self._numbers[event.topic].add(n)
        self._progress.fire()
        super()._deliver(event)

    async def has(self, topic: str, numbers: Collection[int], timeout: float = SETTLE) -> None:
        """Wait until the events numbered ``numbers`` of ``topic`` were delivered."""
        wanted = set(numbers)
        try:
            async with asyncio.timeout(timeout):
                while not wanted <= self._numbers[topic]:
                    await self._progress.wait()
        except TimeoutError:
            missing = sorted(wanted - self._numbers[topic])
            raise AssertionError(
                f"{self.url}: {len(missing)} events of {topic} not delivered within "
                f"{timeout}s: n={missing[:20]}; gaps {self.gaps}; "
                f"last delivered {self.log[topic][-5:]}"
            ) from None


def check_delivery(client: Recorder, ledger: Ledger, topic: str) -> int:
    """Assert the promises above for ``client`` and ``topic``; return how many were delivered."""
    log = client.log[topic]
    where = f"{client.url} on {topic}"
    twice = [n for n, times in Counter(d.n for d in log).items() if times > 1]
    assert not twice, f"{where}: delivered twice: n={twice[:20]}"
    invented = {d.n for d in log} - ledger.sent[topic]
    assert not invented, f"{where}: delivered events nobody sent: n={sorted(invented)[:20]}"
    epochs: list[str | None] = []
    for before, after in itertools.pairwise(log):
        if after.epoch == before.epoch:
            assert after.seq > before.seq, f"{where}: out of order: {before} then {after}"
        else:
            assert after.epoch not in epochs, f"{where}: back to an old epoch: {after}"
            epochs.append(before.epoch)
    accepted = ledger.accepted[topic]
    wrong = [(d, accepted[d.n]) for d in log if d.n in accepted and d.seq != accepted[d.n]]
    assert not wrong, f"{where}: delivered with another seq than its publisher got: {wrong[:5]}"
    told_lost = any(gap.topic == topic and gap.history_lost for gap in client.gaps)
    if told_lost:
        return len(log)  # what was lost was reported: the application refetches
    missing = sorted(accepted.keys() - {d.n for d in log})
    assert not missing, f"{where}: accepted, never delivered, never reported: n={missing[:20]}"
    assert [d.seq for d in log] == list(range(1, len(log) + 1)), f"{where}: a hole in seq"
    assert not [gap for gap in client.gaps if gap.topic == topic], f"{where}: {client.gaps}"
    return len(log)
