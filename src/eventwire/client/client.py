"""The WebSocket client: subscriptions, handlers, and reconnection that resubscribes.

::

    async with Client("ws://127.0.0.1:8000/ws") as client:
        sub = await client.subscribe("gift-list:123")
        async for event in sub:
            print(event.event, event.entity_id, event.payload)

One task reads the connection and does no waiting of its own: it decodes each
frame once, answers requests in flight, and hands events to subscriptions.
When the connection ends with a close code that says so (``should_reconnect``)
it reconnects with backoff, resubscribes every topic, and reports what was
missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Self, TypeVar

import orjson
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from eventwire.catalog import Catalog
from eventwire.client.connection import Endpoints, open_connection, with_token
from eventwire.client.errors import (
    CommandFailed,
    GatewayUnreachable,
    RequestTimeout,
    ServerError,
    SubscribeRefused,
    VersionsConflict,
    publish_failed,
    refused_for_good,
)
from eventwire.client.publisher import Published, Sender
from eventwire.client.reconnect import Backoff, Reconnected, ReconnectHandler, Signal, notify
from eventwire.client.requests import Answer, Requests
from eventwire.client.router import Router
from eventwire.client.streams import Gap, TopicPosition
from eventwire.client.subscription import Handler, Subscription
from eventwire.client.versions import (
    FROM_CONNECTION,
    Declared,
    FromConnection,
    Versions,
    check_versions,
    subscription_versions,
    versions_key,
)
from eventwire.codes import should_reconnect
from eventwire.envelope import Event
from eventwire.errors import ClientError, ConnectionLost
from eventwire.protocol.frames import ERROR_TOPIC, SYSTEM_TOPIC, command_frame

__all__ = ["Client", "ErrorHandler", "SocketPublisher", "TokenProvider"]

log = logging.getLogger("eventwire.client")

ErrorHandler = Callable[[ServerError], None]
TokenProvider = Callable[[], str | Awaitable[str]]
"""Returns a token for the next connection or refresh; sync or async."""
H = TypeVar("H", bound=Handler)

_MAX_TOPICS_PER_COMMAND = 1000
_ABNORMAL = 1006


class Client:
    """A connection to an eventwire gateway, kept open across restarts.

    ``url`` is the gateway's WebSocket URL (``ws://host:port/ws``); an
    ``http://`` base URL is accepted and pointed at ``/ws``. A list of URLs
    names several nodes of one deployment: ``connect()`` uses the first that
    answers, and each reconnection attempt goes to the next one in the list
    (round robin), so the clients of a dead node move to the others.
    Reconnection waits ``backoff_initial * 2**round`` seconds at most (full
    jitter), capped at ``backoff_max``, where ``round`` counts the times every
    URL was tried; ``max_reconnect_attempts`` (consecutive attempts that
    failed to connect) of None retries forever. The backoff starts again from
    ``backoff_initial`` only after a connection stayed open ``stable_after``
    seconds: a node that accepts and closes at once is retried ever more
    slowly, not every ``backoff_initial``.
    After a reconnection ``on_reconnect`` is called with a ``Reconnected``
    (sync or async), ``reconnects`` counts them, and ``await
    client.reconnected()`` returns at the next one.

    ``token`` is sent as ``?token=`` on every connection; ``get_token`` (sync
    or async) is asked for a fresh one before every connection and whenever
    the gateway says TOKEN_EXPIRED, and the fresh token is sent with AUTH, so
    a long-lived client keeps its subscriptions across token lifetimes. A
    ``get_token`` that raises fails that connection attempt (logged), which
    is retried like a gateway out of reach. A gateway that refuses the token
    for good (4501, 4503) ends the client with ConnectionLost, and so does a
    handshake answered with HTTP 403 (HandshakeForbidden): ``origin`` is the
    ``Origin`` header sent, for a gateway with an allow-list.

    ERROR events that answer no command (a frame the server could not read)
    are appended to ``errors`` and passed to ``on_error``. Missed events are
    appended to ``gaps`` (and to each subscription's ``gaps``); ``positions``
    holds the last ``(seq, epoch)`` delivered per topic. With ``recover`` (the
    default) a resubscription sends each topic's position as ``since``, and
    the gateway replays what was missed through the same subscription (no
    gap); when it cannot, the gap is reported with ``history_lost``.

    ``versions`` declares the event versions every subscription reads
    (``{"*": [1]}``) unless it declares its own; see ``subscribe``.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        reconnect: bool = True,
        backoff_initial: float = 0.25,
        backoff_max: float = 30.0,
        max_reconnect_attempts: int | None = None,
        on_reconnect: ReconnectHandler | None = None,
        on_error: ErrorHandler | None = None,
        request_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        max_queue: int = 10_000,
        token: str | None = None,
        get_token: TokenProvider | None = None,
        catalog: Catalog | None = None,
        recover: bool = True,
        versions: Versions | None = None,
        stable_after: float = 5.0,
        origin: str | None = None,
    ) -> None:
        self._endpoints = Endpoints(url)
        self._backoff = Backoff(stable_after, step=self._endpoints.backoff_step)
        self.origin = origin
        self._connection_versions: Declared = None if versions is None else check_versions(versions)
        self.recover = recover
        self.token = token
        self.get_token = get_token
        self.catalog = catalog
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_reconnect_attempts = max_reconnect_attempts
        self.on_reconnect = on_reconnect
        self.on_error = on_error
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.max_queue = max_queue
        self.session_id: str | None = None
        self.reconnects = 0
        self.last_reconnect: Reconnected | None = None
        self.errors: list[ServerError] = []
        self._ws: ClientConnection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._requests = Requests()
        self._router = Router(self._deliver)
        self._on_subs: dict[str, Subscription] = {}
        self._versions: dict[str, Declared] = {}
        """The versions each topic is held with: those of its first subscription."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = Signal()
        self._closed = False
        self._failure: ClientError | None = None

    # -- lifecycle -------------------------------------------------------------

    @property
    def url(self) -> str:
        """The WebSocket URL in use (or tried last)."""
        return self._endpoints.current

    @property
    def urls(self) -> tuple[str, ...]:
        """Every WebSocket URL the client may use, in the order given."""
        return self._endpoints.urls

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now."""
        return self._ws is not None

    @property
    def positions(self) -> dict[str, TopicPosition]:
        """The last ``(seq, epoch)`` delivered per topic, kept after unsubscribing."""
        return self._router.positions

    @property
    def gaps(self) -> list[Gap]:
        """Every gap noticed, in every topic, in order."""
        return self._router.gaps

    async def connect(self) -> None:
        """Connect, and subscribe the topics of handlers registered with ``on``.

        Tries each URL once, in order. Raises GatewayUnreachable when no
        gateway can be reached and SubscribeRefused when a handler's topic is
        refused.
        """
        if self._closed or self._runner is not None:
            raise ClientError("a Client connects once; create a new one")
        ws = await self._open_first()
        self._runner = asyncio.get_running_loop().create_task(self._run(ws))
        if topics := self._router.topics:
            try:
                await self._subscribe_topics(topics)
            except ClientError:
                await self.close()
                raise

    async def close(self) -> None:
        """Close the connection (1000) and end every subscription; final."""
        if self._closed:
            return
        self._closed = True
        runner, self._runner = self._runner, None
        if self._ws is not None:
            await self._ws.close()
        tasks = [*self._tasks, *([runner] if runner is not None else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._connection_lost(1000, "client closed")
        subscriptions = self._router.clear()
        self._versions.clear()
        for sub in subscriptions:
            sub._end()
        await asyncio.gather(*(sub._stop_handlers(grace=1.0) for sub in subscriptions))

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def reconnected(
        self, since: int | None = None, *, timeout: float | None = None
    ) -> Reconnected:
        """Wait until ``reconnects`` exceeds ``since`` (default: its value now); return the latest.

        Pass ``since=client.reconnects`` read before causing the disconnect,
        so a reconnection that finishes before this call is not missed.
        Raises TimeoutError after ``timeout`` and ConnectionLost if the
        client gives up or is closed first.
        """
        target = self.reconnects if since is None else since
        async with asyncio.timeout(timeout):
            while self.reconnects <= target:
                self._check_usable()
                await self._changed.wait()
        assert self.last_reconnect is not None
        return self.last_reconnect

    # -- subscriptions -----------------------------------------------------------

    async def subscribe(
        self, *topics: str, versions: Versions | FromConnection | None = FROM_CONNECTION
    ) -> Subscription:
        """Subscribe to ``topics`` and return the subscription that receives their events.

        ``versions`` declares the event versions this code reads, by event key
        (``{"room.MESSAGE_POSTED": [1], "*": [1, 2]}``, see the protocol); a
        gateway with a catalog converts events to the highest one accepted.
        It goes over the client's ``versions`` key by key; left out, the
        client's apply; None reads events as published. It is kept for
        resubscribing after a reconnection.

        The subscriptions of one topic share the gateway's subscription:
        subscribing a topic already held with other versions raises
        VersionsConflict, and nothing is sent. A malformed ``versions`` raises
        ValueError. Raises SubscribeRefused (code INVALID_TOPIC,
        RESERVED_TOPIC, ...) when the gateway refuses any of the topics, and
        then no topic of this call stays subscribed; RequestTimeout or
        ConnectionLost when there is no answer.
        """
        if not topics:
            raise ValueError("subscribe to at least one topic")
        declared = subscription_versions(self._connection_versions, versions)
        sub = Subscription(tuple(dict.fromkeys(topics)), self._unsubscribe, self.max_queue)
        self._route(sub, declared)
        try:
            await self._subscribe_topics(list(sub.topics))
        except BaseException as exc:
            refused = set(exc.refused) if isinstance(exc, SubscribeRefused) else set()
            gone = [t for t in self._unroute(sub) if t not in refused]
            sub._end()
            if gone and self.connected and isinstance(exc, ClientError):
                with contextlib.suppress(ClientError):
                    await self._command("UNSUBSCRIBE", {"topics": gone})
            raise
        return sub

    def on(self, topic: str, event: str | None = None) -> Callable[[H], H]:
        """Decorator: call the handler for every ``event`` of ``topic`` (every event when None).

        The topic is subscribed on ``connect()``, with the client's
        ``versions``; registered while connected, it is subscribed in the
        background and a refusal lands in ``errors``. A topic already held
        with other versions raises VersionsConflict.
        """

        def register(handler: H) -> H:
            sub = self._on_subs.get(topic)
            if sub is None:
                sub = Subscription((topic,), self._unsubscribe, self.max_queue)
                new = self._route(sub, self._connection_versions)
                self._on_subs[topic] = sub
                if new and self.connected:
                    self._spawn(self._subscribe_quietly([topic]))
            sub.on(event, handler)
            return handler

        return register

    async def authenticate(self, token: str) -> Any:
        """Send AUTH with ``token`` on the open connection; return AUTHENTICATED's payload.

        Raises CommandFailed (UNAUTHORIZED, REVOKED, ...) when the gateway refuses it.
        """
        self.token = token
        answer = await self._command("AUTH", {"token": token})
        if answer.errors:
            raise CommandFailed(answer.errors[0])
        return answer.payload

    def typed(self, event: Event) -> Any:
        """``event``'s payload as its catalog model (``Gift``), given ``catalog=``.

        Dispatches on the event's type and version; without a catalog, or for
        a payload that is not a whole model (a partial UPDATED), the payload
        as received.
        """
        if self.catalog is None:
            return event.data.payload
        return self.catalog.typed_payload(
            event.topic, event.event, event.version, event.data.payload
        )

    @property
    def publisher(self) -> SocketPublisher:
        """The seed's helpers (``added``, ``emit``, ...) over this connection's PUBLISH command.

        For events a client may publish itself (chat messages, presence-like
        signals): the gateway allows them by grant and event type, and sets
        ``user_id``, ``tenant_id`` and ``timestamp`` from the connection.
        """
        return SocketPublisher(self)

    async def publish_envelope(self, envelope: dict[str, Any]) -> Published:
        """Publish one envelope with PUBLISH; PublishFailed carries the gateway's refusal.

        PublishOutcomeUnknown (a PublishFailed) when the gateway's broker did
        not answer in time: the event may be stored, a retry may store it twice.
        """
        answer = await self._command("PUBLISH", {"event": envelope})
        if answer.errors:
            error = answer.errors[0]
            raise publish_failed(error.code, error.message, error.details)
        reply = answer.payload if isinstance(answer.payload, dict) else {}
        return Published(str(reply.get("topic")), str(reply.get("event")), int(reply.get("seq", 0)))

    async def _current_token(self) -> str | None:
        if self.get_token is not None:
            fresh = self.get_token()
            self.token = await fresh if inspect.isawaitable(fresh) else fresh
        return self.token

    async def _token_for_connection(self) -> str | None:
        """The token of the next connection; a failing ``get_token`` fails only this attempt."""
        try:
            return await self._current_token()
        except Exception as exc:
            log.warning("get_token() failed before connecting to %s: %r", self.url, exc)
            raise GatewayUnreachable(f"get_token() failed: {exc!r}") from exc

    async def _refresh_token(self) -> None:
        """The token is about to lapse: fetch a fresh one and send it with AUTH."""
        if self.get_token is None:
            log.warning("token expired and no get_token to refresh it; the gateway will close")
            return
        try:
            await self.authenticate(await self._current_token() or "")
        except Exception as exc:  # the gateway closes with 4001; reconnecting asks again
            log.warning("token refresh failed: %r", exc)

    async def ping(self) -> float:
        """Round trip to the gateway and back, in seconds."""
        started = time.perf_counter()
        await self._command("PING")
        return time.perf_counter() - started

    async def presence(self, topic: str) -> dict[str, Any]:
        """Who is on ``topic`` (one this client is subscribed to), on every node.

        PRESENCE_STATE's payload: ``topic``, ``count``, ``users`` (each
        ``user_id``, ``connections``, ``tenant_id`` when set), ``connections``
        and ``anonymous``. Raises CommandFailed (NOT_SUPPORTED for a topic the
        gateway does not track, VALIDATION_ERROR for one not subscribed to).
        """
        answer = await self._command("PRESENCE", {"topic": topic})
        if answer.errors:
            raise CommandFailed(answer.errors[0])
        state: dict[str, Any] = answer.payload
        return state

    def _route(self, sub: Subscription, declared: Declared) -> list[str]:
        """Route ``sub``'s topics, held with ``declared``; return the topics new to the client.

        Raises VersionsConflict, changing nothing, when a topic is held with others.
        """
        for topic in sub.topics:
            if topic in self._versions and self._versions[topic] != declared:
                raise VersionsConflict(topic, self._versions[topic], declared)
        new = self._router.add(sub)
        for topic in new:
            self._versions[topic] = declared
        return new

    def _unroute(self, sub: Subscription) -> list[str]:
        """Stop routing ``sub``; return the topics nobody holds any more, free of their versions."""
        gone = self._router.remove(sub)
        for topic in gone:
            self._versions.pop(topic, None)
        return gone

    async def _unsubscribe(self, sub: Subscription) -> None:
        gone = self._unroute(sub)
        sub._end()
        if gone and self.connected:
            with contextlib.suppress(ConnectionLost):
                await self._command("UNSUBSCRIBE", {"topics": gone})

    async def _subscribe_topics(
        self, topics: list[str], since: dict[str, TopicPosition] | None = None
    ) -> None:
        errors: list[ServerError] = []
        by_versions: dict[str, list[str]] = {}  # one SUBSCRIBE per distinct `versions`
        for topic in topics:
            by_versions.setdefault(versions_key(self._versions.get(topic)), []).append(topic)
        for key, group in by_versions.items():
            for i in range(0, len(group), _MAX_TOPICS_PER_COMMAND):
                chunk = group[i : i + _MAX_TOPICS_PER_COMMAND]
                payload: dict[str, Any] = {"topics": chunk}
                if since:
                    recover = {
                        t: {"seq": p.seq, "epoch": p.epoch} for t in chunk if (p := since.get(t))
                    }
                    if recover:
                        payload["since"] = recover
                if key:
                    payload["versions"] = orjson.loads(key)
                answer = await self._command("SUBSCRIBE", payload)
                errors += answer.errors
        if errors:
            raise SubscribeRefused(errors)

    async def _subscribe_quietly(self, topics: list[str]) -> None:
        try:
            await self._subscribe_topics(topics)
        except SubscribeRefused as exc:
            for error in exc.errors:
                self._record_error(error)
            for topic in exc.refused:  # handlers of a refused topic would wait forever
                if (sub := self._on_subs.pop(topic, None)) is not None:
                    self._unroute(sub)
                    sub._end(exc)
        except ClientError as exc:
            log.warning("subscribing %s failed: %s", topics, exc)

    # -- requests ----------------------------------------------------------------

    async def _command(self, command: str, payload: Any = None) -> Answer:
        """Send one command when connected (waiting across a reconnect) and await its answer."""
        try:
            async with asyncio.timeout(self.request_timeout):
                while (ws := self._ws) is None:
                    self._check_usable()
                    await self._changed.wait()
                request_id, answer = self._requests.open(command)
                try:
                    await ws.send(command_frame(command, request_id, payload), text=True)
                    return await answer
                finally:
                    self._requests.forget(request_id)
        except TimeoutError:
            raise RequestTimeout(
                f"no answer to {command} within {self.request_timeout}s from {self.url}"
            ) from None
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else _ABNORMAL
            raise ConnectionLost(code, str(exc)) from exc

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed or self._runner is None:
            raise ConnectionLost(
                None, "the client is not connected (closed, or connect() not called)"
            )

    # -- the connection ------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        url = with_token(self.url, await self._token_for_connection())
        ws, hello = await open_connection(url, self.connect_timeout, self.origin)
        payload = hello.payload if isinstance(hello.payload, dict) else {}
        self.session_id = str(payload.get("session_id", hello.entity_id))
        self._ws = ws
        self._changed.fire()
        return ws

    async def _open_first(self) -> ClientConnection:
        """Connect to the first URL that answers, starting with the current one."""
        failures: list[str] = []
        while True:
            try:
                return await self._open()
            except (ConnectionLost, GatewayUnreachable) as exc:
                if refused_for_good(exc):
                    raise  # another node would refuse it too
                failures.append(str(exc))
                if len(failures) == 1 == len(self.urls):
                    raise
                if len(failures) == len(self.urls):
                    raise GatewayUnreachable("no gateway answered: " + "; ".join(failures)) from exc
                log.info("%s; trying %s", exc, self._endpoints.advance())

    async def _run(self, ws: ClientConnection) -> None:
        """Keep the connection; a failure of the client's own ends it for good, never silently."""
        try:
            await self._keep(ws)
        except Exception as exc:
            if self._closed:
                return
            log.exception("the connection task of the client for %s failed", self.url)
            if self._ws is not None:
                with contextlib.suppress(Exception):
                    await self._ws.close(1011, "client failed")
            self._connection_lost(_ABNORMAL, "the client failed")
            self._give_up(ConnectionLost(_ABNORMAL, f"the client failed: {exc!r}"))

    async def _keep(self, ws: ClientConnection) -> None:
        """Read until the connection ends; reconnect and resubscribe while the code allows."""
        while True:
            self._backoff.opened()
            with contextlib.suppress(ConnectionClosed):
                async for message in ws:
                    self._receive(message)
            self._backoff.closed()
            code, reason = ws.close_code or _ABNORMAL, ws.close_reason or ""
            self._connection_lost(code, reason)
            if self._closed:
                return
            if not (self.reconnect and should_reconnect(code)):
                self._give_up(ConnectionLost(code, reason))
                return
            log.info("connection to %s closed (%d %s); reconnecting", self.url, code, reason)
            try:
                ws = await self._reopen(code)
            except ClientError as exc:
                self._give_up(exc)
                return
            self._spawn(self._resume(code))

    async def _reopen(self, code: int) -> ClientConnection:
        attempt = 0
        while True:
            await asyncio.sleep(self._backoff.delay(self.backoff_initial, self.backoff_max))
            attempt += 1
            self._endpoints.advance()  # the next node: the one just lost may be gone
            try:
                return await self._open()
            except (ConnectionLost, GatewayUnreachable) as exc:
                if refused_for_good(exc):
                    raise  # e.g. 4501: this token will not do, on any node
                if (
                    self.max_reconnect_attempts is not None
                    and attempt >= self.max_reconnect_attempts
                ):
                    reason = f"gave up after {attempt} reconnection attempts: {exc}"
                    raise ConnectionLost(code, reason) from exc
                log.debug("reconnection attempt %d failed: %s", attempt, exc)

    async def _resume(self, code: int) -> None:
        """Resubscribe every topic on a new connection, then tell the application."""
        topics = self._router.resuming()
        first_gap = len(self.gaps)
        since = self._router.positions if self.recover else None
        try:
            await self._subscribe_topics(topics, since)
        except SubscribeRefused as exc:
            for error in exc.errors:
                self._record_error(error)
            if len(exc.refused) < len(exc.errors):  # refused whole (BROKER_UNAVAILABLE)
                await self._drop(f"resubscribing was refused: {exc.code}")
                return
        except ConnectionLost:
            return  # the next connection resumes
        except RequestTimeout as exc:
            await self._drop(f"resubscribing timed out ({exc})")
            return
        self.reconnects += 1
        self.last_reconnect = notice = Reconnected(
            self.reconnects, code, tuple(self.gaps[first_gap:])
        )
        self._changed.fire()
        if self.on_reconnect is not None:
            await notify(self.on_reconnect, notice)

    async def _drop(self, reason: str) -> None:
        """End this connection so that the next one resubscribes, after the usual backoff."""
        log.warning("%s; reconnecting", reason)
        if self._ws is not None:
            await self._ws.close(1011, reason[:120])

    def _connection_lost(self, code: int, reason: str) -> None:
        self._ws = None
        self._requests.fail_all(ConnectionLost(code, reason))
        self._router.connection_lost()
        self._changed.fire()

    def _give_up(self, error: ClientError) -> None:
        log.warning("connection to %s lost for good: %s", self.url, error)
        self._failure = error
        for sub in self._router.subscriptions():
            sub._end(error)
        self._changed.fire()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- inbound frames --------------------------------------------------------------

    def _receive(self, message: str | bytes) -> None:
        """One frame, decoded once and routed by topic."""
        try:
            frame = Event.model_validate_json(message)
        except ValidationError as exc:
            log.warning("ignoring a frame that is not an envelope: %s", exc)
            return
        if frame.topic == SYSTEM_TOPIC:
            if frame.event == "RECOVERY_FAILED":
                if isinstance(frame.payload, dict):
                    self._router.recovery_failed(frame.payload)
                return
            if frame.event == "SUBSCRIBED" and isinstance(frame.payload, dict):
                self._router.subscribed(frame.payload)
            self._requests.reply(frame.entity_id, frame.payload)
        elif frame.topic == ERROR_TOPIC:
            error = ServerError.from_payload(frame.payload, frame.entity_id)
            if not self._requests.error(error):
                self._record_error(error)
                if error.code == "TOKEN_EXPIRED":
                    self._spawn(self._refresh_token())
        else:
            self._router.event(frame)

    def _deliver(self, event: Event) -> None:
        """Hand one new event to its subscriptions; subclasses may observe it (TestClient does)."""
        self._router.push(event)

    def _record_error(self, error: ServerError) -> None:
        log.warning("gateway error %s: %s %s", error.code, error.message, error.details)
        self.errors.append(error)
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:
                log.exception("on_error handler failed")


class SocketPublisher(Sender):
    """The seed's helpers over a Client's WebSocket (see ``Client.publisher``)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def send(self, events: list[dict[str, Any]]) -> list[Published]:
        return [await self._client.publish_envelope(event) for event in events]
