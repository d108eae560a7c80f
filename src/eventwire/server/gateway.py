"""The Gateway: configuration, broker, hub, transports and lifecycle in one object.

::

    async with Gateway(Settings(port=8000)) as gateway:
        @gateway.on("gift-list:*")
        async def audit(event: Event) -> None: ...

        await gateway.publish({"topic": "gift-list:1", "event": "ADDED", "data": {...}})
        await gateway.serve_forever()

Authentication is the ``guard``'s (``server/guard.py``): the auth core built
once from the settings, with this gateway's clock. ``revoke`` applies an
operator's revocation to every connection on this node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from pydantic import BaseModel, ValidationError

from eventwire.auth.limits import Ticket
from eventwire.auth.revocation import RevokeRequest
from eventwire.brokers import (
    BatchPublish,
    BatchRefused,
    Broker,
    BrokerUnavailable,
    History,
    OutcomeUnknown,
    Position,
    create_broker,
    publish_each,
)
from eventwire.codes import CloseCode, ErrorCode
from eventwire.envelope import NewEvent, decode_new_event, encode_event, utc_now
from eventwire.errors import (
    BrokerError,
    ProtocolError,
    ValidationFailed,
    broker_unavailable,
    publish_outcome_unknown,
)
from eventwire.protocol.frames import batch_error
from eventwire.protocol.session import Clock, Limits
from eventwire.server.catalog import CatalogService
from eventwire.server.client_frames import ParserPool
from eventwire.server.config import Settings
from eventwire.server.connection import ConnectionBase
from eventwire.server.guard import Guard, HandshakeRefused
from eventwire.server.handlers import EventHandler
from eventwire.server.http_api import HttpApi
from eventwire.server.hub import Hub, Subscriber
from eventwire.server.metrics import Metrics
from eventwire.server.presence import PresenceTracker
from eventwire.server.ws_connection import WriteBatcher
from eventwire.topics import validate_topic

if TYPE_CHECKING:
    from eventwire.catalog import Catalog
    from eventwire.catalog.delivery import Accept
    from eventwire.server.asgi import AsgiApp
    from eventwire.server.http_protocol import HttpProtocol

REVOCATIONS_TOPIC = "system:revocations"
"""Where nodes tell each other of revocations; in the server's reserved namespace."""
RECALL_PAGE, RECALL_PAGES = 1000, 100
"""How a starting node reads past revocations: pages of 1,000, at most 100 of them."""

__all__ = ["Gateway", "Published", "Revoked"]

log = logging.getLogger("eventwire.gateway")


@dataclass(frozen=True, slots=True)
class Published:
    """Where a published event landed."""

    topic: str
    event: str
    seq: int

    def to_wire(self) -> dict[str, Any]:
        return {"topic": self.topic, "event": self.event, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class Revoked:
    """What a revocation ended on this node."""

    connections: int
    subscriptions: int

    def to_wire(self) -> dict[str, int]:
        return {"connections": self.connections, "subscriptions": self.subscriptions}


class Connection(Protocol):
    """What the gateway needs of an open connection, whatever its transport."""

    def close(self, code: int, reason: str = "") -> None: ...

    def heartbeat(self, now: float, deadline: float) -> None: ...

    def abort(self) -> None: ...

    def revoke(self, request: RevokeRequest) -> tuple[bool, int]: ...


def _revocation_of(body: bytes) -> tuple[str | None, RevokeRequest, float | None] | None:
    """``(origin node, request, made at)`` of a revocation message; None if malformed."""
    try:
        message = orjson.loads(body)
        request = RevokeRequest.model_validate(message["request"])
        at = message.get("at")
        return message.get("origin"), request, float(at) if at is not None else None
    except (ValidationError, KeyError, AttributeError, TypeError, ValueError):  # JSON's too
        log.error("ignoring a malformed revocation from the broker: %r", body[:200])
        return None


def _to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Gateway:
    """One eventwire node."""

    def __init__(self, settings: Settings | None = None, *, broker: Broker | None = None) -> None:
        """Raises AuthConfigError when the auth settings cannot work (say, a missing key file).

        Raises CatalogLoadError when ``settings.catalog`` cannot be loaded.
        """
        self.settings = settings or Settings()
        self.clock = Clock(now=utc_now, monotonic=time.monotonic, epoch=time.time)
        self.guard = Guard(self.settings, self.clock.wall)
        self.broker: Broker = broker or create_broker(
            self.settings.broker,
            history_size=self.settings.history_size,
            history_age=self.settings.history_age,
        )
        self.metrics = Metrics()
        self.catalog_service = CatalogService.from_settings(self.settings)
        service = self.catalog_service
        self.catalog: Catalog | None = None if service is None else service.catalog
        """The event catalog every publish is checked against; None without one."""
        self.hub = Hub(self.metrics, self.catalog)
        self.metrics.connections.set_function(lambda: len(self.connections))
        self.presence = PresenceTracker(self)
        """Who is on the topics of ``presence_topics``, on every node (``server/presence``)."""
        self.http_api = HttpApi(self)
        self.limits = Limits(
            max_subscriptions=self.settings.max_subscriptions,
            commands_per_second=self.settings.commands_per_second,
            command_burst=self.settings.command_burst,
            flood_threshold=self.settings.flood_threshold,
        )
        self.ws_path = "/ws"
        self.node_id = secrets.token_hex(8)
        """Names this node in what it sends other nodes (its own revocations come back)."""
        self.write_batcher = WriteBatcher()
        self.parsers = ParserPool()
        """Frame parsers between frames, shared by this gateway's WebSocket connections."""
        self.stopping = False
        self.started = False
        self.connections: set[Connection] = set()
        self.http_connections: set[HttpProtocol] = set()
        self._server: asyncio.Server | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopped = asyncio.Event()
        self._no_connections = asyncio.Event()
        self._interest: dict[str, asyncio.Future[bool]] = {}
        """Topics asked of the broker -> whether it was done (pending while it is asked)."""
        self._background: set[asyncio.Task[None]] = set()

    # -- addresses -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return self.settings.port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + self.ws_path

    @property
    def ready(self) -> bool:
        """Whether this node should be in rotation: started, not stopping, broker link up."""
        return self.started and not self.stopping and bool(getattr(self.broker, "ready", True))

    # -- lifecycle -------------------------------------------------------------

    async def start(self, listen: bool = True, *, reuse_port: bool = False) -> None:
        """Connect the broker and, unless ``listen`` is false (ASGI), open the port.

        ``reuse_port``: listen with SO_REUSEPORT, beside the other workers of
        ``eventwire serve --workers`` (``server/workers.py``).

        A stopped gateway may be started again (an ASGI host's lifespan can
        run more than once in one process).
        """
        self.stopping = False
        self._stopped.clear()
        self.guard.warn_if_open(self.settings.allow_pattern_subscriptions)
        await self.broker.start(self._on_broker_event, self._on_broker_reset)
        for runner in self.hub.handlers():  # handlers hear their patterns from every node
            await self.broker.add_interest(runner.pattern)
        await self.broker.add_interest(REVOCATIONS_TOPIC)
        await self._recall_revocations()
        self.presence.start()
        self.started = True
        if listen:
            from eventwire.server.http_protocol import HttpProtocol

            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(
                lambda: HttpProtocol(self),
                self.settings.host,
                self.settings.port,
                backlog=4096,
                reuse_port=reuse_port or None,
            )
        self._heartbeat = asyncio.get_running_loop().create_task(self._heartbeats())

    async def serve_forever(self) -> bool:
        """Serve until SIGTERM or SIGINT (or ``stop()``), then stop within the stop budget.

        Returns whether the stop finished in time (``stop_within_budget``).
        """
        loop = asyncio.get_running_loop()
        asked = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, asked.set)
        waits = [loop.create_task(asked.wait()), loop.create_task(self._stopped.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        return await self.stop_within_budget()

    async def stop_within_budget(self) -> bool:
        """``stop()``, cut short (and logged) once it has taken ``settings.stop_budget`` seconds.

        Returns whether it finished in time. A process manager that waits
        the budget, and a few seconds for the process to exit, before it
        kills (the workers' supervisor does) never kills a stop in progress.
        """
        budget = self.settings.stop_budget
        try:
            await asyncio.wait_for(self.stop(), budget)
        except TimeoutError:
            log.error("the graceful stop took over %.1fs (the stop budget); cut short", budget)
            self._stopped.set()
            return False
        return True

    async def stop(self) -> None:
        """Stop accepting, finish in-flight publishes, close every client with 1001."""
        if self.stopping:
            await self._stopped.wait()
            return
        self.stopping = True
        grace = self.settings.shutdown_grace
        if self._server is not None:
            self._server.close()
        for http in list(self.http_connections):  # kept-alive HTTP: no new requests
            http.close_if_idle()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning("%d publishes still in flight after %.1fs", self._inflight, grace)
        self.presence.freeze()  # closing them is no leave: their entries are handed over
        for connection in list(self.connections):
            connection.close(CloseCode.GOING_AWAY, "server shutdown")
        if self.connections:
            try:
                await asyncio.wait_for(self._no_connections.wait(), grace)
            except TimeoutError:
                log.warning("%d connections still open after %.1fs", len(self.connections), grace)
                for connection in list(self.connections):
                    connection.abort()  # no close handshake from them: drop the sockets
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        runners = self.hub.handlers()
        try:  # let server-side handlers finish what they were given
            await asyncio.wait_for(asyncio.gather(*(r.drain() for r in runners)), grace)
        except TimeoutError:
            log.warning("server-side handlers still busy after %.1fs", grace)
        for runner in runners:
            await runner.stop()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.presence.stop()
        await self.broker.close()
        self.started = False
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._stopped.set()

    @property
    def asgi(self) -> AsgiApp:
        """This gateway as an ASGI app, to mount in FastAPI or Starlette."""
        from eventwire.server.asgi import AsgiApp

        return AsgiApp(self)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Run the gateway without a listener for an ASGI host's lifetime."""
        await self.start(listen=False)
        try:
            yield
        finally:
            await self.stop()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- connections -----------------------------------------------------------

    def admit(self, origin: str | None, ip: str | None, token: str | None) -> Ticket:
        """A WebSocket handshake's checks (Origin, caps); HandshakeRefused, counted, if not."""
        try:
            return self.guard.admit(origin, ip, token)
        except HandshakeRefused as refusal:
            self.metrics.errors.labels(refusal.code.value).inc()
            raise

    def revoke(self, request: RevokeRequest) -> Revoked:
        """End what ``request`` names on this node now, and refuse older tokens from now on.

        Connections it names close with 4503; subscriptions it names end with
        ERROR REVOKED. Other nodes are not told (yet): see docs/security.md.
        """
        self.guard.authorizer.revoke(request)
        connections = subscriptions = 0
        for connection in list(self.connections):
            ended, removed = connection.revoke(request)
            connections += ended
            subscriptions += removed
        return Revoked(connections, subscriptions)

    def register(self, connection: Connection) -> None:
        self.connections.add(connection)
        self._no_connections.clear()

    def unregister(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            if not self.connections:
                self._no_connections.set()

    # -- topic interest --------------------------------------------------------

    async def join(self, topic: str, subscriber: Subscriber, accept: Accept | None = None) -> None:
        """Subscribe locally; the topic's first local subscriber asks the broker for it.

        ``accept``: the event versions ``subscriber`` understands there (None: as published).

        Later subscribers wait until that request is done, so no one is told
        SUBSCRIBED before the broker sends this node the topic's events. When
        the request fails (BrokerUnavailable), every subscriber that waited
        for it fails with it and is taken out again; the next to join asks
        anew. With the in-memory broker nothing here suspends.
        """
        self.hub.subscribe(topic, subscriber, accept)
        try:
            await self._interest_in(topic)
        except BaseException:
            if self.hub.unsubscribe(topic, subscriber):
                self._interest.pop(topic, None)
            raise
        self._present(topic, subscriber)

    async def _interest_in(self, topic: str) -> None:
        """Return once the broker sends this node ``topic``'s events; ask it if nobody has."""
        pending = self._interest.get(topic)
        if pending is None:
            pending = self._interest[topic] = asyncio.get_running_loop().create_future()
            try:
                await self.broker.add_interest(topic)
            except BaseException:
                if self._interest.get(topic) is pending:
                    del self._interest[topic]
                pending.set_result(False)
                raise
            pending.set_result(True)
        elif not (pending.result() if pending.done() else await asyncio.shield(pending)):
            raise BrokerUnavailable(f"asking the broker for {topic} failed; retry")

    def _present(self, topic: str, subscriber: Subscriber) -> None:
        """Count ``subscriber`` in ``topic``'s presence, unless it left while the join waited."""
        if self.presence.topics.tracks(topic) and self.hub.holds(topic, subscriber):
            self.presence.add(topic, subscriber)

    def leave(self, topic: str, subscriber: Subscriber) -> None:
        """Unsubscribe locally; the topic's last local subscriber releases it at the broker."""
        self.presence.remove(topic, subscriber)
        if self.hub.unsubscribe(topic, subscriber):
            asked = self._interest.pop(topic, None)
            if asked is not None and not any(r.pattern == topic for r in self.hub.handlers()):
                self._in_background(self.broker.remove_interest(topic))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` without waiting for it; stop() waits for what is still running."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _heartbeats(self) -> None:
        interval = self.settings.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            now = self.clock.monotonic()
            deadline = now - interval - self.settings.heartbeat_timeout
            for connection in list(self.connections):
                connection.heartbeat(now, deadline)

    # -- publishing ------------------------------------------------------------

    def on(self, pattern: str) -> Callable[[EventHandler], EventHandler]:
        """Register a server-side handler for every event whose topic matches ``pattern``."""
        from eventwire.topics import validate_pattern

        validate_pattern(pattern)

        def register(handler: EventHandler) -> EventHandler:
            self.hub.add_handler(pattern, handler)
            if self.started:
                self._in_background(self.broker.add_interest(pattern))
            return handler

        return register

    async def publish(self, event: NewEvent | dict[str, Any]) -> Published:
        """Validate, encode once, and publish one event; return its seq."""
        [published] = await self.publish_many([event], batch=False)
        return published

    async def publish_many(
        self, events: Iterable[NewEvent | dict[str, Any]], *, batch: bool | None = None
    ) -> list[Published]:
        """Validate every event first (the catalog's checks included), then publish them in order.

        In a batch a refusal names the event, as ``POST /v1/publish`` does:
        ``events.3.data.payload.name``, or ``details.index``. ``batch``
        defaults to "more than one event", as the HTTP publisher sends them.
        """
        if self.stopping:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN, "the gateway is shutting down")
        return await self._publish_now(events, batch)

    async def announce(self, event: NewEvent | dict[str, Any]) -> Published:
        """Publish an event the node itself owes (USER_LEFT), even while it stops.

        ``publish`` refuses once the node is stopping; what the node still has
        to tell (presence) is published until its broker is closed.
        """
        [published] = await self._publish_now([event], False)
        return published

    async def _publish_now(
        self, events: Iterable[NewEvent | dict[str, Any]], batch: bool | None
    ) -> list[Published]:
        now = utc_now()
        events = list(events)
        indexed = len(events) > 1 if batch is None else batch
        encoded = [self._encode_at(e, now, i if indexed else None) for i, e in enumerate(events)]
        self._inflight += 1
        self._idle.clear()
        try:
            try:
                seqs = await self._store(encoded)
            except OutcomeUnknown as exc:  # sent, unanswered: maybe stored, so not a 503
                details = {"published": exc.published, "unknown": exc.unknown}
                raise publish_outcome_unknown(exc, **details) from exc
            except BrokerUnavailable as exc:  # refused, never accepted and lost
                raise broker_unavailable(exc, published=exc.published) from exc
            except BatchRefused as exc:  # the broker will not take it: no use retrying
                log.error("%s", exc)
                raise ProtocolError(
                    ErrorCode.INTERNAL_ERROR,
                    "the broker refused the batch",
                    {"published": exc.published},
                ) from exc
            self.metrics.published.inc(len(seqs))
            stored = (event for event, _ in encoded)
            return [Published(e.topic, e.event, seq) for e, seq in zip(stored, seqs, strict=True)]
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def _store(self, encoded: list[tuple[NewEvent, bytes]]) -> list[int]:
        """Hand the events to the broker in order; BrokerUnavailable says how many it took."""
        events = [(event.topic, body) for event, body in encoded]
        if len(events) > 1 and isinstance(self.broker, BatchPublish):
            return await self.broker.publish_batch(events)
        return await publish_each(self.broker, events)

    def _encode_at(
        self, event: NewEvent | dict[str, Any], now: Any, index: int | None
    ) -> tuple[NewEvent, bytes]:
        try:
            if isinstance(event, NewEvent):
                # Valid as built; model_copy(update=...) and model_construct skip validators.
                validate_topic(event.topic)
                return self._encode(event, now)
            return self._encode(decode_new_event(event), now)
        except ProtocolError as exc:
            if index is None:
                raise
            raise batch_error(exc, index) from None

    def _encode(self, event: NewEvent, now: Any) -> tuple[NewEvent, bytes]:
        try:
            payload_json = orjson.dumps(event.data.payload, default=_to_json)
        except TypeError as exc:
            raise ValidationFailed([("data.payload", f"not JSON-serializable: {exc}")]) from None
        size, settings = len(payload_json), self.settings
        if size > settings.payload_max:
            raise ProtocolError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"payload is {size} bytes encoded; the limit is {settings.payload_max}",
                {"field": "data.payload", "size": size, "limit": settings.payload_max},
            )
        if size > settings.payload_warn:
            log.warning(
                "payload of %s %s is %d bytes (over %d); consider a partial or reference payload",
                event.topic,
                event.event,
                size,
                settings.payload_warn,
            )
        if self.catalog_service is not None:  # once per publish, on every path
            self.catalog_service.check(event, payload_json)
        return event, encode_event(event, payload_json, now)

    def _on_broker_reset(self, topic: str, position: Position) -> None:
        """A topic's history was lost at the broker (a flush, a restart without storage).

        Its ``seq`` starts again from 1 in a new epoch, which clients that
        remember the old numbers would take for duplicates. Its local
        subscribers are closed with 4010: they reconnect at once, and the
        new SUBSCRIBED shows them the new epoch, which they report as lost
        history so the application refetches.
        """
        log.warning("history of %s was reset (now epoch %s)", topic, position.epoch)
        for subscriber in self.hub.subscribers_of(topic):
            if isinstance(subscriber, ConnectionBase):
                subscriber.close(CloseCode.HISTORY_RESET, f"history of {topic} was reset")

    def _on_broker_event(self, topic: str, seq: int, body: bytes) -> None:
        if topic == REVOCATIONS_TOPIC:
            self._revoked_elsewhere(body)
            return
        self.hub.dispatch(topic, seq, body)

    async def revoke_everywhere(self, request: RevokeRequest) -> Revoked:
        """Revoke on this node now, then on every other node through the broker.

        The revocation travels on a topic of the server's reserved ``system``
        namespace, which no client may publish or subscribe to; each node
        applies it as it arrives. Returns what ended on this node; raises
        ProtocolError BROKER_UNAVAILABLE (with ``details.here``) when the
        other nodes could not be told.
        """
        revoked = self.revoke(request)
        message = {
            "origin": self.node_id,
            "at": self.clock.wall(),
            "request": request.model_dump(mode="json"),
        }
        try:
            await self.broker.publish(REVOCATIONS_TOPIC, orjson.dumps(message))
        except BrokerUnavailable as exc:
            raise broker_unavailable(exc, here=revoked.to_wire()) from exc
        return revoked

    def _revoked_elsewhere(self, body: bytes) -> None:
        message = _revocation_of(body)
        if message is None or message[0] == self.node_id:
            return  # malformed, or applied when it was made
        revoked = self.revoke(message[1])
        log.info("revocation from another node ended %s", revoked.to_wire())

    async def _recall_revocations(self) -> None:
        """Learn the revocations still in force from the broker's history, before serving.

        Without this a node that starts, or a worker restarted by its
        supervisor, would accept tokens revoked before it came up. It knows
        what the history of ``system:revocations`` keeps (``history_size``
        events within ``history_age``).
        """
        if not isinstance(self.broker, History):
            return
        since, recalled = 0, 0
        try:
            for _ in range(RECALL_PAGES):
                page = await self.broker.history(REVOCATIONS_TOPIC, since, RECALL_PAGE)
                for _, body in page.events:
                    message = _revocation_of(body)
                    if message is not None:
                        self.guard.authorizer.revoke(message[1], at=message[2])
                        recalled += 1
                if not page.has_more:
                    break
                since = page.next_since
        except BrokerError as exc:
            log.warning("could not read past revocations (%s); only new ones apply", exc)
        if recalled:
            log.info("recalled %d revocations from the broker's history", recalled)
