/**
 * The WebSocket client: subscriptions, handlers, and reconnection that resubscribes.
 *
 *     const client = connect('ws://127.0.0.1:8000/ws');
 *     const off = client.subscribe('gift-list:123', {ADDED: (e) => add(e.data.payload)});
 *
 * One loop owns the connection: open it (the first frame must be CONNECTED),
 * subscribe every topic, wait for it to close, decide from the close code
 * whether to come back (reconnect.js), sleep a backoff with full jitter, and
 * start again, on the next of the gateway URLs when there are several
 * (endpoints.js). Inbound frames are decoded once and routed by topic
 * (router.js), where each topic's stream drops duplicates and notices gaps
 * (streams.js); handlers are chosen by event type and version (dispatch.js).
 *
 * @module
 */

import { openConnection } from './connection.js';
import { checkHandlers, dispatch, invoke } from './dispatch.js';
import { Endpoints } from './endpoints.js';
import { EventwireError } from './errors.js';
import {
  ERROR_TOPIC,
  MAX_TOPICS_PER_COMMAND,
  SYSTEM_TOPIC,
  commandFrame,
  decodeFrame,
  subscribePayload,
  withToken,
} from './frames.js';
import { Backoff, CloseCode, STABLE_AFTER_MS, shouldReconnect } from './reconnect.js';
import { Requests } from './requests.js';
import { Router, Subscription } from './router.js';
import { checkVersions, subscriptionVersions, versionsKey } from './versions.js';

const DEFAULTS = Object.freeze({
  reconnect: true,
  recover: true,
  backoffInitial: 250,
  backoffMax: 30_000,
  maxReconnectAttempts: Infinity,
  stableAfter: STABLE_AFTER_MS,
  connectTimeout: 10_000,
  requestTimeout: 10_000,
  pingInterval: undefined,
});

const NO_WEBSOCKET =
  'no WebSocket constructor: pass one as the WebSocket option, or on Node 20 run `node --experimental-websocket` (Node 22 and browsers have it built in)';

/**
 * Connect to a gateway. Returns at once; the connection is made, and kept,
 * in the background. `await client.ready` for the first connection.
 *
 * Several URLs name several nodes of one deployment: the first that answers
 * is used, and each reconnection attempt goes to the next one, round robin.
 *
 * @param {import('./endpoints.js').UrlLike | readonly import('./endpoints.js').UrlLike[]} url
 *   `ws://host:port/ws`; an `http(s)://` base URL points at its `/ws`; or a list of them
 * @param {import('./eventwire.js').ConnectOptions} [options]
 */
export function connect(url, options = {}) {
  return new Client(url, options);
}

/** A connection to a gateway, kept open across drops and restarts. See `connect`. */
export class Client {
  /** @type {typeof DEFAULTS & import('./eventwire.js').ConnectOptions} */
  #options;
  #WebSocket;
  #endpoints;
  #backoff;
  #router = new Router({
    deliver: (event, subs) => this.#deliver(event, subs),
    gap: (gap, subs) => this.#gapFound(gap, subs),
  });
  #requests = new Requests();
  /** @type {import('./versions.js').Versions | null} the `versions` option: every subscription's default */
  #versions;
  /** @type {import('./connection.js').Connection | null} the open connection */
  #connection = null;
  /** @type {(() => void) | null} aborts a connection attempt */
  #abortOpen = null;
  /** @type {(() => void) | null} ends a backoff sleep early */
  #wake = null;
  #state = 'connecting';
  /** Topics the current connection's gateway confirmed. */
  #confirmed = new Set();
  /** Topics to subscribe at the end of this tick. */
  #toSubscribe = new Set();
  #flushQueued = false;
  /** @type {import('./streams.js').Gap[] | null} gaps noticed while resubscribing */
  #resumeGaps = null;
  /** @type {ReturnType<typeof setInterval> | null} */
  #heartbeat = null;
  #lastReceived = 0;
  #resolveReady = () => {};
  #rejectReady = (/** @type {Error} */ _error) => {};
  #done;

  /**
   * @param {import('./endpoints.js').UrlLike | readonly import('./endpoints.js').UrlLike[]} url
   * @param {import('./eventwire.js').ConnectOptions} [options]
   */
  constructor(url, options = {}) {
    this.#endpoints = new Endpoints(url);
    this.#options = { ...DEFAULTS, ...definedOnly(options) };
    this.#backoff = new Backoff({
      stableAfter: this.#options.stableAfter,
      step: (attempt) => this.#endpoints.backoffStep(attempt),
    });
    this.#versions = options.versions == null ? null : checkVersions(options.versions);
    this.#WebSocket = this.#options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== 'function') throw new TypeError(NO_WEBSOCKET);
    /** @type {string | null} */
    this.sessionId = null;
    this.reconnects = 0;
    /** @type {import('./eventwire.js').Reconnected | null} */
    this.lastReconnect = null;
    /** @type {Promise<void>} */
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => {}); // awaiting it is optional: never an unhandled rejection
    this.#done = this.#run();
  }

  /** The WebSocket URL in use, or tried last. */
  get url() {
    return this.#endpoints.current;
  }

  /** Every WebSocket URL the client may use, in the order given. */
  get urls() {
    return this.#endpoints.urls;
  }

  /** `'connecting'` (before the first connection), `'open'`, `'reconnecting'` or `'closed'` (for good). */
  get state() {
    return this.#state;
  }

  /** Whether a connection is open right now. */
  get connected() {
    return this.#connection !== null;
  }

  /** The last `{seq, epoch}` delivered per subscribed topic (a copy). */
  get positions() {
    return this.#router.positions;
  }

  /**
   * Receive the events of `topic`. Returns a function that unsubscribes; its
   * `ready` resolves with the topic's position once the gateway accepted it,
   * or rejects with the gateway's error (INVALID_TOPIC, RESERVED_TOPIC, ...),
   * which also goes to `onError`.
   *
   * `versions` declares the event versions these handlers read, over the
   * connection's `versions` key by key (`null`: events as published). Every
   * subscription of one topic shares the gateway's subscription, so they
   * must declare the same; a different one throws VERSIONS_CONFLICT.
   *
   * @param {string} topic
   * @param {Function | Record<string, Function | Record<string, Function>>} handlers
   *   a function for every event, or handlers by event type and version (see dispatch.js)
   * @param {{onGap?: (gap: import('./streams.js').Gap) => void,
   *          versions?: import('./eventwire.js').Versions | null}} [options]
   */
  subscribe(topic, handlers, { onGap, versions } = {}) {
    if (typeof topic !== 'string' || topic === '') throw new TypeError('topic: expected a non-empty string');
    checkHandlers(handlers);
    if (onGap !== undefined && typeof onGap !== 'function') throw new TypeError('onGap: expected a function');
    const declared = subscriptionVersions(this.#versions, versions);
    const current = this.#router.subscriptionsOf(topic)[0];
    if (current !== undefined && versionsKey(current.versions) !== versionsKey(declared)) {
      throw versionsConflict(topic, current.versions, declared);
    }
    const sub = new Subscription(topic, handlers, onGap, declared);
    const unsubscribe = Object.assign(() => this.#unsubscribe(sub), { topic, ready: sub.ready });
    if (this.#state === 'closed') sub.end(closedError());
    else if (this.#router.add(sub)) this.#queueSubscribe(topic);
    else if (this.#confirmed.has(topic)) sub.confirm(this.#router.positionOf(topic));
    return unsubscribe;
  }

  /**
   * The round trip to the gateway and back (a PING command), in milliseconds.
   * Rejects with NOT_CONNECTED, TIMEOUT or CONNECTION_LOST.
   */
  async ping() {
    const started = performance.now();
    const answer = await this.#command('PING');
    if (answer.errors.length > 0) throw answer.errors[0];
    return performance.now() - started;
  }

  /**
   * Who is on `topic` (one this client is subscribed to), on every node of
   * the gateway: PRESENCE_STATE's payload `{topic, count, users, connections,
   * anonymous}`. Rejects with the gateway's error (NOT_SUPPORTED for a topic
   * it does not track, VALIDATION_ERROR for one not subscribed to,
   * BROKER_UNAVAILABLE), or NOT_CONNECTED, TIMEOUT, CONNECTION_LOST.
   *
   * @param {string} topic
   * @returns {Promise<import('./eventwire.js').PresenceState>}
   */
  async presence(topic) {
    if (typeof topic !== 'string' || topic === '') throw new TypeError('topic: expected a non-empty string');
    const answer = await this.#command('PRESENCE', { topic });
    if (answer.errors.length > 0) throw answer.errors[0];
    return /** @type {any} */ (answer.payload);
  }

  /**
   * Close the connection (1000) and end every subscription, for good.
   * Resolves once the client has stopped.
   */
  close() {
    if (this.#state !== 'closed') {
      this.#finish(CloseCode.NORMAL, 'client closed', closedError());
      this.#connection?.end(CloseCode.NORMAL, 'client closed');
      this.#abortOpen?.();
      this.#wake?.();
    }
    return this.#done;
  }

  // -- the connection ----------------------------------------------------------

  /**
   * Connect, subscribe, wait for the end, and again while the close codes
   * allow. Every attempt after the very first goes to the next URL (the node
   * just lost may be gone); the first connection tries each URL once without
   * waiting, and the backoff grows once per round of URLs. The backoff
   * starts again only after a connection that lasted (see Backoff): a node
   * that accepts and closes at once is retried ever more slowly.
   */
  async #run() {
    let failures = 0; // consecutive failed attempts
    let lastCode = null; // how the previous connection ended; null before the first
    let lastError = null;
    try {
      while (this.#state !== 'closed') {
        if (failures >= this.#attemptLimit(lastCode !== null)) {
          const reason = `gave up after ${failures} attempts`;
          this.#finish(lastCode ?? CloseCode.ABNORMAL, reason, gaveUp(failures, lastError));
          return;
        }
        const firstRound = lastCode === null && failures < this.urls.length;
        if (!firstRound) {
          await this.#sleep(this.#backoff.delay(lastCode, this.#options));
        }
        if (failures > 0 || lastCode !== null) this.#endpoints.advance();
        const outcome = await this.#connectOnce(lastCode);
        if (outcome === null) return;
        [failures, lastError] = outcome.error === undefined ? [0, null] : [failures + 1, outcome.error];
        lastCode = outcome.code;
      }
    } catch (bug) {
      const error = new EventwireError('INTERNAL_ERROR', `eventwire client failed: ${bug}`, { cause: bug });
      this.#report(error);
      this.#finish(CloseCode.ABNORMAL, 'client failed', error);
    }
  }

  /**
   * One connection, from opening it to its end. Null when the client is
   * over; else `{code}` of the previous connection to reconnect after, with
   * `error` when this attempt failed (it did not open, or could not even
   * resubscribe).
   */
  async #connectOnce(lastCode) {
    if (this.#state === 'closed') return null;
    let connection;
    try {
      connection = await this.#open();
    } catch (error) {
      if (error.closeCode !== undefined && !shouldReconnect(error.closeCode)) {
        this.#finish(error.closeCode, error.message, refusedError(error)); // another node would refuse it too
        return null;
      }
      return { code: lastCode, error };
    }
    if (lastCode === null) this.#resolveReady();
    this.#backoff.opened();
    const resumed = await this.#resume(lastCode);
    const { code, reason } = await connection.closed;
    this.#backoff.closed();
    if (this.#state === 'closed') return null;
    if (!this.#options.reconnect || !shouldReconnect(code)) {
      this.#finish(code, reason);
      return null;
    }
    return resumed ? { code } : { code, error: lostBeforeResuming(code, reason) };
  }

  /**
   * Consecutive failed attempts before giving up; with `reconnect: false`,
   * one. The first connection tries every URL at least once.
   * @param {boolean} connectedBefore
   */
  #attemptLimit(connectedBefore) {
    const limit = this.#options.reconnect ? this.#options.maxReconnectAttempts : 1;
    return connectedBefore ? limit : Math.max(limit, this.urls.length);
  }

  /** The next connection, its CONNECTED greeting read; rejects with UNREACHABLE. */
  async #open() {
    const url = await this.#connectUrl();
    if (this.#state === 'closed') throw closedError();
    const attempt = openConnection(this.#WebSocket, url, {
      timeout: this.#options.connectTimeout,
      label: this.url,
      onData: (data) => this.#receive(data),
      onEnd: (code, reason) => this.#connectionLost(code, reason),
    });
    this.#abortOpen = attempt.abort;
    let connection;
    try {
      connection = await attempt.opened;
    } finally {
      this.#abortOpen = null;
    }
    if (this.#state === 'closed') {
      connection.end(CloseCode.NORMAL, 'client closed'); // closed while the greeting was on its way
      throw closedError();
    }
    return this.#attach(connection);
  }

  /** The URL of the next connection attempt, with the current token. */
  async #connectUrl() {
    const { getToken, token } = this.#options;
    let value = token;
    if (getToken !== undefined) {
      try {
        value = await getToken();
      } catch (cause) {
        throw new EventwireError('UNREACHABLE', `getToken() failed: ${cause}`, { cause });
      }
    }
    return value === undefined || value === null || value === '' ? this.url : withToken(this.url, String(value));
  }

  /** Make `connection` the client's connection. */
  #attach(connection) {
    const hello = connection.hello;
    this.#connection = connection;
    this.#state = 'open';
    this.sessionId = String(hello.data.payload?.session_id ?? hello.data.entity_id);
    this.#lastReceived = Date.now();
    this.#startHeartbeat(connection, hello);
    return connection;
  }

  /** The connection ended (or was given up): fail what waited on it, keep the subscriptions. */
  #connectionLost(code, reason) {
    this.#connection = null;
    this.#stopHeartbeat();
    this.#confirmed.clear();
    if (this.#state !== 'closed') this.#state = 'reconnecting';
    const error = new EventwireError('CONNECTION_LOST', `connection closed (${code} ${reason})`, { closeCode: code });
    this.#requests.failAll(error);
    this.#router.connectionLost();
  }

  /** Give up on the current connection now (it looks dead or broken); the loop reconnects. */
  #drop(reason) {
    this.#connection?.end(CloseCode.ABNORMAL, reason);
  }

  /** Closed for good: end everything and tell the application once. */
  #finish(code, reason, error = lostError(code, reason)) {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#stopHeartbeat();
    this.#requests.failAll(error);
    for (const sub of this.#router.clear()) sub.end(error);
    this.#confirmed.clear();
    this.#toSubscribe.clear();
    this.#rejectReady(error);
    this.#callback('onClose', { code, reason, error });
  }

  #sleep(ms) {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wake = wake;
    });
  }

  /**
   * Send PING when nothing has arrived for a while: a dead connection
   * (sleeping laptop, changed network) is noticed, dropped and replaced.
   */
  #startHeartbeat(connection, hello) {
    const serverInterval = Number(hello.data.payload?.heartbeat_interval) * 1000;
    const every = this.#options.pingInterval ?? serverInterval;
    if (!(every > 0)) return;
    this.#heartbeat = setInterval(() => this.#checkAlive(connection, every), every);
  }

  #checkAlive(connection, every) {
    if (this.#connection !== connection || Date.now() - this.#lastReceived < every) return;
    this.#command('PING').catch((error) => {
      if (error.code === 'TIMEOUT' && this.#connection === connection) this.#drop('no answer to PING');
    });
  }

  #stopHeartbeat() {
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
  }

  // -- subscriptions -----------------------------------------------------------

  /**
   * Subscribe every topic on a new connection; after a reconnect, tell the
   * application. False when the gateway did not take the SUBSCRIBE.
   */
  async #resume(lastCode) {
    const first = lastCode === null;
    this.#toSubscribe.clear();
    const topics = first ? this.#router.topics : this.#router.resuming();
    const gaps = (this.#resumeGaps = []);
    let subscribed;
    try {
      subscribed = await this.#subscribeTopics(topics, !first);
    } finally {
      this.#resumeGaps = null;
    }
    if (!subscribed || first) return subscribed;
    this.reconnects += 1;
    this.lastReconnect = Object.freeze({ count: this.reconnects, closeCode: lastCode, gaps: Object.freeze(gaps) });
    this.#callback('onReconnect', this.lastReconnect);
    return true;
  }

  /**
   * SUBSCRIBE `topics`: one command per distinct `versions`, at most 1000
   * topics each. A refused topic ends its subscriptions (see #refuse); a
   * command refused as a whole, or left unanswered, drops the connection so
   * that the next one resubscribes.
   */
  async #subscribeTopics(topics, resume) {
    for (const { versions, topics: group } of this.#byVersions(topics)) {
      for (let i = 0; i < group.length; i += MAX_TOPICS_PER_COMMAND) {
        const chunk = group.slice(i, i + MAX_TOPICS_PER_COMMAND);
        // Recovery: the gateway replays what each topic missed after its position ("since").
        const since = resume && this.#options.recover ? this.#router.since(chunk) : null;
        let answer;
        try {
          answer = await this.#command('SUBSCRIBE', subscribePayload(chunk, since, versions), chunk.length);
        } catch (error) {
          if (error.code === 'TIMEOUT') {
            this.#report(error);
            this.#drop('SUBSCRIBE timed out');
          }
          return false;
        }
        const failure = answer.errors.find((error) => error.topic === undefined);
        if (failure !== undefined) {
          this.#report(failure);
          this.#drop(`SUBSCRIBE refused: ${failure.code}`);
          return false;
        }
      }
    }
    return true;
  }

  /** `topics` grouped by the versions their subscriptions declare. */
  #byVersions(topics) {
    /** @type {Map<string, {versions: import('./versions.js').Versions | null, topics: string[]}>} */
    const groups = new Map();
    for (const topic of topics) {
      const versions = this.#router.subscriptionsOf(topic)[0]?.versions ?? null;
      const key = versionsKey(versions);
      let group = groups.get(key);
      if (group === undefined) groups.set(key, (group = { versions, topics: [] }));
      group.topics.push(topic);
    }
    return groups.values();
  }

  /** Topics subscribed in one tick go out in one SUBSCRIBE. */
  #queueSubscribe(topic) {
    this.#toSubscribe.add(topic);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      if (this.#connection === null) return; // the next connection subscribes every topic
      const topics = [...this.#toSubscribe].filter((t) => this.#router.has(t));
      this.#toSubscribe.clear();
      if (topics.length > 0) this.#subscribeTopics(topics, false);
    });
  }

  #unsubscribe(sub) {
    if (!sub.active) return;
    sub.end(
      new EventwireError('UNSUBSCRIBED', `unsubscribed from ${sub.topic} before the gateway confirmed it`, {
        topic: sub.topic,
      }),
    );
    if (!this.#router.remove(sub)) return;
    this.#toSubscribe.delete(sub.topic);
    this.#confirmed.delete(sub.topic);
    if (this.#connection === null) return;
    this.#command('UNSUBSCRIBE', { topics: [sub.topic] }).then(
      (answer) => answer.errors.forEach((error) => this.#report(error)),
      () => {}, // the connection went: nothing is subscribed any more
    );
  }

  /** The gateway refused `error.topic`: its subscriptions end. */
  #refuse(error) {
    for (const sub of this.#router.subscriptionsOf(error.topic)) {
      this.#router.remove(sub);
      sub.end(error);
    }
    this.#toSubscribe.delete(error.topic);
    this.#report(error);
  }

  /** Send a command on the open connection; the promise of its answer. */
  #command(command, payload, topicCount = 0) {
    const connection = this.#connection;
    if (connection === null) {
      return Promise.reject(
        new EventwireError('NOT_CONNECTED', `cannot send ${command}: not connected to ${this.url}`),
      );
    }
    const { id, answer } = this.#requests.open(command, { timeout: this.#options.requestTimeout, topicCount });
    try {
      connection.send(commandFrame(command, id, payload));
    } catch (cause) {
      this.#drop(`send failed: ${cause}`); // fails this request with the others
    }
    return answer;
  }

  // -- inbound frames ----------------------------------------------------------

  #receive(data) {
    this.#lastReceived = Date.now();
    let frame;
    try {
      frame = decodeFrame(data);
    } catch (error) {
      this.#report(error);
      return;
    }
    if (frame.topic === SYSTEM_TOPIC) this.#systemFrame(frame);
    else if (frame.topic === ERROR_TOPIC) this.#errorFrame(frame);
    else this.#eventFrame(frame);
  }

  #systemFrame(frame) {
    if (frame.event === 'RECOVERY_FAILED') {
      this.#router.recoveryFailed(frame.data.payload);
      return;
    }
    if (frame.event === 'SUBSCRIBED') this.#subscribed(frame.data.payload);
    this.#requests.reply(frame.data.entity_id, frame.data.payload);
  }

  #subscribed(payload) {
    for (const [topic, position] of this.#router.subscribed(payload)) {
      this.#confirmed.add(topic);
      for (const sub of this.#router.subscriptionsOf(topic)) sub.confirm(position);
    }
  }

  #errorFrame(frame) {
    const error = EventwireError.fromPayload(frame.data.payload, frame.data.entity_id);
    const command = this.#requests.commandOf(frame.data.entity_id);
    this.#requests.error(error);
    if (command === 'SUBSCRIBE' && error.topic !== undefined) this.#refuse(error);
    else if (command === undefined) {
      this.#report(error); // answers no command: e.g. a frame it could not read
      if (error.code === 'TOKEN_EXPIRED') this.#refreshToken();
    }
  }

  /**
   * The token lapsed: with `getToken`, send a fresh one with AUTH within the
   * gateway's grace, so the connection and its subscriptions live on.
   */
  async #refreshToken() {
    if (this.#options.getToken === undefined) return; // the gateway will close with 4001
    try {
      const token = await this.#options.getToken();
      const answer = await this.#command('AUTH', { token: String(token) });
      for (const error of answer.errors) this.#report(error);
    } catch (error) {
      this.#report(
        error instanceof EventwireError
          ? error
          : new EventwireError('UNREACHABLE', `token refresh failed: ${error}`, { cause: error }),
      );
    }
  }

  #eventFrame(frame) {
    if (this.#router.has(frame.topic) && this.#accepts(frame)) this.#router.event(frame);
  }

  /**
   * The `validate` hook: false or a throw refuses the event (so does a
   * `{success: false}`, as zod's `safeParse` returns). A refused event is
   * reported as INVALID_EVENT and never delivered: to its topic's stream it
   * is missing, so the jump it leaves is reported as a gap, and the
   * application refetches what it could not read.
   */
  #accepts(frame) {
    const validate = this.#options.validate;
    if (validate === undefined) return true;
    /** @type {any} */
    let verdict;
    try {
      verdict = validate(frame);
    } catch (cause) {
      verdict = { success: false, error: cause };
    }
    if (verdict !== false && verdict?.success !== false) return true;
    const cause = verdict?.error;
    const why = cause === undefined ? 'validate() returned false' : String(cause?.message ?? cause);
    const message = `${frame.topic} ${frame.event} seq=${frame.seq} refused by validate(): ${why}`;
    this.#report(new EventwireError('INVALID_EVENT', message, { topic: frame.topic, event: frame, cause }));
    return false;
  }

  #deliver(event, subs) {
    const report = (error) => this.#report(error);
    for (const sub of subs) {
      if (sub.active) dispatch(sub.handlers, event, report);
    }
  }

  #gapFound(gap, subs) {
    this.#resumeGaps?.push(gap);
    for (const sub of subs) {
      if (sub.active && sub.onGap !== undefined) invoke(sub.onGap, [gap], (error) => this.#report(error), 'onGap');
    }
    this.#callback('onGap', gap);
  }

  /** Call the application's `name` option, if given; a failure is reported, not thrown. */
  #callback(name, arg) {
    const fn = this.#options[name];
    if (typeof fn === 'function') invoke(fn, [arg], (error) => this.#report(error), name);
  }

  /** Errors go to `onError`, else to the console: never thrown at the connection. */
  #report(error) {
    const onError = this.#options.onError;
    if (typeof onError !== 'function') {
      console.warn(`eventwire: ${error.code}: ${error.message}`);
      return;
    }
    try {
      onError(error);
    } catch (cause) {
      console.error('eventwire: onError failed', cause);
    }
  }
}

/** @param {object} options */
function definedOnly(options) {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

function versionsConflict(topic, current, declared) {
  const shown = (versions) => (versions === null ? 'none (as published)' : JSON.stringify(versions));
  return new EventwireError(
    'VERSIONS_CONFLICT',
    `${topic} is subscribed with versions ${shown(current)}; this subscription declares ${shown(declared)}.` +
      ' The subscriptions of a topic share its events: declare the same versions, or use another client',
    { topic },
  );
}

function closedError() {
  return new EventwireError('CLOSED', 'the client was closed');
}

function lostError(code, reason) {
  const message = `the gateway closed the connection with ${code}${reason ? ` (${reason})` : ''}; not reconnecting`;
  return new EventwireError('CONNECTION_LOST', message, { closeCode: code });
}

function lostBeforeResuming(code, reason) {
  return new EventwireError('CONNECTION_LOST', `closed with ${code} ${reason} before resubscribing`, {
    closeCode: code,
  });
}

/** The gateway refused the connection with a close code that says not to try again (4501, 4503). */
function refusedError(attemptError) {
  const refusal = attemptError.cause;
  const message = `${attemptError.message}; not reconnecting`;
  return new EventwireError('CONNECTION_LOST', message, {
    closeCode: attemptError.closeCode,
    details: refusal?.details,
    cause: refusal,
  });
}

function gaveUp(attempts, lastError) {
  const message = `gave up after ${attempts} failed connection attempts: ${lastError?.message}`;
  return new EventwireError('CONNECTION_LOST', message, { cause: lastError });
}
