/**
 * Presence against real gateways with authentication on and USER_JOINED /
 * USER_LEFT announced on `room:*`: `client.presence()` and `livePresence`
 * through two tabs of one user, a second user joining and leaving, the
 * gateway's refusals, and a gateway restart that loses everything.
 *
 * The gateway announces after a broker round trip, so nothing can be
 * awaited to show that an announcement did *not* come. Instead another user
 * joins after it: one topic's announcements leave a node in the order of
 * their transitions, so by the time that user's USER_JOINED arrives, any
 * announcement owed before it has arrived too.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, livePresence } from '../src/eventwire.js';
import { startGateway } from './support/gateway.js';
import { jwt } from './support/tokens.js';
import { Inbox } from './support/wait.js';

const SECRET = 'js-tests-presence-secret-0123456789abcdefgh';
const ENV = { EVENTWIRE_JWT_SECRET: SECRET, EVENTWIRE_PRESENCE_EVENTS: '["room:*"]' };
const FAST = { backoffInitial: 20, backoffMax: 200 };
const TOPIC = 'room:lobby';
const TENANT = 'acme';

let gateway;
before(async () => {
  gateway = await startGateway({ env: ENV });
});
after(() => gateway?.stop());

/** A client signed in as `user` of the tenant, on `url`; closed after the test. */
function as(t, user, url = gateway.wsUrl) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: user, tenant_id: TENANT, subscribe: ['room:*', 'doc:*'], iat: now, exp: now + 3600 };
  const client = connect(url, { token: jwt(SECRET, claims), ...FAST });
  t.after(() => client.close());
  return client;
}

/** `user` on `TOPIC`, on a connection of their own, once the gateway confirmed it. */
async function join(t, user, url = gateway.wsUrl) {
  const client = as(t, user, url);
  await client.subscribe(TOPIC, () => {}).ready;
  return client;
}

/**
 * A livePresence of `TOPIC` on `client`, and `holds(ids)`: wait until its
 * users are exactly `ids` (users of the tenant). `announced` collects the
 * USER_JOINED / USER_LEFT the same client receives, as `'EVENT user'`.
 */
function watch(t, client) {
  const changes = new Inbox();
  const announced = new Inbox();
  const push = (event) => announced.push(`${event.event} ${event.data.entity_id}`);
  client.subscribe(TOPIC, { USER_JOINED: push, USER_LEFT: push });
  const room = livePresence(client, TOPIC, { onChange: (users) => changes.push(users) });
  t.after(() => room.close());
  const holds = (ids) => {
    const expected = ids.map((user_id) => ({ user_id, tenant_id: TENANT }));
    return changes.until(() => isDeepEqual(room.users, expected), 5000, `users [${ids}]`);
  };
  return { room, holds, announced };
}

function isDeepEqual(actual, expected) {
  try {
    assert.deepEqual(actual, expected);
    return true;
  } catch {
    return false;
  }
}

/** `user`'s connections in a PRESENCE_STATE, 0 when not listed. */
const tabsOf = (state, user) => state.users.find((entry) => entry.user_id === user)?.connections ?? 0;

describe('presence against a real gateway', () => {
  test('two tabs of one user count once; a second user joining and leaving is followed', async (t) => {
    const alice = as(t, 'alice');
    const { room, holds, announced } = watch(t, alice);
    await room.ready;
    await holds(['alice']); // from PRESENCE, or from her own USER_JOINED if PRESENCE came first

    const aliceTab2 = await join(t, 'alice');
    const bob = await join(t, 'bob'); // his USER_JOINED comes after anything owed for alice's second tab
    await holds(['alice', 'bob']);
    assert.equal(room.count, 2);
    const state = await alice.presence(TOPIC);
    assert.deepEqual(
      [state.topic, state.count, tabsOf(state, 'alice'), tabsOf(state, 'bob'), state.connections, state.anonymous],
      [TOPIC, 2, 2, 1, 3, 0],
    );
    assert.deepEqual(state.users[0], { user_id: 'alice', connections: 2, tenant_id: TENANT });
    assert.deepEqual(await aliceTab2.presence(TOPIC), state, 'both tabs see the same');

    await bob.close();
    await holds(['alice']);
    await aliceTab2.close(); // one of alice's two tabs: she stays
    await join(t, 'carol'); // her USER_JOINED comes after any USER_LEFT owed for alice
    await holds(['alice', 'carol']);
    assert.equal(tabsOf(await alice.presence(TOPIC), 'alice'), 1);
    assert.deepEqual(announced.items, ['USER_JOINED alice', 'USER_JOINED bob', 'USER_LEFT bob', 'USER_JOINED carol']);
  });

  test("the gateway's refusals reject client.presence with their code and topic", async (t) => {
    const alice = as(t, 'alice');
    await alice.subscribe('doc:1', () => {}).ready; // granted, but presence is not tracked there
    await assert.rejects(alice.presence('doc:1'), { code: 'NOT_SUPPORTED', topic: 'doc:1' });
    await assert.rejects(alice.presence('room:elsewhere'), { code: 'VALIDATION_ERROR', topic: 'room:elsewhere' });
    const errors = new Inbox();
    const notTracked = livePresence(alice, 'doc:2', { onError: errors.push });
    await assert.rejects(notTracked.ready, { code: 'NOT_SUPPORTED' });
    assert.equal(errors.items.length, 1);
    notTracked.close();
  });
});

describe('presence across a gateway restart', () => {
  test('a reconnection that could not recover asks again: a user gone with the old gateway is dropped', async (t) => {
    const first = await startGateway({ env: ENV });
    t.after(() => first.stop('SIGKILL'));
    const alice = as(t, 'alice', first.wsUrl);
    const { room, holds } = watch(t, alice);
    await room.ready;
    const bob = await join(t, 'bob', first.wsUrl);
    await holds(['alice', 'bob']);

    await first.stop('SIGKILL'); // the in-memory broker's history and presence go with it
    await bob.close(); // bob does not come back: no gateway will ever announce him gone
    const second = await startGateway({ port: first.port, env: ENV });
    t.after(() => second.stop('SIGKILL'));
    await holds(['alice']); // only PRESENCE, asked again, can drop bob
    assert.equal(alice.reconnects, 1);
    assert.deepEqual(
      alice.lastReconnect.gaps.map((gap) => [gap.topic, gap.historyLost]),
      [[TOPIC, true]],
    );
  });
});
