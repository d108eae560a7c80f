import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { commandFrame, decodeFrame, subscribePayload, withToken, wsUrl } from '../src/frames.js';

describe('wsUrl', () => {
  test('keeps ws and wss URLs', () => {
    assert.equal(wsUrl('ws://127.0.0.1:8000/ws'), 'ws://127.0.0.1:8000/ws');
    assert.equal(wsUrl('wss://example.test/events/ws'), 'wss://example.test/events/ws');
  });

  test('points an http(s) base URL at its /ws', () => {
    assert.equal(wsUrl('http://127.0.0.1:8000'), 'ws://127.0.0.1:8000/ws');
    assert.equal(wsUrl('https://example.test/'), 'wss://example.test/ws');
    assert.equal(wsUrl('http://127.0.0.1:8000/gateway/ws'), 'ws://127.0.0.1:8000/gateway/ws');
  });

  test("resolves a path against the page's address, as in a browser", () => {
    assert.equal(wsUrl('/ws', 'https://app.example.test/lists/123'), 'wss://app.example.test/ws');
  });

  test('refuses what is not a WebSocket URL', () => {
    assert.throws(() => wsUrl('ftp://example.test/ws'), TypeError);
    assert.throws(() => wsUrl('not a url'), TypeError);
  });
});

test('withToken sets ?token=, encoded, keeping other parameters', () => {
  assert.equal(withToken('ws://h:1/ws', 'a b&c'), 'ws://h:1/ws?token=a+b%26c');
  assert.equal(withToken('ws://h:1/ws?x=1&token=old', 't2'), 'ws://h:1/ws?x=1&token=t2');
});

test('commandFrame is a system frame with the request id as entity_id', () => {
  assert.deepEqual(JSON.parse(commandFrame('SUBSCRIBE', 'r1', { topics: ['a:b'] })), {
    topic: 'system',
    event: 'SUBSCRIBE',
    data: { entity_id: 'r1', payload: { topics: ['a:b'] } },
  });
  assert.equal(JSON.parse(commandFrame('PING', 'r2')).data.payload, null);
});

test("subscribePayload carries 'since' only when there are positions", () => {
  assert.deepEqual(subscribePayload(['a:b']), { topics: ['a:b'] });
  assert.deepEqual(subscribePayload(['a:b'], {}), { topics: ['a:b'] });
  const since = { 'a:b': { seq: 3, epoch: 'e' } };
  assert.deepEqual(subscribePayload(['a:b'], since), { topics: ['a:b'], since });
});

describe('decodeFrame', () => {
  const frame = { topic: 'a:b', event: 'ADDED', data: { entity_id: 'x', payload: null }, seq: 1 };

  test('reads text and binary frames', () => {
    assert.deepEqual(decodeFrame(JSON.stringify(frame)), frame);
    assert.deepEqual(decodeFrame(new TextEncoder().encode(JSON.stringify(frame))), frame);
    assert.deepEqual(decodeFrame(new TextEncoder().encode(JSON.stringify(frame)).buffer), frame);
  });

  test('keeps fields it does not know', () => {
    assert.equal(decodeFrame(JSON.stringify({ ...frame, later: 1 })).later, 1);
  });

  test('refuses what is not an envelope, saying why', () => {
    const bad = [
      ['{', /not JSON/],
      ['[]', /not an object/],
      [JSON.stringify({ ...frame, topic: 1 }), /topic/],
      [JSON.stringify({ ...frame, data: null }), /data/],
      [JSON.stringify({ ...frame, data: {} }), /entity_id/],
      [JSON.stringify({ ...frame, seq: 1.5 }), /seq/],
    ];
    for (const [text, why] of bad) {
      assert.throws(
        () => decodeFrame(text),
        (error) => error.code === 'INVALID_FRAME' && why.test(error.message),
      );
    }
  });
});
