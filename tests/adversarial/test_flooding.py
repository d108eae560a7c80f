"""Floods and trickles below the command layer, where the rate limit does not see them.

The command rate limit (``commands_per_second``, close 4029) counts
commands; WebSocket control frames and empty continuation fragments are not
commands, yet each costs the server a parse and, for a ping, a pong. One
unauthenticated socket sending them as fast as it can must neither slow
anyone else down nor go on for ever: it is closed with 4029 or the server
stops reading it. A socket that trickles one byte a second of a frame it
never finishes must not pass for alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import sys
import termios
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.frames import Close

from eventwire.auth import mint
from eventwire.codes import CloseCode
from eventwire.server import Settings
from eventwire.testing import running_gateway
from tests.adversarial.live import TOPIC, Bystander, healthz, server_errors
from tests.adversarial.proc import gateway_process, logged_errors
from tests.adversarial.wire import ws_frame
from tests.e2e.conftest import SECRET
from tests.e2e.rawpeer import RawPeer
from tests.integration.gatewayproc import GatewayProcess

FLOOD_SECONDS = 3.0
FAST = 0.5
"""Seconds a round trip or /healthz may take while another socket floods."""
STALLED = 2.0
"""Seconds after the flood in which the server takes nothing still queued: it stopped reading."""
FLOODS = {
    "pings": (b"", ws_frame(0x9, b"")),
    "unsolicited-pongs": (b"", ws_frame(0xA, b"")),
    "empty-continuations": (ws_frame(0x1, b"", fin=False), ws_frame(0x0, b"", fin=False)),
}


@dataclass
class Flood:
    """What one flooding socket achieved."""

    sent: int = 0
    close_code: int | None = None
    paused: bool = False
    tail: bytes = b""
    """The last bytes the server sent: a close frame, if any, is at their end."""

    def verdict(self) -> str:
        if self.close_code is not None:
            return f"closed {self.close_code}"
        if self.paused:
            return "paused"
        return f"still served: {self.sent / 2**20:.1f} MiB of frames taken"


def _close_code(tail: bytes) -> int | None:
    """The code of the close frame ``tail`` ends with (server frames are unmasked), if any."""
    for at in range(len(tail) - 4, -1, -1):
        if tail[at] == 0x88 and tail[at + 1] == len(tail) - at - 2:
            return Close.parse(tail[at + 2 :]).code
    return None


async def _drain_replies(peer: RawPeer, flood: Flood) -> None:
    """Read and drop the server's pongs, keeping only the tail for its close frame.

    Parsing every pong here would cost the test process more than it costs the server.
    """
    with contextlib.suppress(ConnectionError):
        while chunk := await peer.reader.read(1 << 20):
            flood.tail = (flood.tail + chunk)[-130:]
    flood.close_code = _close_code(flood.tail)


async def flood(peer: RawPeer, first: bytes, frame: bytes, seconds: float) -> Flood:
    """Write ``frame`` over and over for ``seconds``, or until the server hangs up."""
    result, block = Flood(), frame * (65536 // len(frame))
    replies = asyncio.get_running_loop().create_task(_drain_replies(peer, result))
    deadline = time.monotonic() + seconds
    try:
        await peer.send_raw(first)
        while not replies.done() and (left := deadline - time.monotonic()) > 0:
            peer.writer.write(block)
            await asyncio.wait_for(peer.writer.drain(), left)
            result.sent += len(block)
    except (TimeoutError, ConnectionError):
        pass
    result.paused = not replies.done() and await _takes_nothing(peer.writer.transport)
    await asyncio.wait([replies], timeout=0.5)  # a close frame on its way
    replies.cancel()
    return result


async def _takes_nothing(transport: asyncio.WriteTransport) -> bool:
    """Whether the server takes none of what is queued for it in STALLED seconds.

    A slow server still reads, so the queue shrinks; one that paused reading
    leaves it as it is. The queue is asyncio's buffer plus the bytes our
    kernel still holds, which leave exactly as fast as the server reads.
    """
    queued = _queued(transport)
    if queued == 0:
        return False  # it took all we wrote
    await asyncio.sleep(STALLED)
    return _queued(transport) >= queued


def _queued(transport: asyncio.WriteTransport) -> int:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    unsent = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4)
    return transport.get_write_buffer_size() + int.from_bytes(unsent, sys.byteorder)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    env = {"EVENTWIRE_JWT_SECRET": SECRET, "EVENTWIRE_AUTH_TIMEOUT": "60"}
    async with gateway_process(tmp_path, env) as node:
        yield node


@pytest.mark.parametrize("kind", FLOODS)
async def test_a_control_frame_flood_slows_no_one_and_is_stopped(
    node: GatewayProcess, kind: str
) -> None:
    jwt = mint(Settings(jwt_secret=SECRET), sub="bystander", subscribe=[TOPIC])
    bystander = await Bystander.join(node.ws_url, jwt)
    peer = await RawPeer.connect(node.ws_url)  # never authenticates
    round_trips, health = [], []
    try:
        work = asyncio.get_running_loop().create_task(flood(peer, *FLOODS[kind], FLOOD_SECONDS))
        while not work.done():
            round_trips.append(await _timed(bystander.round_trip()))
            health.append(await _timed(healthz(node.url)))
        flooded = await work
    finally:
        peer.writer.transport.abort()
        await bystander.close()
    seen = f"{kind}: {flooded.verdict()}; worst round trip {max(round_trips):.3f} s, " + (
        f"worst /healthz {max(health):.3f} s over {len(round_trips)} probes"
    )
    print(seen)
    assert max(round_trips) < FAST, seen
    assert max(health) < FAST, seen
    assert flooded.verdict() in ("closed 4029", "paused"), seen
    assert logged_errors(node) == []


async def test_a_frame_trickled_a_byte_a_second_is_not_kept_alive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Liveness is a peer that answers pings or completes frames, not one byte a second.

    With a heartbeat of 1 s + 1 s, a silent peer is closed within 3 s; this
    one is given 8 s while it trickles a frame it never finishes.
    """
    async with running_gateway(heartbeat_interval=1.0, heartbeat_timeout=1.0) as gateway:
        peer = await RawPeer.connect(gateway.ws_url)
        peer.mute = True  # pings go unanswered
        assert (await peer.next_json())["event"] == "CONNECTED"
        frame = ws_frame(0x1, b"x" * 1000)  # announces 1000 bytes; most never come
        trickle = asyncio.get_running_loop().create_task(_trickle(peer, frame, every=1.0))
        try:
            code: int | str = await asyncio.wait_for(peer.close_code(), 8.0)
        except TimeoutError:
            code = "still open after 8 s"
        except EOFError:
            code = "dropped without a close frame"
        finally:
            trickle.cancel()
            peer.writer.transport.abort()
    print(f"trickler: {code}")
    assert code in {int(known) for known in CloseCode}, code  # 4002 expected
    assert server_errors(caplog.records) == []


async def _timed(probe: Awaitable[float], limit: float = 4 * FAST) -> float:
    """Seconds ``probe`` took; ``limit`` if it took longer, or failed."""
    try:
        return await asyncio.wait_for(probe, limit)
    except (TimeoutError, OSError):
        return limit


async def _trickle(peer: RawPeer, data: bytes, every: float) -> None:
    with contextlib.suppress(ConnectionError):
        for at in range(len(data)):
            await peer.send_raw(data[at : at + 1])
            await asyncio.sleep(every)
