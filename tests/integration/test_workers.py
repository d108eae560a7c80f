"""``eventwire serve --workers 2``: two gateway processes on one port, one Redis between them.

Every test runs the real command as a subprocess and talks to it over the
shared port only. Which worker holds a WebSocket is read from its CONNECTED
frame (``node``); which one answered an HTTP request, from ``/v1/stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from eventwire.catalog import load_catalog
from eventwire.catalog.export import export_catalog
from eventwire.codes import CloseCode
from eventwire.server import Gateway, Settings
from eventwire.server.worker import WorkerReady
from eventwire.server.workers import ESCALATE_AFTER, RestartPolicy, Supervisor
from tests.integration.conftest import TIMEOUT, event, eventually
from tests.integration.redisproc import RedisProcess
from tests.integration.serverproc import STARTUP
from tests.processes import reap

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
async def supervised(
    broker: str, tmp_path: Path, *, own_group: bool = False
) -> AsyncIterator[Supervised]:
    """``own_group``: in a process group of its own, as a shell runs a command, to signal it all."""
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "eventwire", "serve", "--workers", "2",
            "--host", "127.0.0.1", "--port", "0", "--broker", broker,
            "--insecure", "--shutdown-grace", "2",
            stdout=asyncio.subprocess.PIPE, stderr=err, process_group=0 if own_group else None,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), STARTUP)
        banner = _BANNER.match(line)
        assert banner is not None, f"no banner: {line!r}\n{log.read_text(errors='replace')}"
        yield Supervised(process, banner[1].decode(), log)
    finally:
        await reap(process)
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


async def test_signals_to_the_whole_group_as_workers_exit_still_stop_cleanly(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Ctrl-C pressed twice, or ``timeout`` (which signals the child, then its whole group)."""
    async with supervised(redis_server.url, tmp_path, own_group=True) as server:
        pids = await pids_of_both(server.url)
        for _ in range(20):  # 20 ms apart until it exits, so that some land as workers exit
            os.killpg(server.process.pid, signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(server.process.wait()), 0.02)
                break
        status = await asyncio.wait_for(server.process.wait(), STARTUP)
        log = server.log_text()
    assert status == 0
    assert "eventwire:" not in log  # no error: neither "exited with signal SIGINT" nor a kill
    assert all(gone(pid) for pid in pids)


async def test_a_signal_a_second_after_the_first_kills_the_workers_still_stopping(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    async with supervised(redis_server.url, tmp_path) as server:
        pids = await pids_of_both(server.url)
        stuck = min(pids)
        os.kill(stuck, signal.SIGSTOP)  # a worker that does not stop by itself
        try:
            server.process.send_signal(signal.SIGTERM)
            await eventually(lambda: "stopping 2 workers" in server.log_text(), "the stop began")
            await asyncio.sleep(ESCALATE_AFTER)  # what makes the next signal a second request
            assert server.process.returncode is None  # still waiting for the stuck worker
            server.process.send_signal(signal.SIGTERM)
            status = await asyncio.wait_for(server.process.wait(), TIMEOUT)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stuck, signal.SIGCONT)
        assert "eventwire: killed the workers (a second signal" in server.log_text()
    assert status == 1
    assert all(gone(pid) for pid in pids)


def test_an_error_in_the_supervisor_stops_its_workers(redis_server: RedisProcess) -> None:
    settings = Settings(broker=redis_server.url, insecure=True, port=0, shutdown_grace=1)
    pids: list[int] = []

    def announce(ready: WorkerReady) -> None:
        pids.extend(slot.ready.pid for slot in supervisor.slots if slot.ready is not None)
        raise RuntimeError("the banner could not be written")

    supervisor = Supervisor(settings, 2, announce)
    with pytest.raises(RuntimeError, match="the banner could not be written"):
        supervisor.run()
    assert len(pids) == 2
    assert all(gone(pid) for pid in pids)  # stopped and reaped, not left serving


# -- restarts, with the supervisor in this process: a thread plays the operator -------------


def run_driven(supervisor: Supervisor, script: Callable[[threading.Event], None]) -> int:
    """``supervisor.run()`` here, ``script(ended)`` in a thread meanwhile, then SIGTERM.

    The supervisor needs the main thread for its signals. ``ended`` is set
    once the run returned, for the script to stop waiting; until the script
    is done, a SIGTERM that comes after the run is ignored, not the end of
    the test process.
    """
    ended = threading.Event()
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            script(ended)
        except BaseException as exc:
            failures.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # ends the run as an operator would

    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    thread = threading.Thread(target=drive)
    thread.start()
    try:
        status = supervisor.run()
    finally:
        ended.set()
        thread.join()
        signal.signal(signal.SIGTERM, previous)
    if failures:
        raise failures[0]
    return status


def logged(caplog: pytest.LogCaptureFixture, text: str, count: int, ended: threading.Event) -> None:
    """Wait (polling: a log line is nothing to await) until ``text`` was logged ``count`` times."""
    deadline = time.monotonic() + STARTUP
    while sum(text in record.getMessage() for record in list(caplog.records)) < count:
        assert not ended.is_set(), f"the supervisor returned before {count} x {text!r}"
        assert time.monotonic() < deadline, f"not {count} x {text!r} within {STARTUP}s"
        time.sleep(0.02)


def a_catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(export_catalog(load_catalog("eventwire.demo:catalog"), "json"))
    return path


def test_a_worker_that_keeps_dying_stops_every_worker_with_an_error(
    redis_server: RedisProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A policy that gives up at the second death; the restarts miss their catalog file."""
    catalog = a_catalog_file(tmp_path)
    settings = Settings(
        broker=redis_server.url, insecure=True, port=0, shutdown_grace=1, catalog=str(catalog)
    )
    killed: list[WorkerReady] = []

    def kill_one(ready: WorkerReady) -> None:  # once both are ready
        catalog.unlink()  # so the restarted worker cannot start either
        os.kill(ready.pid, signal.SIGKILL)
        killed.append(ready)

    def policy() -> RestartPolicy:
        return RestartPolicy(max_restarts=1, backoff_initial=0.05)

    assert Supervisor(settings, 2, kill_one, policy=policy).run() == 1
    [victim] = killed
    err = capsys.readouterr().err
    assert f"worker {victim.index} died 2 times within 60s" in err
    assert "(last: exit status 2: cannot start: cannot read catalog file" in err
    assert "stopped every worker" in err


def test_workers_that_all_lose_the_broker_count_their_failed_restarts(
    redis_server: RedisProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """No worker serves: a broker that stays away ends the run, for whatever runs it to act."""
    settings = Settings(broker=redis_server.url, insecure=True, port=0, shutdown_grace=1)

    def kill_all(ready: WorkerReady) -> None:
        redis_server.kill()
        for slot in supervisor.slots:
            assert slot.ready is not None
            os.kill(slot.ready.pid, signal.SIGKILL)

    def policy() -> RestartPolicy:
        return RestartPolicy(max_restarts=1, backoff_initial=0.05)

    supervisor = Supervisor(settings, 2, kill_all, policy=policy)
    assert supervisor.run() == 1
    err = capsys.readouterr().err
    assert re.search(r"worker \d died 2 times within 60s \(last: exit status 1: cannot reach", err)


def test_a_worker_that_cannot_reach_the_broker_is_retried_while_the_others_serve(
    redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker outage while one worker restarts is no crash loop: the other serves on."""
    caplog.set_level(logging.INFO, logger="eventwire.workers")
    settings = Settings(broker=redis_server.url, insecure=True, port=0, shutdown_grace=1)
    announced: queue.Queue[WorkerReady] = queue.Queue()

    def policy() -> RestartPolicy:
        return RestartPolicy(max_restarts=1, backoff_initial=0.05, backoff_max=0.2)

    def outage(ended: threading.Event) -> None:
        victim = announced.get(timeout=STARTUP)
        redis_server.kill()
        os.kill(victim.pid, signal.SIGKILL)
        failed = f"worker {victim.index} could not start (exit status 1: cannot reach the broker"
        logged(caplog, failed, 3, ended)  # counted, two deaths would have been the limit
        redis_server.start()
        logged(caplog, f"worker {victim.index} ready", 2, ended)

    supervisor = Supervisor(settings, 2, announced.put, policy=policy)
    assert run_driven(supervisor, outage) == 0
    assert "trying again in 0.2s" in caplog.text


def test_a_restarted_worker_that_hangs_while_starting_is_killed_and_started_again(
    redis_server: RedisProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A restart blocks reading its catalog (a FIFO nobody writes, as a hung file system)."""
    caplog.set_level(logging.INFO, logger="eventwire.workers")
    catalog = a_catalog_file(tmp_path)
    text = catalog.read_text()
    settings = Settings(
        broker=redis_server.url, insecure=True, port=0, shutdown_grace=1, catalog=str(catalog)
    )
    announced: queue.Queue[WorkerReady] = queue.Queue()

    def hang(ended: threading.Event) -> None:
        victim = announced.get(timeout=STARTUP)
        catalog.unlink()
        os.mkfifo(catalog)
        os.kill(victim.pid, signal.SIGKILL)
        logged(caplog, f"worker {victim.index} did not start within 4s; killing it", 1, ended)
        catalog.unlink()
        catalog.write_text(text)
        logged(caplog, f"worker {victim.index} ready", 2, ended)

    def policy() -> RestartPolicy:
        return RestartPolicy(backoff_initial=0.5)

    supervisor = Supervisor(settings, 2, announced.put, policy=policy, startup_timeout=4.0)
    assert run_driven(supervisor, hang) == 0


# -- the stop budget the supervisor counts on ------------------------------------------------


class TightBudget(Settings):
    """Settings whose stop budget is shorter than one wait of the stop."""

    @property
    def stop_budget(self) -> float:
        return 0.2


async def test_a_stop_that_outlasts_its_budget_is_cut_short(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = TightBudget(host="127.0.0.1", port=0, insecure=True, shutdown_grace=5)
    gateway = Gateway(settings)
    await gateway.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:  # a WebSocket that never answers the close: the stop waits for it
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        await eventually(lambda: len(gateway.connections) == 1, "the connection registered")
        started = time.monotonic()
        assert await gateway.stop_within_budget() is False
        took = time.monotonic() - started
        await asyncio.wait_for(gateway.stop(), TIMEOUT)  # it counts as stopped
    finally:
        writer.close()
    assert 0.2 <= took < 1.0
    assert "graceful stop took over 0.2s (the stop budget); cut short" in caplog.text
