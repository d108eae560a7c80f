"""The bystander's side of an attack: a normal client, live traffic, and the checks after.

While an attacker works on a live gateway, a ``Bystander`` (a plain
websockets client subscribed to ``TOPIC``) reads everything, ``Traffic``
publishes numbered events it must receive, all of them and in order, and
``Probe`` measures what a user would notice: the bystander's PING round
trip and ``GET /healthz``. ``server_errors`` reads the captured log for
what the gateway must never write (an ERROR, a task's lost exception).

``fuzz_settings`` sizes the Hypothesis fuzzers: a fixed, derandomized
sample in ``make test``; ``EVENTWIRE_FUZZ_EXAMPLES=5000`` for a random soak.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from eventwire.server import Gateway
from tests.adversarial.wire import command

__all__ = [
    "ROUND_TRIP",
    "TOPIC",
    "Bystander",
    "Probe",
    "Traffic",
    "fuzz_settings",
    "fuzz_timeout",
    "healthz",
    "server_errors",
]

TOPIC = "watch:bystander"
ROUND_TRIP = 1.0
"""Seconds a PING round trip or GET /healthz may take under attack: responsiveness, not speed."""
SOAK = "EVENTWIRE_FUZZ_EXAMPLES"


class Bystander:
    """A normal client subscribed to ``TOPIC``: records events, answers round trips."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.numbers: list[int] = []
        self.seqs: list[int] = []
        self.unexpected: list[Any] = []
        self._pongs: dict[str, asyncio.Future[None]] = {}
        self._count = 0
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def join(cls, ws_url: str, jwt: str | None = None) -> Bystander:
        """Connect to ``ws_url`` (with ``?token=jwt``) and subscribe to ``TOPIC``."""
        ws = await connect(ws_url if jwt is None else f"{ws_url}?token={jwt}", open_timeout=5.0)
        assert orjson.loads(await ws.recv())["event"] == "CONNECTED"
        await ws.send(command("SUBSCRIBE", "watch", {"topics": [TOPIC]}).decode())
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 5.0))
        assert reply["event"] == "SUBSCRIBED", reply
        return cls(ws)

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                frame = orjson.loads(message)
                if frame["topic"] == TOPIC:
                    self.numbers.append(frame["data"]["payload"]["n"])
                    self.seqs.append(frame["seq"])
                elif frame["event"] == "PONG" and frame["data"]["entity_id"] in self._pongs:
                    waiter = self._pongs.pop(frame["data"]["entity_id"])
                    if not waiter.done():  # the round trip was given up on
                        waiter.set_result(None)
                else:
                    self.unexpected.append(frame)

    async def round_trip(self, timeout: float = 5.0) -> float:
        """Seconds a PING command takes to come back as PONG."""
        self._count += 1
        request_id = f"rt-{self._count}"
        done = self._pongs[request_id] = asyncio.get_running_loop().create_future()
        started = time.monotonic()
        await self.ws.send(command("PING", request_id).decode())
        await asyncio.wait_for(done, timeout)
        return time.monotonic() - started

    async def received(self, count: int, timeout: float = 5.0) -> list[int]:
        """The event numbers received, once ``count`` are in (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while len(self.numbers) < count and time.monotonic() < deadline:
            if self._reader.done():
                break
            await asyncio.sleep(0.005)
        return list(self.numbers)

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


class Traffic:
    """Numbered events on ``TOPIC``, published through the gateway as a back end would."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.sent = 0

    async def publish(self, count: int, pause: float = 0.0) -> None:
        for _ in range(count):
            self.sent += 1
            data = {"entity_id": f"tick-{self.sent}", "payload": {"n": self.sent}}
            await self.gateway.publish({"topic": TOPIC, "event": "TICK", "data": data})
            await asyncio.sleep(pause)

    def expected(self) -> list[int]:
        return list(range(1, self.sent + 1))


async def healthz(url: str, timeout: float = 5.0) -> float:
    """Seconds ``GET /healthz`` takes on a new connection; asserts it answered 200."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200, response.text
    return time.monotonic() - started


class Probe:
    """Measures the bystander's round trip and /healthz, again and again, while a task runs."""

    def __init__(self, bystander: Bystander, url: str) -> None:
        self.bystander = bystander
        self.url = url
        self.round_trips: list[float] = []
        self.health: list[float] = []

    async def during(self, work: asyncio.Future[Any] | asyncio.Task[Any]) -> None:
        """Probe until ``work`` is done, at least once, then once more after it."""
        while True:
            await self.once()
            if work.done():
                break
            await asyncio.wait([work], timeout=0.05)
        await self.once()

    async def once(self) -> None:
        self.round_trips.append(await self.bystander.round_trip())
        self.health.append(await healthz(self.url))

    def worst(self) -> tuple[float, float]:
        return max(self.round_trips, default=0.0), max(self.health, default=0.0)


def server_errors(records: Sequence[logging.LogRecord]) -> list[str]:
    """What the gateway logged that it never should: ERRORs, lost task exceptions."""
    gc.collect()  # a task dropped with its exception says so when it is collected
    return [
        f"{record.name}: {record.getMessage()}"
        for record in records
        if record.levelno >= logging.ERROR or "never retrieved" in record.getMessage()
    ]


def fuzz_settings(examples: int) -> settings:
    """``examples`` derandomized ones by default; ``EVENTWIRE_FUZZ_EXAMPLES`` random ones.

    By default the examples are the same on every run (derandomized, no
    database): ``make test`` stays repeatable and a failure reproduces by
    running the test again, while the sample cannot grow a new failure in an
    unrelated change. A soak draws fresh examples each run and keeps failing
    ones in ``.hypothesis/`` so the next run tries them first; it prints the
    ``@reproduce_failure`` blob of any failure to turn into a deterministic test.
    """
    common: dict[str, Any] = {
        "deadline": None,
        "suppress_health_check": [
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    }
    soak = os.environ.get(SOAK)
    if soak:
        database = DirectoryBasedExampleDatabase(".hypothesis/eventwire-fuzz")
        return settings(max_examples=int(soak), database=database, print_blob=True, **common)
    return settings(max_examples=examples, derandomize=True, database=None, **common)


def fuzz_timeout(examples: int, per_example: float = 3.0) -> float:
    """pytest-timeout's budget for a fuzzer: generous per example, for a soak too."""
    count = int(os.environ.get(SOAK) or examples)
    return max(120.0, count * per_example)
