/**
 * Several gateway URLs: the list and its rotation (endpoints.js), and the
 * client moving along it against scripted sockets. Against real gateways:
 * gateway-failover.test.js.
 */

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import { connect } from '../src/eventwire.js';
import { Endpoints } from '../src/endpoints.js';
import { fakeSocketClass } from './support/fake-socket.js';
import { Inbox, withTimeout } from './support/wait.js';

const A = 'ws://a.test/ws';
const B = 'ws://b.test/ws';
const C = 'ws://c.test/ws';

const clients = [];
afterEach(() => Promise.all(clients.splice(0).map((client) => client.close())));

function open(urls, options) {
  const client = connect(urls, { backoffInitial: 1, backoffMax: 5, pingInterval: 0, ...options });
  clients.push(client);
  return client;
}

/** The gateway's ERROR in place of CONNECTED, then its close: how a token is refused. */
function refuse(socket, code, closeCode) {
  const payload = { code, message: `${code.toLowerCase()} token`, details: {} };
  socket.deliver({ topic: 'error', event: 'ERROR', data: { entity_id: 'connection', payload } });
  socket.closeFromServer(closeCode);
}

describe('Endpoints', () => {
  test('one URL is always the current one', () => {
    const endpoints = new Endpoints('http://127.0.0.1:8000');
    assert.deepEqual(endpoints.urls, ['ws://127.0.0.1:8000/ws']);
    assert.equal(endpoints.advance(), 'ws://127.0.0.1:8000/ws');
    assert.deepEqual(
      [0, 1, 2].map((attempt) => endpoints.backoffStep(attempt)),
      [0, 1, 2],
    );
  });

  test('several URLs are tried round robin from the first', () => {
    const endpoints = new Endpoints([A, new URL('http://b.test'), C]);
    assert.equal(endpoints.current, A);
    assert.deepEqual(
      [1, 2, 3, 4].map(() => endpoints.advance()),
      [B, C, A, B],
    );
    assert.ok(Object.isFrozen(endpoints.urls));
  });

  test('the backoff grows once per round of URLs', () => {
    const endpoints = new Endpoints([A, B, C]);
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6].map((attempt) => endpoints.backoffStep(attempt)),
      [0, 0, 0, 1, 1, 1, 2],
    );
  });

  test('no URL, or a bad one, is refused', () => {
    assert.throws(() => new Endpoints([]), /at least one gateway URL/);
    assert.throws(() => new Endpoints([A, 'ftp://b.test']), /not a WebSocket URL: ftp:\/\/b\.test/);
  });
});

describe('client with several URLs (scripted gateways)', () => {
  test('the first connection tries each URL in turn without waiting and uses the first that answers', async (t) => {
    const timers = t.mock.method(globalThis, 'setTimeout');
    const WebSocket = fakeSocketClass();
    const client = open([A, B, C], { WebSocket, backoffInitial: 60_000, backoffMax: 60_000 });
    (await WebSocket.next()).closeFromServer(1006);
    (await WebSocket.next()).closeFromServer(1006);
    const third = await WebSocket.next();
    third.greet();
    await withTimeout(client.ready, 2000, 'the first connection');
    assert.deepEqual(
      WebSocket.sockets.map((socket) => socket.url),
      [A, B, C],
    );
    assert.deepEqual([client.url, client.urls], [C, [A, B, C]]);
    const backoffs = timers.mock.calls.filter((call) => call.arguments[1] >= 30_000);
    assert.deepEqual(backoffs, [], 'no backoff within the first round');
  });

  test('each reconnection attempt goes to the next URL; the backoff grows once per round', async (t) => {
    t.mock.method(Math, 'random', () => 0.5);
    const timers = t.mock.method(globalThis, 'setTimeout');
    const WebSocket = fakeSocketClass();
    const reconnects = new Inbox();
    const client = open([A, B], {
      WebSocket,
      backoffInitial: 8,
      backoffMax: 1000,
      connectTimeout: 20_000,
      onReconnect: reconnects.push,
    });
    (await WebSocket.next()).greet();
    await withTimeout(client.ready, 2000, 'the first connection');
    const sleepsBefore = timers.mock.calls.length;

    WebSocket.sockets[0].closeFromServer(1006); // the node is gone
    for (let attempt = 0; attempt < 4; attempt += 1) (await WebSocket.next()).closeFromServer(1006);
    (await WebSocket.next()).greet();
    await reconnects.take(1);

    assert.deepEqual(
      WebSocket.sockets.map((socket) => socket.url),
      [A, B, A, B, A, B],
    );
    assert.equal(client.url, B);
    const sleeps = timers.mock.calls
      .slice(sleepsBefore)
      .map((call) => call.arguments[1])
      .filter((ms) => ms < 1000); // not the connect or test timeouts
    // half of each ceiling: 8 ms for the first round of two URLs, 16 for the second, 32 for the third
    assert.deepEqual(sleeps, [4, 4, 8, 8, 16]);
  });

  test('a refusal for good (4501) is not tried on another URL', async () => {
    const WebSocket = fakeSocketClass();
    const closes = new Inbox();
    const client = open([A, B], { WebSocket, token: 'bad', onClose: closes.push });
    refuse(await WebSocket.next(), 'UNAUTHORIZED', 4501);
    await assert.rejects(withTimeout(client.ready, 2000, 'the refusal'), (error) => {
      assert.equal(error.code, 'CONNECTION_LOST');
      assert.equal(error.closeCode, 4501);
      assert.equal(error.cause.code, 'UNAUTHORIZED');
      assert.match(error.message, /refused the connection \(UNAUTHORIZED: unauthorized token\) and closed with 4501/);
      return true;
    });
    const [info] = await closes.take(1);
    assert.deepEqual([info.code, client.state, WebSocket.sockets.length], [4501, 'closed', 1]);
  });

  test('the same rule on a reconnection: revoked (4503) stops the client', async () => {
    const WebSocket = fakeSocketClass();
    const closes = new Inbox();
    const client = open([A, B], { WebSocket, onClose: closes.push });
    (await WebSocket.next()).greet();
    await withTimeout(client.ready, 2000, 'the first connection');
    WebSocket.sockets[0].closeFromServer(1001);
    refuse(await WebSocket.next(), 'REVOKED', 4503);
    const [info] = await closes.take(1);
    assert.deepEqual([info.code, info.error.code, info.error.cause.code], [4503, 'CONNECTION_LOST', 'REVOKED']);
    assert.equal(WebSocket.sockets.length, 2);
  });

  test('a refusal that allows a retry (4001, expired) moves on with a fresh token', async () => {
    const WebSocket = fakeSocketClass();
    let issued = 0;
    const client = open([A, B], { WebSocket, getToken: () => `t${++issued}` });
    refuse(await WebSocket.next(), 'TOKEN_EXPIRED', 4001);
    const second = await WebSocket.next();
    assert.equal(second.url, `${B}?token=t2`);
    second.greet();
    await withTimeout(client.ready, 2000, 'the first connection');
  });

  test('maxReconnectAttempts counts attempts on every URL; the first connection tries each at least once', async () => {
    const WebSocket = fakeSocketClass();
    const client = open([A, B, C], { WebSocket, maxReconnectAttempts: 1 });
    for (let attempt = 0; attempt < 3; attempt += 1) (await WebSocket.next()).closeFromServer(1006);
    const gaveUp = withTimeout(client.ready, 2000, 'giving up');
    await assert.rejects(gaveUp, (error) => error.code === 'CONNECTION_LOST' && /3 failed/.test(error.message));
    assert.equal(WebSocket.sockets.length, 3);

    const once = fakeSocketClass();
    const single = open([A, B], { WebSocket: once, reconnect: false });
    (await once.next()).closeFromServer(1006);
    (await once.next()).greet();
    // reconnect: false still tries every URL once for the first connection
    await withTimeout(single.ready, 2000, 'the first connection');
    assert.equal(single.url, B);
  });
});
