/**
 * The client against a scripted WebSocket: the test plays the gateway, so
 * every branch (close codes, duplicates, gaps, timeouts) is reached without
 * a network. The same behaviour against a real gateway: gateway-*.test.js.
 */

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import { EventwireError, connect } from '../src/eventwire.js';
import { fakeSocketClass } from './support/fake-socket.js';
import { Inbox, withTimeout } from './support/wait.js';

const URL = 'ws://gateway.test/ws';
const T = 'gift-list:1';
const FAST = { backoffInitial: 1, backoffMax: 5 };

/** Every client a test made: closed after it, passed or failed, so no timer outlives the test. */
const clients = [];
afterEach(() => Promise.all(clients.splice(0).map((client) => client.close())));

/** `connect` on a fake socket class, remembered for afterEach. */
function open(WebSocket, options = {}) {
  const client = connect(URL, { WebSocket, ...FAST, ...options });
  clients.push(client);
  return client;
}

/** A client on a fake socket, its first socket greeted, and inboxes for its callbacks. */
async function connected(options = {}) {
  const WebSocket = fakeSocketClass();
  const errors = new Inbox();
  const closes = new Inbox();
  const reconnects = new Inbox();
  const client = open(WebSocket, {
    onError: errors.push,
    onClose: closes.push,
    onReconnect: reconnects.push,
    ...options,
  });
  const socket = await WebSocket.next();
  socket.greet();
  await client.ready;
  return { client, WebSocket, socket, errors, closes, reconnects };
}

/** Subscribe `topic`, answer its SUBSCRIBE at (seq, epoch), return the events inbox. */
async function subscribed(client, socket, topic = T, seq = 0, epoch = 'e1', options = {}) {
  const events = new Inbox();
  const off = client.subscribe(topic, events.push, options);
  const command = await socket.nextCommand();
  assert.equal(command.event, 'SUBSCRIBE');
  socket.subscribed(command, { [topic]: [seq, epoch] });
  await off.ready;
  return { events, off };
}

describe('client (scripted gateway)', () => {
  test('without a WebSocket constructor it says how to get one', () => {
    const builtIn = globalThis.WebSocket;
    delete globalThis.WebSocket;
    try {
      assert.throws(() => connect(URL, { token: undefined }), /--experimental-websocket/);
    } finally {
      if (builtIn !== undefined) globalThis.WebSocket = builtIn;
    }
  });

  test('topics subscribed before the connection go out in one SUBSCRIBE', async () => {
    const WebSocket = fakeSocketClass();
    const client = connect('http://gateway.test', { WebSocket, ...FAST });
    clients.push(client);
    const a = client.subscribe('a:1', () => {});
    const b = client.subscribe('b:1', () => {});
    const socket = await WebSocket.next();
    assert.equal(socket.url, 'ws://gateway.test/ws');
    socket.greet();
    const command = await socket.nextCommand();
    assert.deepEqual(command.data.payload, { topics: ['a:1', 'b:1'] });
    socket.subscribed(command, { 'a:1': [4, 'e1'], 'b:1': [0, 'e1'] });
    assert.deepEqual(await a.ready, { seq: 4, epoch: 'e1' });
    assert.deepEqual(await b.ready, { seq: 0, epoch: 'e1' });
    assert.equal(client.state, 'open');
    await client.close();
  });

  test('duplicates are dropped and a seq jump is reported as a gap', async () => {
    const { client, socket } = await connected();
    const gaps = new Inbox();
    const { events } = await subscribed(client, socket, T, 5, 'e1', { onGap: gaps.push });
    for (const seq of [6, 6, 5, 9, 9, 10]) socket.event(T, seq);
    await events.take(3);
    assert.deepEqual(
      events.items.map((e) => e.seq),
      [6, 9, 10],
    );
    assert.deepEqual(gaps.items, [{ topic: T, first: 7, last: 8, epoch: 'e1', historyLost: false, count: 2 }]);
    assert.deepEqual(client.positions.get(T), { seq: 10, epoch: 'e1' });
    await client.close();
  });

  test('events that arrive before SUBSCRIBED are held and then delivered', async () => {
    const { client, socket } = await connected();
    const events = new Inbox();
    const off = client.subscribe(T, events.push);
    const command = await socket.nextCommand();
    socket.event(T, 3);
    assert.equal(events.items.length, 0);
    socket.subscribed(command, { [T]: [3, 'e1'] });
    await off.ready;
    socket.event(T, 4);
    assert.deepEqual(
      (await events.take(2)).map((e) => e.seq),
      [3, 4],
    );
    await client.close();
  });

  test('two subscriptions of one topic share one SUBSCRIBE; unsubscribing the last sends UNSUBSCRIBE', async () => {
    const { client, socket } = await connected();
    const { events: first, off: offFirst } = await subscribed(client, socket);
    const second = new Inbox();
    const offSecond = client.subscribe(T, second.push);
    assert.deepEqual(await offSecond.ready, { seq: 0, epoch: 'e1' }); // confirmed at once: no new SUBSCRIBE
    socket.event(T, 1);
    await first.take(1);
    await second.take(1);
    offFirst();
    socket.event(T, 2);
    await second.take(2);
    assert.equal(first.items.length, 1);
    offSecond();
    const command = await socket.nextCommand();
    assert.deepEqual([command.event, command.data.payload], ['UNSUBSCRIBE', { topics: [T] }]);
    assert.equal(socket.sent.length, 2, 'one SUBSCRIBE and one UNSUBSCRIBE in all');
    await client.close();
  });

  test('a refused topic rejects ready with the gateway error and tells onError', async () => {
    const { client, socket, errors } = await connected();
    const off = client.subscribe('Bad Topic', () => {});
    const command = await socket.nextCommand();
    const payload = { code: 'INVALID_TOPIC', message: 'invalid topic', details: { topic: 'Bad Topic' } };
    socket.deliver({ topic: 'error', event: 'ERROR', data: { entity_id: command.data.entity_id, payload } });
    socket.subscribed(command, {});
    await assert.rejects(off.ready, (error) => error instanceof EventwireError && error.code === 'INVALID_TOPIC');
    const [reported] = await errors.take(1);
    assert.equal(reported.topic, 'Bad Topic');
    await client.close();
  });

  test('close codes 4500–4999 end the client: no reconnection', async () => {
    const { client, WebSocket, socket, closes } = await connected();
    socket.closeFromServer(4501, 'banned');
    const [info] = await closes.take(1);
    assert.equal(info.code, 4501);
    assert.equal(info.error.code, 'CONNECTION_LOST');
    assert.equal(client.state, 'closed');
    assert.equal(WebSocket.sockets.length, 1);
    await client.close(); // already closed: resolves, changes nothing
  });

  test('a node that accepts and closes at once is retried ever more slowly', async () => {
    /** Sockets opened within `windowMs` against a node that greets, then closes with 1011. */
    const flapping = async (stableAfter, windowMs = 400) => {
      const WebSocket = fakeSocketClass();
      const client = open(WebSocket, { backoffInitial: 10, backoffMax: 10_000, stableAfter, onError: () => {} });
      const ends = performance.now() + windowMs;
      while (performance.now() < ends) {
        let socket;
        try {
          socket = await WebSocket.next(Math.max(1, ends - performance.now()));
        } catch {
          break; // the window is over while the client waits out its backoff
        }
        socket.greet();
        await new Promise((resolve) => setImmediate(resolve)); // the close is a later task, as on a network
        socket.closeFromServer(1011, 'internal error');
      }
      assert.equal(client.state, 'reconnecting');
      await client.close();
      return WebSocket.sockets.length;
    };
    // Ceilings 10, 20, 40 ... ms: a handful of attempts fit in 400 ms. Were
    // the backoff reset by every open, each would wait at most 10 ms.
    const slowed = await flapping(5000);
    assert.ok(slowed >= 2 && slowed <= 12, `${slowed} connections`);
    const resetEveryTime = await flapping(0);
    assert.ok(resetEveryTime > 2 * slowed, `${resetEveryTime} connections, against ${slowed}`);
  });

  test('close 1000 from the gateway ends the client too', async () => {
    const { client, WebSocket, socket, closes } = await connected();
    socket.closeFromServer(1000);
    assert.equal((await closes.take(1))[0].code, 1000);
    assert.equal(WebSocket.sockets.length, 1);
    assert.equal(client.state, 'closed');
  });

  test('a reconnect-range close reconnects, resubscribes and reports a lost history', async () => {
    const { client, WebSocket, socket, reconnects } = await connected({ recover: false });
    const gaps = new Inbox();
    const { events } = await subscribed(client, socket, T, 0, 'old', { onGap: gaps.push });
    socket.event(T, 1);
    await events.take(1);

    socket.closeFromServer(4008, 'slow consumer');
    assert.equal(client.state, 'reconnecting');
    const next = await WebSocket.next();
    next.greet();
    const command = await next.nextCommand();
    assert.deepEqual(command.data.payload, { topics: [T] }, 'no since: recovery is off');
    next.subscribed(command, { [T]: [0, 'new'] });
    const [notice] = await reconnects.take(1);
    const lost = { topic: T, first: 1, last: 0, epoch: 'new', historyLost: true, count: 0 };
    assert.deepEqual(notice, { count: 1, closeCode: 4008, gaps: [lost] });
    assert.deepEqual(gaps.items, [lost]);
    next.event(T, 1); // seq 1 of the new epoch is a new event
    assert.deepEqual(
      (await events.take(2)).map((e) => e.seq),
      [1, 1],
    );
    await client.close();
  });

  test("by default each topic's position goes as 'since' when resubscribing; replays fill the hole", async () => {
    const { client, WebSocket, socket, reconnects } = await connected();
    const gaps = new Inbox();
    const { events } = await subscribed(client, socket, T, 6, 'e1', { onGap: gaps.push });
    socket.event(T, 7);
    await events.take(1);
    socket.closeFromServer(1001);
    const next = await WebSocket.next();
    next.greet();
    const command = await next.nextCommand();
    assert.deepEqual(command.data.payload, { topics: [T], since: { [T]: { seq: 7, epoch: 'e1' } } });
    next.subscribed(command, { [T]: [9, 'e1'] }, { [T]: true });
    const [notice] = await reconnects.take(1);
    assert.deepEqual(notice.gaps, []);
    for (const seq of [7, 8, 9, 10]) next.event(T, seq); // 7 again: a duplicate
    assert.deepEqual(
      (await events.take(4)).map((e) => e.seq),
      [7, 8, 9, 10],
    );
    assert.deepEqual(gaps.items, []);
    await client.close();
  });

  test('recovered: false, then RECOVERY_FAILED: one lost-history gap', async () => {
    const { client, WebSocket, socket, reconnects } = await connected();
    const gaps = new Inbox();
    const { events } = await subscribed(client, socket, T, 6, 'e1', { onGap: gaps.push });
    socket.event(T, 7);
    await events.take(1);
    socket.closeFromServer(1012);
    const next = await WebSocket.next();
    next.greet();
    const command = await next.nextCommand();
    next.subscribed(command, { [T]: [12, 'e1'] }, { [T]: false });
    const position = { seq: 12, epoch: 'e1' };
    next.deliver({
      topic: 'system',
      event: 'RECOVERY_FAILED',
      data: { entity_id: command.data.entity_id, payload: { topic: T, position, reason: 'history_truncated' } },
    });
    const [notice] = await reconnects.take(1);
    const lost = { topic: T, first: 8, last: 12, epoch: 'e1', historyLost: true, count: 5 };
    assert.deepEqual(notice.gaps, [lost]);
    next.event(T, 13);
    await events.take(2);
    assert.deepEqual(gaps.items, [lost]);
    await client.close();
  });

  test('RECOVERY_FAILED alone reports the lost history', async () => {
    const { client, socket } = await connected();
    const gaps = new Inbox();
    await subscribed(client, socket, T, 6, 'e1', { onGap: gaps.push });
    socket.deliver({
      topic: 'system',
      event: 'RECOVERY_FAILED',
      data: { entity_id: 'x', payload: { topic: T, position: { seq: 9, epoch: 'e2' }, reason: 'epoch_changed' } },
    });
    assert.deepEqual(gaps.items, [{ topic: T, first: 1, last: 9, epoch: 'e2', historyLost: true, count: 9 }]);
    await client.close();
  });

  test('the token goes on the URL; getToken is asked before every connection', async () => {
    let calls = 0;
    const getToken = async () => `t${++calls}`;
    const { client, WebSocket, socket } = await connected({ getToken });
    assert.equal(socket.url, `${URL}?token=t1`);
    socket.closeFromServer(1011);
    assert.equal((await WebSocket.next()).url, `${URL}?token=t2`);
    await client.close();

    const fixed = await connected({ token: 'secret' });
    assert.equal(fixed.socket.url, `${URL}?token=secret`);
    await fixed.client.close();
  });

  test('a getToken that fails while reconnecting is retried, never the end of the client', async () => {
    let calls = 0;
    const getToken = () => {
      calls += 1;
      if (calls === 2 || calls === 3) throw new Error('identity provider down');
      return `t${calls}`;
    };
    const { client, WebSocket, socket, reconnects } = await connected({ getToken });
    socket.closeFromServer(1011);
    const next = await WebSocket.next();
    assert.equal(next.url, `${URL}?token=t4`, 'two attempts failed on getToken, the third connected');
    assert.equal(client.state, 'reconnecting');
    next.greet();
    assert.equal((await reconnects.take(1))[0].closeCode, 1011);
    assert.equal(client.state, 'open');
  });

  test('validate refuses events: reported, not delivered, and the hole is a gap', async () => {
    const validate = (event) => event.data.payload.seq !== 2;
    const { client, socket, errors } = await connected({ validate });
    const gaps = new Inbox();
    const { events } = await subscribed(client, socket, T, 0, 'e1', { onGap: gaps.push });
    for (const seq of [1, 2, 3]) socket.event(T, seq);
    await events.take(2);
    assert.deepEqual(
      events.items.map((e) => e.seq),
      [1, 3],
    );
    assert.equal((await errors.take(1))[0].code, 'INVALID_EVENT');
    assert.deepEqual(
      gaps.items.map((g) => [g.first, g.last]),
      [[2, 2]],
    );
    await client.close();
  });

  test('validate may throw, or return a zod-style {success: false}', async () => {
    const verdicts = [{ success: false, error: new Error('bad shape') }, { success: true }];
    const validate = (event) => {
      if (event.seq === 1) throw new Error('thrown');
      return verdicts[event.seq - 2];
    };
    const { client, socket, errors } = await connected({ validate });
    const { events } = await subscribed(client, socket);
    for (const seq of [1, 2, 3]) socket.event(T, seq);
    await events.take(1);
    assert.deepEqual(
      events.items.map((e) => e.seq),
      [3],
    );
    const reported = await errors.take(2);
    assert.deepEqual(
      reported.map((e) => e.cause.message),
      ['thrown', 'bad shape'],
    );
    await client.close();
  });

  test('a SUBSCRIBE refused as a whole (RATE_LIMITED) drops the connection and the next one resubscribes', async () => {
    const { client, WebSocket, socket, errors } = await connected();
    const off = client.subscribe(T, () => {});
    const command = await socket.nextCommand();
    const payload = { code: 'RATE_LIMITED', message: 'slow down', details: {} };
    socket.deliver({ topic: 'error', event: 'ERROR', data: { entity_id: command.data.entity_id, payload } });
    assert.equal((await errors.take(1))[0].code, 'RATE_LIMITED');
    const next = await WebSocket.next();
    next.greet();
    const again = await next.nextCommand();
    assert.deepEqual(again.data.payload, { topics: [T] });
    next.subscribed(again, { [T]: [0, 'e1'] });
    await off.ready;
    await client.close();
  });

  test('a connection that answers nothing is noticed by the heartbeat and replaced', async () => {
    const { client, WebSocket, socket } = await connected({ pingInterval: 10, requestTimeout: 30 });
    const ping = await socket.nextCommand();
    assert.equal(ping.event, 'PING');
    const next = await WebSocket.next(); // no PONG: dropped, and a new socket opened
    assert.equal(socket.closedWith.code, 1000);
    next.greet();
    await client.close();
  });

  test('ping() measures a round trip', async () => {
    const { client, socket } = await connected();
    const rtt = client.ping();
    const command = await socket.nextCommand();
    socket.deliver({ topic: 'system', event: 'PONG', data: { entity_id: command.data.entity_id, payload: {} } });
    assert.ok((await rtt) >= 0);
    await client.close();
  });

  test('ERRORs that answer no command go to onError', async () => {
    const { client, socket, errors } = await connected();
    const payload = { code: 'INVALID_JSON', message: 'not JSON', details: {} };
    socket.deliver({ topic: 'error', event: 'ERROR', data: { entity_id: 'connection', payload } });
    socket.deliver('not json at all');
    const [first, second] = await errors.take(2);
    assert.deepEqual([first.code, first.requestId, second.code], ['INVALID_JSON', 'connection', 'INVALID_FRAME']);
    await client.close();
  });

  test('a gateway that never greets is retried, and maxReconnectAttempts gives up', async () => {
    const WebSocket = fakeSocketClass();
    const closes = new Inbox();
    const client = open(WebSocket, { maxReconnectAttempts: 2, onClose: closes.push });
    (await WebSocket.next()).closeFromServer(1006);
    (await WebSocket.next()).deliver({ topic: 'system', event: 'PONG', data: { entity_id: 'x', payload: {} } });
    await assert.rejects(client.ready, (error) => error.code === 'CONNECTION_LOST' && /2 failed/.test(error.message));
    assert.equal((await closes.take(1))[0].error.cause.code, 'UNREACHABLE');
    assert.equal(WebSocket.sockets.length, 2);
    assert.equal(client.state, 'closed');
  });

  test('close() while the greeting is on its way leaves nothing running', async () => {
    const WebSocket = fakeSocketClass();
    const client = open(WebSocket, { pingInterval: 5 });
    const socket = await WebSocket.next();
    socket.greet(); // read by the client, but the connection is not yet its own
    await client.close();
    assert.deepEqual([client.state, client.connected, socket.readyState], ['closed', false, 3]);
    await assert.rejects(client.ready, { code: 'CLOSED' });
  });

  test('close() before the first connection rejects ready and ends subscriptions', async () => {
    const WebSocket = fakeSocketClass();
    const client = open(WebSocket);
    const off = client.subscribe(T, () => {});
    await WebSocket.next();
    await withTimeout(client.close(), 1000, 'close()');
    await assert.rejects(client.ready, { code: 'CLOSED' });
    await assert.rejects(off.ready, { code: 'CLOSED' });
    await assert.rejects(client.subscribe(T, () => {}).ready, { code: 'CLOSED' });
  });
});
