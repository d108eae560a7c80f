"""One worker process of ``eventwire serve --workers N``: a full gateway on the shared port.

The supervisor (``server/workers.py``) starts ``run_worker`` in a fresh
interpreter with a pipe to itself. The worker serves as ``eventwire serve``
does (``server/serving.py``), listening with ``SO_REUSEPORT`` on the port
the supervisor holds, and says on the pipe that it is ready, or why it could
not start. The supervisor never writes on the pipe, so the pipe becoming
readable means the supervisor is gone: the worker then stops as on SIGTERM
instead of holding the port forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from eventwire.server.config import Settings
from eventwire.server.serving import CannotStart, configure_logging, serve

if TYPE_CHECKING:
    from eventwire.server.gateway import Gateway

__all__ = ["WorkerReady", "run_worker"]

log = logging.getLogger("eventwire.workers")


@dataclass(frozen=True, slots=True)
class WorkerReady:
    """What a worker reports once it listens and hears its broker."""

    index: int
    pid: int
    node: str
    """The gateway's node id, as its CONNECTED frames and ``/v1/stats`` give it."""
    url: str
    ws_url: str


def run_worker(settings: Settings, index: int, conn: Connection, publish_demo: bool) -> None:
    """The worker process: one gateway on the shared port until SIGTERM; exits with its status.

    ``publish_demo``: this worker publishes the demo stream (one worker does,
    so the demo's events are not published once per worker).
    """
    # Ctrl-C reaches the whole group: the supervisor's SIGTERM stops a worker
    # still starting, and the gateway takes SIGINT over once serving.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings, worker=index)

    def ready(gateway: Gateway) -> None:
        _watch_supervisor(conn)
        report = WorkerReady(index, os.getpid(), gateway.node_id, gateway.url, gateway.ws_url)
        _tell(conn, ("ready", asdict(report)))

    try:
        status = serve(settings, on_ready=ready, reuse_port=True, demo=publish_demo)
    except CannotStart as exc:  # the supervisor prints it once, for all
        _tell(conn, ("failed", exc.failure))
        status = exc.failure.status
    conn.close()
    sys.exit(status)


def _watch_supervisor(conn: Connection) -> None:
    """Stop as on SIGTERM (within the stop budget) once the supervisor is gone."""
    loop = asyncio.get_running_loop()

    def gone() -> None:
        loop.remove_reader(conn.fileno())
        log.warning("the supervisor is gone; stopping")
        signal.raise_signal(signal.SIGTERM)

    loop.add_reader(conn.fileno(), gone)


def _tell(conn: Connection, message: tuple[str, object]) -> None:
    with contextlib.suppress(OSError):  # a supervisor gone: nobody to tell
        conn.send(message)
