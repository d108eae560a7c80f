"""One connection's protocol state, without I/O.

The transport feeds it frames and the current time; it answers with actions
the transport carries out. It never touches a socket, the loop or a broker.
With authentication (a ``SessionAuth``) it also verifies tokens, asks the
authorizer about every topic and tracks the token's expiry; the time still
comes from outside: ``tick(now)`` when ``next_deadline()`` has come.

Every state rule is in this table. ``_ROUTES`` at the bottom dispatches
frames by it, and only the handlers it names (plus ``start``, ``tick``,
``revoke`` and ``close``) change ``state``::

    state        input                              next         actions
    -----------  ---------------------------------  -----------  --------------------------------
    (new)        start(), auth off                  OPEN         Reply(CONNECTED)
    (new)        start(), auth on, no token         AWAITING     Reply(CONNECTED)
    (new)        start(?token=, or anonymous) ok    OPEN         Authenticated, Reply(CONNECTED)
    (new)        start(?token=) refused             CLOSED       Reply(ERROR), Close(4501|4001|4503)
    AWAITING     AUTH accepted                      OPEN         Authenticated, Reply(AUTHENTICATED)
    AWAITING     AUTH refused                       CLOSED       Reply(ERROR), Close(4501|4001|4503)
    AWAITING     PING                               AWAITING     Reply(PONG)
    AWAITING     any other frame, even unreadable   CLOSED       Reply(ERROR), Close(4501)
    AWAITING     tick past opened + auth_timeout    CLOSED       Close(4003)
    OPEN         SUBSCRIBE                          OPEN         Reply(ERROR per refused topic),
                                                                 SubscribeTopics(accepted, added,
                                                                 regrouped, since of accepted)
    OPEN         SUBSCRIBE with a malformed since   OPEN         Reply(ERROR VALIDATION_ERROR)
    OPEN         PUBLISH allowed                    OPEN         PublishEvent
    OPEN         PUBLISH refused, or publishing off OPEN         Reply(ERROR)
    OPEN|EXP.    PRESENCE of a subscribed topic     (same)       ReadPresence
    OPEN|EXP.    PRESENCE of another topic          (same)       Reply(ERROR)
    OPEN         AUTH with auth off                 OPEN         Reply(ERROR NOT_SUPPORTED)
    OPEN         tick past identity.expires_at      EXPIRING     Reply(ERROR TOKEN_EXPIRED)
    EXPIRING     SUBSCRIBE, PUBLISH                 EXPIRING     Reply(ERROR TOKEN_EXPIRED)
    EXPIRING     tick past expires_at + grace       CLOSED       Close(4001)
    OPEN|EXP.    AUTH refresh accepted              OPEN         UnsubscribeTopics(no longer
                                                                 granted) + Reply(ERROR FORBIDDEN)
                                                                 each, Authenticated,
                                                                 Reply(AUTHENTICATED)
    OPEN|EXP.    AUTH refresh refused               (same)       Reply(ERROR); identity kept
    OPEN|EXP.    UNSUBSCRIBE                        (same)       UnsubscribeTopics(topics, removed)
    OPEN|EXP.    PING                               (same)       Reply(PONG)
    OPEN|EXP.    unreadable frame, unknown command  (same)       Reply(ERROR with its code)
    OPEN|EXP.    revoke() of the connection         CLOSED       Reply(ERROR REVOKED), Close(4503)
    OPEN|EXP.    revoke() of subscriptions          (same)       UnsubscribeTopics,
                                                                 Reply(ERROR REVOKED)
    not CLOSED   frame over a rate limit            (same)       Reply(ERROR RATE_LIMITED)
    not CLOSED   rate-limited frames past flood     CLOSED       Close(4029)
    OPEN|EXP.    drop(topics): no broker for them   (same)       (nothing: the transport answers
                                                                 ERROR BROKER_UNAVAILABLE)
    any          close()                            CLOSED       UnsubscribeTopics(all)
    CLOSED       anything                           CLOSED       (nothing)

AWAITING is ``AWAITING_AUTH``: authentication is on, and the connection
brought no ``?token=`` and may not be anonymous. Rate limits apply before
the table: the connection's bucket, then (once authenticated) the user's and
the tenant's. A refusal by either counts toward the flood close.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eventwire.auth.authorizer import Authorizer, forbidden
from eventwire.auth.errors import AuthCode, AuthError
from eventwire.auth.identity import Identity
from eventwire.auth.limits import UsageLimiter
from eventwire.auth.revocation import RevokeRequest
from eventwire.auth.tokens import TokenVerifier
from eventwire.codes import CloseCode, ErrorCode
from eventwire.envelope import NewEvent, decode_new_event, format_timestamp
from eventwire.errors import ProtocolError, ValidationFailed
from eventwire.protocol.actions import (
    Action,
    Authenticated,
    Clock,
    Close,
    Limits,
    PublishEvent,
    ReadPresence,
    Reply,
    SubscribeTopics,
    UnsubscribeTopics,
)
from eventwire.protocol.frames import (
    CONNECTION,
    PROTOCOL_VERSION,
    PUBLISHED_EVENT,
    Auth,
    Ping,
    Presence,
    Publish,
    Rejected,
    Subscribe,
    Unsubscribe,
    decode_command,
    error_frame,
    errors_at,
    system_frame,
)
from eventwire.topics import is_pattern, validate_pattern, validate_topic

if TYPE_CHECKING:
    from eventwire.catalog.delivery import Accept

__all__ = [
    "Action",
    "Authenticated",
    "Clock",
    "Close",
    "Limits",
    "PublishEvent",
    "Reply",
    "Session",
    "SessionAuth",
    "SessionState",
    "SubscribeTopics",
    "UnsubscribeTopics",
    "auth_error",
]


class SessionState(enum.Enum):
    AWAITING_AUTH = "awaiting_auth"
    OPEN = "open"
    EXPIRING = "expiring"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SessionAuth:
    """The pure auth core a session consults; built once per gateway and shared."""

    verifier: TokenVerifier
    authorizer: Authorizer
    usage: UsageLimiter
    auth_timeout: float = 5.0
    """Seconds a connection without a token has to send AUTH (then 4003)."""
    expiry_grace: float = 10.0
    """Seconds between TOKEN_EXPIRED and the close with 4001."""

    @property
    def anonymous_allowed(self) -> bool:
        return self.verifier.settings.allow_anonymous


def _parse_since(
    since: dict[str, Any] | None, topics: tuple[str, ...]
) -> dict[str, tuple[int, str]]:
    """SUBSCRIBE's ``since`` as topic -> (seq, epoch); raises VALIDATION_ERROR naming the field.

    Each key must be one of the SUBSCRIBE's topics (not a pattern: it has no
    position), each value ``{"seq": <int >= 0>, "epoch": <non-empty string>}``.
    """
    if since is None:
        return {}
    parsed: dict[str, tuple[int, str]] = {}
    for topic, value in since.items():
        field = f"since.{topic}"
        if topic not in topics:
            raise _invalid(field, "names a topic this SUBSCRIBE does not list")
        if is_pattern(topic):
            raise _invalid(field, "a pattern has no position to recover from")
        if not isinstance(value, dict) or set(value) != {"seq", "epoch"}:
            raise _invalid(field, 'must be {"seq": <int>, "epoch": <string>}')
        seq, epoch = value["seq"], value["epoch"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise _invalid(f"{field}.seq", "must be an integer >= 0")
        if not isinstance(epoch, str) or not epoch:
            raise _invalid(f"{field}.epoch", "must be a non-empty string")
        parsed[topic] = (seq, epoch)
    return parsed


def _invalid(field: str, message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.VALIDATION_ERROR, f"{field} {message}", {"field": field})


def auth_error(err: AuthError) -> ProtocolError:
    """An auth refusal as the ProtocolError an ERROR frame carries (same code, same details)."""
    return ProtocolError(ErrorCode(err.code.value), err.message, err.details)


class Session:
    """Protocol state of one WebSocket connection."""

    __slots__ = (
        "_auth",
        "_clock",
        "_limits",
        "_opened",
        "_refused_in_row",
        "_tokens",
        "_updated",
        "_watch_allowed",
        "accepts",
        "identity",
        "node",
        "session_id",
        "state",
        "subscriptions",
    )

    def __init__(
        self,
        session_id: str,
        clock: Clock,
        limits: Limits,
        *,
        auth: SessionAuth | None = None,
        may_watch: bool = False,
        node: str | None = None,
    ) -> None:
        self.session_id = session_id
        self.node = node
        """The gateway process serving this connection, named in CONNECTED (None: unnamed)."""
        self.identity: Identity | None = None
        """Who the connection acts as; None before AUTH and whenever auth is off."""
        self.state = SessionState.OPEN if auth is None else SessionState.AWAITING_AUTH
        self.subscriptions: set[str] = set()
        self.accepts: dict[str, Accept] = {}
        """The versions declared per subscribed topic (SUBSCRIBE's ``versions``); absent: none."""
        self._auth = auth
        self._watch_allowed = may_watch
        self._clock = clock
        self._limits = limits
        self._tokens = float(limits.command_burst)
        self._updated = clock.monotonic()
        self._opened = clock.wall()
        self._refused_in_row = 0

    # -- what the transport reads ---------------------------------------------------

    @property
    def user_id(self) -> str | None:
        return None if self.identity is None else self.identity.user_id

    @property
    def may_watch(self) -> bool:
        """Whether this connection may subscribe to wildcard patterns.

        Without auth, the gateway's ``allow_pattern_subscriptions``; with auth, admins only.
        """
        if self._auth is None:
            return self._watch_allowed
        return self.identity is not None and self.identity.admin

    def next_deadline(self) -> float | None:
        """When ``tick`` has something to do (seconds since the epoch), or None."""
        match self.state:
            case SessionState.AWAITING_AUTH:
                assert self._auth is not None
                return self._opened + self._auth.auth_timeout
            case SessionState.OPEN:
                return None if self.identity is None else self.identity.expires_at
            case SessionState.EXPIRING:
                assert self._auth is not None
                expires = self._me.expires_at
                return None if expires is None else expires + self._auth.expiry_grace
            case _:
                return None

    # -- inputs ------------------------------------------------------------------------

    def start(self, heartbeat_interval: float, token: str | None = None) -> list[Action]:
        """The connection opened: greet it, authenticating a ``?token=`` (or anonymity) first."""
        auth = self._auth
        if auth is None or (token is None and not auth.anonymous_allowed):
            return [Reply(self.connected(heartbeat_interval))]
        try:
            identity = self._verify(token)
        except AuthError as err:
            return self._refuse(CONNECTION, err)
        return [*self._become(CONNECTION, identity), Reply(self.connected(heartbeat_interval))]

    def receive(self, data: str | bytes) -> list[Action]:
        """Handle one inbound frame."""
        if self.state is SessionState.CLOSED:
            return []
        command = decode_command(data)
        refused = self._admit(command.request_id)
        if refused is not None:
            return refused
        return _ROUTES[self.state][type(command)](self, command)

    def tick(self, now: float) -> list[Action]:
        """The time is ``now`` (seconds since the epoch): act on every deadline passed."""
        actions: list[Action] = []
        while (deadline := self.next_deadline()) is not None and now >= deadline:
            actions += self._deadline_passed()
        return actions

    def revoke(self, request: RevokeRequest) -> list[Action]:
        """An operator revoked access: end this connection, or the subscriptions it names."""
        identity = self.identity
        if identity is None or self.state is SessionState.CLOSED:
            return []
        if request.ends_connections:
            if not request.matches_identity(identity):
                return []
            self.state = SessionState.CLOSED
            error = ProtocolError(ErrorCode.REVOKED, "access was revoked", {"reason": "revoked"})
            return [self._reply_error(CONNECTION, error), Close(CloseCode.REVOKED, "revoked")]
        ended = tuple(sorted(t for t in self.subscriptions if request.matches(identity, t)))
        if not ended:
            return []
        self._forget(ended)
        error = ProtocolError(ErrorCode.REVOKED, "subscriptions were revoked", {"topics": ended})
        return [UnsubscribeTopics(None, ended, ended), self._reply_error(CONNECTION, error)]

    def drop(self, topics: tuple[str, ...]) -> tuple[str, ...]:
        """Forget subscriptions the transport could not set up; the ones that were held.

        (A SUBSCRIBE whose topics the broker could not be asked for.)
        """
        dropped = tuple(topic for topic in topics if topic in self.subscriptions)
        self._forget(dropped)
        return dropped

    def close(self) -> UnsubscribeTopics:
        """The connection ended: leave every topic."""
        self.state = SessionState.CLOSED
        topics = tuple(self.subscriptions)
        self.subscriptions.clear()
        self.accepts.clear()
        return UnsubscribeTopics(None, topics, topics)

    # -- frames the transport asks for ------------------------------------------------

    def connected(self, heartbeat_interval: float) -> bytes:
        """The CONNECTED frame the server sends first."""
        payload: dict[str, object] = {
            **self._identity_fields(),
            "session_id": self.session_id,
            "server_time": self._now_text(),
            "protocol": PROTOCOL_VERSION,
            "heartbeat_interval": heartbeat_interval,
        }
        if self.node is not None:
            payload["node"] = self.node
        return system_frame(
            "CONNECTED", self.user_id or self.session_id, payload, self._clock.now()
        )

    def subscribed(
        self,
        request_id: str,
        topics: tuple[str, ...],
        positions: Mapping[str, object],
        recovered: Mapping[str, bool] | None = None,
    ) -> bytes:
        """The SUBSCRIBED reply, once the transport has joined the hub and read positions.

        ``recovered``: for each topic SUBSCRIBE's ``since`` named, whether its
        missed events follow (true) or the client must refetch (false).
        """
        payload: dict[str, object] = {"topics": list(topics), "positions": dict(positions)}
        if recovered:
            payload["recovered"] = dict(recovered)
        return system_frame("SUBSCRIBED", request_id, payload, self._clock.now())

    def recovery_failed(
        self, request_id: str, topic: str, position: Mapping[str, object], reason: str
    ) -> bytes:
        """RECOVERY_FAILED: ``topic``'s missed events cannot be replayed; refetch its state."""
        payload = {"topic": topic, "position": dict(position), "reason": reason}
        return system_frame("RECOVERY_FAILED", request_id, payload, self._clock.now())

    def unsubscribed(self, request_id: str, topics: tuple[str, ...]) -> bytes:
        return system_frame("UNSUBSCRIBED", request_id, {"topics": list(topics)}, self._clock.now())

    def presence_state(self, request_id: str, state: Mapping[str, object]) -> bytes:
        """The PRESENCE_STATE reply: who is on the topic (``GET /v1/topics/{topic}/presence``)."""
        return system_frame("PRESENCE_STATE", request_id, dict(state), self._clock.now())

    def published(self, request_id: str, result: Mapping[str, object]) -> bytes:
        """The PUBLISHED reply: ``{topic, event, seq}`` of the event the client published."""
        return system_frame("PUBLISHED", request_id, dict(result), self._clock.now())

    def error(self, request_id: str, error: ProtocolError | AuthError) -> Reply:
        """An ERROR frame for ``error``, for failures the transport meets carrying out actions."""
        if isinstance(error, AuthError):
            error = auth_error(error)
        return self._reply_error(request_id, error)

    # -- rate limits ---------------------------------------------------------------------

    def _admit(self, request_id: str) -> list[Action] | None:
        """None if the frame may be handled; else the answer to a frame over a rate limit."""
        if not self._take_token():
            error = ProtocolError(ErrorCode.RATE_LIMITED, "too many commands; slow down")
            return self._rate_limited(request_id, error)
        if self.identity is not None and self._auth is not None:
            try:
                self._auth.usage.take(self.identity, self._clock.monotonic())
            except AuthError as err:
                return self._rate_limited(request_id, auth_error(err))
        self._refused_in_row = 0
        return None

    def _rate_limited(self, request_id: str, error: ProtocolError) -> list[Action]:
        self._refused_in_row += 1
        if self._refused_in_row > self._limits.flood_threshold:
            self.state = SessionState.CLOSED
            return [Close(CloseCode.FLOODING, "command flood")]
        return [self._reply_error(request_id, error)]

    def _take_token(self) -> bool:
        now = self._clock.monotonic()
        limits = self._limits
        self._tokens = min(
            float(limits.command_burst),
            self._tokens + (now - self._updated) * limits.commands_per_second,
        )
        self._updated = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    # -- AWAITING_AUTH ---------------------------------------------------------------------

    def _sign_in(self, command: Auth) -> list[Action]:
        rid = command.request_id
        try:
            identity = self._verify(command.token)
        except AuthError as err:
            return self._refuse(rid, err)
        return [*self._become(rid, identity), self._authenticated(rid)]

    def _unauthenticated(
        self, command: Subscribe | Unsubscribe | Publish | Presence | Rejected
    ) -> list[Action]:
        if isinstance(command, Rejected):
            error = command.error
        else:
            error = ProtocolError(
                ErrorCode.UNAUTHORIZED,
                "authenticate first: send AUTH with a token",
                {"reason": "missing_token"},
            )
        self.state = SessionState.CLOSED
        reply = self._reply_error(command.request_id, error)
        return [reply, Close(CloseCode.UNAUTHORIZED, "not authenticated")]

    # -- OPEN and EXPIRING -------------------------------------------------------------------

    def _subscribe(self, command: Subscribe) -> list[Action]:
        rid = command.request_id
        try:
            since = _parse_since(command.since, command.topics)
        except ProtocolError as exc:
            return [self._reply_error(rid, exc)]
        actions: list[Action] = []
        accepted: list[str] = []
        added: list[str] = []
        regrouped: list[str] = []
        for topic in dict.fromkeys(command.topics):
            refusal = self._check_subscription(topic)
            if refusal is not None:
                actions.append(self._reply_error(rid, refusal))
                continue
            if topic in self.subscriptions:
                if self._declare(topic, command.accept):
                    regrouped.append(topic)
            else:
                if len(self.subscriptions) >= self._limits.max_subscriptions:
                    actions.append(
                        self._error(
                            rid,
                            ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                            f"at most {self._limits.max_subscriptions} subscriptions a connection",
                            topic=topic,
                        )
                    )
                    continue
                self.subscriptions.add(topic)
                self._declare(topic, command.accept)
                added.append(topic)
            accepted.append(topic)
        # Every SUBSCRIBE ends with SUBSCRIBED, even when it accepted nothing,
        # so a client always knows when its request is over.
        recover = tuple((t, *since[t]) for t in accepted if t in since)
        actions.append(
            SubscribeTopics(rid, tuple(accepted), tuple(added), tuple(regrouped), recover)
        )
        return actions

    def _declare(self, topic: str, accept: Accept | None) -> bool:
        """Record the versions ``topic`` is subscribed with; True when they changed.

        A SUBSCRIBE states them for its topics, replacing earlier ones (none:
        as published). Pattern subscriptions get events as published.
        """
        if accept is None or is_pattern(topic):
            return self.accepts.pop(topic, None) is not None
        changed = self.accepts.get(topic) != accept
        self.accepts[topic] = accept
        return changed

    def _forget(self, topics: tuple[str, ...]) -> None:
        self.subscriptions.difference_update(topics)
        for topic in topics:
            self.accepts.pop(topic, None)

    def _check_subscription(self, topic: str) -> ProtocolError | None:
        """Why ``topic`` may not be subscribed to, or None: the grammar, then the authorizer."""
        try:
            if self.may_watch and is_pattern(topic):
                validate_pattern(topic)
            else:
                validate_topic(topic)
        except ProtocolError as exc:
            return exc
        if self._auth is not None and not self._auth.authorizer.can_subscribe(self._me, topic):
            # One answer whatever the reason, so a refusal says nothing about the topic.
            return auth_error(forbidden(topic))
        return None

    def _unsubscribe(self, command: Unsubscribe) -> list[Action]:
        topics = tuple(dict.fromkeys(command.topics))
        removed = tuple(t for t in topics if t in self.subscriptions)
        self._forget(removed)
        return [UnsubscribeTopics(command.request_id, topics, removed)]

    def _presence(self, command: Presence) -> list[Action]:
        """PRESENCE: read for a topic this connection holds (its grants were checked then)."""
        rid, topic = command.request_id, command.topic
        try:
            validate_topic(topic)
        except ProtocolError as exc:
            return [self._reply_error(rid, exc)]
        if topic not in self.subscriptions:
            error = ValidationFailed([("data.payload.topic", "subscribe to this topic first")])
            error.details["topic"] = topic
            return [self._reply_error(rid, error)]
        return [ReadPresence(rid, topic)]

    def _pong(self, command: Ping) -> list[Action]:
        pong = {"server_time": self._now_text()}
        return [Reply(system_frame("PONG", command.request_id, pong, self._clock.now()))]

    def _reject(self, command: Rejected) -> list[Action]:
        return [self._reply_error(command.request_id, command.error)]

    def _publish(self, command: Publish) -> list[Action]:
        rid, auth = command.request_id, self._auth
        if auth is None or not auth.authorizer.client_publishing:
            return [
                self._error(
                    rid,
                    ErrorCode.NOT_SUPPORTED,
                    "client-published events are not enabled on this gateway",
                )
            ]
        try:
            event = _decode_published(command.event)
        except ProtocolError as exc:
            return [self._reply_error(rid, exc)]
        identity = self._me
        if not auth.authorizer.can_publish(identity, event.topic, event.event):
            return [self._reply_error(rid, auth_error(forbidden(event.topic)))]
        # The publisher is who the token says, never what the event claims; the server stamps.
        stamp = {**Authorizer.publisher_fields(identity), "timestamp": None}
        stamped = event.model_copy(update={"data": event.data.model_copy(update=stamp)})
        return [PublishEvent(rid, stamped)]

    def _refresh(self, command: Auth) -> list[Action]:
        rid = command.request_id
        if self._auth is None:
            return [
                self._error(
                    rid, ErrorCode.NOT_SUPPORTED, "authentication is not enabled on this gateway"
                )
            ]
        try:
            identity = self._verify(command.token)
            self._check_same_principal(identity)
        except AuthError as err:
            return [self._reply_error(rid, auth_error(err))]  # the current identity stays
        actions = self._drop_ungranted(rid, identity)
        actions += self._become(rid, identity)
        actions.append(self._authenticated(rid))
        return actions

    def _expired(self, command: Subscribe | Publish) -> list[Action]:
        return [
            self._error(
                command.request_id,
                ErrorCode.TOKEN_EXPIRED,
                "the token has expired; send AUTH with a fresh token",
                reason="expired",
            )
        ]

    # -- authentication helpers ---------------------------------------------------------------

    def _verify(self, token: str | None) -> Identity:
        auth = self._auth
        assert auth is not None
        identity = auth.verifier.authenticate(token, self._clock.wall())
        auth.authorizer.check_connection(identity)
        return identity

    def _check_same_principal(self, identity: Identity) -> None:
        current = self.identity
        if current is not None and not current.anonymous and not current.same_principal(identity):
            raise AuthError(
                AuthCode.UNAUTHORIZED,
                "a refresh must carry the same user and tenant",
                {"reason": "other_principal"},
            )

    def _become(self, request_id: str, identity: Identity) -> list[Action]:
        self.identity = identity
        self.state = SessionState.OPEN
        return [Authenticated(request_id, identity)]

    def _drop_ungranted(self, request_id: str, identity: Identity) -> list[Action]:
        """End the subscriptions the new identity may not hold, before it takes over."""
        assert self._auth is not None
        can_subscribe = self._auth.authorizer.can_subscribe
        dropped = tuple(sorted(t for t in self.subscriptions if not can_subscribe(identity, t)))
        if not dropped:
            return []
        self._forget(dropped)
        errors = [self._reply_error(request_id, auth_error(forbidden(t))) for t in dropped]
        return [UnsubscribeTopics(None, dropped, dropped), *errors]

    def _refuse(self, request_id: str, err: AuthError) -> list[Action]:
        """A connection that never authenticated: ERROR, then close with the refusal's code."""
        self.state = SessionState.CLOSED
        code = int(err.close_code) if err.close_code is not None else CloseCode.UNAUTHORIZED
        return [self._reply_error(request_id, auth_error(err)), Close(code, err.code.value)]

    def _deadline_passed(self) -> list[Action]:
        match self.state:
            case SessionState.AWAITING_AUTH:
                self.state = SessionState.CLOSED
                return [Close(CloseCode.AUTH_TIMEOUT, "authentication timeout")]
            case SessionState.OPEN:
                assert self._auth is not None
                self.state = SessionState.EXPIRING
                grace = self._auth.expiry_grace
                message = f"the token has expired; send AUTH with a fresh token within {grace:g}s"
                return [
                    self._error(
                        CONNECTION, ErrorCode.TOKEN_EXPIRED, message, reason="expired", grace=grace
                    )
                ]
            case _:
                self.state = SessionState.CLOSED
                return [Close(CloseCode.TOKEN_EXPIRED, "token expired")]

    @property
    def _me(self) -> Identity:
        # OPEN and EXPIRING with auth on always have an identity.
        assert self.identity is not None
        return self.identity

    def _identity_fields(self) -> dict[str, object]:
        identity = self.identity
        if identity is None:
            return {}
        expires = identity.expires_at
        fields: dict[str, object] = {
            "user_id": identity.user_id,
            "tenant_id": identity.tenant_id,
            "expires_at": None if expires is None else _iso(expires),
            "anonymous": True if identity.anonymous else None,
        }
        return {name: value for name, value in fields.items() if value is not None}

    def _authenticated(self, request_id: str) -> Reply:
        payload = self._identity_fields()
        return Reply(system_frame("AUTHENTICATED", request_id, payload, self._clock.now()))

    # -- frames ---------------------------------------------------------------------------

    def _error(self, request_id: str, code: ErrorCode, message: str, **details: object) -> Reply:
        return self._reply_error(request_id, ProtocolError(code, message, dict(details)))

    def _reply_error(self, request_id: str, error: ProtocolError) -> Reply:
        return Reply(error_frame(request_id, error, self._clock.now()), error.code)

    def _now_text(self) -> str:
        return format_timestamp(self._clock.now())


def _iso(seconds: float) -> str:
    return format_timestamp(datetime.fromtimestamp(seconds, UTC))


def _decode_published(raw: Any) -> NewEvent:
    """The event of a PUBLISH command; failed fields named from the frame's root."""
    try:
        return decode_new_event(raw)
    except ValidationFailed as exc:
        raise errors_at(exc, PUBLISHED_EVENT) from None


_Handler = Callable[[Session, Any], list[Action]]

# The table above, as code: which handler answers which frame in which state.
_ROUTES: dict[SessionState, dict[type, _Handler]] = {
    SessionState.AWAITING_AUTH: {
        Auth: Session._sign_in,
        Ping: Session._pong,
        Subscribe: Session._unauthenticated,
        Unsubscribe: Session._unauthenticated,
        Publish: Session._unauthenticated,
        Presence: Session._unauthenticated,
        Rejected: Session._unauthenticated,
    },
    SessionState.OPEN: {
        Subscribe: Session._subscribe,
        Unsubscribe: Session._unsubscribe,
        Ping: Session._pong,
        Auth: Session._refresh,
        Publish: Session._publish,
        Presence: Session._presence,
        Rejected: Session._reject,
    },
    SessionState.EXPIRING: {
        Subscribe: Session._expired,
        Unsubscribe: Session._unsubscribe,
        Ping: Session._pong,
        Auth: Session._refresh,
        Publish: Session._expired,
        Presence: Session._presence,
        Rejected: Session._reject,
    },
}
