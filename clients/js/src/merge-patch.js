/**
 * RFC 7396 JSON Merge Patch, without mutating its inputs.
 *
 * RFC 7396, section 2: "If the patch is anything other than an object, the
 * result will always be to replace the entire target with the entire patch."
 * Inside an object, `null` removes a member and other values are merged
 * recursively.
 *
 * @module
 */

import { isObject } from './errors.js';

/**
 * `target` with `patch` applied; both are left as they were.
 * @param {unknown} target
 * @param {unknown} patch
 * @returns {unknown}
 */
export function mergePatch(target, patch) {
  if (!isObject(patch)) return patch;
  const result = isObject(target) ? { ...target } : {};
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete result[name];
    else defineMember(result, name, mergePatch(ownMember(result, name), value));
  }
  return result;
}

/** @param {Record<string, unknown>} object @param {string} name */
function ownMember(object, name) {
  return Object.hasOwn(object, name) ? object[name] : undefined;
}

/** Plain assignment would treat a `__proto__` member as the prototype. */
function defineMember(object, name, value) {
  Object.defineProperty(object, name, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}
