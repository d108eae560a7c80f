/**
 * Presence against a scripted WebSocket: `client.presence()` and
 * `livePresence` with the test playing the gateway, so the interleavings
 * (events while PRESENCE is on its way, a connection lost under it,
 * reconnections that recover or not) are reached without a network. The
 * same against a real gateway: gateway-presence.test.js.
 */

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import { EventwireError, connect, livePresence } from '../src/eventwire.js';
import { fakeSocketClass } from './support/fake-socket.js';
import { Inbox, withTimeout } from './support/wait.js';

const T = 'room:lobby';
const FAST = { backoffInitial: 1, backoffMax: 5 };

const clients = [];
afterEach(() => Promise.all(clients.splice(0).map((client) => client.close())));

/** A client on a scripted gateway, its first socket greeted. */
async function connected(options = {}) {
  const WebSocket = fakeSocketClass();
  const errors = new Inbox();
  const client = connect('ws://gateway.test/ws', { WebSocket, onError: errors.push, ...FAST, ...options });
  clients.push(client);
  const socket = await WebSocket.next();
  socket.greet();
  await client.ready;
  return { client, WebSocket, socket, errors };
}

/** The next command on `socket`, checked to be `name`. */
async function expectCommand(socket, name) {
  const command = await socket.nextCommand();
  assert.equal(command.event, name, JSON.stringify(command));
  return command;
}

/** PRESENCE_STATE answering `command`, listing `users` (`[id, connections, tenant?]`). */
function presenceState(socket, command, users, anonymous = 0) {
  const listed = users.map(([user_id, connections, tenant_id]) =>
    tenant_id === undefined ? { user_id, connections } : { user_id, connections, tenant_id },
  );
  const connections = listed.reduce((sum, user) => sum + user.connections, anonymous);
  const payload = { topic: command.data.payload.topic, count: listed.length, users: listed, connections, anonymous };
  socket.deliver({ topic: 'system', event: 'PRESENCE_STATE', data: { entity_id: command.data.entity_id, payload } });
  return payload;
}

function errorFrame(socket, command, code, details = {}) {
  const payload = { code, message: `${code} (scripted)`, details };
  socket.deliver({ topic: 'error', event: 'ERROR', data: { entity_id: command.data.entity_id, payload } });
}

/** The gateway's USER_JOINED / USER_LEFT of `user` at `seq`. */
function announce(socket, seq, event, user, tenant) {
  const payload = event === 'USER_LEFT' ? { user_id: user, reason: 'left' } : { user_id: user };
  const data = { entity_id: user, payload, user_id: user, timestamp: '2026-11-25T21:00:00.000Z' };
  if (tenant !== undefined) data.tenant_id = tenant;
  socket.deliver({ topic: T, event, data, seq });
}

const ids = (users) => users.map((user) => (user.tenant_id ? `${user.tenant_id}/${user.user_id}` : user.user_id));

/** A livePresence on `T` whose SUBSCRIBE and first PRESENCE are answered with `users`. */
async function live(users = [], options = {}) {
  const setup = await connected();
  const changes = new Inbox();
  const room = livePresence(setup.client, T, { onChange: (now, event) => changes.push([ids(now), event]), ...options });
  const subscribe = await expectCommand(setup.socket, 'SUBSCRIBE');
  setup.socket.subscribed(subscribe, { [T]: [0, 'e1'] });
  const ask = await expectCommand(setup.socket, 'PRESENCE');
  assert.deepEqual(ask.data.payload, { topic: T });
  presenceState(setup.socket, ask, users);
  await withTimeout(room.ready, 2000, 'the first PRESENCE applied');
  return { ...setup, room, changes };
}

describe('client.presence (scripted gateway)', () => {
  test('sends PRESENCE and resolves with PRESENCE_STATE, each answer to its own request', async () => {
    const { client, socket } = await connected();
    const first = client.presence('room:a');
    const second = client.presence('room:b');
    const [askA, askB] = [await expectCommand(socket, 'PRESENCE'), await expectCommand(socket, 'PRESENCE')];
    assert.equal(askA.topic, 'system');
    assert.notEqual(askA.data.entity_id, askB.data.entity_id);
    const stateB = presenceState(socket, askB, [['bob', 1]]); // answered out of order
    const stateA = presenceState(socket, askA, [['alice', 2, 'acme']], 1);
    assert.deepEqual(await first, stateA);
    assert.deepEqual(await second, stateB);
    assert.deepEqual((await first).users, [{ user_id: 'alice', connections: 2, tenant_id: 'acme' }]);
  });

  test("the gateway's ERROR rejects the call with its code and topic, and goes nowhere else", async () => {
    const { client, socket, errors } = await connected();
    const asked = client.presence('gift-list:1');
    errorFrame(socket, await expectCommand(socket, 'PRESENCE'), 'NOT_SUPPORTED', { topic: 'gift-list:1' });
    await assert.rejects(asked, (error) => {
      assert.ok(error instanceof EventwireError);
      assert.deepEqual([error.code, error.topic], ['NOT_SUPPORTED', 'gift-list:1']);
      return true;
    });
    assert.deepEqual(errors.items, [], 'the caller has it: onError does not');
  });

  test('rejects with CONNECTION_LOST when the connection drops, NOT_CONNECTED while it is down', async () => {
    const { client, WebSocket, socket } = await connected();
    const asked = client.presence(T);
    await expectCommand(socket, 'PRESENCE');
    socket.closeFromServer(1011);
    await assert.rejects(asked, { code: 'CONNECTION_LOST' });
    await assert.rejects(client.presence(T), { code: 'NOT_CONNECTED' });
    await assert.rejects(client.presence(''), TypeError);
    (await WebSocket.next()).greet(); // lets afterEach close a connected client
  });
});

describe('livePresence (scripted gateway)', () => {
  test('fills the set from PRESENCE, then applies USER_JOINED / USER_LEFT as set operations', async () => {
    const { socket, room, changes } = await live([
      ['alice', 2],
      ['bob', 1, 'acme'],
    ]);
    assert.deepEqual(ids(room.users), ['alice', 'acme/bob']);
    assert.equal(room.count, 2);
    assert.deepEqual(changes.items, [[['alice', 'acme/bob'], null]]);
    assert.deepEqual(room.users[0], { user_id: 'alice' }, 'connections are not kept: events do not carry them');

    announce(socket, 1, 'USER_JOINED', 'alice'); // already there: no change
    announce(socket, 2, 'USER_JOINED', 'bob'); // bob without a tenant is another user than acme's bob
    announce(socket, 3, 'USER_LEFT', 'alice');
    announce(socket, 4, 'USER_LEFT', 'alice'); // the same one twice: no change
    announce(socket, 5, 'USER_JOINED', 'aaron', 'acme');
    const seen = await changes.take(4);
    assert.deepEqual(
      seen.slice(1).map(([users, event]) => [users, event.event, event.seq]),
      [
        [['alice', 'bob', 'acme/bob'], 'USER_JOINED', 2],
        [['bob', 'acme/bob'], 'USER_LEFT', 3],
        [['acme/aaron', 'bob', 'acme/bob'], 'USER_JOINED', 5],
      ],
    );
    assert.equal(room.count, 3);
    assert.ok(Object.isFrozen(room.users));
  });

  test('events that arrive while PRESENCE is on its way are applied over its answer', async () => {
    const { client, socket } = await connected();
    const changes = new Inbox();
    const room = livePresence(client, T, { onChange: (users) => changes.push(ids(users)) });
    socket.subscribed(await expectCommand(socket, 'SUBSCRIBE'), { [T]: [7, 'e1'] });
    const ask = await expectCommand(socket, 'PRESENCE');
    announce(socket, 8, 'USER_LEFT', 'alice'); // before the answer, which may or may not include it
    announce(socket, 9, 'USER_JOINED', 'carol');
    assert.deepEqual(changes.items, []);
    presenceState(socket, ask, [
      ['alice', 1],
      ['bob', 1],
    ]);
    await withTimeout(room.ready, 2000, 'the first PRESENCE applied');
    assert.deepEqual(ids(room.users), ['bob', 'carol']);
    assert.deepEqual(changes.items, [['bob', 'carol']], 'one change: the answer with the held events applied');
  });

  test('a reconnection that could not recover asks PRESENCE again; one that did, does not', async () => {
    const { WebSocket, socket, room, changes } = await live([['alice', 1]]);
    announce(socket, 1, 'USER_JOINED', 'bob');
    await changes.take(2);

    socket.closeFromServer(1001); // recovered: the missed events are replayed, no PRESENCE needed
    const second = await WebSocket.next();
    second.greet();
    const resubscribe = await expectCommand(second, 'SUBSCRIBE');
    assert.deepEqual(resubscribe.data.payload.since, { [T]: { seq: 1, epoch: 'e1' } });
    second.subscribed(resubscribe, { [T]: [2, 'e1'] }, { [T]: true });
    announce(second, 2, 'USER_LEFT', 'alice');
    await changes.take(3);
    assert.deepEqual(ids(room.users), ['bob']);

    second.closeFromServer(1001); // not recovered: what was missed is unknown
    const third = await WebSocket.next();
    third.greet();
    third.subscribed(await expectCommand(third, 'SUBSCRIBE'), { [T]: [9, 'e1'] }, { [T]: false });
    const ask = await expectCommand(third, 'PRESENCE');
    presenceState(third, ask, [['dave', 1]]);
    await changes.take(4);
    assert.deepEqual(ids(room.users), ['dave']);
    assert.equal(second.sent.filter((frame) => frame.event === 'PRESENCE').length, 0);
  });

  test('a PRESENCE whose connection dropped is asked again once the next one has the topic', async () => {
    const { client, WebSocket, socket } = await connected();
    const room = livePresence(client, T);
    socket.subscribed(await expectCommand(socket, 'SUBSCRIBE'), { [T]: [0, 'e1'] });
    await expectCommand(socket, 'PRESENCE');
    socket.closeFromServer(1006);
    const next = await WebSocket.next();
    next.greet();
    const resubscribe = await expectCommand(next, 'SUBSCRIBE');
    next.subscribed(resubscribe, { [T]: [0, 'e1'] }, { [T]: true }); // nothing missed: no gap
    presenceState(next, await expectCommand(next, 'PRESENCE'), [['alice', 1]]);
    await withTimeout(room.ready, 2000, 'the first PRESENCE applied');
    assert.deepEqual(ids(room.users), ['alice']);
    room.close();
    assert.equal((await expectCommand(next, 'UNSUBSCRIBE')).data.payload.topics[0], T);
  });

  test('a topic without presence rejects ready with NOT_SUPPORTED, reported to onError', async () => {
    const { client, socket } = await connected();
    const errors = new Inbox();
    const room = livePresence(client, 'gift-list:1', { onError: errors.push });
    socket.subscribed(await expectCommand(socket, 'SUBSCRIBE'), { 'gift-list:1': [0, 'e1'] });
    errorFrame(socket, await expectCommand(socket, 'PRESENCE'), 'NOT_SUPPORTED', { topic: 'gift-list:1' });
    await assert.rejects(withTimeout(room.ready, 2000, 'ready'), { code: 'NOT_SUPPORTED', topic: 'gift-list:1' });
    assert.equal((await errors.take(1))[0].code, 'NOT_SUPPORTED');
    const refreshed = room.refresh(); // refresh() asks again
    presenceState(socket, await expectCommand(socket, 'PRESENCE'), [['alice', 1]]);
    await withTimeout(refreshed, 2000, 'the refresh applied');
    assert.equal(room.count, 1);
  });

  test('a refused subscription rejects ready with its error and asks nothing', async () => {
    const { client, socket, errors } = await connected();
    const room = livePresence(client, 'room:secret');
    const subscribe = await expectCommand(socket, 'SUBSCRIBE');
    errorFrame(socket, subscribe, 'FORBIDDEN', { topic: 'room:secret' });
    socket.subscribed(subscribe, {});
    await assert.rejects(withTimeout(room.ready, 2000, 'ready'), { code: 'FORBIDDEN' });
    assert.equal((await errors.take(1))[0].code, 'FORBIDDEN'); // told once, by the client
    await assert.rejects(room.refresh(), { code: 'CLOSED' });
    assert.deepEqual(
      socket.sent.map((frame) => frame.event),
      ['SUBSCRIBE'],
    );
  });

  test('close() unsubscribes; later events change nothing', async () => {
    const { socket, room, changes } = await live([['alice', 1]]);
    room.close();
    await expectCommand(socket, 'UNSUBSCRIBE');
    announce(socket, 1, 'USER_JOINED', 'bob');
    assert.deepEqual(ids(room.users), ['alice']);
    assert.equal(changes.items.length, 1);
  });
});
