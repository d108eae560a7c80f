/**
 * The client's inbound side: which subscriptions receive which topic, and
 * each topic's TopicStream. No I/O, never waits.
 *
 * The client feeds it the events and SUBSCRIBED replies it reads; the router
 * asks each topic's stream what is new and hands new events and gaps to the
 * callbacks it was built with. A topic's stream lives as long as some
 * subscription receives the topic: subscribing again later starts afresh
 * from the position SUBSCRIBED reports, as a first subscription does.
 *
 * @module
 */

import { TopicStream } from './streams.js';

/** @typedef {import('./errors.js').EventwireError} EventwireError */
/** @typedef {import('./streams.js').Gap} Gap */
/** @typedef {import('./streams.js').Position} Position */

/** One `client.subscribe()` call: a topic, its handlers, and a promise for its SUBSCRIBED. */
export class Subscription {
  #resolve;
  #reject;
  #settled = false;

  /**
   * @param {string} topic
   * @param {unknown} handlers checked by dispatch.checkHandlers
   * @param {((gap: Gap) => void) | undefined} onGap
   * @param {import('./versions.js').Versions | null} [versions] the versions it reads; null: as published
   */
  constructor(topic, handlers, onGap, versions = null) {
    this.topic = topic;
    this.handlers = handlers;
    this.onGap = onGap;
    this.versions = versions;
    this.active = true;
    /** @type {Promise<Position>} */
    this.ready = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.ready.catch(() => {}); // awaiting it is optional: never an unhandled rejection
  }

  /** The gateway accepted the topic. @param {Position} position */
  confirm(position) {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(position);
  }

  /** No more events; `ready`, if still waiting, rejects with `error`. @param {EventwireError} error */
  end(error) {
    this.active = false;
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(error);
  }
}

/** Topic → subscriptions, and topic → stream. */
export class Router {
  /** @type {Map<string, Set<Subscription>>} */
  #routes = new Map();
  /** @type {Map<string, TopicStream>} */
  #streams = new Map();
  /** Wildcard subscriptions (privileged connections): pattern → its matcher. @type {Map<string, RegExp>} */
  #patterns = new Map();
  #deliver;
  #gap;

  /**
   * @param {{deliver: (event: any, subscriptions: Subscription[]) => void,
   *          gap: (gap: Gap, subscriptions: Subscription[]) => void}} callbacks
   */
  constructor({ deliver, gap }) {
    this.#deliver = deliver;
    this.#gap = gap;
  }

  /** Topics some subscription receives. */
  get topics() {
    return [...this.#routes.keys()];
  }

  /** The last position delivered per subscribed topic. */
  get positions() {
    const positions = new Map();
    for (const [topic, stream] of this.#streams) {
      if (stream.position !== null) positions.set(topic, stream.position);
    }
    return positions;
  }

  /** Whether some subscription receives `topic`, directly or through a pattern. @param {string} topic */
  has(topic) {
    if (this.#routes.has(topic)) return true;
    for (const matcher of this.#patterns.values()) if (matcher.test(topic)) return true;
    return false;
  }

  /** @param {string} topic */
  subscriptionsOf(topic) {
    return [...(this.#routes.get(topic) ?? [])];
  }

  /** Every routed subscription. */
  all() {
    return [...this.#routes.values()].flatMap((subs) => [...subs]);
  }

  /** @param {string} topic */
  positionOf(topic) {
    return this.#streams.get(topic)?.position ?? null;
  }

  /**
   * Positions to recover from (SUBSCRIBE's `since`), for topics that have one.
   * @param {string[]} topics
   */
  since(topics) {
    /** @type {Record<string, Position>} */
    const since = {};
    for (const topic of topics) {
      const position = this.positionOf(topic);
      if (position !== null) since[topic] = position;
    }
    return since;
  }

  /**
   * Route `sub` its topic's events; true when nobody received the topic before.
   * @param {Subscription} sub
   */
  add(sub) {
    const routes = this.#routes.get(sub.topic);
    if (routes !== undefined) {
      routes.add(sub);
      return false;
    }
    this.#routes.set(sub.topic, new Set([sub]));
    if (isPattern(sub.topic)) this.#patterns.set(sub.topic, patternRegExp(sub.topic));
    else this.#streamOf(sub.topic).subscribing({ resume: false });
    return true;
  }

  /**
   * Stop routing `sub`; true when nobody receives its topic any more.
   * @param {Subscription} sub
   */
  remove(sub) {
    const routes = this.#routes.get(sub.topic);
    if (routes === undefined || !routes.delete(sub) || routes.size > 0) return false;
    this.#routes.delete(sub.topic);
    this.#streams.delete(sub.topic); // a new subscription starts afresh from its SUBSCRIBED
    this.#patterns.delete(sub.topic);
    return true;
  }

  /** Forget every route; the subscriptions that had one. */
  clear() {
    const subs = this.all();
    this.#routes.clear();
    this.#streams.clear();
    this.#patterns.clear();
    return subs;
  }

  /** A new connection is about to resubscribe every topic: missed events become gaps. */
  resuming() {
    for (const topic of this.#routes.keys()) {
      if (!this.#patterns.has(topic)) this.#streamOf(topic).subscribing({ resume: true });
    }
    return this.topics;
  }

  /** SUBSCRIBEs in flight will never be answered: release what their topics held. */
  connectionLost() {
    for (const [topic, stream] of this.#streams) {
      if (stream.awaiting) this.#release(topic, stream.abandon());
    }
  }

  /**
   * SUBSCRIBED: each topic's position sets its baseline and releases held
   * events. Returns the topics it confirmed, with their positions.
   * @param {any} payload
   * @returns {Array<[string, Position | null]>}
   */
  subscribed(payload) {
    const topics = Array.isArray(payload?.topics) ? payload.topics : [];
    const positions = payload?.positions ?? {};
    const recovered = payload?.recovered ?? {};
    /** @type {Array<[string, Position | null]>} */
    const confirmed = [];
    for (const topic of topics) {
      if (this.#patterns.has(topic)) {
        confirmed.push([topic, null]); // a pattern has no position
        continue;
      }
      const stream = this.#streams.get(topic);
      if (stream === undefined || !this.#routes.has(topic)) continue;
      const { seq, epoch } = positions[topic] ?? {};
      const known = Number.isSafeInteger(seq) && typeof epoch === 'string';
      const answer = typeof recovered[topic] === 'boolean' ? recovered[topic] : undefined;
      this.#release(topic, known ? stream.subscribed(seq, epoch, answer) : stream.abandon());
      confirmed.push([topic, stream.position]);
    }
    return confirmed;
  }

  /**
   * RECOVERY_FAILED: the topic's missed events will not come; report them lost.
   * @param {any} payload
   */
  recoveryFailed(payload) {
    const topic = payload?.topic;
    const stream = typeof topic === 'string' ? this.#streams.get(topic) : undefined;
    if (stream === undefined || stream.awaiting) return;
    const { seq, epoch } = payload?.position ?? {};
    if (!Number.isSafeInteger(seq) || typeof epoch !== 'string') return;
    this.#release(topic, { events: [], gaps: stream.recoveryFailed(seq, epoch) });
  }

  /**
   * One event read from the connection.
   * @param {{topic: string, seq?: number}} event
   */
  event(event) {
    const stream = this.#streams.get(event.topic);
    if (stream !== undefined && this.#routes.has(event.topic)) this.#release(event.topic, stream.receive(event));
    if (this.#patterns.size === 0) return;
    // A pattern spans topics and has no position of its own: its events go
    // straight through (the gateway sends each event once per connection).
    const watchers = [];
    for (const [pattern, matcher] of this.#patterns) {
      if (matcher.test(event.topic)) watchers.push(...(this.#routes.get(pattern) ?? []));
    }
    if (watchers.length > 0) this.#deliver(event, watchers);
  }

  /** @param {string} topic */
  #streamOf(topic) {
    let stream = this.#streams.get(topic);
    if (stream === undefined) this.#streams.set(topic, (stream = new TopicStream(topic)));
    return stream;
  }

  /** Gaps first, then events, to the topic's subscriptions of the moment. */
  #release(topic, { events, gaps }) {
    for (const gap of gaps) this.#gap(gap, this.subscriptionsOf(topic));
    for (const event of events) this.#deliver(event, this.subscriptionsOf(topic));
  }
}

/** @param {string} name */
function isPattern(name) {
  return name.split(':').includes('*');
}

/**
 * The topics a pattern matches: `*` stands for one or more whole segments.
 * @param {string} pattern
 */
export function patternRegExp(pattern) {
  const segments = pattern
    .split(':')
    .map((segment) => (segment === '*' ? '[^:]+(?::[^:]+)*' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${segments.join(':')}$`);
}
