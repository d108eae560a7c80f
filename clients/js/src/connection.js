/**
 * One WebSocket to a gateway: opening it, whose first frame must be the
 * CONNECTED greeting (docs/protocol.md, "Connecting"), and watching it until
 * it ends, however it ends: a close event from the gateway or the network,
 * or the client giving up on it.
 *
 * @module
 */

import { EventwireError } from './errors.js';
import { ERROR_TOPIC, SYSTEM_TOPIC, decodeFrame } from './frames.js';

/** @typedef {import('./eventwire.js').WebSocketLike} WebSocketLike */
/**
 * @typedef {object} Callbacks
 * @property {(data: any) => void} onData each frame, from the one after CONNECTED on
 * @property {(code: number, reason: string) => void} onEnd once, when the connection ends
 */

/** An open connection whose CONNECTED greeting has been read. */
export class Connection {
  #ws;
  #end;
  ended = false;

  /**
   * @param {WebSocketLike} ws
   * @param {any} hello the CONNECTED frame
   * @param {Callbacks} callbacks
   */
  constructor(ws, hello, { onData, onEnd }) {
    this.#ws = ws;
    this.hello = hello;
    /** @type {Promise<{code: number, reason: string}>} how it ended */
    this.closed = new Promise((resolve) => {
      this.#end = (/** @type {number} */ code, /** @type {string} */ reason) => {
        if (this.ended) return;
        this.ended = true;
        ws.onmessage = ws.onclose = ws.onerror = null;
        onEnd(code, reason);
        resolve({ code, reason });
      };
    });
    ws.onmessage = (message) => onData(message.data);
    ws.onclose = (event) => this.#end(event.code, event.reason);
    ws.onerror = () => {}; // the close event follows, with the code
  }

  /** @param {string} text */
  send(text) {
    this.#ws.send(text);
  }

  /**
   * End it here and now, without waiting for the closing handshake: the
   * gateway is told 1000, the client is told `code`.
   * @param {number} code
   * @param {string} reason
   */
  end(code, reason) {
    if (this.ended) return;
    closeQuietly(this.#ws, 1000, reason);
    this.#end(code, reason);
  }
}

/**
 * Open a WebSocket to `url` and wait for its CONNECTED greeting. `opened`
 * rejects with UNREACHABLE on any failure, `abort()` included. When the
 * gateway refused the connection (an ERROR instead of CONNECTED, e.g. a bad
 * token, then a close), the error carries that close code as `closeCode` and
 * the gateway's ERROR as `cause`: the caller decides from the code whether
 * to try again.
 *
 * @param {new (url: string) => WebSocketLike} WebSocket
 * @param {string} url
 * @param {{timeout: number, label: string} & Callbacks} options `label` names
 *   the gateway in errors (the URL without its token)
 * @returns {{opened: Promise<Connection>, abort: () => void}}
 */
export function openConnection(WebSocket, url, { timeout, label, onData, onEnd }) {
  let abort = () => {};
  const opened = new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const timer = setTimeout(() => fail(`no CONNECTED greeting within ${timeout} ms`), timeout);
    const stop = () => {
      clearTimeout(timer);
      ws.onmessage = ws.onclose = ws.onerror = null;
      abort = () => {}; // settled: too late to abort
    };
    const fail = (/** @type {string} */ why, /** @type {unknown} */ cause = undefined) => {
      stop();
      closeQuietly(ws, 1000, 'connection attempt abandoned');
      reject(new EventwireError('UNREACHABLE', `cannot connect to ${label}: ${why}`, { cause }));
    };
    /** @type {EventwireError | null} the gateway's ERROR in place of CONNECTED; its close follows */
    let refusal = null;
    const refused = (/** @type {number} */ code) => {
      stop();
      const why = `${refusal?.code}: ${refusal?.message}`;
      const message = `cannot connect to ${label}: the gateway refused the connection (${why}) and closed with ${code}`;
      reject(new EventwireError('UNREACHABLE', message, { closeCode: code, cause: refusal }));
    };
    abort = () => fail('the client was closed');
    // A close event should follow an error, but Node's built-in WebSocket
    // (undici) has been seen to fire only the error for a refused handshake.
    ws.onerror = () => {
      if (refusal === null) fail('WebSocket error before CONNECTED'); // else its close says how
    };
    ws.onclose = (event) => {
      if (refusal !== null) refused(event.code);
      else fail(`closed with ${event.code} before CONNECTED`);
    };
    ws.onmessage = (message) => {
      if (refusal !== null) return; // nothing counts after a refusal but the close
      const first = firstFrame(message.data);
      if ('refusal' in first) {
        refusal = first.refusal; // the gateway closes next: wait for its code
      } else if ('problem' in first) {
        fail(first.problem.message, first.problem);
      } else {
        stop();
        resolve(new Connection(ws, first.hello, { onData, onEnd })); // handlers set before any later frame
      }
    };
  });
  return { opened, abort: () => abort() };
}

/**
 * What the first frame says: `{hello}`, the CONNECTED greeting; `{refusal}`,
 * the gateway's ERROR in its place; or `{problem}`, why it is neither.
 * @returns {{hello: any} | {refusal: EventwireError} | {problem: EventwireError}}
 */
function firstFrame(data) {
  let frame;
  try {
    frame = decodeFrame(data);
  } catch (problem) {
    return { problem };
  }
  const { topic, event, data: body } = frame;
  if (topic === SYSTEM_TOPIC && event === 'CONNECTED') return { hello: frame };
  if (topic === ERROR_TOPIC) return { refusal: EventwireError.fromPayload(body.payload, body.entity_id) };
  return { problem: new EventwireError('INVALID_FRAME', `expected system CONNECTED first, got ${topic} ${event}`) };
}

/**
 * Close `ws`, whatever its state.
 * @param {WebSocketLike} ws
 * @param {number} code
 * @param {string} reason at most 123 bytes on the wire
 */
export function closeQuietly(ws, code, reason) {
  try {
    ws.close(code, reason.slice(0, 120));
  } catch {
    // already closing, or a socket that refuses the code: either way it is going
  }
}
