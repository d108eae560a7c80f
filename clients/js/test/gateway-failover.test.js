/**
 * Several gateway URLs against real gateway processes: the client skips a
 * URL nobody answers, and when its node is killed it moves to the next one,
 * resubscribes there and receives what that node publishes. Each node here
 * has a memory broker of its own (another history, another epoch), so the
 * move is reported as lost history rather than mixing two sequences up.
 * A token refused for good is not tried on the other node.
 */

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';

import { connect } from '../src/eventwire.js';
import { startGateway } from './support/gateway.js';
import { jwt } from './support/tokens.js';
import { Inbox, withTimeout } from './support/wait.js';

const SECRET = 'js-failover-secret-0123456789abcdefghijklmnop';
const TOPIC = 'room:lobby';
const FAST = { backoffInitial: 20, backoffMax: 200 };
const RECONNECT_TIMEOUT = 10_000;

let first;
let second;

before(async () => {
  const env = { EVENTWIRE_JWT_SECRET: SECRET };
  [first, second] = await Promise.all([startGateway({ env }), startGateway({ env })]);
});
after(() => Promise.all([first?.stop('SIGKILL'), second?.stop('SIGKILL')]));

function token() {
  const now = Math.floor(Date.now() / 1000);
  return jwt(SECRET, { sub: 'u1', subscribe: ['room:*'], iat: now, exp: now + 3600 });
}

/** The URL of a loopback port nobody listens on. */
async function deadUrl() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `ws://127.0.0.1:${port}/ws`;
}

/** A WebSocket class that remembers the URL of every socket it opens. */
function trackedWebSocket() {
  const opened = [];
  class Tracked extends WebSocket {
    constructor(url) {
      super(url);
      opened.push(new URL(url).port);
    }
  }
  return Object.assign(Tracked, { opened });
}

const joined = (user) => ({
  topic: TOPIC,
  event: 'USER_JOINED',
  data: { entity_id: user, payload: { user_id: user } },
});

test('a token refused for good is not tried on the next node', async () => {
  const WebSocket = trackedWebSocket();
  const client = connect([first.wsUrl, second.wsUrl], { ...FAST, WebSocket, token: 'not-a-token' });
  try {
    await assert.rejects(withTimeout(client.ready, 5000, 'the refusal'), (error) => {
      assert.equal(error.code, 'CONNECTION_LOST');
      assert.equal(error.closeCode, 4501);
      return true;
    });
    assert.deepEqual(WebSocket.opened, [String(first.port)]);
    assert.equal(client.state, 'closed');
  } finally {
    await client.close();
  }
});

test('a dead URL is skipped; when its node is killed the client resumes on the next one', async () => {
  const dead = await deadUrl();
  const events = new Inbox();
  const gaps = new Inbox();
  const reconnects = new Inbox();
  const errors = new Inbox();
  const client = connect([dead, first.wsUrl, second.wsUrl], {
    ...FAST,
    getToken: token,
    onReconnect: reconnects.push,
    onError: errors.push,
  });
  try {
    const off = client.subscribe(TOPIC, events.push, { onGap: gaps.push });
    const position = await withTimeout(off.ready, 5000, 'the subscription on the first node');
    assert.equal(client.url, first.wsUrl);
    await first.publish(joined('u1'));
    await events.take(1);

    await first.stop('SIGKILL'); // the node vanishes: the connection just drops
    const [notice] = await reconnects.take(1, RECONNECT_TIMEOUT);
    assert.equal(notice.closeCode, 1006);
    assert.equal(client.url, second.wsUrl);
    assert.equal(client.state, 'open');
    // The second node's memory broker has another epoch: SUBSCRIBED says recovered: false.
    const [gap] = notice.gaps;
    assert.deepEqual([notice.gaps.length, gap.topic, gap.historyLost], [1, TOPIC, true]);
    assert.notEqual(gap.epoch, position.epoch);
    assert.deepEqual(gaps.items, [gap]);
    assert.equal((await second.topic(TOPIC)).subscribers, 1);

    await second.publish(joined('u2'));
    await second.publish(joined('u3'));
    await events.take(3);
    assert.deepEqual(
      events.items.map((event) => `${event.data.entity_id}@${event.seq}`),
      ['u1@1', 'u2@1', 'u3@2'],
    );
    assert.deepEqual(client.positions.get(TOPIC), { seq: 2, epoch: gap.epoch });
    assert.deepEqual(errors.items, []);
  } finally {
    await client.close();
  }
});
