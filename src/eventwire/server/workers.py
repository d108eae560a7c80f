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
  stopped gracefully; one still running ``stop_budget`` + ``STOP_MARGIN``
  seconds later is killed, and so is every worker on another signal at
  least ``ESCALATE_AFTER`` seconds after the first (exit status 1);
- restarts a worker that dies, with backoff, and stops everything with an
  error when a worker keeps dying (``RestartPolicy``). A worker that could
  not reach the broker while the others serve is retried every
  ``backoff_max`` without counting: an outage of the broker is no crash. A
  worker that does not start within ``startup_timeout`` is killed (and
  counted).

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
from eventwire.server.serving import Failure
from eventwire.server.worker import WorkerReady, run_worker

__all__ = ["RestartPolicy", "Supervisor", "check_workers", "worker_count"]

log = logging.getLogger("eventwire.workers")

STARTUP_TIMEOUT = 60.0
"""Seconds a worker has to connect its broker and listen."""
STOP_MARGIN = 5.0
"""Seconds a stopping worker gets past its ``stop_budget`` to exit before SIGKILL."""
ESCALATE_AFTER = 1.0
"""Seconds after a stop signal from which another one kills the workers.

Sooner, it is the same request twice: ``timeout`` signals the child and
then its whole group, and Ctrl-C reaches the supervisor with its workers.
"""
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_STOPPED = (0, -signal.SIGTERM, -signal.SIGINT)
"""Exit codes of a worker that stopped as asked (a signal may land before its loop runs)."""


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


@dataclass(slots=True)
class _Slot:
    """One worker position: the process filling it now, and its history of deaths."""

    index: int
    policy: RestartPolicy
    process: BaseProcess | None = None
    conn: Connection | None = None
    ready: WorkerReady | None = None
    failure: Failure | None = None
    """Why it could not start, as it said before exiting (or the supervisor, killing it)."""
    start_by: float | None = None
    """Until it is ready: when it is killed as hung."""
    restart_at: float | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None


class Supervisor:
    """Run ``count`` workers of ``settings`` on one port until SIGTERM or SIGINT.

    ``announce`` is called once, when every worker is ready (the CLI prints
    its banner); ``policy`` makes each worker's ``RestartPolicy``;
    ``startup_timeout``: seconds a worker has to become ready. ``run``
    returns the exit status.
    """

    def __init__(
        self,
        settings: Settings,
        count: int,
        announce: Callable[[WorkerReady], None],
        *,
        policy: Callable[[], RestartPolicy] = RestartPolicy,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.slots = [_Slot(index, policy()) for index in range(1, count + 1)]
        self.startup_timeout = startup_timeout
        self._announce = announce
        self._announced = False
        self._context = multiprocessing.get_context("spawn")
        self._stopping = False
        self._status = 0
        self._kill_at: float | None = None
        self._signalled_at: float | None = None
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
        self.settings = _picklable_settings(self.settings, port=port)
        try:
            with self._signals():
                return self._supervise()
        finally:
            self._end_live_workers()  # only left after an error of the supervisor itself
            for sock in reserved:
                sock.close()
            self._wake_r.close()
            self._wake_w.close()

    # -- the loop ----------------------------------------------------------------------

    def _supervise(self) -> int:
        for slot in self.slots:
            self._spawn(slot)
        while not (self._stopping and not any(slot.alive for slot in self.slots)):
            self._check_deadlines(time.monotonic())
            for readable in wait(self._waitables(), self._timeout(time.monotonic())):
                self._on_readable(readable)
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
        due = [self._kill_at] if self._kill_at is not None else []
        for slot in self.slots:
            due += [at for at in (slot.restart_at, slot.start_by) if at is not None]
        return max(0.0, min(due, default=now + 3600.0) - now)

    def _on_readable(self, readable: Any) -> None:
        """A signal, a worker's message, or a worker's exit (its sentinel)."""
        if readable is self._wake_r:
            self._on_signal()
            return
        for slot in self.slots:
            if readable is slot.conn:
                self._on_message(slot)
            elif slot.process is not None and readable == slot.process.sentinel:
                self._on_exit(slot)

    def _on_signal(self) -> None:
        received = self._wake_r.recv(64)
        if not any(number in received for number in _STOP_SIGNALS):
            return
        now = time.monotonic()
        if self._signalled_at is None:
            self._signalled_at = now
        elif now - self._signalled_at >= ESCALATE_AFTER and self._kill_at is not None:
            self._kill_all("killed the workers (a second signal while they stopped)")
        if not self._stopping:
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
        slot.ready, slot.start_by = WorkerReady(**body), None
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
        slot.process, slot.conn, slot.ready, slot.start_by = None, None, None, None
        if self._stopping:
            if code not in _STOPPED and was_ready and self._status == 0:
                self._fail(Failure(1, f"worker {slot.index} exited with {_how(code)} on stopping"))
            return
        failure = slot.failure
        reason = _how(code) + (f": {failure.message}" if failure else "")
        if not self._announced:
            status = failure.status if failure else 1
            self._fail(Failure(status, f"worker {slot.index} could not start ({reason})"))
        elif failure is not None and failure.broker_unreachable and self._others_serve(slot):
            self._retry(slot, reason)
        else:
            self._died(slot, reason)

    def _died(self, slot: _Slot, reason: str) -> None:
        delay = slot.policy.delay(time.monotonic())
        if delay is None:
            policy = slot.policy
            message = (
                f"worker {slot.index} died {policy.max_restarts + 1} times within "
                f"{policy.window:.0f}s (last: {reason}); stopped every worker"
            )
            self._fail(Failure(1, message))
            return
        log.warning("worker %d died (%s); restarting it in %.1fs", slot.index, reason, delay)
        slot.restart_at = time.monotonic() + delay

    def _retry(self, slot: _Slot, reason: str) -> None:
        """An outage of the broker, not a crash: retried every ``backoff_max``, not counted."""
        delay = slot.policy.backoff_max
        message = "worker %d could not start (%s); the others serve: trying again in %.1fs"
        log.warning(message, slot.index, reason, delay)
        slot.restart_at = time.monotonic() + delay

    def _others_serve(self, slot: _Slot) -> bool:
        return any(other.ready is not None for other in self.slots if other is not slot)

    def _restart_due(self, now: float) -> None:
        for slot in self.slots:
            if slot.restart_at is not None and slot.restart_at <= now and not self._stopping:
                slot.restart_at = None
                self._spawn(slot)

    def _check_deadlines(self, now: float) -> None:
        if self._stopping:
            if self._kill_at is not None and now >= self._kill_at:
                self._kill_all("workers did not stop in time; killed")
            return
        for slot in self.slots:
            if slot.start_by is not None and now >= slot.start_by:
                self._hung(slot)

    def _hung(self, slot: _Slot) -> None:
        """``slot``'s worker is not ready in time: all fail before the banner, else it is killed."""
        slot.start_by = None
        message = f"did not start within {self.startup_timeout:g}s"
        if not self._announced:
            self._fail(Failure(1, f"worker {slot.index} {message}"))
            return
        log.warning("worker %d %s; killing it", slot.index, message)
        slot.failure = Failure(1, message)
        if slot.process is not None:
            slot.process.kill()  # its sentinel follows: a death like any other

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
        slot.start_by = time.monotonic() + self.startup_timeout

    def _stop(self, status: int) -> None:
        """Ask every worker to stop gracefully; ``run`` returns ``status`` once they have."""
        self._stopping = True
        self._status = self._status or status
        self._kill_at = time.monotonic() + self.settings.stop_budget + STOP_MARGIN
        for slot in self.slots:
            slot.restart_at = slot.start_by = None
            if slot.process is not None and slot.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.process.pid, signal.SIGTERM)

    def _kill_all(self, message: str) -> None:
        """SIGKILL every worker still running; the run ends with status 1."""
        self._kill_at = None  # their sentinels follow at once
        for process in (slot.process for slot in self.slots if slot.process is not None):
            if process.is_alive():
                process.kill()
        self._status = self._status or 1
        print(f"eventwire: {message}", file=sys.stderr)

    def _fail(self, failure: Failure) -> None:
        print(f"eventwire: {failure.message}", file=sys.stderr)
        if self._stopping:
            self._status = self._status or failure.status
        else:
            self._stop(failure.status)

    def _end_live_workers(self) -> None:
        """SIGTERM the workers still running, and SIGKILL those still running after the budget.

        Only an error in the supervisor leaves any: without this they would
        serve on, and multiprocessing would wait for them at exit.
        """
        live = [slot.process for slot in self.slots if slot.process is not None]
        for process in live:
            process.terminate()
        deadline = time.monotonic() + self.settings.stop_budget + STOP_MARGIN
        for process in live:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                process.kill()
                process.join()

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


def _picklable_settings(settings: Settings, **changes: Any) -> Settings:
    """``settings`` as a plain ``Settings`` (picklable for the workers), with ``changes``."""
    values = {name: getattr(settings, name) for name in Settings.model_fields} | changes
    return Settings.model_construct(_fields_set=settings.model_fields_set, **values)
