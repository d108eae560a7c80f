/**
 * Versions against a real gateway serving the demo catalog, whose
 * room MESSAGE_POSTED has versions 1 and 2 (2 adds `mentions`): each client
 * gets the version it declared, per connection or per subscription, also
 * after a reconnection and for the events replayed then; a version the
 * catalog cannot produce is one UNSUPPORTED_VERSION, never the event.
 */

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import { connect } from '../src/eventwire.js';
import { startGateway } from './support/gateway.js';
import { Inbox } from './support/wait.js';

const FAST = { backoffInitial: 20, backoffMax: 200 };
const RECONNECT_TIMEOUT = 10_000;

let gateway;
const clients = [];

before(async () => {
  gateway = await startGateway({ extra: ['--catalog', 'eventwire.demo:catalog'] });
});
after(() => gateway?.stop());
afterEach(() => Promise.all(clients.splice(0).map((client) => client.close())));

/** A connected client on the gateway, its errors and reconnections collected. */
async function client(options = {}) {
  const errors = new Inbox();
  const reconnects = new Inbox();
  const opened = connect(gateway.wsUrl, { onError: errors.push, onReconnect: reconnects.push, ...FAST, ...options });
  clients.push(opened);
  await opened.ready;
  return Object.assign(opened, { errors, reconnects });
}

const message = (id, text) => ({ message_id: id, user_id: 'user-1', username: 'Ann', text });

/** A MESSAGE_POSTED at `version`; version 2 carries `mentions`. */
function posted(topic, version, payload) {
  return {
    topic,
    event: 'MESSAGE_POSTED',
    version,
    data: { entity_id: payload.message_id, payload, user_id: 'user-1' },
  };
}

const seen = (events) => events.map((e) => [e.version, e.data.payload]);

describe('versions against a gateway with a catalog', () => {
  test('per connection and per subscription, each client gets the version it reads', async () => {
    const old = await client({ versions: { 'room.MESSAGE_POSTED': [1] } });
    const current = await client();
    const oldEvents = new Inbox();
    const newEvents = new Inbox();
    const byVersion = new Inbox();
    await old.subscribe('room:v1', oldEvents.push).ready;
    await current.subscribe(
      'room:v1',
      { MESSAGE_POSTED: { 2: (e) => byVersion.push(`v2 ${e.data.payload.mentions}`), '*': newEvents.push } },
      { versions: { 'room.*': [2] } },
    ).ready;

    const first = message('m1', 'hi @bob');
    await gateway.publish(posted('room:v1', 1, first)); // up: the gateway adds mentions
    const second = { ...message('m2', 'hello'), mentions: ['carl'] };
    await gateway.publish(posted('room:v1', 2, second)); // down: mentions dropped

    await oldEvents.take(2);
    await byVersion.take(2);
    assert.deepEqual(seen(oldEvents.items), [
      [1, first],
      [1, message('m2', 'hello')],
    ]);
    assert.deepEqual(byVersion.items, ['v2 bob', 'v2 carl']); // dispatched on the converted version
    assert.deepEqual(newEvents.items, []);
    assert.deepEqual([old.errors.items, current.errors.items], [[], []]);
  });

  test('a subscription opting out with null gets what was published', async () => {
    const c = await client({ versions: { '*': [1] } });
    const events = new Inbox();
    await c.subscribe('room:raw', events.push, { versions: null }).ready;
    const v2 = { ...message('m1', 'hi'), mentions: [] };
    await gateway.publish(posted('room:raw', 2, v2));
    assert.deepEqual(seen(await events.take(1)), [[2, v2]]);
  });

  test('a version the catalog cannot produce is one UNSUPPORTED_VERSION per topic and event type', async () => {
    const c = await client();
    const events = new Inbox();
    await c.subscribe('room:v3', events.push, { versions: { 'room.MESSAGE_POSTED': [3] } }).ready;
    await gateway.publish(posted('room:v3', 1, message('m1', 'a')));
    await gateway.publish(posted('room:v3', 1, message('m2', 'b')));
    const joined = { user_id: 'user-1', username: 'Ann' };
    await gateway.publish({ topic: 'room:v3', event: 'USER_JOINED', data: { entity_id: 'user-1', payload: joined } });
    const [event] = await events.take(1); // USER_JOINED: no key matches it, as published
    assert.equal(event.event, 'USER_JOINED');
    const [error] = await c.errors.take(1);
    assert.equal(error.code, 'UNSUPPORTED_VERSION');
    assert.equal(error.topic, 'room:v3');
    assert.deepEqual(
      [error.details.event, error.details.accepted, error.details.available],
      ['MESSAGE_POSTED', [3], [1, 2]],
    );
    await c.ping(); // whatever was sent before PONG has arrived
    assert.equal(c.errors.items.length, 1);
    assert.deepEqual(
      events.items.map((e) => e.event),
      ['USER_JOINED'],
    );
  });

  test('declarations are kept across a reconnection, replayed events converted too', async () => {
    const sockets = [];
    class TrackedWebSocket extends WebSocket {
      constructor(...args) {
        super(...args);
        sockets.push(this);
      }
    }
    let connections = 0;
    const missed = { ...message('m2', 'while away'), mentions: ['dana'] };
    // asked before each connection: the second time, publish while this client is away
    const getToken = async () => {
      connections += 1;
      if (connections === 2) await gateway.publish(posted('room:away', 2, missed));
      return 'token';
    };
    const c = await client({ WebSocket: TrackedWebSocket, getToken, versions: { 'room.*': [1] } });
    const events = new Inbox();
    await c.subscribe('room:away', events.push).ready;
    await gateway.publish(posted('room:away', 2, { ...message('m1', 'before'), mentions: [] }));
    await events.take(1);

    sockets.at(-1).close(4000, 'test: drop the connection');
    const [notice] = await c.reconnects.take(1, RECONNECT_TIMEOUT);
    assert.deepEqual(notice.gaps, []);
    await gateway.publish(posted('room:away', 2, { ...message('m3', 'after'), mentions: [] }));
    await events.take(3);
    assert.deepEqual(
      events.items.map((e) => [e.seq, e.version, e.data.payload.text, 'mentions' in e.data.payload]),
      [
        [1, 1, 'before', false],
        [2, 1, 'while away', false],
        [3, 1, 'after', false],
      ],
    );
  });
});
