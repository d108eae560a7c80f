/**
 * The gateway URLs a client may use, and the one it uses now. No I/O.
 *
 * Several URLs name several nodes of one deployment (sharing a broker), for
 * clients without a load balancer in front of them. Each `advance()` moves
 * to the next URL, round robin, so a dead node costs one attempt, not a
 * growing backoff: `backoffStep` grows once per round of the list. The
 * Python client's `Endpoints` follows the same rules.
 *
 * @module
 */

import { wsUrl } from './frames.js';

/** @typedef {string | {href: string}} UrlLike */

export class Endpoints {
  #index = 0;

  /** @param {UrlLike | readonly UrlLike[]} urls one URL, or a non-empty list */
  constructor(urls) {
    const listed = Array.isArray(urls) ? urls : [urls];
    if (listed.length === 0) throw new TypeError('url: give at least one gateway URL');
    /** @type {readonly string[]} every WebSocket URL, in the order given */
    this.urls = Object.freeze(listed.map((url) => wsUrl(url)));
  }

  /** The URL in use, or tried last. */
  get current() {
    return this.urls[this.#index];
  }

  /** Move to the next URL (the same one when there is only one) and return it. */
  advance() {
    this.#index = (this.#index + 1) % this.urls.length;
    return this.current;
  }

  /**
   * The backoff exponent of connection attempt `attempt` (0-based, counting
   * consecutive failures): one more per round of URLs.
   * @param {number} attempt
   */
  backoffStep(attempt) {
    return Math.floor(attempt / this.urls.length);
  }
}
