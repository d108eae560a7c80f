/**
 * Tokens against a real gateway with authentication on: `getToken` before
 * each connection, and a fresh token sent with AUTH when the gateway says
 * TOKEN_EXPIRED, so the subscription outlives the first token.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connect } from '../src/eventwire.js';
import { startGateway } from './support/gateway.js';
import { jwt } from './support/tokens.js';
import { Inbox, withTimeout } from './support/wait.js';

const SECRET = 'js-tests-secret-0123456789abcdefghijklmnop';
let gateway;

function token(ttlSeconds) {
  const now = Math.floor(Date.now() / 1000);
  return jwt(SECRET, { sub: 'u1', subscribe: ['room:*'], iat: now, exp: now + ttlSeconds });
}

before(async () => {
  gateway = await startGateway({
    env: { EVENTWIRE_JWT_SECRET: SECRET, EVENTWIRE_JWT_LEEWAY: '0', EVENTWIRE_TOKEN_EXPIRY_GRACE: '3' },
  });
});
after(() => gateway?.stop());

test('a fresh token is sent with AUTH when the first one lapses', async () => {
  const issued = [];
  let refreshed;
  const secondToken = new Promise((resolve) => {
    refreshed = resolve;
  });
  const errors = new Inbox();
  const client = connect(gateway.wsUrl, {
    onError: errors.push,
    getToken: () => {
      issued.push(token(issued.length === 0 ? 1 : 3600)); // the first lapses within a second
      if (issued.length === 2) refreshed();
      return issued.at(-1);
    },
  });
  try {
    const inbox = new Inbox();
    await client.subscribe('room:lobby', inbox.push).ready;
    await errors.until((seen) => seen.some((e) => e.code === 'TOKEN_EXPIRED'), 5000, 'TOKEN_EXPIRED');
    await withTimeout(secondToken, 5000, 'the refresh');
    await new Promise((resolve) => setTimeout(resolve, 3300)); // past the grace: unrefreshed would be closed
    await gateway.publish({
      topic: 'room:lobby',
      event: 'USER_JOINED',
      data: { entity_id: 'u2', user_id: 'u2', payload: { user_id: 'u2', username: 'Bo' } },
    });
    const [event] = await inbox.take(1);
    assert.equal(event.topic, 'room:lobby');
    assert.equal(client.reconnects, 0); // the same connection all along
  } finally {
    client.close();
  }
});
