/**
 * The client against a real gateway process: connect, subscribe, handlers
 * by type and version, unsubscribe, refusals, and the browser module served
 * at /static/js/.
 */

import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { after, afterEach, before, describe, test } from 'node:test';

import { connect } from '../src/eventwire.js';
import { startGateway } from './support/gateway.js';
import { Inbox } from './support/wait.js';

const FAST = { backoffInitial: 20, backoffMax: 200 };

let gateway;
const clients = [];

before(async () => {
  gateway = await startGateway();
});
after(() => gateway?.stop());
afterEach(() => Promise.all(clients.splice(0).map((client) => client.close())));

/** A connected client on the gateway; its errors collected. */
async function client(options = {}) {
  const errors = new Inbox();
  const opened = connect(gateway.wsUrl, { onError: errors.push, ...FAST, ...options });
  clients.push(opened);
  await opened.ready;
  return Object.assign(opened, { errors });
}

const added = (topic, id, extra = {}) => ({
  topic,
  event: 'ADDED',
  data: { entity_id: id, payload: { id, name: `gift ${id}` } },
  ...extra,
});

describe('client against a real gateway', () => {
  test('receives the envelope of a published event', async () => {
    const c = await client();
    assert.equal(c.state, 'open');
    assert.match(c.sessionId, /^[0-9a-f]+$/);
    const inbox = new Inbox();
    const off = c.subscribe('gift-list:1', inbox.push);
    assert.deepEqual((await off.ready).seq, 0);
    await gateway.publish(
      added('gift-list:1', 'g1', {
        version: 2,
        trace_id: 't-1',
        data: { entity_id: 'g1', payload: { id: 'g1' }, user_id: 'u-9' },
      }),
    );
    const [event] = await inbox.take(1);
    assert.equal(event.topic, 'gift-list:1');
    assert.equal(event.event, 'ADDED');
    assert.deepEqual(event.data.payload, { id: 'g1' });
    assert.equal(event.data.entity_id, 'g1');
    assert.equal(event.data.user_id, 'u-9');
    assert.match(event.data.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(event.trace_id, 't-1');
    assert.equal(event.version, 2);
    assert.equal(event.seq, 1);
    assert.deepEqual(c.positions.get('gift-list:1'), { seq: 1, epoch: (await off.ready).epoch });
  });

  test('handlers by event type, with * for every event', async () => {
    const c = await client();
    const calls = new Inbox();
    const off = c.subscribe('gift-list:2', {
      ADDED: (e) => calls.push(`added ${e.data.entity_id}`),
      DELETED: (e) => calls.push(`deleted ${e.data.entity_id}`),
      '*': (e) => calls.push(`any ${e.event}`),
    });
    await off.ready;
    await gateway.publish(added('gift-list:2', 'g1'));
    await gateway.publish({ topic: 'gift-list:2', event: 'DELETED', data: { entity_id: 'g1', payload: null } });
    await gateway.publish({ topic: 'gift-list:2', event: 'STATUS_CHANGED', data: { entity_id: 'g1', payload: {} } });
    assert.deepEqual(await calls.take(5), ['added g1', 'any ADDED', 'deleted g1', 'any DELETED', 'any STATUS_CHANGED']);
  });

  test('version dispatch: handlers by schema version, no version meaning 1', async () => {
    const c = await client();
    const calls = new Inbox();
    const off = c.subscribe('gift-list:3', {
      UPDATED: {
        1: (e) => calls.push(`v1 ${e.data.payload.title}`),
        2: (e) => calls.push(`v2 ${e.data.payload.name}`),
      },
    });
    await off.ready;
    const updated = (payload, version) => ({
      topic: 'gift-list:3',
      event: 'UPDATED',
      data: { entity_id: 'g1', payload },
      ...(version ? { version } : {}),
    });
    await gateway.publish(updated({ title: 'old shape' }, 1));
    await gateway.publish(updated({ name: 'new shape' }, 2));
    await gateway.publish(updated({ title: 'unversioned' }));
    await gateway.publish(updated({ name: 'from the future' }, 3));
    assert.deepEqual(await calls.take(3), ['v1 old shape', 'v2 new shape', 'v1 unversioned']);
    const [unknown] = await c.errors.take(1);
    assert.equal(unknown.code, 'UNKNOWN_VERSION');
  });

  test('unsubscribe: the handler gets nothing more, and the gateway forgets the topic', async () => {
    const c = await client();
    const gone = new Inbox();
    const kept = new Inbox();
    const offGone = c.subscribe('room:lobby', gone.push);
    const offKept = c.subscribe('room:lobby', kept.push);
    await Promise.all([offGone.ready, offKept.ready]);
    await gateway.publish(added('room:lobby', 'u1'));
    await Promise.all([gone.take(1), kept.take(1)]);

    offGone();
    await gateway.publish(added('room:lobby', 'u2'));
    await kept.take(2); // same connection, same frame: had it reached `gone`, it would be there now
    assert.equal(gone.items.length, 1);
    assert.equal((await gateway.topic('room:lobby')).subscribers, 1);

    offKept();
    await c.ping(); // commands are handled in order: UNSUBSCRIBE is done once PONG is back
    assert.equal((await gateway.topic('room:lobby')).subscribers, 0);
  });

  test('refused topics reject ready with the gateway code; the others of the batch work', async () => {
    const c = await client();
    const inbox = new Inbox();
    const bad = c.subscribe('Not A Topic', () => {});
    const reserved = c.subscribe('system:secrets', () => {});
    const wildcard = c.subscribe('gift-list:*', () => {});
    const good = c.subscribe('gift-list:4', inbox.push);
    await assert.rejects(bad.ready, { code: 'INVALID_TOPIC', topic: 'Not A Topic' });
    await assert.rejects(reserved.ready, { code: 'RESERVED_TOPIC', topic: 'system:secrets' });
    await assert.rejects(wildcard.ready, { code: 'INVALID_TOPIC', topic: 'gift-list:*' });
    await good.ready;
    const reported = await c.errors.take(3);
    assert.deepEqual(reported.map((e) => e.code).sort(), ['INVALID_TOPIC', 'INVALID_TOPIC', 'RESERVED_TOPIC']);
    await gateway.publish(added('gift-list:4', 'g1'));
    await inbox.take(1);
  });

  test('a token rides on the URL (the gateway ignores it until auth is enabled)', async () => {
    const c = await client({ getToken: async () => 'tok-1' });
    const off = c.subscribe('user:456', () => {});
    await off.ready;
    assert.ok((await c.ping()) >= 0);
  });

  test('close() ends the connection and the subscriptions', async () => {
    const c = await client();
    const off = c.subscribe('order:789', () => {});
    await off.ready;
    await c.close();
    assert.equal(c.state, 'closed');
    await assert.rejects(c.ping(), { code: 'NOT_CONNECTED' });
  });

  test('the gateway serves the client modules at /static/js/ for browsers', async () => {
    const modules = (await readdir(new URL('../src/', import.meta.url))).filter((name) => name.endsWith('.js'));
    assert.ok(modules.includes('versions.js'), modules.join());
    for (const name of modules) {
      const response = await fetch(`${gateway.url}/static/js/${name}`);
      assert.equal(response.status, 200, name);
      assert.match(response.headers.get('content-type'), /^text\/javascript/);
      assert.equal(await response.text(), await readFile(new URL(`../src/${name}`, import.meta.url), 'utf8'));
    }
  });
});

describe('pattern subscriptions (privileged connections)', () => {
  let watched;
  before(async () => {
    watched = await startGateway({ extra: ['--allow-pattern-subscriptions'] });
  });
  after(() => watched?.stop());

  test('a pattern receives every matching topic once, and has no position', async () => {
    const c = connect(watched.wsUrl, FAST);
    clients.push(c);
    const seen = new Inbox();
    const direct = new Inbox();
    const off = c.subscribe('gift-list:*', seen.push);
    const offDirect = c.subscribe('gift-list:1', direct.push);
    assert.equal(await off.ready, null);
    await offDirect.ready;
    for (const topic of ['gift-list:1', 'room:lobby', 'gift-list:2:items']) await watched.publish(added(topic, 'g'));
    const events = await seen.take(2);
    assert.deepEqual(
      events.map((e) => `${e.topic}#${e.seq}`),
      ['gift-list:1#1', 'gift-list:2:items#1'],
    );
    assert.deepEqual(
      (await direct.take(1)).map((e) => e.seq),
      [1],
    );
  });
});
