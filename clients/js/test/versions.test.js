/**
 * Versions a subscriber reads: checking and combining declarations
 * (versions.js), and what the client sends for them to a scripted gateway.
 * Against a real gateway with a catalog: gateway-versions.test.js.
 */

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import { EventwireError, connect } from '../src/eventwire.js';
import { checkVersions, subscriptionVersions, versionsKey } from '../src/versions.js';
import { fakeSocketClass } from './support/fake-socket.js';
import { Inbox } from './support/wait.js';

const FAST = { backoffInitial: 1, backoffMax: 5 };
const clients = [];
afterEach(() => Promise.all(clients.splice(0).map((client) => client.close())));

describe('versions declarations', () => {
  test('are put in one canonical form', () => {
    const versions = checkVersions({ '*': [1], 'room.MESSAGE_POSTED': [2, 1, 2], 'gift-list.*': [3] });
    assert.deepEqual(Object.keys(versions), ['*', 'gift-list.*', 'room.MESSAGE_POSTED']);
    assert.deepEqual(versions['room.MESSAGE_POSTED'], [1, 2]);
    assert.ok(Object.isFrozen(versions) && Object.isFrozen(versions['*']));
    assert.equal(
      versionsKey(versions),
      versionsKey(checkVersions({ 'gift-list.*': [3], 'room.MESSAGE_POSTED': [1, 2], '*': [1] })),
    );
    assert.equal(versionsKey(null), '');
  });

  for (const [bad, message] of [
    [[1], /expected an object of event keys/],
    [null, /expected an object of event keys/],
    [{ room: [1] }, /versions\["room"\]: expected '\*', 'resource\.\*' or 'resource\.EVENT'/],
    [{ 'Room.X': [1] }, /expected '\*', 'resource\.\*'/],
    [{ 'room.message': [1] }, /versions\["room\.message"\]: the event type must be UPPER_SNAKE_CASE/],
    [{ 'room.*': [] }, /non-empty array of versions/],
    [{ 'room.*': [0] }, /non-empty array of versions/],
    [{ 'room.*': [1.5] }, /non-empty array of versions/],
    [{ 'room.*': '1' }, /non-empty array of versions/],
  ]) {
    test(`refuse ${JSON.stringify(bad)}`, () => {
      assert.throws(() => checkVersions(bad), { name: 'TypeError', message });
    });
  }

  test("a subscription's own go over the connection's, key by key; null opts out", () => {
    const connection = checkVersions({ '*': [1], 'room.*': [1] });
    assert.equal(subscriptionVersions(connection, undefined), connection);
    assert.equal(subscriptionVersions(null, undefined), null);
    assert.equal(subscriptionVersions(connection, null), null);
    assert.deepEqual(subscriptionVersions(connection, { 'room.*': [2], 'room.MESSAGE_POSTED': [1, 2] }), {
      '*': [1],
      'room.*': [2],
      'room.MESSAGE_POSTED': [1, 2],
    });
    assert.throws(() => subscriptionVersions(connection, { room: [1] }), TypeError);
  });
});

/** A client on a fake socket, greeted. */
async function connected(options = {}) {
  const WebSocket = fakeSocketClass();
  const errors = new Inbox();
  const reconnects = new Inbox();
  const client = connect('ws://gateway.test/ws', {
    WebSocket,
    ...FAST,
    onError: errors.push,
    onReconnect: reconnects.push,
    ...options,
  });
  clients.push(client);
  const socket = await WebSocket.next();
  socket.greet();
  await client.ready;
  return { client, WebSocket, socket, errors, reconnects };
}

/** The SUBSCRIBE commands of one tick, answered; their payloads by first topic. */
async function answer(socket, count) {
  const payloads = [];
  for (let i = 0; i < count; i += 1) {
    const command = await socket.nextCommand();
    assert.equal(command.event, 'SUBSCRIBE');
    socket.subscribed(command, Object.fromEntries(command.data.payload.topics.map((t) => [t, [0, 'e1']])));
    payloads.push(command.data.payload);
  }
  return payloads.sort((a, b) => a.topics[0].localeCompare(b.topics[0]));
}

describe('client versions (scripted gateway)', () => {
  test('one SUBSCRIBE per distinct declaration, the connection default included', async () => {
    const { client, socket } = await connected({ versions: { '*': [1] } });
    client.subscribe('a:1', () => {});
    client.subscribe('b:1', () => {}, { versions: { 'b.UPDATED': [2] } });
    client.subscribe('c:1', () => {}, { versions: null });
    client.subscribe('d:1', () => {});
    client.subscribe('e:1', () => {}, { versions: { 'b.UPDATED': [2] } });
    assert.deepEqual(await answer(socket, 3), [
      { topics: ['a:1', 'd:1'], versions: { '*': [1] } },
      { topics: ['b:1', 'e:1'], versions: { '*': [1], 'b.UPDATED': [2] } },
      { topics: ['c:1'] },
    ]);
  });

  test('a second subscription of a topic must declare the same versions', async () => {
    const { client, socket } = await connected();
    const first = client.subscribe('room:1', () => {}, { versions: { 'room.*': [2, 1] } });
    await answer(socket, 1);
    await first.ready;
    const same = client.subscribe('room:1', () => {}, { versions: { 'room.*': [1, 2] } });
    assert.deepEqual(await same.ready, { seq: 0, epoch: 'e1' }); // shares it: no second SUBSCRIBE
    assert.throws(
      () => client.subscribe('room:1', () => {}, { versions: { 'room.*': [1] } }),
      (error) => {
        assert.ok(error instanceof EventwireError);
        assert.equal(error.code, 'VERSIONS_CONFLICT');
        assert.equal(error.topic, 'room:1');
        assert.match(error.message, /room:1 is subscribed with versions \{"room\.\*":\[1,2\]\}/);
        return true;
      },
    );
    assert.throws(() => client.subscribe('room:1', () => {}), { code: 'VERSIONS_CONFLICT' });
    first();
    same();
    assert.equal((await socket.nextCommand()).event, 'UNSUBSCRIBE');
    client.subscribe('room:1', () => {}, { versions: { 'room.*': [1] } }); // free again
    assert.deepEqual((await answer(socket, 1))[0].versions, { 'room.*': [1] });
  });

  test('declarations are sent again after a reconnection, with since', async () => {
    const { client, WebSocket, socket, reconnects } = await connected({ versions: { '*': [1] } });
    client.subscribe('a:1', () => {}, { versions: { 'a.*': [2] } });
    client.subscribe('b:1', () => {});
    await answer(socket, 2);
    socket.event('a:1', 1);
    socket.closeFromServer(1001, 'restart');
    const again = await WebSocket.next();
    again.greet();
    assert.deepEqual(await answer(again, 2), [
      { topics: ['a:1'], since: { 'a:1': { seq: 1, epoch: 'e1' } }, versions: { '*': [1], 'a.*': [2] } },
      { topics: ['b:1'], since: { 'b:1': { seq: 0, epoch: 'e1' } }, versions: { '*': [1] } },
    ]);
    await reconnects.take(1);
  });

  test('bad declarations throw where they are written, never reach the gateway', async () => {
    assert.throws(
      () => connect('ws://gateway.test/ws', { WebSocket: fakeSocketClass(), versions: { room: [1] } }),
      TypeError,
    );
    const { client, socket } = await connected();
    assert.throws(() => client.subscribe('room:1', () => {}, { versions: { 'room.*': [0] } }), TypeError);
    client.subscribe('room:2', () => {});
    assert.deepEqual((await answer(socket, 1))[0], { topics: ['room:2'] });
  });

  test('UNSUPPORTED_VERSION from the gateway goes to onError with its topic', async () => {
    const { client, socket, errors } = await connected();
    client.subscribe('room:1', () => {}, { versions: { 'room.*': [9] } });
    await answer(socket, 1);
    const details = { topic: 'room:1', event: 'POSTED', version: 1, accepted: [9], available: [1, 2] };
    socket.deliver({
      topic: 'error',
      event: 'ERROR',
      data: { entity_id: 'connection', payload: { code: 'UNSUPPORTED_VERSION', message: 'no', details } },
    });
    const [error] = await errors.take(1);
    assert.equal(error.code, 'UNSUPPORTED_VERSION');
    assert.equal(error.topic, 'room:1');
    assert.deepEqual(error.details.available, [1, 2]);
  });
});
