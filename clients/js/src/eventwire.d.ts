/**
 * Types of the eventwire client (eventwire.js). Hand-written: keep them in
 * step with the JSDoc of the modules they describe; `npm run typecheck`
 * checks them against test/types/usage.ts.
 *
 * Guide: docs/js-client.md. Wire protocol: docs/protocol.md.
 */

// -- the envelope (shared/seed/websocket-event-structure-patterns.md) ----------

/** The seed's event types, and any custom UPPER_SNAKE_CASE type. */
export type EventType = 'ADDED' | 'UPDATED' | 'DELETED' | 'STATUS_CHANGED' | (string & {});

export interface EventData<P = unknown> {
  /** The affected entity. */
  entity_id: string;
  /** The DTO; `null` for DELETED and reference-only events. */
  payload: P;
  user_id?: string;
  tenant_id?: string;
  /** ISO 8601, UTC, milliseconds, `Z`. */
  timestamp: string;
}

/** One event as delivered: the seed's `WebSocketEvent`, plus the gateway's `seq`. */
export interface WebSocketEvent<P = unknown, E extends string = EventType> {
  topic: string;
  event: E;
  data: EventData<P>;
  trace_id?: string;
  /** Schema version of the payload, >= 1; absent means version 1 for version dispatch. */
  version?: number;
  /** The event's position in its topic, set by the gateway. */
  seq: number;
}

/**
 * Payload types by event type, to type handlers:
 * `client.subscribe<{ADDED: Gift; UPDATED: Partial<Gift>}>(topic, {...})`.
 */
export type Payloads = Record<string, unknown>;

/** The events a payload map describes, as a union discriminated by `event`. */
export type EventOf<M extends Payloads> = { [E in keyof M & string]: WebSocketEvent<M[E], E> }[keyof M & string];

// -- handlers --------------------------------------------------------------------

/** Called with each event; a returned promise is not awaited, its rejection is reported. */
export type Handler<Ev> = (event: Ev) => void | Promise<void>;

/** Handlers by schema version (`version`, 1 when absent), and `'*'` for the versions not listed. */
export interface VersionHandlers<Ev> {
  [version: number]: Handler<Ev>;
  '*'?: Handler<Ev>;
}

export type HandlerEntry<Ev> = Handler<Ev> | VersionHandlers<Ev>;

/**
 * Handlers by event type, `'*'` for every type; each a function or a version
 * map. An event reaches its type's entry, then `'*'`'s. Without payload
 * types (`M` left out) every entry takes any event.
 */
export type EventHandlers<M extends Payloads = Payloads> = string extends keyof M
  ? { [type: string]: HandlerEntry<WebSocketEvent> }
  : {
      [E in (keyof M & string) | '*']?: HandlerEntry<
        E extends '*' ? EventOf<M> : E extends keyof M ? WebSocketEvent<M[E], E> : never
      >;
    };

// -- positions, gaps, reconnection ---------------------------------------------------

/** Where a client stands in a topic: the last `seq`, in the history `epoch`. */
export interface Position {
  seq: number;
  epoch: string;
}

/**
 * Events of `topic` the client never received: `seq` `first` to `last`. With
 * `historyLost` the epoch changed (the gateway lost its history, e.g. a
 * restart of the in-memory broker) and `first..last` counts only the new
 * epoch's missed events. Either way: refetch the resource.
 */
export interface Gap {
  readonly topic: string;
  readonly first: number;
  readonly last: number;
  readonly epoch: string | null;
  readonly historyLost: boolean;
  /** Events of the current epoch missed: `max(0, last - first + 1)`. */
  readonly count: number;
}

/** A finished reconnection: connected again, every topic resubscribed. */
export interface Reconnected {
  /** Reconnections of this client so far, this one included. */
  readonly count: number;
  /** How the previous connection ended (1006 when it just dropped). */
  readonly closeCode: number;
  /** What was missed meanwhile, per topic. */
  readonly gaps: readonly Gap[];
}

/** The client is closed for good: by `close()` (code 1000, error CLOSED) or a close code that says so. */
export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
  readonly error: EventwireError;
}

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/**
 * The event versions a subscriber reads, by event key: `resource.EVENT`,
 * `resource.*` or `*` (the most specific key wins); each a non-empty list of
 * versions >= 1. A gateway with a catalog converts each event to the highest
 * accepted version; when none can be produced, onError gets one
 * UNSUPPORTED_VERSION per topic and event type instead of the event.
 */
export interface Versions {
  readonly '*'?: readonly number[];
  readonly [key: `${string}.${string}`]: readonly number[];
}

// -- options -----------------------------------------------------------------------

/** What the client needs of a WebSocket: the browser's, Node 22's, Node 20's with `--experimental-websocket`, or the `ws` package's. */
export interface WebSocketLike {
  binaryType: string;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ConnectOptions {
  /** Sent as `?token=` on the WebSocket URL. */
  token?: string;
  /** Called before each connection and reconnection; its value is sent as `?token=` (nothing when empty). */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** The WebSocket constructor; default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect after drops and reconnect-range close codes; default true. False: one attempt per URL, and no reconnection. */
  reconnect?: boolean;
  /** Backoff ceiling of the first round of attempts, in ms, doubling per round of URLs (full jitter); default 250. */
  backoffInitial?: number;
  /** Largest backoff ceiling, in ms; default 30000. */
  backoffMax?: number;
  /** Consecutive failed attempts, on any URL, before giving up; default Infinity. The first connection tries each URL at least once. */
  maxReconnectAttempts?: number;
  /** A connection open this long (ms) counts as healthy and starts the backoff again from `backoffInitial`; until then it keeps growing, so a node that accepts and closes at once is retried ever more slowly. Default 5000. */
  stableAfter?: number;
  /** Wait for the CONNECTED greeting, in ms; default 10000. */
  connectTimeout?: number;
  /** Wait for a command's answer, in ms; default 10000. */
  requestTimeout?: number;
  /** Send PING after this many ms without a frame, drop the connection when it gets no answer; default the gateway's heartbeat_interval, 0 turns it off. */
  pingInterval?: number;
  /** Resubscribe with `since` (each topic's last position) so the gateway replays missed events; when it cannot, the gap has `historyLost`; default true. */
  recover?: boolean;
  /** The event versions every subscription reads, unless it says otherwise; kept across reconnections. Default: as published. */
  versions?: Versions;
  /**
   * Checks each event before delivery: return false, throw, or return
   * `{success: false}` (zod's `safeParse`) to refuse it. A refused event is
   * reported as INVALID_EVENT, never delivered, and leaves a gap.
   */
  validate?: (event: WebSocketEvent) => unknown;
  onReconnect?: (info: Reconnected) => void;
  /** Every gap of every topic; subscriptions have their own `onGap` too. */
  onGap?: (gap: Gap) => void;
  /** Gateway errors that answer no call, refused topics, refused events, failing callbacks. Default: console.warn. */
  onError?: (error: EventwireError) => void;
  onClose?: (info: CloseInfo) => void;
}

/** A `URL` object, or anything with an `href`. */
export interface UrlLike {
  readonly href: string;
}

export interface SubscribeOptions {
  /** Missed events of this subscription's topic: refetch. */
  onGap?: (gap: Gap) => void;
  /**
   * The event versions these handlers read, over the connection's `versions`
   * key by key; `null`: as published. Subscriptions of one topic must agree
   * (else `subscribe` throws VERSIONS_CONFLICT). Kept across reconnections.
   */
  versions?: Versions | null;
}

/** Call it to unsubscribe. */
export interface Unsubscribe {
  (): void;
  readonly topic: string;
  /**
   * The topic's position once the gateway accepted it (null only if the
   * gateway reported none); rejects with its error (INVALID_TOPIC, ...), or
   * CLOSED / UNSUBSCRIBED / CONNECTION_LOST.
   */
  readonly ready: Promise<Position | null>;
}

// -- presence (docs/presence.md) -----------------------------------------------------

/** A user on a topic: a user id within a tenant (`tenant_id` absent for a user without one). */
export interface PresentUser {
  readonly user_id: string;
  readonly tenant_id?: string;
}

/** One user of PRESENCE_STATE, with their connections (tabs, devices) on every node. */
export interface PresenceUser extends PresentUser {
  readonly connections: number;
}

/** PRESENCE_STATE's payload: who is on a topic, as this connection may see it. */
export interface PresenceState {
  readonly topic: string;
  /** Users listed. */
  readonly count: number;
  /** Sorted by `user_id`. */
  readonly users: readonly PresenceUser[];
  /** Every connection counted, anonymous ones included. */
  readonly connections: number;
  /** Anonymous connections: counted, never listed. */
  readonly anonymous: number;
}

// -- the client ----------------------------------------------------------------------

/**
 * One gateway URL, or the URLs of several nodes of one deployment: the first
 * that answers is used, and each reconnection attempt goes to the next one.
 */
export type GatewayUrls = string | UrlLike | readonly (string | UrlLike)[];

/** Connect to a gateway. Returns at once; the connection is made, and kept, in the background. */
export declare function connect(url: GatewayUrls, options?: ConnectOptions): Client;

export declare class Client {
  constructor(url: GatewayUrls, options?: ConnectOptions);
  /** The WebSocket URL in use, or tried last (an `http(s)://` base URL becomes `ws(s)://…/ws`). */
  readonly url: string;
  /** Every WebSocket URL the client may use, in the order given. */
  readonly urls: readonly string[];
  /** Resolves at the first connection; rejects if the client closes first. */
  readonly ready: Promise<void>;
  readonly state: ClientState;
  /** Whether a connection is open now. */
  readonly connected: boolean;
  readonly sessionId: string | null;
  readonly reconnects: number;
  readonly lastReconnect: Reconnected | null;
  /** The last position delivered per topic (a copy). */
  readonly positions: Map<string, Position>;
  /** Receive `topic`'s events: one handler for all, or handlers by event type and version. */
  subscribe<M extends Payloads = Payloads>(
    topic: string,
    handlers: Handler<EventOf<M>> | EventHandlers<M>,
    options?: SubscribeOptions,
  ): Unsubscribe;
  /** Round trip in ms. */
  ping(): Promise<number>;
  /**
   * Who is on `topic` (one this client is subscribed to), on every node.
   * Rejects with the gateway's error: NOT_SUPPORTED (not tracked),
   * VALIDATION_ERROR (not subscribed), BROKER_UNAVAILABLE.
   */
  presence(topic: string): Promise<PresenceState>;
  /** Close for good; resolves once stopped. */
  close(): Promise<void>;
}

// -- errors --------------------------------------------------------------------------

export type GatewayErrorCode =
  | 'BAD_REQUEST'
  | 'INVALID_JSON'
  | 'VALIDATION_ERROR'
  | 'INVALID_TOPIC'
  | 'RESERVED_TOPIC'
  | 'UNKNOWN_COMMAND'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOO_MANY_SUBSCRIPTIONS'
  | 'UNSUPPORTED_VERSION'
  | 'RATE_LIMITED'
  | 'NOT_SUPPORTED'
  | 'INTERNAL_ERROR';

export type ClientErrorCode =
  | 'UNREACHABLE'
  | 'CONNECTION_LOST'
  | 'CLOSED'
  | 'UNSUBSCRIBED'
  | 'TIMEOUT'
  | 'NOT_CONNECTED'
  | 'INVALID_FRAME'
  | 'INVALID_EVENT'
  | 'UNKNOWN_VERSION'
  | 'VERSIONS_CONFLICT'
  | 'HANDLER_FAILED'
  | 'FETCH_FAILED';

/** An ERROR from the gateway, or a failure the client noticed itself. */
export declare class EventwireError extends Error {
  constructor(
    code: string,
    message: string,
    extra?: {
      details?: Record<string, unknown>;
      requestId?: string;
      topic?: string;
      closeCode?: number;
      event?: object;
      cause?: unknown;
    },
  );
  readonly code: GatewayErrorCode | ClientErrorCode | (string & {});
  /** The gateway's `details` (`{field, error, errors}`, `{topic}`, ...). */
  readonly details: Record<string, unknown>;
  /** The request id of the command it answers, or `connection`. */
  readonly requestId: string | undefined;
  /** The topic it concerns, when it concerns one. */
  readonly topic: string | undefined;
  /** For CONNECTION_LOST: the close code; for UNREACHABLE, the code a gateway refused the connection with. */
  readonly closeCode: number | undefined;
  /** For INVALID_EVENT and UNKNOWN_VERSION: the event. */
  readonly event: object | undefined;
  static fromPayload(payload: unknown, requestId: string): EventwireError;
}

// -- live collections --------------------------------------------------------------

/**
 * What `fetch` may return: for `fetch()` the whole collection (an array of
 * items, a Map or an object by id); for `fetch(entityId)` the item, or
 * null/undefined when it no longer exists (a collection replaces everything).
 */
export type FetchResult<T> = readonly T[] | ReadonlyMap<string, T> | Record<string, T> | T | null | undefined;

export type ChangeListener<T> = (items: ReadonlyMap<string, T>, event: WebSocketEvent | null) => void;

export interface LiveCollectionOptions<T> {
  fetch: (entityId?: string) => FetchResult<T> | Promise<FetchResult<T>>;
  /** The id of an item `fetch()` returns in an array: a property name or a function; default `'id'`. */
  key?: string | ((item: T) => string | number);
  /** UPDATED payloads: `'merge'` (RFC 7396 merge patch, default) or `'replace'`. */
  updates?: 'merge' | 'replace';
  /** The field STATUS_CHANGED sets to `new_status`; default `'status'`. */
  statusField?: string;
  /** Appliers for other event types (they take precedence over the built-in ones). */
  handlers?: Record<string, (items: Map<string, T>, event: WebSocketEvent) => void>;
  onChange?: ChangeListener<T>;
  /** The event versions its appliers read (see SubscribeOptions.versions). */
  versions?: Versions | null;
  /** FETCH_FAILED and failing listeners; default console.warn. */
  onError?: (error: EventwireError) => void;
}

export declare class LiveCollection<T = unknown> {
  constructor(client: Client, topic: string, options: LiveCollectionOptions<T>);
  readonly topic: string;
  /** The items by entity id; a changed item is a new object. */
  readonly items: ReadonlyMap<string, T>;
  /** The first fetch applied; rejects if it failed, or if the subscription was refused. */
  readonly ready: Promise<void>;
  /** `listener(items, event)` after each change (`event` null after a full fetch); returns its remover. */
  onChange(listener: ChangeListener<T>): () => void;
  /** Fetch everything again; resolves once applied. */
  refresh(): Promise<void>;
  /** Unsubscribe and stop; `items` keeps its last state. */
  close(): void;
}

/** Keep a Map of `topic`'s entities in sync: fetch once, then apply its events. */
export declare function liveCollection<T = unknown>(
  client: Client,
  topic: string,
  options: LiveCollectionOptions<T>,
): LiveCollection<T>;

// -- live presence -----------------------------------------------------------------

export interface LivePresenceOptions {
  /** After each change: the users now, and the USER_JOINED / USER_LEFT that changed them (null after a PRESENCE). */
  onChange?: (users: readonly PresentUser[], event: WebSocketEvent | null) => void;
  /** The event versions of its subscription (see SubscribeOptions.versions). */
  versions?: Versions | null;
  /** A failed PRESENCE and failing listeners; default console.warn. */
  onError?: (error: EventwireError) => void;
}

export declare class LivePresence {
  constructor(client: Client, topic: string, options?: LivePresenceOptions);
  readonly topic: string;
  /** The users present, sorted by `user_id`; a new frozen array after each change. */
  readonly users: readonly PresentUser[];
  /** How many users are present (anonymous connections are never listed). */
  readonly count: number;
  /** The first PRESENCE applied; rejects with its error, or the subscription's. */
  readonly ready: Promise<void>;
  /** Ask PRESENCE again; resolves once applied. */
  refresh(): Promise<void>;
  /** Unsubscribe and stop; `users` keeps its last state. */
  close(): void;
}

/** Keep the users on `topic` current: PRESENCE once, then USER_JOINED / USER_LEFT as set operations. */
export declare function livePresence(client: Client, topic: string, options?: LivePresenceOptions): LivePresence;

// -- helpers -------------------------------------------------------------------------

/** RFC 7396 JSON merge patch; returns a new value, leaves both inputs as they were. */
export declare function mergePatch(target: unknown, patch: unknown): unknown;

/** Whether a client closed with `code` should reconnect (docs/protocol.md, "Close codes"). */
export declare function shouldReconnect(code: number): boolean;

/** Milliseconds before reconnection `attempt` (0-based): a uniform draw in `[0, min(maximum, initial * 2**attempt)]`. */
export declare function backoffDelay(attempt: number, initial: number, maximum: number, random?: () => number): number;

export declare const CloseCode: {
  readonly NORMAL: 1000;
  readonly GOING_AWAY: 1001;
  readonly PROTOCOL_ERROR: 1002;
  readonly ABNORMAL: 1006;
  readonly INVALID_DATA: 1007;
  readonly MESSAGE_TOO_BIG: 1009;
  readonly INTERNAL_ERROR: 1011;
  readonly HEARTBEAT_TIMEOUT: 4002;
  readonly SLOW_CONSUMER: 4008;
  readonly FLOODING: 4029;
};
