"""The soak's publisher: ``POST /v1/publish`` at a steady rate, to random nodes, every answer kept.

Open loop, as real traffic is: a new publish is due every ``1 / rate``
seconds however long earlier ones take, so a frozen broker meets a queue
of publishes rather than a publisher politely waiting. Each event carries
its number ``n`` and its send time ``t`` in its payload; the ledger keeps
the answer (200 and its ``seq``, another status and its error code, a
timeout, a failed connection) and how long it took.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence

import h11
import orjson

from bench.soak.http import HttpPool
from bench.soak.ledger import PublishLedger, PublishRecord

__all__ = ["Publisher"]


class Publisher:
    """Publishes to ``topics`` through the nodes ``urls()`` names at that moment."""

    def __init__(
        self,
        http: HttpPool,
        urls: Callable[[], list[str]],
        topics: Sequence[str],
        ledger: PublishLedger,
        *,
        rate: float,
        timeout: float,
        rng: random.Random,
    ) -> None:
        self.http = http
        self.urls = urls
        self.topics = topics
        self.ledger = ledger
        self.rate = rate
        self.timeout = timeout
        self.rng = rng
        self.crashes: list[str] = []
        """Publishes that failed in the soak's own code: its bugs, not the server's."""

    async def run(self, seconds: float) -> None:
        """Publish for ``seconds``; return once every publish sent was answered or timed out."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rate
        in_flight = asyncio.Semaphore(max(1, int(self.rate * (self.timeout + 1))))
        tasks: set[asyncio.Task[None]] = set()
        due = time.monotonic()
        for n in range(1, int(seconds * self.rate) + 1):
            await in_flight.acquire()
            urls = self.urls()
            url = self.rng.choice(urls) if urls else None
            task = loop.create_task(self._publish(in_flight, url, n, self.rng.choice(self.topics)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout + 5)

    async def _publish(
        self, in_flight: asyncio.Semaphore, url: str | None, n: int, topic: str
    ) -> None:
        try:
            if url is None:  # every node is down
                record = PublishRecord(n, topic, time.monotonic(), 0.0, "error", "no node up")
            else:
                record = await self._send(url, n, topic)
        except Exception as exc:  # a bug of the soak: kept for the report, never lost
            self.crashes.append(repr(exc))
            record = PublishRecord(n, topic, time.monotonic(), 0.0, "error", type(exc).__name__)
        finally:
            in_flight.release()
        self.ledger.add(record)

    async def _send(self, url: str, n: int, topic: str) -> PublishRecord:
        sent_at = time.monotonic()
        data = {"entity_id": f"e{n}", "payload": {"n": n, "t": sent_at}}
        body = orjson.dumps({"topic": topic, "event": "ADDED", "data": data})
        try:
            response = await self.http.post(url + "/v1/publish", body, self.timeout)
        except TimeoutError:
            return PublishRecord(n, topic, sent_at, self.timeout, "timeout", "no answer")
        except (OSError, h11.ProtocolError) as exc:  # a node that is down, or went down meanwhile
            latency = time.monotonic() - sent_at
            return PublishRecord(n, topic, sent_at, latency, "error", type(exc).__name__)
        latency = time.monotonic() - sent_at
        answer = _json(response.body)
        seq = answer.get("seq")
        if response.status == 200 and isinstance(seq, int):
            return PublishRecord(n, topic, sent_at, latency, "200", seq=seq)
        code = str(answer.get("code", ""))
        return PublishRecord(n, topic, sent_at, latency, str(response.status), code)


def _json(content: bytes) -> dict[str, object]:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
