"""What the Redis broker's command connections tell it beyond redis-py: sent or not, and stale.

A publish that fails must say whether Redis may have run it. Before its
script was written to a socket, nothing can have been stored (503, retry
safely); once written, a timeout or a broken link leaves the outcome
unknown: a frozen Redis runs the script when it is resumed (504). redis-py
raises the same ``TimeoutError`` for a connection whose handshake got no
answer and for a command whose reply did not come, so the connections
themselves record it: a ``Flight`` (one per publish, in a context variable)
is marked when a script call (``EVALSHA``, ``EVAL``) is written, and cleared
when a reply is read.

Every command of the broker is a script call (publish, position, history),
sent alone on an idle connection. One whose server closed it (a restarted
Redis, a killed client) is reconnected before the call is written, instead
of failing it: the Redis Cluster client hands out its pooled connections
unchecked, and a publish written on a dead one could not be told from one
that Redis ran.
"""

from __future__ import annotations

import contextlib
import contextvars
import select
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar, cast

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

__all__ = ["Flight", "plain", "watched"]

C = TypeVar("C", bound=AbstractConnection)

_SCRIPT_CALLS = (b"\r\nEVALSHA\r\n", b"\r\nEVAL\r\n", b"\r\nevalsha\r\n", b"\r\neval\r\n")


class Flight:
    """One write on its way: whether a script call was written and not answered yet."""

    _current: contextvars.ContextVar[Flight | None] = contextvars.ContextVar(
        "eventwire_redis_flight", default=None
    )

    def __init__(self) -> None:
        self.unanswered = False

    @classmethod
    @contextlib.contextmanager
    def track(cls) -> Iterator[Flight]:
        """The flight of the script calls made inside the block (by this task)."""
        flight = cls()
        token = cls._current.set(flight)
        try:
            yield flight
        finally:
            cls._current.reset(token)

    @classmethod
    def current(cls) -> Flight | None:
        return cls._current.get()


class _Watched(AbstractConnection):
    """A command connection that reports script calls to the current Flight."""

    _plain: type[AbstractConnection]

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if not isinstance(command, bytes | str | list | tuple):
            command = list(command)  # looked at, then written
        if not _is_script_call(command):  # redis-py's own: a handshake, a pipeline, a PING
            await super().send_packed_command(command, check_health)
            return
        # Ours, alone on an idle connection (its handshake done, every reply read).
        if self.is_connected and _closed_by_server(self):
            await self.disconnect(nowait=True)  # written on, it would fail the command
        await self.connect()  # type: ignore[no-untyped-call]  # no-op when connected
        if check_health:
            await self.check_health()  # type: ignore[no-untyped-call]
        flight = Flight.current()
        if flight is not None:
            flight.unanswered = True  # from here on, Redis may run it
        await super().send_packed_command(command, check_health=False)

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            response = await super().read_response(*args, **kwargs)
        except ResponseError:
            _answered()
            raise
        _answered()
        return response


def _answered() -> None:
    flight = Flight.current()
    if flight is not None:
        flight.unanswered = False


def _closed_by_server(connection: AbstractConnection) -> bool:
    """Whether an idle connection must not be written on: its server closed it, or left bytes.

    The close is looked for in the socket too, not only in what the event
    loop has read: right after a restart the loop may not have run since.
    """
    reader = getattr(connection, "_reader", None)
    writer = getattr(connection, "_writer", None)
    if reader is None or writer is None:
        return False
    if reader.at_eof() or reader.exception() is not None:
        return True
    sock = writer.transport.get_extra_info("socket")
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))  # idle, so anything to read is a close, a reset or garbage


def _is_script_call(command: bytes | str | Iterable[bytes]) -> bool:
    if isinstance(command, str):
        command = command.encode()
    head = command if isinstance(command, bytes) else next(iter(command), b"")
    return any(name in head[:24] for name in _SCRIPT_CALLS)


_classes: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def watched(cls: type[C]) -> type[C]:
    """``cls`` (redis-py's Connection, SSLConnection, ...) with the watch above."""
    if issubclass(cls, _Watched):
        return cls
    found = _classes.get(cls)
    if found is None:
        found = _classes[cls] = type(f"Watched{cls.__name__}", (_Watched, cls), {"_plain": cls})
    return cast(type[C], found)


def plain(cls: type[C]) -> type[C]:
    """The class ``watched`` was made from (the Pub/Sub link reads its own way)."""
    return cast(type[C], cls._plain) if issubclass(cls, _Watched) else cls
