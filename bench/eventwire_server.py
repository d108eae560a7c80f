"""The real gateway, configured so only fan-out limits what is measured.

The rate limit and the slow-consumer limit are raised: the load generator
subscribes thousands of connections at once and, during a burst, may hold a
few windows of events in its socket buffers.

Usage: ``python -m bench.eventwire_server PORT [BROKER_URL]`` (default ``memory://``).
"""

from __future__ import annotations

import logging
import sys

import uvloop

from eventwire.server import Gateway, Settings

_MAX_OUTBOUND = 16 * 1024 * 1024


async def serve(port: int, broker: str) -> None:
    """Serve on ``port`` until SIGTERM or SIGINT."""
    settings = Settings(
        port=port,
        broker=broker,
        insecure=True,
        commands_per_second=1e9,
        command_burst=10**9,
        max_outbound_buffer=_MAX_OUTBOUND,
    )
    async with Gateway(settings) as gateway:
        await gateway.serve_forever()


def main() -> None:
    """Log warnings (slow-consumer closes, errors) to stderr, where the bench collects them.

    The gateway runs without authentication, as the baseline does; its start-up
    warnings that it is insecure are expected here, not a problem to report.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("eventwire.auth").setLevel(logging.ERROR)
    broker = sys.argv[2] if len(sys.argv) > 2 else "memory://"
    uvloop.run(serve(int(sys.argv[1]), broker))


if __name__ == "__main__":
    main()
