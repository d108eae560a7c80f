/**
 * Who is on a topic, kept current: the members of a chat room or the
 * viewers of a document in a few lines.
 *
 *     const room = livePresence(client, 'room:lobby', {
 *       onChange: (users) => renderMembers(users.map((user) => user.user_id)),
 *     });
 *
 * The gateway publishes USER_JOINED when a user's first connection to the
 * topic arrives and USER_LEFT when their last one goes (docs/presence.md).
 * The last of them says whether the user is there, but the same one may
 * come twice, so they are applied as set operations, never counted:
 *
 * - once the gateway confirmed the subscription, PRESENCE fills the set;
 *   events that arrive while it is on its way are applied over its answer;
 * - USER_JOINED adds the user, USER_LEFT removes them; a repeat changes nothing;
 * - a gap (a reconnection that could not recover, or any missed event): PRESENCE again;
 * - a PRESENCE whose connection dropped is asked again on the next connection.
 *
 * @module
 */

import { invoke } from './dispatch.js';
import { EventwireError, isObject } from './errors.js';

/** @typedef {import('./eventwire.js').PresentUser} PresentUser */

/**
 * Keep the set of users on `topic` current. See the module documentation.
 * @param {import('./client.js').Client} client
 * @param {string} topic
 * @param {import('./eventwire.js').LivePresenceOptions} [options]
 */
export function livePresence(client, topic, options) {
  return new LivePresence(client, topic, options);
}

/** The users on a topic, and a listener of their changes. */
export class LivePresence {
  /** @type {Map<string, PresentUser>} by tenant and user id: a user is a user id within a tenant */
  #present = new Map();
  /** @type {readonly PresentUser[] | null} `users` until the next change */
  #list = null;
  #client;
  #versions;
  #onChange;
  #onError;
  /** @type {any[] | null} events held while a PRESENCE is on its way */
  #held = null;
  /** The number of the latest PRESENCE: an older answer is dropped. */
  #asked = 0;
  /** @type {Promise<void>} the latest refresh */
  #latest = Promise.resolve();
  #subscription;
  #closed = false;

  /**
   * @param {import('./client.js').Client} client
   * @param {string} topic
   * @param {import('./eventwire.js').LivePresenceOptions} [options]
   */
  constructor(client, topic, options = {}) {
    const { onChange, onError, versions } = options;
    if (onChange !== undefined && typeof onChange !== 'function') throw new TypeError('onChange: expected a function');
    this.topic = topic;
    this.#client = client;
    this.#versions = versions;
    this.#onChange = onChange;
    this.#onError = onError;
    this.#subscription = this.#subscribe();
    /** @type {Promise<void>} the first PRESENCE applied; rejects if it or the subscription failed */
    this.ready = this.refresh();
    this.ready.catch(() => {});
  }

  /** The users present, sorted by `user_id`; a new frozen array after each change. */
  get users() {
    this.#list ??= Object.freeze([...this.#present.values()].sort(byUser));
    return this.#list;
  }

  /** How many users are present (anonymous connections are never listed). */
  get count() {
    return this.#present.size;
  }

  /** Ask PRESENCE again; resolves once its answer is applied. */
  refresh() {
    if (this.#closed) return Promise.reject(closedError());
    const asked = ++this.#asked;
    this.#held ??= [];
    this.#latest = this.#fetch(asked);
    return this.#latest;
  }

  /** Unsubscribe and stop; `users` keeps its last state. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = null;
    this.#subscription();
  }

  #subscribe() {
    const handler = (/** @type {any} */ event) => this.#event(event);
    return this.#client.subscribe(
      this.topic,
      { USER_JOINED: handler, USER_LEFT: handler },
      { onGap: () => this.refresh().catch(() => {}), versions: this.#versions }, // failures are reported
    );
  }

  #event(event) {
    if (this.#closed) return;
    if (this.#held !== null) this.#held.push(event);
    else if (this.#apply(event)) this.#emit(event);
  }

  // -- asking who is there ---------------------------------------------------------

  /** @param {number} asked */
  async #fetch(asked) {
    let state;
    try {
      state = await this.#ask(asked);
    } catch (error) {
      if (this.#closed) throw error;
      if (asked !== this.#asked) return this.#latest;
      for (const event of this.#takeHeld()) if (this.#apply(event)) this.#emit(event); // the set stays as events make it
      this.#report(error);
      throw error;
    }
    if (this.#closed) throw closedError();
    if (asked !== this.#asked) return this.#latest; // a newer PRESENCE is on its way
    this.#present.clear();
    for (const entry of Array.isArray(state?.users) ? state.users : []) {
      if (isObject(entry)) this.#add(presentUser(entry.user_id, entry.tenant_id));
    }
    this.#list = null;
    for (const event of this.#takeHeld()) this.#apply(event);
    this.#emit(null);
  }

  /**
   * PRESENCE, once the gateway has the topic. If the connection drops first,
   * a fresh subscription waits for the topic on the next connection, and
   * PRESENCE is asked there. A refused subscription closes this.
   * @param {number} asked
   */
  async #ask(asked) {
    for (;;) {
      try {
        await this.#subscription.ready;
      } catch (refused) {
        this.close(); // the client reported the refusal: this can never be current
        throw refused;
      }
      if (asked !== this.#asked) return null; // superseded while waiting
      try {
        return await this.#client.presence(this.topic);
      } catch (error) {
        const lost = error?.code === 'CONNECTION_LOST' || error?.code === 'NOT_CONNECTED';
        if (!lost || this.#client.state === 'closed' || this.#closed || asked !== this.#asked) throw error;
      }
      const previous = this.#subscription;
      this.#subscription = this.#subscribe(); // taken before the old one goes: the topic stays subscribed
      previous();
    }
  }

  /** The events held while PRESENCE was on its way; from now on they are applied as they come. */
  #takeHeld() {
    const held = this.#held ?? [];
    this.#held = null;
    return held;
  }

  // -- the set -----------------------------------------------------------------------

  /** Apply USER_JOINED or USER_LEFT (`data.entity_id` is the user); whether the set changed. */
  #apply(event) {
    const data = isObject(event?.data) ? event.data : {};
    const user = presentUser(data.entity_id, data.tenant_id);
    if (user === null) return false;
    const changed = event.event === 'USER_JOINED' ? this.#add(user) : this.#present.delete(keyOf(user));
    if (changed) this.#list = null;
    return changed;
  }

  /** @param {PresentUser | null} user */
  #add(user) {
    if (user === null || this.#present.has(keyOf(user))) return false;
    this.#present.set(keyOf(user), user);
    return true;
  }

  #emit(event) {
    if (this.#onChange === undefined || this.#closed) return;
    invoke(this.#onChange, [this.users, event], (error) => this.#report(error), 'onChange');
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
 * `{user_id, tenant_id?}`, or null when `id` names nobody.
 * @param {unknown} id
 * @param {unknown} tenant
 * @returns {PresentUser | null}
 */
function presentUser(id, tenant) {
  if (typeof id !== 'string' || id === '') return null;
  return Object.freeze(typeof tenant === 'string' ? { user_id: id, tenant_id: tenant } : { user_id: id });
}

/** @param {PresentUser} user */
function keyOf(user) {
  return JSON.stringify([user.tenant_id ?? null, user.user_id]);
}

/** @param {PresentUser} a @param {PresentUser} b */
function byUser(a, b) {
  return compare(a.user_id, b.user_id) || compare(a.tenant_id ?? '', b.tenant_id ?? '');
}

/** @param {string} a @param {string} b */
function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function closedError() {
  return new EventwireError('CLOSED', 'the live presence was closed');
}
