"""Opening a WebSocket to a gateway: the URLs, the handshake, the CONNECTED greeting."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from http import HTTPStatus
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Origin
from websockets.uri import parse_uri

from eventwire.client.errors import GatewayUnreachable, HandshakeForbidden
from eventwire.envelope import Event
from eventwire.errors import ConnectionLost
from eventwire.protocol.frames import ERROR_TOPIC, SYSTEM_TOPIC

__all__ = ["MAX_MESSAGE", "Endpoints", "open_connection", "with_token", "ws_url"]

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


class Endpoints:
    """The gateway URLs a client may use, and the one it uses now.

    Several URLs name several nodes of one deployment (sharing a broker), for
    clients without a load balancer in front of them. Each ``advance`` moves
    to the next URL, round robin, so a dead node costs one attempt, not a
    growing backoff; ``backoff_step`` grows once per round of the list.
    """

    def __init__(self, urls: str | Sequence[str]) -> None:
        listed = [urls] if isinstance(urls, str) else list(urls)
        if not listed:
            raise ValueError("give at least one gateway URL")
        self.urls = tuple(ws_url(url) for url in listed)
        self._index = 0

    @property
    def current(self) -> str:
        return self.urls[self._index]

    def advance(self) -> str:
        """Move to the next URL (the same one when there is only one) and return it."""
        self._index = (self._index + 1) % len(self.urls)
        return self.current

    def backoff_step(self, attempt: int) -> int:
        """The backoff exponent of reconnection ``attempt`` (0-based): one per round of URLs."""
        return attempt // len(self.urls)


def with_token(url: str, token: str | None) -> str:
    """``url`` with ``?token=`` set; browsers cannot send headers, so tokens ride the query."""
    if token is None:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("token", token)])))


def shown(url: str) -> str:
    """``url`` fit for messages and logs: its token, if any, hidden."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k == "token" for k, _ in query):
        return url
    hidden = [(k, "***" if k == "token" else v) for k, v in query]
    return urlunsplit(parts._replace(query=urlencode(hidden, safe="*")))


async def open_connection(
    url: str, timeout: float, origin: str | None = None
) -> tuple[ClientConnection, Event]:
    """A WebSocket whose first frame, the CONNECTED greeting, has been read.

    A gateway that refuses the connection (a bad token, a connection cap)
    answers with an ERROR and a close code: that is ConnectionLost with the
    code, which says whether to retry. A handshake answered with HTTP 403
    (an ``origin`` not on the gateway's allow-list) is HandshakeForbidden.
    Any other failure, from a refused TCP connection to a missing greeting or
    an HTTP 429 (a connection cap), is GatewayUnreachable, always retried.
    Messages name the URL without its token.
    """
    try:
        ws = await connect(
            url,
            open_timeout=timeout,
            compression=None,
            max_size=MAX_MESSAGE,
            origin=None if origin is None else Origin(origin),
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status == HTTPStatus.FORBIDDEN:
            raise HandshakeForbidden(status, f"{shown(url)} refused the handshake: {exc}") from exc
        raise GatewayUnreachable(f"cannot connect to {shown(url)}: {exc}") from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise GatewayUnreachable(f"cannot connect to {shown(url)}: {exc}") from exc
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
        raise GatewayUnreachable(f"no CONNECTED greeting from {shown(url)}: {exc}") from exc
    return ws, hello
