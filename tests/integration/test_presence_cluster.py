"""Presence across gateway nodes on a real Redis and a real NATS, and nodes that die or stop.

Node A runs in this process; node B is either another in-process gateway or
``python -m eventwire serve`` in a process of its own, which the test can
SIGKILL (a crash: no goodbye to anyone) or SIGSTOP. Presence leases are a
second or so, so some waits are the leases passing: they are bounded by the
lease plus its renewal interval, and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from eventwire.auth import mint
from eventwire.server import Gateway, Settings
from eventwire.server.presence import tracker
from eventwire.testing import running_gateway
from tests.integration.conftest import TIMEOUT
from tests.integration.natsproc import NatsProcess
from tests.integration.redisproc import RedisProcess
from tests.integration.serverproc import STARTUP, free_port, running

SECRET = "presence-cluster-secret-0123456789abcdef"
ADMIN_KEY = "presence-cluster-admin-0123456789abcdef"
TTL = 1.0
"""presence_ttl of every node here: a dead node's users go 1 to 1.33 s after its last renewal."""
SLACK = 0.15
"""Seconds a renewal may come late (its own round trip, a busy machine)."""
HANDOFF = 1.0
"""The handoff lease in these tests (5 s in production), kept well apart from a 30 s ttl."""


def node_settings(broker: str, **more: Any) -> dict[str, Any]:
    return {
        "broker": broker,
        "jwt_secret": SECRET,
        "admin_key": ADMIN_KEY,
        "grant_subscribe": ["room:*"],
        "presence_events": ["room:*"],
        "presence_ttl": TTL,
        **more,
    }


@pytest.fixture(params=["redis", "nats"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A Redis, then a NATS JetStream, of this test's own."""
    if request.param == "nats":
        pytest.importorskip("nats", reason="the NATS broker needs nats-py (eventwire[nats])")
        with running(NatsProcess(tmp_path)) as nats:
            yield nats.url
    else:
        with running(RedisProcess(tmp_path)) as redis:
            yield redis.url


class NodeProcess:
    """``python -m eventwire serve`` with the presence settings, in a process of its own."""

    def __init__(self, broker: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.config = workdir / "node-b.toml"
        settings = node_settings(broker, host="127.0.0.1", port=self.port, shutdown_grace=1.0)
        self.config.write_text(
            "".join(
                f"{name} = {orjson.dumps(value).decode()}\n" for name, value in settings.items()
            )
        )
        self.log = workdir / "node-b.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "eventwire", "serve", "--config", str(self.config),
                stdout=log, stderr=log,
            )  # fmt: skip
        async with httpx.AsyncClient(timeout=1.0) as http:
            deadline = time.monotonic() + STARTUP
            while True:  # a process of its own: its readiness can only be asked
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(self.url + "/readyz")).status_code == 200:
                        return
                if self.process.returncode is not None or time.monotonic() > deadline:
                    pytest.fail(f"node B did not start: {self.log.read_text()[-2000:]}")
                await asyncio.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def node_b(broker_url: str, tmp_path: Path) -> AsyncIterator[NodeProcess]:
    node = NodeProcess(broker_url, tmp_path)
    await node.start()
    try:
        yield node
    finally:
        with contextlib.suppress(ProcessLookupError):
            node.signal(signal.SIGCONT)
        await node.kill()


def jwt(sub: str) -> str:
    return mint(Settings(jwt_secret=SECRET), sub=sub)


async def send(ws: ClientConnection, command: str, *topics: str) -> None:
    payload = {"topics": list(topics)}
    frame = {"topic": "system", "event": command, "data": {"entity_id": "c", "payload": payload}}
    await ws.send(orjson.dumps(frame).decode())


async def on(ws_url: str, sub: str, *topics: str) -> ClientConnection:
    """User ``sub`` connected to ``ws_url`` and subscribed to ``topics`` (``room:lobby``)."""
    ws = await connect(f"{ws_url}?token={jwt(sub)}", open_timeout=TIMEOUT)
    await send(ws, "SUBSCRIBE", *(topics or ["room:lobby"]))
    return ws


async def counted_out(gateway: Gateway, user: str, topic: str = "room:lobby") -> None:
    """Until ``gateway`` no longer counts ``user`` on ``topic``: the leave is owed, not written.

    Checked at every turn of the event loop, so that the caller acts before that write.
    """
    async with asyncio.timeout(TIMEOUT):
        # No event: the turn of the loop itself is the point.
        while any(m.user_id == user for m in gateway.presence.counted_here(topic)):  # noqa: ASYNC110
            await asyncio.sleep(0)


async def announcement(ws: ClientConnection, timeout: float = TIMEOUT) -> tuple[str, str, str]:
    """The next USER_JOINED / USER_LEFT: (event, user, reason of a leave)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = orjson.loads(await ws.recv())
            if frame["event"] in ("USER_JOINED", "USER_LEFT"):
                payload = frame["data"]["payload"]
                return frame["event"], payload["user_id"], payload.get("reason", "")


async def present(url: str, topic: str = "room:lobby") -> dict[str, int]:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await http.get(
            f"{url}/v1/topics/{topic}/presence", headers={"authorization": f"Bearer {ADMIN_KEY}"}
        )
    assert response.status_code == 200, response.text
    return {user["user_id"]: user["connections"] for user in response.json()["users"]}


async def test_presence_spans_nodes_and_a_killed_nodes_users_are_announced_gone(
    broker_url: str, node_b: NodeProcess
) -> None:
    async with (
        running_gateway(**node_settings(broker_url)) as a,
        await on(a.ws_url, "watcher") as watcher,
    ):
        assert await announcement(watcher) == ("USER_JOINED", "watcher", "")
        on_b = await on(node_b.ws_url, "alice")
        assert await announcement(watcher) == ("USER_JOINED", "alice", "")  # from node B
        async with await on(a.ws_url, "alice"), await on(a.ws_url, "bob"):
            # alice's second tab, on another node, announced nothing: bob is next.
            assert await announcement(watcher) == ("USER_JOINED", "bob", "")
            assert await present(a.url) == {"alice": 2, "bob": 1, "watcher": 1}
            assert await present(node_b.url) == {"alice": 2, "bob": 1, "watcher": 1}
        assert await announcement(watcher) == ("USER_LEFT", "bob", "left")
        # Her tab on node B keeps her here; then node B dies without a word.
        await node_b.kill()
        killed = time.monotonic()
        assert await announcement(watcher, timeout=TTL + 3) == ("USER_LEFT", "alice", "timeout")
        took = time.monotonic() - killed
        # When node B's lease passed: 2/3 to all of the ttl after it died, then A's next touch.
        assert 2 * TTL / 3 - SLACK < took < TTL + TTL / 3 + 1
        assert await present(a.url) == {"watcher": 1}
        await on_b.close()


async def test_a_node_that_stops_gracefully_hands_its_users_over(
    broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracker, "HANDOFF", HANDOFF)
    settings = node_settings(broker_url)
    async with running_gateway(**settings) as a, await on(a.ws_url, "watcher") as watcher:
        assert await announcement(watcher) == ("USER_JOINED", "watcher", "")
        # Node B's own lease is 30 s: only the handoff lease can let carol go within seconds.
        async with running_gateway(**{**settings, "presence_ttl": 30.0}) as b:
            tabs = [await on(b.ws_url, "alice"), await on(b.ws_url, "carol")]
            assert await announcement(watcher) == ("USER_JOINED", "alice", "")
            assert await announcement(watcher) == ("USER_JOINED", "carol", "")
        stopped = time.monotonic()
        # A rolling restart: alice's client is back on node A at once; carol's is not.
        async with await on(a.ws_url, "alice"):
            left = await announcement(watcher, timeout=HANDOFF + TTL + 1)
            assert left == ("USER_LEFT", "carol", "timeout")
            took = time.monotonic() - stopped
            assert HANDOFF / 2 < took < HANDOFF + TTL / 3 + 1  # when the handoff lease passed
            assert await present(a.url) == {"alice": 1, "watcher": 1}
            async with await on(a.ws_url, "bob"):
                # alice never left nor joined again: bob's join is the next word.
                assert await announcement(watcher) == ("USER_JOINED", "bob", "")
        for tab in tabs:
            await tab.close()


async def test_a_paused_node_is_dropped_then_comes_back_and_its_users_join_again(
    broker_url: str, node_b: NodeProcess
) -> None:
    async with (
        running_gateway(**node_settings(broker_url)) as a,
        await on(a.ws_url, "watcher") as watcher,
    ):
        assert await announcement(watcher) == ("USER_JOINED", "watcher", "")
        async with await on(node_b.ws_url, "alice"):
            assert await announcement(watcher) == ("USER_JOINED", "alice", "")
            node_b.signal(signal.SIGSTOP)  # frozen: no renewal, but its sockets stay open
            try:
                timeout = TTL + 3
                assert await announcement(watcher, timeout) == ("USER_LEFT", "alice", "timeout")
            finally:
                node_b.signal(signal.SIGCONT)
            # Its next renewal finds its lease gone; it writes alice again, who joins again.
            # (Frozen between announcing alice and checking that announcement, it may
            # first correct it with a USER_LEFT: the same news twice, never a wrong end.)
            after = [await announcement(watcher, timeout=TTL + 3)]
            if after[0][0] == "USER_LEFT":
                after.append(await announcement(watcher, timeout=TTL + 3))
            assert after[-1] == ("USER_JOINED", "alice", "")
            assert after[:-1] in ([], [("USER_LEFT", "alice", "left")])
            assert await present(a.url) == {"alice": 1, "watcher": 1}


async def test_a_user_who_leaves_as_their_node_stops_is_announced_gone(broker_url: str) -> None:
    settings = node_settings(broker_url)
    async with running_gateway(**settings) as a, await on(a.ws_url, "watcher") as watcher:
        assert await announcement(watcher) == ("USER_JOINED", "watcher", "")
        async with running_gateway(**settings) as b, await on(b.ws_url, "alice") as alice:
            assert await announcement(watcher) == ("USER_JOINED", "alice", "")
            await send(alice, "UNSUBSCRIBE", "room:lobby")
            await counted_out(b, "alice")
            await b.stop()  # SIGTERM as her leave is about to be written and announced
        # Announced before node B let go: at once, as a leave, not a lease's timeout later.
        assert await announcement(watcher, timeout=TTL / 2) == ("USER_LEFT", "alice", "left")
        assert await present(a.url) == {"watcher": 1}
        async with await on(a.ws_url, "bob"):
            assert await announcement(watcher) == ("USER_JOINED", "bob", "")  # and nothing else


class Said(logging.Handler):
    """Presence's log lines as they are said, to wait for one."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.new = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.new.set()

    async def line(self, word: str) -> str:
        async with asyncio.timeout(TIMEOUT):
            while not (found := [line for line in self.lines if word in line]):
                self.new.clear()
                await self.new.wait()
        return found[-1]

    def count(self, word: str) -> int:
        return sum(word in line for line in self.lines)


@pytest.fixture
def said() -> Iterator[Said]:
    logger = logging.getLogger("eventwire.presence")
    handler, level = Said(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_a_broker_outage_is_told_once_however_many_topics_wait(
    tmp_path: Path, said: Said
) -> None:
    topics = [f"room:{n}" for n in range(6)]
    with running(RedisProcess(tmp_path)) as redis:
        async with (
            running_gateway(**node_settings(redis.url)) as a,
            await on(a.ws_url, "alice", *topics) as alice,
        ):
            joined = {(await announcement(alice))[0] for _ in topics}
            assert joined == {"USER_JOINED"}
            redis.kill()  # the next renewal of every topic fails
            first = await said.line("unreachable")
            assert "6 topics wait" in first
            await asyncio.sleep(TTL / 3)  # no event tells when the other topics have tried
            redis.start()
            assert "6 topics were held up" in await said.line("answers again")
            assert said.count("unreachable") == 1
