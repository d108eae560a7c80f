/**
 * Commands in flight, matched to their answers by request id.
 *
 * A command's reply echoes its request id in `data.entity_id`. Most commands
 * get one reply (SUBSCRIBED, UNSUBSCRIBED, PONG) or one ERROR. SUBSCRIBE is
 * the exception: the gateway answers one ERROR per refused topic (with
 * `details.topic`), then SUBSCRIBED. So a SUBSCRIBE is finished by its
 * SUBSCRIBED, by an ERROR that names no topic (the whole command failed), or
 * by as many topic ERRORs as it asked for topics.
 *
 * @module
 */

import { EventwireError } from './errors.js';

/**
 * @typedef {{payload: unknown, errors: EventwireError[]}} Answer
 * @typedef {{command: string, topicCount: number, answer: Answer,
 *            resolve: (answer: Answer) => void, reject: (error: Error) => void,
 *            timer: ReturnType<typeof setTimeout>}} Pending
 */

/** Request ids, and the promises waiting for their answers. */
export class Requests {
  #next = 1;
  /** @type {Map<string, Pending>} */
  #pending = new Map();

  get size() {
    return this.#pending.size;
  }

  /**
   * A new request id and the promise its answer resolves; rejects with
   * TIMEOUT after `timeout` ms.
   * @param {string} command
   * @param {{timeout: number, topicCount?: number}} options `topicCount` for SUBSCRIBE
   * @returns {{id: string, answer: Promise<Answer>}}
   */
  open(command, { timeout, topicCount = 0 }) {
    const id = `r${this.#next++}`;
    const answer = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#settle(id)?.reject(
          new EventwireError('TIMEOUT', `no answer to ${command} within ${timeout} ms`, { requestId: id }),
        );
      }, timeout);
      this.#pending.set(id, { command, topicCount, answer: { payload: null, errors: [] }, resolve, reject, timer });
    });
    return { id, answer };
  }

  /**
   * The command a request id belongs to, while it waits.
   * @param {string} id
   */
  commandOf(id) {
    return this.#pending.get(id)?.command;
  }

  /**
   * A system reply arrived; false when no request waits for it.
   * @param {string} id
   * @param {unknown} payload
   */
  reply(id, payload) {
    const pending = this.#settle(id);
    if (pending === undefined) return false;
    pending.answer.payload = payload;
    pending.resolve(pending.answer);
    return true;
  }

  /**
   * An ERROR arrived; false when it answers no request in flight.
   * @param {EventwireError} error
   */
  error(error) {
    const pending = this.#pending.get(error.requestId ?? '');
    if (pending === undefined) return false;
    const errors = pending.answer.errors;
    errors.push(error);
    const perTopic = error.topic !== undefined && pending.topicCount > 0;
    if (!perTopic || errors.length >= pending.topicCount) {
      this.#settle(error.requestId ?? '');
      pending.resolve(pending.answer);
    }
    return true;
  }

  /**
   * The connection is gone: every request in flight fails with `error`.
   * @param {Error} error
   */
  failAll(error) {
    for (const id of [...this.#pending.keys()]) this.#settle(id)?.reject(error);
  }

  /** Forget request `id` and stop its timer; the pending entry, if it was there. */
  #settle(id) {
    const pending = this.#pending.get(id);
    if (pending === undefined) return undefined;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    return pending;
  }
}
