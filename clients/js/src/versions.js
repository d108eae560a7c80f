/**
 * The event versions a subscriber reads (docs/protocol.md, "Versions"):
 * checking SUBSCRIBE's `versions` argument, and combining the connection's
 * with a subscription's. No I/O.
 *
 *     {'room.MESSAGE_POSTED': [1], 'gift-list.*': [1, 2], '*': [1]}
 *
 * Keys are `resource.EVENT`, `resource.*` or `*`; on the gateway the most
 * specific one that matches an event wins. Values are non-empty lists of
 * versions (integers >= 1). A malformed argument would make the gateway
 * refuse the whole SUBSCRIBE, so it is refused here, where it is written.
 *
 * @module
 */

/** @typedef {Readonly<Record<string, readonly number[]>>} Versions */

const RESOURCE = /^[a-z][a-z0-9-]*$/;
const EVENT_TYPE = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/;
const MAX_EVENT_TYPE = 64;

/** @param {string} key */
function keyProblem(key) {
  if (key === '*') return null;
  const dot = key.indexOf('.');
  const [resource, event] = dot < 0 ? [key, ''] : [key.slice(0, dot), key.slice(dot + 1)];
  if (dot < 0 || !RESOURCE.test(resource)) {
    return "expected '*', 'resource.*' or 'resource.EVENT', such as 'gift-list.UPDATED'";
  }
  if (event !== '*' && !(event.length <= MAX_EVENT_TYPE && EVENT_TYPE.test(event))) {
    return "the event type must be UPPER_SNAKE_CASE or '*'";
  }
  return null;
}

/**
 * `versions` checked and in one canonical form (keys and versions sorted,
 * frozen), or throws a TypeError naming the bad key.
 * @param {unknown} versions
 * @param {string} [what] the option's name in messages
 * @returns {Versions}
 */
export function checkVersions(versions, what = 'versions') {
  if (typeof versions !== 'object' || versions === null || Array.isArray(versions)) {
    throw new TypeError(`${what}: expected an object of event keys to version lists, such as {'*': [1]}`);
  }
  /** @type {Record<string, readonly number[]>} */
  const canonical = {};
  for (const key of Object.keys(versions).sort()) {
    const problem = keyProblem(key);
    if (problem !== null) throw new TypeError(`${what}[${JSON.stringify(key)}]: ${problem}`);
    const list = /** @type {Record<string, unknown>} */ (versions)[key];
    if (!Array.isArray(list) || list.length === 0 || !list.every((v) => Number.isSafeInteger(v) && v >= 1)) {
      throw new TypeError(`${what}[${JSON.stringify(key)}]: expected a non-empty array of versions (integers >= 1)`);
    }
    canonical[key] = Object.freeze([...new Set(list)].sort((a, b) => a - b));
  }
  return Object.freeze(canonical);
}

/**
 * What one subscription declares: its own `versions` over the connection's,
 * key by key; `null` opts out (events as published); `undefined` takes the
 * connection's. Null when nothing is declared.
 * @param {Versions | null | undefined} connection checked
 * @param {unknown} own unchecked: the subscribe option
 * @returns {Versions | null}
 */
export function subscriptionVersions(connection, own) {
  if (own === null) return null;
  if (own === undefined) return connection ?? null;
  return checkVersions({ ...connection, ...checkVersions(own) });
}

/**
 * A string equal for equal declarations: topics with the same one share a SUBSCRIBE.
 * @param {Versions | null} versions canonical
 */
export function versionsKey(versions) {
  return versions === null ? '' : JSON.stringify(versions);
}
