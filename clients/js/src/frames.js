/**
 * Frames on the wire (docs/protocol.md, "Frames" and "Commands"): building
 * commands, reading what the gateway sends, and the WebSocket URL. No I/O.
 *
 * @module
 */

import { EventwireError, isObject } from './errors.js';

export const SYSTEM_TOPIC = 'system';
export const ERROR_TOPIC = 'error';

/** Topics per SUBSCRIBE: the protocol allows 1 to 1000. */
export const MAX_TOPICS_PER_COMMAND = 1000;

const decoder = new TextDecoder();

/**
 * A command frame: topic `system`, the command as `event`, the request id as
 * `data.entity_id`, the arguments as `data.payload`.
 * @param {string} command
 * @param {string} requestId
 * @param {unknown} [payload]
 */
export function commandFrame(command, requestId, payload = null) {
  return JSON.stringify({
    topic: SYSTEM_TOPIC,
    event: command,
    data: { entity_id: requestId, payload },
  });
}

/**
 * The SUBSCRIBE payload; `since` (positions to recover from) and `versions`
 * (the event versions read) only when given.
 * @param {string[]} topics
 * @param {Record<string, {seq: number, epoch: string}> | null} [since]
 * @param {Readonly<Record<string, readonly number[]>> | null} [versions]
 */
export function subscribePayload(topics, since = null, versions = null) {
  /** @type {{topics: string[], since?: object, versions?: object}} */
  const payload = { topics };
  if (since && Object.keys(since).length > 0) payload.since = since;
  if (versions !== null) payload.versions = versions;
  return payload;
}

/**
 * One inbound frame as an envelope; throws EventwireError INVALID_FRAME when
 * it is not one. Text, or binary holding the same UTF-8 JSON.
 * @param {string | ArrayBuffer | ArrayBufferView} data
 */
export function decodeFrame(data) {
  let frame;
  try {
    frame = JSON.parse(typeof data === 'string' ? data : decoder.decode(data));
  } catch (cause) {
    throw new EventwireError('INVALID_FRAME', `the gateway sent a frame that is not JSON`, { cause });
  }
  const problem = envelopeProblem(frame);
  if (problem !== null) {
    throw new EventwireError('INVALID_FRAME', `the gateway sent a frame that is not an envelope: ${problem}`);
  }
  return frame;
}

/** What is wrong with `frame` as an envelope, or null. */
function envelopeProblem(frame) {
  if (!isObject(frame)) return 'not an object';
  if (typeof frame.topic !== 'string') return 'topic: expected a string';
  if (typeof frame.event !== 'string') return 'event: expected a string';
  if (!isObject(frame.data)) return 'data: expected an object';
  if (typeof frame.data.entity_id !== 'string') return 'data.entity_id: expected a string';
  if ('seq' in frame && !Number.isSafeInteger(frame.seq)) return 'seq: expected an integer';
  return null;
}

/**
 * The gateway's WebSocket URL. `ws(s)://` URLs are kept as they are; an
 * `http(s)://` base URL, or one relative to the page (in a browser), points
 * at its `/ws` when it has no path.
 * @param {string | {href: string}} url a string, or a URL object
 * @param {string} [base] defaults to the page's address in a browser
 */
export function wsUrl(url, base = globalThis.location?.href) {
  let parsed;
  try {
    parsed = new URL(typeof url === 'string' ? url : url.href, base);
  } catch {
    throw new TypeError(`not a WebSocket URL: ${String(url)}`);
  }
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') {
    parsed = new URL(parsed.href.replace(/^http/, 'ws'));
    if (parsed.pathname === '/') parsed.pathname = '/ws';
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new TypeError(`not a WebSocket URL: ${String(url)}`);
  }
  return parsed.href;
}

/**
 * `url` with `?token=` set: how a token reaches the gateway.
 * @param {string} url
 * @param {string} token
 */
export function withToken(url, token) {
  const parsed = new URL(url);
  parsed.searchParams.set('token', token);
  return parsed.href;
}
