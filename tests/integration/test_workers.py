"""``eventwire serve --workers 2``: two gateway processes on one port, one Redis between them.

Every test runs the real command as a subprocess and talks to it over the
shared port only. Which worker holds a WebSocket is read from its CONNECTED
frame (``node``); which one answered an HTTP request, from ``/v1/stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from eventwire.codes import CloseCode
from eventwire.server import Settings
from eventwire.server.worker import WorkerReady
from eventwire.server.workers import RestartPolicy, Supervisor
from tests.integration.conftest import TIMEOUT, event, eventually
from tests.integration.redisproc import RedisProcess
from tests.integration.serverproc import STARTUP

pytestmark = pytest.mark.timeout(60)

TOPIC = "room:workers"
_BANNER = re.compile(rb"^eventwire \S+ serving on (http://\S+) \(broker .*, 2 workers\)")
_MAX_SUBSCRIBERS = 64
"""Connections opened at most while waiting for every worker to hold some."""


class Supervised:
    """``eventwire serve --workers 2`` on ``broker``, its banner read, its stderr in a file."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.ws_url = "ws" + url.removeprefix("http") + "/ws"
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.asynccontextmanager
async def supervised(broker: str, tmp_path: Path) -> AsyncIterator[Supervised]:
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "eventwire", "serve", "--workers", "2",
            "--host", "127.0.0.1", "--port", "0", "--broker", broker,
            "--insecure", "--shutdown-grace", "2",
            stdout=asyncio.subprocess.PIPE, stderr=err,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), STARTUP)
        banner = _BANNER.match(line)
        assert banner is not None, f"no banner: {line!r}\n{log.read_text(errors='replace')}"
        yield Supervised(process, banner[1].decode(), log)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        print(log.read_text(errors="replace"))  # shown when the test failed


async def recv(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return frame


async def subscriber(url: str) -> tuple[ClientConnection, str]:
    """A WebSocket subscribed to ``TOPIC``, and the node its CONNECTED frame names."""
    ws = await connect(url)
    hello = await recv(ws)
    command = {"topic": "system", "event": "SUBSCRIBE",
               "data": {"entity_id": "s", "payload": {"topics": [TOPIC]}}}  # fmt: skip
    await ws.send(orjson.dumps(command))
    assert (await recv(ws))["event"] == "SUBSCRIBED"
    return ws, hello["data"]["payload"]["node"]


async def subscribers_on_both(server: Supervised, each: int) -> dict[ClientConnection, str]:
    """Open subscribers until both workers hold at least ``each`` (the kernel picks where)."""
    nodes: dict[ClientConnection, str] = {}
    while len(nodes) < _MAX_SUBSCRIBERS:
        ws, node = await subscriber(server.ws_url)
        nodes[ws] = node
        counts = Counter(nodes.values())
        if len(counts) == 2 and min(counts.values()) >= each:
            return nodes
    pytest.fail(
        f"{_MAX_SUBSCRIBERS} connections did not reach both workers: {Counter(nodes.values())}"
    )


async def stats_by_node(url: str, requests: int = _MAX_SUBSCRIBERS) -> dict[str, dict[str, Any]]:
    """``/v1/stats`` of the workers that answered, by node: a new connection per request,
    until two answered or ``requests`` were made."""
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(requests):
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:
            stats = (await http.get("/v1/stats")).json()
        seen[stats["node"]] = stats
        if len(seen) == 2:
            break
    return seen


async def pids_of_both(url: str) -> set[int]:
    stats = await stats_by_node(url)
    assert len(stats) == 2, f"{_MAX_SUBSCRIBERS} requests reached only {list(stats)}"
    return {s["pid"] for s in stats.values()}


async def receive_all(ws: ClientConnection, count: int) -> list[int]:
    """The seqs of the next ``count`` events on ``TOPIC``, checking each event's payload."""
    seqs = []
    for _ in range(count):
        frame = await recv(ws)
        assert frame["topic"] == TOPIC
        assert frame["data"]["payload"] == {"n": frame["seq"]}
        seqs.append(frame["seq"])
    return seqs


async def test_every_event_reaches_every_subscriber_on_every_worker(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    events = 100
    async with supervised(redis_server.url, tmp_path) as server:
        nodes = await subscribers_on_both(server, each=3)
        readers = [asyncio.create_task(receive_all(ws, events)) for ws in nodes]
        # A new connection per publish: the kernel spreads them over both workers too.
        async with httpx.AsyncClient(
            base_url=server.url, timeout=TIMEOUT, limits=httpx.Limits(max_keepalive_connections=0)
        ) as http:
            for n in range(1, events + 1):
                answer = await http.post("/v1/publish", json=event(TOPIC, n))
                assert answer.status_code == 200, answer.text
                assert answer.json()["seq"] == n
        received = await asyncio.gather(*readers)
        stats = await stats_by_node(server.url)
        for ws in nodes:
            await ws.close()
    assert all(seqs == list(range(1, events + 1)) for seqs in received)  # all, in order
    assert sum(len(seqs) for seqs in received) == events * len(nodes)  # 100%, counted
    assert len(stats) == 2
    assert {node: s["subscriptions"] for node, s in stats.items()} == Counter(nodes.values())
    published = [s["published"] for s in stats.values()]
    assert sum(published) == events
    assert min(published) > 0  # publishes came in through both workers


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_a_killed_worker_is_replaced_and_sigterm_stops_every_worker(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    async with supervised(redis_server.url, tmp_path) as server:
        victim = min(await pids_of_both(server.url))
        os.kill(victim, signal.SIGKILL)
        async with asyncio.timeout(STARTUP):
            while True:  # until the supervisor's new worker answers on the same port
                stats = await stats_by_node(server.url, requests=16)
                now = {s["pid"] for s in stats.values()}
                if victim not in now and len(now) == 2:
                    break
        assert "restarting it" in server.log_text()
        nodes = await subscribers_on_both(server, each=1)
        server.process.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(server.process.wait(), STARTUP)
        for ws in nodes:  # every client was told the server is going away
            with contextlib.suppress(Exception):
                async with asyncio.timeout(TIMEOUT):
                    async for _ in ws:
                        pass
            assert ws.close_code == CloseCode.GOING_AWAY
    assert status == 0
    assert all(gone(pid) for pid in now)


async def test_workers_stop_when_their_supervisor_is_killed(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    async with supervised(redis_server.url, tmp_path) as server:
        pids = await pids_of_both(server.url)
        server.process.kill()
        await server.process.wait()
        await eventually(lambda: all(gone(pid) for pid in pids), "workers exited", STARTUP)
        with pytest.raises(ConnectionRefusedError):  # the port is free, not held by orphans
            await asyncio.open_connection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
        assert "the supervisor is gone" in server.log_text()


async def test_several_workers_on_the_memory_broker_are_refused() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventwire", "serve", "--workers", "2", "--insecure", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), STARTUP)
    assert process.returncode == 2
    assert out == b""
    assert b"bad configuration: 2 workers need a broker they share" in err
    assert b"memory://" in err


def test_a_worker_that_keeps_dying_stops_every_worker_with_an_error(
    redis_server: RedisProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """The supervisor in this process, with a policy that gives up at the second death."""
    settings = Settings(broker=redis_server.url, insecure=True, port=0, shutdown_grace=1)
    killed: list[WorkerReady] = []

    def kill_one(ready: WorkerReady) -> None:  # once both are ready
        redis_server.kill()  # so the restarted worker cannot start either
        os.kill(ready.pid, signal.SIGKILL)
        killed.append(ready)

    def policy() -> RestartPolicy:
        return RestartPolicy(max_restarts=1, backoff_initial=0.05)

    assert Supervisor(settings, 2, kill_one, policy=policy).run() == 1
    [victim] = killed
    err = capsys.readouterr().err
    assert f"worker {victim.index} died 2 times within 60s" in err
    assert "(last: exit status 1: cannot reach the broker" in err
    assert "stopped every worker" in err
