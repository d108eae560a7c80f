"""One worker process of ``eventwire serve --workers N``: a full gateway on the shared port.

The supervisor (``server/workers.py``) starts ``run_worker`` in a fresh
interpreter with a pipe to itself. The worker listens with ``SO_REUSEPORT``
on the port the supervisor holds, then says on the pipe that it is ready
(or why it could not start) and serves until SIGTERM. The supervisor never
writes on the pipe, so the pipe becoming readable means the supervisor is
gone: the worker then stops by itself instead of holding the port forever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any

from eventwire.errors import BrokerError, EventwireError
from eventwire.server.config import Settings

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
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway takes it over once serving
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s worker-{index} %(name)s: %(message)s",
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        status = asyncio.run(_serve(settings, index, conn, publish_demo))
    else:
        status = uvloop.run(_serve(settings, index, conn, publish_demo))
    conn.close()
    sys.exit(status)


async def _serve(settings: Settings, index: int, conn: Connection, publish_demo: bool) -> int:
    from eventwire.server.gateway import Gateway

    try:
        gateway = Gateway(settings)
        await gateway.start(reuse_port=True)
    except BrokerError as exc:
        return _failed(conn, 1, f"cannot reach the broker: {exc}")
    except (EventwireError, ValueError) as exc:
        return _failed(conn, 2, f"cannot start: {exc}")
    except OSError as exc:
        return _failed(conn, 1, f"cannot listen on {settings.host}:{settings.port}: {exc}")
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def supervisor_gone() -> None:
        loop.remove_reader(conn.fileno())
        log.warning("the supervisor is gone; stopping")
        stopping.append(loop.create_task(gateway.stop()))

    loop.add_reader(conn.fileno(), supervisor_gone)
    ready = WorkerReady(index, os.getpid(), gateway.node_id, gateway.url, gateway.ws_url)
    conn.send(("ready", asdict(ready)))
    demo: asyncio.Task[None] | None = None
    if publish_demo:
        from eventwire.demo import run_demo

        demo = loop.create_task(run_demo(gateway.publish))
    try:
        await gateway.serve_forever()
    finally:
        if demo is not None:
            demo.cancel()
    return 0


def _failed(conn: Connection, status: int, message: str) -> int:
    """Tell the supervisor why this worker could not start (it prints it once, for all)."""
    reply: tuple[str, Any] = ("failed", (status, message))
    conn.send(reply)
    return status
