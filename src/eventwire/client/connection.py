"""Opening a WebSocket to a gateway: the URL, the handshake, the CONNECTED greeting."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.uri import parse_uri

from eventwire.client.errors import GatewayUnreachable
from eventwire.envelope import Event
from eventwire.errors import ConnectionLost
from eventwire.protocol.frames import ERROR_TOPIC, SYSTEM_TOPIC

__all__ = ["MAX_MESSAGE", "open_connection", "with_token", "ws_url"]

MAX_MESSAGE = 16 * 2**20
"""Largest inbound message; the gateway's payloads are far smaller (100 KiB by default)."""


def ws_url(url: str) -> str:
    """``url`` as a WebSocket URL; an ``http(s)://`` base URL points at its ``/ws``."""
    if url.startswith(("http://", "https://")):
        url = "ws" + url.removeprefix("http")
        if urlsplit(url).path in ("", "/"):
            url = url.rstrip("/") + "/ws"
    try:
        parse_uri(url)
    except InvalidURI as exc:
        raise ValueError(f"not a WebSocket URL: {url!r}") from exc
    return url


def with_token(url: str, token: str | None) -> str:
    """``url`` with ``?token=`` set; browsers cannot send headers, so tokens ride the query."""
    if token is None:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("token", token)])))


async def open_connection(url: str, timeout: float) -> tuple[ClientConnection, Event]:
    """A WebSocket whose first frame, the CONNECTED greeting, has been read.

    A gateway that refuses the connection (a bad token, a connection cap)
    answers with an ERROR and a close code: that is ConnectionLost with the
    code, which says whether to retry. Any other failure, from a refused TCP
    connection to a missing greeting, is GatewayUnreachable, always retried.
    """
    try:
        ws = await connect(url, open_timeout=timeout, compression=None, max_size=MAX_MESSAGE)
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise GatewayUnreachable(f"cannot connect to {url}: {exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            hello = Event.model_validate_json(await ws.recv())
            if hello.topic == ERROR_TOPIC:
                await ws.wait_closed()
                refusal = hello.payload if isinstance(hello.payload, dict) else {}
                message = f"{refusal.get('code')}: {refusal.get('message')}"
                raise ConnectionLost(
                    ws.close_code, f"the gateway refused the connection: {message}"
                )
        if (hello.topic, hello.event) != (SYSTEM_TOPIC, "CONNECTED"):
            raise ValueError(f"expected system CONNECTED first, got {hello.topic} {hello.event}")
    except (TimeoutError, ConnectionClosed, ValueError) as exc:
        await ws.close()
        raise GatewayUnreachable(f"no CONNECTED greeting from {url}: {exc}") from exc
    return ws, hello
