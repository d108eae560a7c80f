"""Several gateway processes on one port: ``eventwire serve --workers N``.

One Python process uses one core. To use every core of a machine, a small
supervisor starts N workers, each a full gateway (its own hub, connections,
metrics and broker link) listening on the same host and port with
``SO_REUSEPORT``, so the kernel spreads new connections across them. Events
cross between workers through the broker, exactly as between nodes on
different machines, so the broker must be one they share (Redis, NATS), never
``memory://``.

The supervisor:

- binds host:port first itself (``SO_REUSEPORT``, never listening) and holds
  it, so ``--port 0`` is one port for every worker and a restarted worker
  gets its port back;
- prints the banner once every worker is ready; if one fails to start, stops
  the others and exits with its status (2: configuration, 1: broker, port);
- forwards SIGTERM and SIGINT to every worker and exits 0 once all have
  stopped gracefully;
- restarts a worker that dies, with backoff, and stops everything with an
  error when a worker keeps dying (``RestartPolicy``).

A worker whose supervisor is gone (its end of the pipe closes) stops by itself.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any
from urllib.parse import urlsplit

from eventwire.server.config import Settings
from eventwire.server.worker import WorkerReady, run_worker

__all__ = ["RestartPolicy", "Supervisor", "check_workers", "worker_count"]

log = logging.getLogger("eventwire.workers")

STARTUP_TIMEOUT = 60.0
"""Seconds every worker has to connect its broker and listen."""
STOP_MARGIN = 10.0
"""Seconds a stopping worker gets past its three ``shutdown_grace`` waits before SIGKILL."""
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def worker_count(requested: int) -> int:
    """``requested`` workers, or one per CPU this process may run on for 0 (``auto``)."""
    if requested > 0:
        return requested
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_workers(settings: Settings, count: int) -> None:
    """Raise ValueError when ``count`` workers cannot serve with ``settings``."""
    if count <= 1:
        return
    scheme = urlsplit(settings.broker).scheme or settings.broker
    if scheme == "memory":
        raise ValueError(
            f"{count} workers need a broker they share (redis://... or nats://...): with "
            "memory:// each worker has a broker of its own, and an event published on one "
            "worker would never reach the subscribers of another"
        )
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("several workers need SO_REUSEPORT, which this platform lacks")


@dataclass(slots=True)
class RestartPolicy:
    """When a worker that died may start again: exponential backoff, and a limit.

    A worker may die ``max_restarts`` times within ``window`` seconds; the
    next death in that window means it would keep dying, and ``delay`` says
    give up (None). Pure: the clock is passed in.
    """

    max_restarts: int = 5
    window: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    _deaths: deque[float] = field(default_factory=deque)

    def delay(self, now: float) -> float | None:
        """Record a death at ``now``; seconds to wait before restarting, or None to give up."""
        self._deaths.append(now)
        while self._deaths and self._deaths[0] <= now - self.window:
            self._deaths.popleft()
        recent = len(self._deaths)
        if recent > self.max_restarts:
            return None
        return min(self.backoff_max, self.backoff_initial * 2.0 ** (recent - 1))


class _Failed(Exception):
    """The run ends with ``status``, and says why on stderr."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class _Slot:
    """One worker position: the process filling it now, and its history of deaths."""

    index: int
    policy: RestartPolicy
    process: BaseProcess | None = None
    conn: Connection | None = None
    ready: WorkerReady | None = None
    failure: tuple[int, str] | None = None
    """What the worker said before exiting: (status, message)."""
    restart_at: float | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None


class Supervisor:
    """Run ``count`` workers of ``settings`` on one port until SIGTERM or SIGINT.

    ``announce`` is called once, when every worker is ready (the CLI prints
    its banner); ``policy`` makes each worker's ``RestartPolicy``; ``run``
    returns the exit status.
    """

    def __init__(
        self,
        settings: Settings,
        count: int,
        announce: Callable[[WorkerReady], None],
        *,
        policy: Callable[[], RestartPolicy] = RestartPolicy,
    ) -> None:
        self.settings = settings
        self.slots = [_Slot(index, policy()) for index in range(1, count + 1)]
        self._announce = announce
        self._announced = False
        self._context = multiprocessing.get_context("spawn")
        self._stopping = False
        self._status = 0
        self._deadline = 0.0
        self._wake_r, self._wake_w = socket.socketpair()

    def run(self) -> int:
        """Start every worker, restart those that die, stop them all on a signal."""
        try:
            reserved = _reserve(self.settings.host, self.settings.port)
        except OSError as exc:
            where = f"{self.settings.host}:{self.settings.port}"
            print(f"eventwire: cannot listen on {where}: {exc}", file=sys.stderr)
            return 1
        port = reserved[0].getsockname()[1]
        self.settings = _plain(self.settings, port=port)
        try:
            with self._signals():
                return self._supervise()
        finally:
            for sock in reserved:
                sock.close()
            self._wake_r.close()
            self._wake_w.close()

    # -- the loop ----------------------------------------------------------------------

    def _supervise(self) -> int:
        self._deadline = time.monotonic() + STARTUP_TIMEOUT
        for slot in self.slots:
            self._spawn(slot)
        while not (self._stopping and not any(slot.alive for slot in self.slots)):
            now = time.monotonic()
            self._check_deadline(now)
            for ready in wait(self._waitables(), self._timeout(now)):
                self._on_ready(ready)
            self._restart_due(time.monotonic())
        return self._status

    def _waitables(self) -> list[Any]:
        found: list[Any] = [self._wake_r]
        for slot in self.slots:
            if slot.process is not None:
                found.append(slot.process.sentinel)
            if slot.conn is not None:
                found.append(slot.conn)
        return found

    def _timeout(self, now: float) -> float:
        due = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
        if self._stopping or not self._announced:
            due.append(self._deadline)
        return max(0.0, min(due, default=now + 3600.0) - now)

    def _on_ready(self, ready: Any) -> None:
        if ready is self._wake_r:
            self._on_signal()
            return
        for slot in self.slots:
            if ready is slot.conn:
                self._on_message(slot)
            elif slot.process is not None and ready == slot.process.sentinel:
                self._on_exit(slot)

    def _on_signal(self) -> None:
        received = self._wake_r.recv(64)
        if any(number in received for number in _STOP_SIGNALS) and not self._stopping:
            log.info("stopping %d workers", sum(slot.alive for slot in self.slots))
            self._stop(0)

    def _on_message(self, slot: _Slot) -> None:
        assert slot.conn is not None
        try:
            message = slot.conn.recv()
        except (EOFError, OSError):  # the worker is exiting; its sentinel follows
            slot.conn.close()
            slot.conn = None
            return
        kind, body = message
        if kind == "failed":
            slot.failure = body
            return
        slot.ready = WorkerReady(**body)
        log.info("worker %d ready (pid %d, node %s)", slot.index, slot.ready.pid, slot.ready.node)
        if not self._announced and all(s.ready is not None for s in self.slots):
            self._announced = True
            self._announce(slot.ready)

    def _on_exit(self, slot: _Slot) -> None:
        assert slot.process is not None
        while slot.conn is not None and slot.conn.poll():  # what it said before exiting
            self._on_message(slot)
        slot.process.join()
        code = slot.process.exitcode
        was_ready = slot.ready is not None
        if slot.conn is not None:
            slot.conn.close()
        slot.process, slot.conn, slot.ready = None, None, None
        if self._stopping:  # SIGTERM may land before the gateway handles it: still a stop
            if code not in (0, -signal.SIGTERM) and was_ready and self._status == 0:
                self._fail(_Failed(1, f"worker {slot.index} exited with {_how(code)} on stopping"))
            return
        reason = _how(code) + (f": {slot.failure[1]}" if slot.failure else "")
        if not self._announced:
            status = slot.failure[0] if slot.failure else 1
            self._fail(_Failed(status, f"worker {slot.index} could not start ({reason})"))
            return
        delay = slot.policy.delay(time.monotonic())
        if delay is None:
            policy = slot.policy
            message = (
                f"worker {slot.index} died {policy.max_restarts + 1} times within "
                f"{policy.window:.0f}s (last: {reason}); stopped every worker"
            )
            self._fail(_Failed(1, message))
            return
        log.warning("worker %d died (%s); restarting it in %.1fs", slot.index, reason, delay)
        slot.restart_at = time.monotonic() + delay

    def _restart_due(self, now: float) -> None:
        for slot in self.slots:
            if slot.restart_at is not None and slot.restart_at <= now and not self._stopping:
                slot.restart_at = None
                self._spawn(slot)

    def _check_deadline(self, now: float) -> None:
        if now < self._deadline:
            return
        if not self._stopping and not self._announced:
            self._fail(_Failed(1, f"the workers did not all start within {STARTUP_TIMEOUT:.0f}s"))
        elif self._stopping:
            for slot in self.slots:
                if slot.process is not None and slot.process.is_alive():
                    slot.process.kill()
            if self._status == 0:
                self._status = 1
                print("eventwire: workers did not stop in time; killed", file=sys.stderr)
            self._deadline = now + STARTUP_TIMEOUT  # killed: their sentinels follow at once

    # -- starting and stopping -----------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        parent, child = self._context.Pipe()
        publish_demo = self.settings.demo and slot.index == 1
        process = self._context.Process(
            target=run_worker,
            args=(self.settings, slot.index, child, publish_demo),
            name=f"eventwire-worker-{slot.index}",
        )
        process.start()
        child.close()
        slot.process, slot.conn, slot.ready, slot.failure = process, parent, None, None

    def _stop(self, status: int) -> None:
        """Ask every worker to stop gracefully; ``run`` returns ``status`` once they have."""
        self._stopping = True
        self._status = self._status or status
        grace = self.settings.shutdown_grace
        self._deadline = time.monotonic() + 3 * grace + STOP_MARGIN
        for slot in self.slots:
            slot.restart_at = None
            if slot.process is not None and slot.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.process.pid, signal.SIGTERM)

    def _fail(self, failure: _Failed) -> None:
        print(f"eventwire: {failure}", file=sys.stderr)
        if self._stopping:
            self._status = self._status or failure.status
        else:
            self._stop(failure.status)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT wake the loop through a socket instead of raising in it."""
        self._wake_w.setblocking(False)
        previous_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        previous = {sig: signal.signal(sig, _noted) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_fd)


def _noted(signum: int, frame: object) -> None:
    """The signal is read from the wake-up socket; nothing to do here."""


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit status {code}"


def _reserve(host: str, port: int) -> list[socket.socket]:
    """Bind every address of ``host`` on one port, with SO_REUSEPORT and without listening.

    The kernel spreads connections only across listening sockets, so these
    take none; they keep the port for the workers. With ``port`` 0 the first
    bind picks it. A port that a process outside this group listens on is
    refused first: a bind without SO_REUSEPORT fails where anyone listens.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    addresses = list(dict.fromkeys((family, str(address[0])) for family, *_, address in infos))
    reserved: list[socket.socket] = []
    try:
        for family, address in addresses:
            chosen = int(reserved[0].getsockname()[1]) if reserved else port
            if chosen:
                _probe(family, address, chosen)
            reserved.append(_bind(family, address, chosen, reuse_port=True))
    except OSError:
        for sock in reserved:
            sock.close()
        raise
    return reserved


def _probe(family: int, address: str, port: int) -> None:
    _bind(family, address, port, reuse_port=False).close()


def _bind(family: int, address: str, port: int, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:  # as asyncio's create_server binds
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def _plain(settings: Settings, **changes: Any) -> Settings:
    """``settings`` as a plain ``Settings`` (picklable for the workers), with ``changes``."""
    values = {name: getattr(settings, name) for name in Settings.model_fields} | changes
    return Settings.model_construct(_fields_set=settings.model_fields_set, **values)
