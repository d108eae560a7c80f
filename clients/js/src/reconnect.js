/**
 * When to reconnect, and how long to wait first. Pure functions.
 *
 * The rule is by close code (docs/protocol.md, "Close codes"; the Python
 * client's `eventwire.codes.should_reconnect` encodes the same):
 *
 * - 4000–4499: the gateway ended the connection; reconnect with backoff.
 * - 4500–4999: the gateway ended the connection; do not reconnect.
 * - 1001 (shutting down), 1011 (internal error), 1006 (dropped without a
 *   close frame), 1012–1014 (restart, try again later, bad gateway): reconnect.
 * - anything else (1000 normal, 1002/1007 broken frames, ...): do not.
 *
 * @module
 */

/** The WebSocket close codes the gateway sends, plus 1006 (no close frame at all). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  ABNORMAL: 1006,
  INVALID_DATA: 1007,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  HEARTBEAT_TIMEOUT: 4002,
  SLOW_CONSUMER: 4008,
  FLOODING: 4029,
});

const RECONNECTABLE = new Set([1001, 1006, 1011, 1012, 1013, 1014]);

/**
 * After close 4029 (command flood) the protocol asks for "a backoff of
 * several seconds": no attempt comes back sooner than this.
 */
export const FLOOD_BACKOFF_MS = 5000;

/**
 * Whether a client closed with `code` should reconnect.
 * @param {number} code
 */
export function shouldReconnect(code) {
  if (code >= 4000 && code < 4500) return true;
  if (code >= 4500 && code < 5000) return false;
  return RECONNECTABLE.has(code);
}

/**
 * Milliseconds to wait before reconnection `attempt` (0-based): exponential
 * backoff with full jitter, a uniform draw in
 * `[0, min(maximum, initial * 2**attempt)]`, so the clients of a restarted
 * gateway do not all come back in one wave.
 *
 * @param {number} attempt
 * @param {number} initial
 * @param {number} maximum
 * @param {() => number} [random] a draw in [0, 1)
 */
export function backoffDelay(attempt, initial, maximum, random = Math.random) {
  const ceiling = Math.min(maximum, initial * 2 ** Math.min(attempt, 62));
  return ceiling * random();
}

/**
 * The wait before reconnecting after `closeCode`: `backoffDelay`, but never
 * less than FLOOD_BACKOFF_MS after close 4029.
 *
 * @param {number} attempt
 * @param {number | null} closeCode null before the first connection
 * @param {{backoffInitial: number, backoffMax: number}} options
 * @param {() => number} [random]
 */
export function reconnectDelay(attempt, closeCode, options, random = Math.random) {
  const delay = backoffDelay(attempt, options.backoffInitial, options.backoffMax, random);
  return closeCode === CloseCode.FLOODING ? Math.max(delay, FLOOD_BACKOFF_MS) : delay;
}

/**
 * A connection that stayed open this long counts as healthy: the backoff
 * starts again from `backoffInitial`. The Python client's default is the same.
 */
export const STABLE_AFTER_MS = 5000;

/**
 * Where the reconnection backoff stands: it grows with every attempt, across
 * connections, and only a connection that stayed open `stableAfter` ms starts
 * it again. Resetting on every successful open would let a node that accepts
 * and then closes at once (4008, 4010, 1011) be hammered every few hundred
 * milliseconds, forever, by all its clients. The Python client's `Backoff`
 * follows the same rules.
 */
export class Backoff {
  /** Reconnection attempts since the last connection that lasted. */
  attempts = 0;
  #stableAfter;
  #step;
  #now;
  /** @type {number | null} */
  #openedAt = null;

  /**
   * @param {{stableAfter: number, step?: (attempt: number) => number, now?: () => number}} options
   *   `step` maps the attempt count to the backoff exponent (one per round of
   *   URLs); `now` is the clock, in ms
   */
  constructor({ stableAfter, step = (attempt) => attempt, now = () => performance.now() }) {
    this.#stableAfter = stableAfter;
    this.#step = step;
    this.#now = now;
  }

  /**
   * Milliseconds to wait before the next attempt, which it counts.
   * @param {number | null} closeCode how the previous connection ended
   * @param {{backoffInitial: number, backoffMax: number}} options
   * @param {() => number} [random]
   */
  delay(closeCode, options, random = Math.random) {
    const step = this.#step(this.attempts);
    this.attempts += 1;
    return reconnectDelay(step, closeCode, options, random);
  }

  /** A connection is open (its greeting read). */
  opened() {
    this.#openedAt = this.#now();
  }

  /** The connection ended: if it lasted, the next attempt starts from the initial delay. */
  closed() {
    if (this.#openedAt !== null && this.#now() - this.#openedAt >= this.#stableAfter) this.attempts = 0;
    this.#openedAt = null;
  }
}
