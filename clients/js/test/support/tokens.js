/** Tokens for gateways started with authentication on (`EVENTWIRE_JWT_SECRET`). */

import { createHmac } from 'node:crypto';

/**
 * An HS256 JWT signed with `secret`: what `eventwire token create` mints.
 * @param {string} secret
 * @param {object} claims
 */
export function jwt(secret, claims) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}
