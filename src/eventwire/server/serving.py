"""One gateway process from start to exit: what ``eventwire serve`` and each of its workers run.

``serve`` builds the gateway, starts it, calls ``on_ready`` once it listens
and hears its broker, publishes the demo stream if asked, serves until
SIGTERM or SIGINT and stops within ``settings.stop_budget``. A gateway that
cannot start raises ``CannotStart``, whose ``Failure`` holds the exit status:

======  ===============================================================
status  why
======  ===============================================================
2       the settings cannot work: auth keys, catalog, broker URL
1       the broker does not answer, or ``host:port`` cannot be bound
======  ===============================================================
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from eventwire.errors import BrokerError, EventwireError
from eventwire.server.config import Settings
from eventwire.server.gateway import Gateway

__all__ = [
    "CannotStart",
    "Failure",
    "check_settings",
    "configure_logging",
    "freeze_startup_heap",
    "run_loop",
    "serve",
]

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a gateway process ends in error: its exit status, and what to say on stderr."""

    status: int
    message: str
    broker_unreachable: bool = False
    """The broker did not answer: it may later, so starting again may work."""


class CannotStart(EventwireError):
    """The gateway could not start; ``failure`` says why and with which exit status."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def configure_logging(settings: Settings, worker: int | None = None) -> None:
    """Log to stderr at ``settings.log_level``; a worker's lines say ``worker-N``."""
    tag = "" if worker is None else f"worker-{worker} "
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s",
    )


def run_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to the end on uvloop, or on asyncio's loop where uvloop is missing."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def freeze_startup_heap() -> None:
    """Put what start-up built, which lives as long as the process, out of the collector's
    sight, so that the collections a reconnect storm triggers do not walk it (``gc.freeze``:
    about 7% of the CPU a storm of 10,000 connections costs, measured)."""
    gc.collect()
    gc.freeze()


def check_settings(settings: Settings) -> None:
    """Raise CannotStart (status 2) for settings that no gateway can start with.

    It builds a gateway and drops it: the constructor is the one place that
    makes every check (auth keys, catalog, broker URL) and it opens no
    connection. Building only the parts that check costs as much (the
    broker client's import dominates) and would drift from it.
    """
    _built(settings)


def serve(
    settings: Settings,
    *,
    on_ready: Callable[[Gateway], None],
    reuse_port: bool = False,
    demo: bool = False,
) -> int:
    """Serve in this process until SIGTERM or SIGINT; 0 once stopped in time, 1 if cut short.

    ``on_ready`` runs on the loop once the gateway listens and hears its
    broker. ``reuse_port``: listen beside other workers; ``demo``: publish
    the demo stream. Raises CannotStart. The process is meant to exit next:
    SIGTERM and SIGINT stay blocked, so that a second Ctrl-C (or
    ``timeout``, which signals the whole group again) cannot turn a
    finished stop into a crash.
    """
    return run_loop(_serve(settings, on_ready, reuse_port, demo))


async def _serve(
    settings: Settings, on_ready: Callable[[Gateway], None], reuse_port: bool, demo: bool
) -> int:
    gateway = _built(settings)
    await _started(gateway, reuse_port)
    freeze_startup_heap()
    on_ready(gateway)
    publishing: asyncio.Task[None] | None = None
    if demo:
        from eventwire.demo import run_demo

        publishing = asyncio.get_running_loop().create_task(run_demo(gateway.publish))
    try:
        in_time = await gateway.serve_forever()
    finally:
        if publishing is not None:
            publishing.cancel()
    # Blocked before the loop closes, which puts the default handlers back.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    return 0 if in_time else 1


def _built(settings: Settings) -> Gateway:
    try:
        return Gateway(settings)
    except (EventwireError, ValueError, ImportError) as exc:  # auth, catalog, broker URL, client
        raise CannotStart(Failure(2, f"cannot start: {exc}")) from exc


async def _started(gateway: Gateway, reuse_port: bool) -> None:
    try:
        await gateway.start(reuse_port=reuse_port)
    except BrokerError as exc:
        raise CannotStart(Failure(1, f"cannot reach the broker: {exc}", True)) from exc
    except (EventwireError, ValueError) as exc:
        raise CannotStart(Failure(2, f"cannot start: {exc}")) from exc
    except OSError as exc:
        where = f"{gateway.settings.host}:{gateway.settings.port}"
        raise CannotStart(Failure(1, f"cannot listen on {where}: {exc}")) from exc
