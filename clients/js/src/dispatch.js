/**
 * Which application handlers an event reaches: by event type, then by
 * schema version. No I/O.
 *
 * A subscription's handlers are one function (every event), or an object
 * keyed by event type with `'*'` for every type:
 *
 *     {ADDED: onAdded, UPDATED: {1: updatedV1, 2: updatedV2, '*': updatedAny}, '*': log}
 *
 * An event reaches its type's entry first, then `'*'`'s. An entry is a
 * function, or a version map keyed by `version` (an event without `version`
 * is version 1) with `'*'` for versions it does not list. A version map with
 * no entry for an event's version reports UNKNOWN_VERSION, as the seed's
 * `switch (wsEvent.version)` example warns on its `default:` branch.
 *
 * @module
 */

import { EventwireError, isObject } from './errors.js';

const ANY = '*';

/**
 * Throws a TypeError when `handlers` is not a function or a handler map.
 * @param {unknown} handlers
 */
export function checkHandlers(handlers) {
  if (typeof handlers === 'function') return;
  if (!isObject(handlers)) throw new TypeError('handlers: expected a function or an object of handlers by event type');
  for (const [type, entry] of Object.entries(handlers)) {
    if (typeof entry === 'function') continue;
    if (!isObject(entry))
      throw new TypeError(`handlers.${type}: expected a function or a map of versions to functions`);
    for (const [version, handler] of Object.entries(entry)) {
      if (version !== ANY && !/^[1-9][0-9]*$/.test(version)) {
        throw new TypeError(`handlers.${type}.${version}: versions are positive integers or '*'`);
      }
      if (typeof handler !== 'function') throw new TypeError(`handlers.${type}.${version}: expected a function`);
    }
  }
}

/**
 * Call every handler `event` reaches, in order; failures go to `report`,
 * never to the caller. A handler's returned promise is not awaited, but its
 * rejection is reported too.
 *
 * @param {Function | Record<string, Function | Record<string, Function>>} handlers
 * @param {{event: string, version?: number, topic: string, seq?: number}} event
 * @param {(error: EventwireError) => void} report
 */
export function dispatch(handlers, event, report) {
  if (typeof handlers === 'function') {
    invoke(handlers, [event], report);
    return;
  }
  for (const type of event.event === ANY ? [ANY] : [event.event, ANY]) {
    if (!Object.hasOwn(handlers, type)) continue;
    const handler = pickVersion(handlers[type], event);
    if (handler !== undefined) invoke(handler, [event], report);
    else report(unknownVersion(type, event));
  }
}

/** The function an entry holds for `event.version`, or undefined. */
function pickVersion(entry, event) {
  if (typeof entry === 'function') return entry;
  const version = event.version ?? 1;
  if (Object.hasOwn(entry, version)) return entry[version];
  return Object.hasOwn(entry, ANY) ? entry[ANY] : undefined;
}

function unknownVersion(type, event) {
  const version = event.version ?? 1;
  return new EventwireError(
    'UNKNOWN_VERSION',
    `no handler for version ${version} of ${event.event} on ${event.topic} (handlers.${type} has no ${version} or '*')`,
    { topic: event.topic, event },
  );
}

/**
 * Call `fn(...args)`, reporting a throw or a rejection as HANDLER_FAILED.
 * @param {Function} fn
 * @param {unknown[]} args
 * @param {(error: EventwireError) => void} report
 * @param {string} [what] names the callback in the error message
 */
export function invoke(fn, args, report, what = 'handler') {
  const failed = (cause) =>
    report(new EventwireError('HANDLER_FAILED', `${what} ${fn.name || '(anonymous)'} failed: ${cause}`, { cause }));
  try {
    const result = fn(...args);
    if (result && typeof result.then === 'function') result.then(undefined, failed);
  } catch (cause) {
    failed(cause);
  }
}
