"""``python -m bench.freeze redis|nats``: publish latency around a frozen broker.

Two ``eventwire serve`` nodes on a broker server of their own; publishes
over HTTP at a steady rate, open loop (each on a connection of its own, so
no client pool queues them); the broker is frozen with SIGSTOP for a few
seconds, then resumed. Prints, per half second relative to SIGCONT, how
many publishes were sent, their latency (p50, p95, max) and their answers:
how long publishes stay slow once the broker answers again, and whether
any took longer than the command timeout (2 s).

Uses the integration tests' process helpers (``tests/integration``), so it
runs from a development checkout with the test dependencies installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from collections import Counter
from pathlib import Path

from tests.integration.gatewayproc import GatewayProcess
from tests.integration.natsproc import NatsProcess
from tests.integration.redisproc import RedisProcess
from tests.integration.traffic import Ledger, SteadyPublisher

__all__ = ["main"]

TOPICS = ["gift-list:1", "gift-list:2"]


async def measure(kind: str, rate: float, frozen: float, after: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="eventwire-freeze-"))
    server: RedisProcess | NatsProcess
    server = RedisProcess(workdir) if kind == "redis" else NatsProcess(workdir)
    server.start()
    nodes = [GatewayProcess(f"node-{n}", server.url, workdir) for n in (1, 2)]
    try:
        await asyncio.gather(*(node.start() for node in nodes))
        ledger = Ledger()
        publisher = SteadyPublisher(None, [node.url for node in nodes], TOPICS, ledger)
        count = int(rate * (2.0 + frozen + after))
        load = asyncio.create_task(publisher.run(count, interval=1 / rate, in_flight=count))
        await asyncio.sleep(2.0)
        server.freeze()
        await asyncio.sleep(frozen)
        server.thaw()
        resumed = asyncio.get_running_loop().time()
        await load
        report(publisher.timings, resumed, ledger)
    finally:
        for node in nodes:
            with contextlib.suppress(ProcessLookupError):
                await node.kill()
        server.kill()


def report(timings: list[tuple[float, float]], resumed: float, ledger: Ledger) -> None:
    buckets: dict[float, list[float]] = {}
    for started, took in timings:
        buckets.setdefault((started - resumed) // 0.5 * 0.5, []).append(took)
    print("sent after SIGCONT    n     p50 ms    p95 ms    max ms")
    for start in sorted(buckets):
        seconds = sorted(buckets[start])
        p50 = seconds[len(seconds) // 2]
        p95 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))]
        print(f"{start:+6.1f} s        {len(seconds):5d} {p50 * 1e3:9.1f} {p95 * 1e3:9.1f}"
              f" {seconds[-1] * 1e3:9.1f}")  # fmt: skip
    print(f"longest: {max(took for _, took in timings):.3f} s")
    print(f"accepted: {ledger.count_accepted()}, refused: {dict(Counter(ledger.refused))}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.freeze", description=__doc__)
    parser.add_argument("broker", choices=["redis", "nats"])
    parser.add_argument("--rate", type=float, default=150.0, help="publishes per second")
    parser.add_argument("--frozen", type=float, default=3.0, help="seconds frozen")
    parser.add_argument("--after", type=float, default=10.0, help="seconds measured after")
    args = parser.parse_args(argv)
    asyncio.run(measure(args.broker, args.rate, args.frozen, args.after))


if __name__ == "__main__":
    main()
