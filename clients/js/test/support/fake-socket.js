/**
 * A scripted WebSocket, to drive the client with no network: the test plays
 * the gateway (`greet`, `send`, `closeFromServer`) and reads what the client
 * sent (`sent`, `nextCommand`).
 */

import { withTimeout } from './wait.js';

/**
 * A fresh WebSocket class with its own list of sockets.
 * @returns {typeof FakeSocket & {sockets: FakeSocket[], next: (ms?: number) => Promise<FakeSocket>}}
 */
export function fakeSocketClass() {
  const sockets = [];
  const waiters = [];
  class Socket extends FakeSocket {
    static sockets = sockets;

    /** The socket after the ones already taken by `next()`. */
    static next(ms = 2000) {
      const index = waiters.length;
      const found = new Promise((resolve) => waiters.push({ index, resolve }));
      Socket.#notify();
      return withTimeout(found, ms, `WebSocket #${index + 1} to be opened`);
    }

    static #notify() {
      for (const waiter of waiters) if (sockets[waiter.index]) waiter.resolve(sockets[waiter.index]);
    }

    constructor(url) {
      super(url);
      sockets.push(this);
      Socket.#notify();
    }
  }
  return Socket;
}

export class FakeSocket {
  /** @type {any[]} every frame the client sent, decoded */
  sent = [];
  readyState = 0;
  onmessage = null;
  onclose = null;
  onerror = null;
  #commandWaiters = [];
  #read = 0;

  constructor(url) {
    this.url = url;
  }

  // -- the client's side -------------------------------------------------------

  send(text) {
    if (this.readyState !== 1) throw new Error(`send() on a socket in state ${this.readyState}`);
    this.sent.push(JSON.parse(text));
    for (const wake of this.#commandWaiters.splice(0)) wake();
  }

  close(code = 1000, reason = '') {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    this.closedWith = { code, reason };
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  // -- the gateway's side ------------------------------------------------------

  /** Open, and send CONNECTED. */
  greet({ heartbeatInterval = 25 } = {}) {
    this.readyState = 1;
    this.deliver({
      topic: 'system',
      event: 'CONNECTED',
      data: { entity_id: 's1', payload: { session_id: 's1', protocol: 1, heartbeat_interval: heartbeatInterval } },
    });
  }

  /** Deliver one frame to the client. */
  deliver(frame) {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }

  /** The next command the client sends (one not returned before). */
  nextCommand(ms = 2000) {
    const found = new Promise((resolve) => {
      const check = () => {
        if (this.#read < this.sent.length) resolve(this.sent[this.#read++]);
        else this.#commandWaiters.push(check);
      };
      check();
    });
    return withTimeout(found, ms, 'a command from the client');
  }

  /** Answer a SUBSCRIBE with SUBSCRIBED at the given positions `{topic: [seq, epoch]}`. */
  subscribed(command, positions, recovered) {
    const payload = { topics: Object.keys(positions), positions: {} };
    if (recovered !== undefined) payload.recovered = recovered;
    for (const [topic, [seq, epoch]] of Object.entries(positions)) payload.positions[topic] = { seq, epoch };
    this.deliver({ topic: 'system', event: 'SUBSCRIBED', data: { entity_id: command.data.entity_id, payload } });
  }

  /** An event of `topic` at `seq`. */
  event(topic, seq, event = 'UPDATED', extra = {}) {
    this.deliver({ topic, event, data: { entity_id: `e${seq}`, payload: { seq }, timestamp: 'T' }, seq, ...extra });
  }

  /** The gateway closes the connection with `code`. */
  closeFromServer(code, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}
