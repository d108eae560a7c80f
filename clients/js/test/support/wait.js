/** Bounded waiting: every wait in the tests ends, with a message that says for what. */

/**
 * `promise`, or a rejection after `ms` naming `what`.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} what
 * @returns {Promise<T>}
 */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Collects what a callback is called with, and waits for it.
 *
 *     const inbox = new Inbox();
 *     client.subscribe(topic, inbox.push);
 *     const [event] = await inbox.take(1);
 */
export class Inbox {
  /** @type {any[]} */
  items = [];
  #waiters = new Set();

  /** The callback to hand out; bound. */
  push = (item) => {
    this.items.push(item);
    for (const waiter of [...this.#waiters]) waiter();
  };

  /**
   * Wait until `count` items have arrived in all; resolves with the first `count`.
   * @param {number} count
   * @param {number} [ms]
   */
  take(count, ms = 3000) {
    return this.until((items) => items.length >= count, ms, `${count} items`).then((items) => items.slice(0, count));
  }

  /**
   * Wait until `predicate(items)` holds; resolves with every item so far.
   * @param {(items: any[]) => boolean} predicate
   * @param {number} [ms]
   * @param {string} [what]
   */
  until(predicate, ms = 3000, what = 'a condition') {
    const done = new Promise((resolve) => {
      const check = () => {
        if (!predicate(this.items)) return;
        this.#waiters.delete(check);
        resolve(this.items);
      };
      this.#waiters.add(check);
      check();
    });
    return withTimeout(done, ms, `${what}; got ${JSON.stringify(this.items).slice(0, 800)}`);
  }
}
