"""One broker's soak, from the first process started to the last one reaped.

1. Start the broker and the nodes; connect every subscriber and wait until
   each has subscribed to its topics.
2. For ``plan.seconds``: publish, let subscribers drop and come back,
   inject a fault every 30-45 s, and watch the soak's own event loop for
   stalls (which would look like the server's silences).
3. Drain: subscribers stop dropping, and get ``plan.drain`` seconds to
   catch up with every accepted event.
4. Stop everything (on Ctrl-C or an error too), keep the logs, judge.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.soak.accounting import Findings, judge
from bench.soak.chaos import Chaos
from bench.soak.http import HttpPool
from bench.soak.ledger import ChaosWindow, LatencyLog, PublishLedger, SeqBook
from bench.soak.logscan import LogFindings, scan
from bench.soak.plan import SoakPlan
from bench.soak.processes import Cluster
from bench.soak.publisher import Publisher
from bench.soak.subscribers import Subscriber
from bench.soak.wire import SubscriberLedger

__all__ = ["RunResult", "say", "soak"]

_SUBSCRIBED_WITHIN = 60.0
_STALL_PERIOD = 0.05
_STALL = 0.25
"""The soak's own loop this late is a stall: the silences it causes are not the server's."""

Interval = tuple[float, float]


@dataclass(slots=True)
class RunResult:
    """One broker's run: what was measured, and in what circumstances."""

    broker: str
    plan: SoakPlan
    findings: Findings
    logs: LogFindings
    chaos: list[ChaosWindow]
    stalls: list[Interval]
    origin: float
    """When publishing started (``time.monotonic()``): the report's times are relative to it."""
    elapsed: float
    drained: float | None
    """Seconds the subscribers took to catch up after the last publish (None: not in time)."""
    log_folder: Path
    crashes: list[str]
    """Subscriber tasks that ended in an exception: a bug of the soak."""


class _Run:
    """Everything one run records."""

    def __init__(self, cluster: Cluster, plan: SoakPlan) -> None:
        self.cluster = cluster
        self.plan = plan
        self.latencies, self.seqs, self.publishes = LatencyLog(), SeqBook(), PublishLedger()
        self.stalls: list[Interval] = []
        self.chaos: list[ChaosWindow] = []
        self.origin = time.monotonic()
        self.drained: float | None = None
        self.crashes: list[str] = []
        rng = random.Random(plan.seed)
        topics = plan.topic_names()
        self.subscribers = [
            Subscriber(
                self._ledger(sid, tuple(rng.sample(topics, plan.topics_each))),
                self._nodes,
                drop_every=plan.drop_every,
                rng=random.Random(rng.random()),
            )
            for sid in range(1, plan.subscribers + 1)
        ]
        self.ledgers = [sub.ledger for sub in self.subscribers]

    def _ledger(self, sid: int, topics: tuple[str, ...]) -> SubscriberLedger:
        return SubscriberLedger(
            sid, topics, latencies=self.latencies, seqs=self.seqs, silence=self.plan.silence
        )

    def _nodes(self) -> list[tuple[str, str]]:
        return [(node.name, node.ws_url) for node in self.cluster.up()]

    async def measure(self) -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(sub.run(stop)) for sub in self.subscribers]
        try:
            async with httpx.AsyncClient(trust_env=False) as http:
                await _until(self._all_subscribed, _SUBSCRIBED_WITHIN)
                say(f"{len(self.subscribers)} subscribers subscribed; publishing")
                watch = asyncio.create_task(_watch_loop(stop, self.stalls))
                try:
                    await self._load(http)
                    say(f"published; {len(self.chaos)} faults; draining")
                    self.drained = await self._drain()
                finally:
                    stop.set()
                    await watch
                end = time.monotonic()
                for ledger in self.ledgers:
                    ledger.finish(end)
        finally:
            self.crashes += await _stop_all(stop, tasks)

    async def _load(self, http: httpx.AsyncClient) -> None:
        plan = self.plan
        pool = HttpPool()
        publisher = Publisher(
            pool, self.cluster.urls, plan.topic_names(), self.publishes,
            rate=plan.rate, timeout=plan.publish_timeout, rng=random.Random(plan.seed + 1),
        )  # fmt: skip
        chaos = Chaos(self.cluster, plan, random.Random(plan.seed + 2), http)
        self.chaos = chaos.windows
        self.origin = time.monotonic()
        try:
            await asyncio.gather(publisher.run(plan.seconds), chaos.run(plan.seconds))
        finally:
            pool.close()
            self.crashes += publisher.crashes

    def _all_subscribed(self) -> bool:
        return all(c.first is not None for ledger in self.ledgers for c in ledger.cursors.values())

    async def _drain(self) -> float | None:
        """Subscribers stop dropping and catch up; how long it took, or None."""
        for sub in self.subscribers:
            sub.calm.set()
        tops = self.publishes.top_seqs()
        try:
            return await _until(
                lambda: all(s.caught_up(tops) for s in self.ledgers), self.plan.drain
            )
        except TimeoutError:
            return None

    def judge(self) -> Findings:
        return judge(
            self.publishes, self.ledgers, self.latencies, self.seqs, self.chaos,
            settle=self.plan.settle, stalls=self.stalls, silence=self.plan.silence,
            origin=self.origin,
        )  # fmt: skip


async def soak(broker: str, plan: SoakPlan, out: Path) -> RunResult:
    """Run the soak on ``broker`` (``redis`` or ``nats``); its logs are kept under ``out``."""
    started = time.monotonic()
    folder = out / f"logs-{broker}"
    with tempfile.TemporaryDirectory(prefix=f"soak-{broker}-") as tmp:
        cluster = Cluster(broker, plan.nodes, Path(tmp))
        try:
            await cluster.start()
            say(f"{broker} and {plan.nodes} nodes started")
            run = _Run(cluster, plan)
            await run.measure()
            say("subscribers stopped")
        finally:
            await cluster.close()
            kept = cluster.keep_logs(folder)
            say("servers stopped")
    _write_publishes(out / f"publishes-{broker}.csv", run.publishes, run.origin)
    logs = LogFindings()
    for path in kept:
        if path.name.startswith("node-"):
            logs.add(scan(path.stem, path.read_text(errors="replace")))
    findings = run.judge()
    say("judged")
    return RunResult(
        broker, plan, findings, logs, run.chaos, run.stalls, run.origin,
        time.monotonic() - started, run.drained, folder, run.crashes,
    )  # fmt: skip


def _write_publishes(path: Path, publishes: PublishLedger, origin: float) -> None:
    """Every publish, for a closer look: n, topic, sent (s from the start), latency, outcome."""
    lines = ["n,topic,sent_s,latency_s,status,detail,seq"]
    for r in sorted(publishes.records.values(), key=lambda r: r.n):
        sent = r.sent_at - origin
        lines.append(
            f"{r.n},{r.topic},{sent:.4f},{r.latency:.4f},{r.status},{r.detail},{r.seq or ''}"
        )
    path.write_text("\n".join(lines) + "\n")


def say(what: str) -> None:
    """Progress on stderr: a long run should show what it is doing."""
    print(f"soak: {time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


async def _until(condition: Callable[[], bool], timeout: float) -> float:
    """Poll ``condition`` every 50 ms; the seconds it took. TimeoutError past ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not within {timeout:.0f}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _watch_loop(stop: asyncio.Event, stalls: list[Interval]) -> None:
    """Record every stretch in which this process's event loop ran late."""
    last = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(_STALL_PERIOD)
        now = time.monotonic()
        if now - last > _STALL_PERIOD + _STALL:
            stalls.append((last, now))
        last = now


async def _stop_all(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> list[str]:
    """Subscribers close their connections (cancelled after 10 s); how any of them crashed."""
    stop.set()
    _, pending = await asyncio.wait(tasks, timeout=10.0)
    for task in pending:
        task.cancel()
    ended = await asyncio.gather(*tasks, return_exceptions=True)
    return [repr(e) for e in ended if isinstance(e, Exception)]
