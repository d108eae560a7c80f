"""The real gateway, configured so only fan-out limits what is measured.

The command rate limit and the slow-consumer limit are raised: the load
generator subscribes thousands of connections at once and, during a burst,
may hold a few windows of events in its socket buffers. The frame budget
(``frame_rate``, ``frame_burst``) keeps its defaults, which only a flood
reaches. The attack runs give ``--max-outbound-buffer`` its default back.

Usage: ``python -m bench.eventwire_server PORT [BROKER_URL] [--max-outbound-buffer BYTES]``
(default ``memory://`` and 16 MiB).
"""

from __future__ import annotations

import argparse
import logging

import uvloop

from eventwire.server import Gateway, Settings
from eventwire.server.serving import freeze_startup_heap

_MAX_OUTBOUND = 16 * 1024 * 1024


async def serve(port: int, broker: str, max_outbound: int) -> None:
    """Serve on ``port`` until SIGTERM or SIGINT."""
    settings = Settings(
        port=port,
        broker=broker,
        insecure=True,
        commands_per_second=1e9,
        command_burst=10**9,
        max_outbound_buffer=max_outbound,
    )
    async with Gateway(settings) as gateway:
        freeze_startup_heap()  # as `eventwire serve` does once it listens
        await gateway.serve_forever()


def main() -> None:
    """Log warnings (slow-consumer closes, errors) to stderr, where the bench collects them.

    The gateway runs without authentication, as the baseline does; its start-up
    warnings that it is insecure are expected here, not a problem to report.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("eventwire.auth").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(prog="python -m bench.eventwire_server")
    parser.add_argument("port", type=int)
    parser.add_argument("broker", nargs="?", default="memory://")
    parser.add_argument("--max-outbound-buffer", type=int, default=_MAX_OUTBOUND)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.broker, args.max_outbound_buffer))


if __name__ == "__main__":
    main()
