"""The baseline: the fan-out server most people would write with ``websockets``.

Every connection on ``/publish`` is a publisher: each message it sends is
broadcast as is to every other connection. Any other path subscribes; the
server confirms with one ``registered`` frame once the connection is in the
set, so the load generator knows when fan-out will reach it.

It uses the documented fast path (``recv(decode=False)`` and
``broadcast(..., text=True)``, no UTF-8 round trip) and runs on uvloop like
the gateway, so the comparison is of the server design, not of the loop.

Usage: ``python -m bench.baseline_server PORT``.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

_REGISTERED = '{"type":"registered"}'

subscribers: set[ServerConnection] = set()


async def publish(websocket: ServerConnection) -> None:
    """Broadcast every message of a publisher connection."""
    try:
        while True:
            message = await websocket.recv(decode=False)
            broadcast(subscribers, message, text=True)
    except ConnectionClosed:
        pass


async def subscribe(websocket: ServerConnection) -> None:
    """Hold a subscriber in the set until it disconnects."""
    subscribers.add(websocket)
    try:
        await websocket.send(_REGISTERED)
        await websocket.wait_closed()
    finally:
        subscribers.discard(websocket)


async def handler(websocket: ServerConnection) -> None:
    """Route by path: ``/publish`` publishes, anything else subscribes."""
    request = websocket.request
    if request is not None and request.path == "/publish":
        await publish(websocket)
    else:
        await subscribe(websocket)


async def serve_until_signalled(port: int) -> None:
    """Serve on ``port`` until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The gateway listens with backlog 4096; give the baseline the same.
    async with serve(handler, "127.0.0.1", port, backlog=4096):
        await stop.wait()


def main() -> None:
    uvloop.run(serve_until_signalled(int(sys.argv[1])))


if __name__ == "__main__":
    main()
