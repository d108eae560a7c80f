/**
 * A topic's entities as a local Map, kept in sync by its events: a UI stays
 * current in a few lines.
 *
 *     const gifts = liveCollection(client, 'gift-list:123', {
 *       fetch: (id) => id ? api.gift(id) : api.gifts('123'),
 *     });
 *     gifts.onChange((items) => render([...items.values()]));
 *
 * Events are applied one at a time, in order, by one queue; a task that
 * needs the back end (`fetch`) holds the events behind it until it is done.
 * That is what keeps the Map right: a fetched state is at least as new as
 * every event before it, and replaying later events over it converges,
 * because each event sets, patches or deletes whole fields.
 *
 * - first, once the gateway confirmed the subscription: `fetch()` fills the Map;
 * - ADDED sets the item; UPDATED applies its payload as an RFC 7396 merge
 *   patch (`updates: 'merge'`, the default) or replaces the item
 *   (`updates: 'replace'`); DELETED deletes it; STATUS_CHANGED sets the
 *   status field to `new_status` and copies the payload's other fields
 *   except `old_status`;
 * - a reference-only event (payload null), a patch or a status change for an
 *   item the Map does not have: `fetch(entityId)`;
 * - a gap (missed events, lost history): `fetch()` again; it supersedes the
 *   events still queued.
 *
 * @module
 */

import { invoke } from './dispatch.js';
import { EventwireError, isObject } from './errors.js';
import { mergePatch } from './merge-patch.js';

const CHANGED = 'changed';
const UNCHANGED = 'unchanged';
const FETCH = 'fetch';

/**
 * Keep a Map of `topic`'s entities in sync. See the module documentation.
 * @param {import('./client.js').Client} client
 * @param {string} topic
 * @param {import('./eventwire.js').LiveCollectionOptions<any>} options
 */
export function liveCollection(client, topic, options) {
  return new LiveCollection(client, topic, options);
}

/** A Map of a topic's entities by `data.entity_id`, and listeners of its changes. */
export class LiveCollection {
  /** @type {Map<string, any>} the items by entity id; replaced items are new objects */
  items = new Map();
  #fetch;
  #keyOf;
  #updates;
  #statusField;
  #handlers;
  #onError;
  /** @type {Set<Function>} */
  #listeners = new Set();
  /**
   * Tasks in order: `{event}` to apply, or `{refetch: true, initial?, waiters}`
   * to fetch everything (`waiters` are settled when it is done).
   * @type {any[]}
   */
  #queue = [];
  #pumping = false;
  #closed = false;
  #unsubscribe;

  /**
   * @param {import('./client.js').Client} client
   * @param {string} topic
   * @param {import('./eventwire.js').LiveCollectionOptions<any>} options
   */
  constructor(client, topic, options) {
    const {
      fetch,
      key = 'id',
      updates = 'merge',
      statusField = 'status',
      handlers = {},
      onChange,
      onError,
      versions,
    } = options ?? {};
    if (typeof fetch !== 'function') throw new TypeError('fetch: expected a function (entityId?) => items or item');
    if (updates !== 'merge' && updates !== 'replace') throw new TypeError("updates: expected 'merge' or 'replace'");
    this.topic = topic;
    this.#fetch = fetch;
    this.#keyOf = keyFunction(key);
    this.#updates = updates;
    this.#statusField = statusField;
    this.#handlers = handlers;
    this.#onError = onError;
    if (onChange !== undefined) this.#listeners.add(onChange);
    this.#unsubscribe = client.subscribe(topic, (event) => this.#push({ event }), {
      onGap: () => this.#refetchLater(),
      versions,
    });
    const first = { refetch: true, initial: true, waiters: [] };
    /** @type {Promise<void>} the first fetch applied; rejects if it or the subscription failed */
    this.ready = new Promise((resolve, reject) => first.waiters.push({ resolve, reject }));
    this.ready.catch(() => {});
    this.#push(first);
  }

  /**
   * Call `listener(items, event)` after each change; `event` is null after a
   * full fetch. Returns a function that removes the listener.
   * @param {(items: Map<string, any>, event: any) => void} listener
   */
  onChange(listener) {
    if (typeof listener !== 'function') throw new TypeError('listener: expected a function');
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Fetch everything again (after the events already queued); resolves once applied. */
  refresh() {
    const task = this.#refetchLater();
    return new Promise((resolve, reject) => task.waiters.push({ resolve, reject }));
  }

  /** Unsubscribe and stop; the Map keeps its last state. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    const closed = new EventwireError('CLOSED', 'the live collection was closed');
    for (const task of this.#queue) for (const waiter of task.waiters ?? []) waiter.reject(closed);
    this.#queue = [];
    this.#listeners.clear();
  }

  // -- the queue ---------------------------------------------------------------

  #push(task) {
    if (this.#closed) return;
    this.#queue.push(task);
    this.#pump();
  }

  /** A refetch supersedes every task queued before it: the fetched state includes their events. */
  #refetchLater() {
    const waiters = this.#queue.flatMap((task) => task.waiters ?? []);
    const task = { refetch: true, waiters };
    this.#queue = [task];
    this.#pump();
    return task;
  }

  async #pump() {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) await this.#run(this.#queue.shift());
    } finally {
      this.#pumping = false;
    }
  }

  async #run(task) {
    try {
      if ('event' in task) await this.#apply(task.event);
      else await this.#refetch(task);
    } catch (bug) {
      this.#report(
        new EventwireError('INTERNAL_ERROR', `live collection of ${this.topic} failed: ${bug}`, { cause: bug }),
      );
    }
  }

  // -- fetching ----------------------------------------------------------------

  async #refetch(task) {
    try {
      if (task.initial) await this.#unsubscribe.ready;
    } catch (refused) {
      // the client reported the refusal already; this collection can never be in sync
      for (const waiter of task.waiters) waiter.reject(refused);
      this.close();
      return;
    }
    try {
      this.#replaceAll(await this.#fetch());
    } catch (cause) {
      const error = fetchFailed(cause);
      this.#report(error);
      for (const waiter of task.waiters) waiter.reject(error);
      return;
    }
    this.#emit(null);
    for (const waiter of task.waiters) waiter.resolve();
  }

  async #fetchOne(id, event) {
    try {
      this.#applyFetched(id, await this.#fetch(id));
    } catch (cause) {
      this.#report(fetchFailed(cause, id));
      return;
    }
    this.#emit(event);
  }

  /** What `fetch(id)` returned: the item, nothing (it is gone), or everything (`fetch` ignored the id). */
  #applyFetched(id, result) {
    if (result instanceof Map || Array.isArray(result)) this.#replaceAll(result);
    else if (result === null || result === undefined) this.items.delete(id);
    else this.items.set(id, result);
  }

  /** @param {unknown} result what `fetch()` returned: an array, a Map, or an object by id */
  #replaceAll(result) {
    const entries = this.#entriesOf(result);
    this.items.clear();
    for (const [id, item] of entries) this.items.set(id, item);
  }

  #entriesOf(result) {
    if (result instanceof Map) return [...result].map(([id, item]) => [String(id), item]);
    if (Array.isArray(result)) return result.map((item) => [this.#keyOf(item), item]);
    if (isObject(result)) return Object.entries(result);
    throw new TypeError(`fetch() returned ${typeof result}: expected an array, a Map or an object of items by id`);
  }

  // -- events ------------------------------------------------------------------

  async #apply(event) {
    const custom = Object.hasOwn(this.#handlers, event.event) ? this.#handlers[event.event] : undefined;
    if (custom !== undefined) {
      invoke(custom, [this.items, event], (error) => this.#report(error), `handlers.${event.event}`);
      this.#emit(event);
      return;
    }
    const outcome = this.#reduce(event);
    if (outcome === FETCH) await this.#fetchOne(event.data.entity_id, event);
    else if (outcome === CHANGED) this.#emit(event);
  }

  /** Apply one built-in event to the Map: CHANGED, UNCHANGED, or FETCH when it cannot. */
  #reduce({ event: type, data }) {
    const { items } = this;
    const id = data.entity_id;
    const payload = data.payload ?? null; // always present on the wire; tolerate its absence
    switch (type) {
      case 'ADDED':
        if (payload === null) return FETCH;
        items.set(id, payload);
        return CHANGED;
      case 'UPDATED':
        if (payload === null) return FETCH;
        if (this.#updates === 'replace') items.set(id, payload);
        else if (items.has(id)) items.set(id, mergePatch(items.get(id), payload));
        else return FETCH; // a patch needs the item it patches
        return CHANGED;
      case 'DELETED':
        return items.delete(id) ? CHANGED : UNCHANGED;
      case 'STATUS_CHANGED':
        if (payload === null || !items.has(id)) return FETCH;
        items.set(id, withStatus(items.get(id), payload, this.#statusField));
        return CHANGED;
      default:
        return UNCHANGED;
    }
  }

  #emit(event) {
    const report = (error) => this.#report(error);
    for (const listener of [...this.#listeners]) invoke(listener, [this.items, event], report, 'onChange');
  }

  #report(error) {
    if (typeof this.#onError === 'function') {
      invoke(this.#onError, [error], (failure) => console.error('eventwire: onError failed', failure.cause));
    } else {
      console.warn(`eventwire: ${error.code}: ${error.message}`);
    }
  }
}

/**
 * The item after a STATUS_CHANGED: the seed's payload is
 * `{id, old_status, new_status, ...extra}`; `new_status` goes to `field`,
 * the extra fields (such as `purchased_by`) are copied, `old_status` is not.
 * @param {unknown} item
 * @param {unknown} payload
 * @param {string} field
 */
export function withStatus(item, payload, field) {
  const { old_status: _old, new_status: status, ...extra } = isObject(payload) ? payload : {};
  const next = { ...(isObject(item) ? item : {}), ...extra };
  if (status !== undefined)
    Object.defineProperty(next, field, { value: status, enumerable: true, writable: true, configurable: true });
  return next;
}

/** @param {string | ((item: any) => string | number)} key */
function keyFunction(key) {
  if (typeof key === 'function') return (item) => String(key(item));
  if (typeof key !== 'string') throw new TypeError('key: expected a property name or a function');
  return (item) => {
    const value = isObject(item) ? item[key] : undefined;
    if (value === undefined || value === null) throw new TypeError(`fetch() returned an item without '${key}'`);
    return String(value);
  };
}

function fetchFailed(cause, id) {
  const what = id === undefined ? 'fetch()' : `fetch(${JSON.stringify(id)})`;
  return new EventwireError('FETCH_FAILED', `${what} failed: ${cause?.message ?? cause}`, { cause });
}
