"""The soak's subscribers: raw ``websockets`` clients that speak the protocol themselves.

Not eventwire's client, so that what the soak judges is what the server
put on the wire. Each subscriber follows a few topics; every 5 to 20 s it
drops its connection, half the time by aborting the TCP connection (no
close frame: a phone losing its network), half the time with a clean close,
and connects again to a random node, subscribing with ``since`` (its last
position per topic). After a close by the server or a failed connection it
waits as eventwire's clients do, a full-jitter exponential backoff reset
only by a connection that lasted (``_STABLE``), but capped at 2 s instead of
30 so that the soak measures the server, not the backoff. Every frame goes
into the subscriber's ``SubscriberLedger``, which keeps the client-side state.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.soak.wire import SubscriberLedger

__all__ = ["Subscriber"]

_OPEN_TIMEOUT = 5.0
_CLOSE_TIMEOUT = 2.0
_RESUBSCRIBE = 0.5
"""Seconds before topics a SUBSCRIBE was refused are asked for again."""
_RESUBSCRIBES = 20
_MAX_SESSIONS = 100_000
"""A bound on one subscriber's connections in a run (it makes one every few seconds)."""
_BACKOFF = (0.1, 2.0)
"""Initial and largest backoff, in seconds."""
_STABLE = 5.0
"""A connection that stayed open this long starts the backoff again from its initial delay."""


class Subscriber:
    """One client: its topics, its ledger, and the loop that keeps it connected."""

    def __init__(
        self,
        ledger: SubscriberLedger,
        nodes: Callable[[], list[tuple[str, str]]],
        *,
        drop_every: tuple[float, float],
        rng: random.Random,
    ) -> None:
        self.ledger = ledger
        self.nodes = nodes
        """The nodes up now: (name, WebSocket URL)."""
        self.drop_every = drop_every
        self.rng = rng
        self.calm = asyncio.Event()
        """Once set, the subscriber stops dropping its connections (the drain)."""
        self._requests = itertools.count(1)
        self._asked: dict[str, list[str]] = {}
        self._later: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected and subscribed until ``stop``."""
        attempts = 0
        for _ in range(_MAX_SESSIONS):
            if stop.is_set():
                return
            started = time.monotonic()
            if await self._connect_once(stop):
                attempts = 0  # our own drop: back at once, as after a network change
                continue
            if time.monotonic() - started >= _STABLE:
                attempts = 0
            initial, largest = _BACKOFF
            delay = self.rng.uniform(0.0, min(largest, initial * 2 ** min(attempts, 10)))
            attempts += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _connect_once(self, stop: asyncio.Event) -> bool:
        """One connection to a random node, until it ends; whether we ended it."""
        nodes = self.nodes()
        try:
            if not nodes:
                raise ConnectionRefusedError("no node is up")
            return await self._session(*self.rng.choice(nodes), stop)
        except ConnectionClosed:
            return False  # closed by the server while subscribing
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.ledger.counts["connect_failures"] += 1
            self.ledger.counts[f"connect_failure_{type(exc).__name__}"] += 1
            return False

    async def _session(self, name: str, url: str, stop: asyncio.Event) -> bool:
        async with connect(
            url,
            open_timeout=_OPEN_TIMEOUT,
            close_timeout=_CLOSE_TIMEOUT,
            compression=None,
            proxy=None,
            max_size=2**22,
            max_queue=None,
        ) as ws:
            self.ledger.connected(time.monotonic(), name)
            reader = asyncio.create_task(self._read(ws))
            ours = False
            try:
                await self._subscribe(ws, list(self.ledger.topics))
                ours = await self._hold(ws, reader, stop)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(reader), _CLOSE_TIMEOUT + 1)
            finally:
                reader.cancel()
                for task in self._later:
                    task.cancel()
                received = ws.protocol.close_rcvd
                code = None if received is None else received.code
                self.ledger.closed(time.monotonic(), code, ours)
        return ours

    async def _hold(
        self, ws: ClientConnection, reader: asyncio.Task[None], stop: asyncio.Event
    ) -> bool:
        """Keep the connection until the server ends it (False) or we drop it (True)."""
        stopping = asyncio.create_task(stop.wait())
        drop_at = time.monotonic() + self.rng.uniform(*self.drop_every)
        try:
            while True:
                timeout = None if self.calm.is_set() else max(0.0, drop_at - time.monotonic())
                done, _ = await asyncio.wait(
                    {reader, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if reader in done:
                    return False
                if stopping in done:
                    await ws.close()
                    return True
                if not self.calm.is_set():
                    await self._drop(ws)
                    return True
        finally:
            stopping.cancel()

    async def _drop(self, ws: ClientConnection) -> None:
        if self.rng.random() < 0.5:
            self.ledger.counts["drops_abort"] += 1
            ws.transport.abort()
        else:
            self.ledger.counts["drops_clean"] += 1
            await ws.close()

    async def _subscribe(self, ws: ClientConnection, topics: list[str]) -> None:
        since = self.ledger.subscribing(topics, time.monotonic())
        request = f"s{next(self._requests)}"
        self._asked[request] = topics
        payload: dict[str, Any] = {"topics": topics}
        if since:
            payload["since"] = since
        data = {"entity_id": request, "payload": payload}
        frame = {"topic": "system", "event": "SUBSCRIBE", "data": data}
        await ws.send(orjson.dumps(frame).decode())

    async def _read(self, ws: ClientConnection) -> None:
        """Every frame into the ledger, until the connection ends."""
        retries = 0
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                try:
                    refused = self._frame(orjson.loads(raw))
                except (ValueError, KeyError, TypeError) as exc:
                    self.ledger.note("bad_frames", f"{exc!r}: {raw!r}"[:300])
                    continue
                if refused and retries < _RESUBSCRIBES:
                    retries += 1
                    later = asyncio.create_task(self._subscribe_later(ws, refused))
                    self._later.add(later)
                    later.add_done_callback(self._later.discard)
                elif refused:
                    ws.transport.abort()  # a new connection may do better

    async def _subscribe_later(self, ws: ClientConnection, topics: list[str]) -> None:
        await asyncio.sleep(_RESUBSCRIBE)
        with contextlib.suppress(ConnectionClosed):
            await self._subscribe(ws, topics)

    def _frame(self, frame: dict[str, Any]) -> list[str]:
        """One frame; the topics a SUBSCRIBED left out (refused), to ask for again."""
        now = time.monotonic()
        topic, kind = frame.get("topic"), frame.get("event")
        data = frame.get("data") or {}
        payload = data.get("payload") or {}
        if topic == "system" and kind == "SUBSCRIBED":
            return self._subscribed(now, data.get("entity_id", ""), payload)
        if topic == "system" and kind == "RECOVERY_FAILED":
            position = payload.get("position") or {}
            self.ledger.recovery_failed_at(
                now, payload["topic"], position["seq"], position["epoch"], payload.get("reason", "")
            )
        elif topic == "error":
            self.ledger.counts[f"error_{payload.get('code')}"] += 1
            request, details = data.get("entity_id", ""), payload.get("details") or {}
            if request in self._asked and "topic" not in details:
                return self._asked.pop(request)  # refused whole (BROKER_UNAVAILABLE): again, later
        elif topic != "system":
            self.ledger.event(now, str(topic), int(frame["seq"]), payload["n"], payload["t"])
        return []

    def _subscribed(self, now: float, request: str, payload: dict[str, Any]) -> list[str]:
        positions = {
            topic: (int(p["seq"]), str(p["epoch"]))
            for topic, p in (payload.get("positions") or {}).items()
        }
        recovered = payload.get("recovered")
        self.ledger.subscribed(now, positions, recovered if isinstance(recovered, dict) else None)
        asked = self._asked.pop(request, [])
        refused = [topic for topic in asked if topic not in positions]
        self.ledger.counts["topics_refused"] += len(refused)
        return refused
