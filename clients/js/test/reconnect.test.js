import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  Backoff,
  CloseCode,
  FLOOD_BACKOFF_MS,
  backoffDelay,
  reconnectDelay,
  shouldReconnect,
} from '../src/reconnect.js';

describe('shouldReconnect', () => {
  const cases = [
    [1000, false, 'normal closure: the closing side meant it'],
    [1001, true, 'server shutting down'],
    [1002, false, 'broken framing: fix the client'],
    [1006, true, 'dropped without a close frame'],
    [1007, false, 'not UTF-8: fix the client'],
    [1009, false, 'frame too big'],
    [1011, true, 'internal error'],
    [1012, true, 'service restart'],
    [4000, true, 'first of the reconnect range'],
    [4002, true, 'heartbeat timeout'],
    [4008, true, 'slow consumer'],
    [4029, true, 'command flood'],
    [4499, true, 'last of the reconnect range'],
    [4500, false, 'first of the do-not-reconnect range'],
    [4999, false, 'last of the do-not-reconnect range'],
    [3000, false, 'an application code the gateway does not send'],
  ];
  for (const [code, expected, why] of cases) {
    test(`${code} → ${expected ? 'reconnect' : 'stop'} (${why})`, () => {
      assert.equal(shouldReconnect(code), expected);
    });
  }

  test('the named codes follow the same rule', () => {
    assert.equal(shouldReconnect(CloseCode.GOING_AWAY), true);
    assert.equal(shouldReconnect(CloseCode.NORMAL), false);
  });
});

describe('backoffDelay', () => {
  test('doubles from the initial delay up to the maximum, with the draw as the factor', () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => backoffDelay(attempt, 250, 30_000, () => 1));
    assert.deepEqual(ceilings, [250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });

  test('full jitter: anywhere from zero to the ceiling', () => {
    assert.equal(
      backoffDelay(3, 250, 30_000, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(3, 250, 30_000, () => 0.5),
      1000,
    );
    for (let i = 0; i < 200; i += 1) {
      const delay = backoffDelay(4, 250, 30_000);
      assert.ok(delay >= 0 && delay <= 4000, `${delay} out of [0, 4000]`);
    }
  });

  test('stays finite for absurd attempt counts', () => {
    assert.equal(
      backoffDelay(10_000, 250, 30_000, () => 1),
      30_000,
    );
  });

  test('after close 4029 no attempt comes back sooner than several seconds', () => {
    const options = { backoffInitial: 250, backoffMax: 30_000 };
    assert.equal(
      reconnectDelay(0, 4029, options, () => 0),
      FLOOD_BACKOFF_MS,
    );
    assert.equal(
      reconnectDelay(0, 1001, options, () => 0),
      0,
    );
    assert.equal(
      reconnectDelay(10, 4029, options, () => 1),
      30_000,
    );
  });
});

describe('Backoff', () => {
  const OPTIONS = { backoffInitial: 1000, backoffMax: 64_000 };
  /** A clock the test moves by hand. */
  const fakeClock = () => {
    const clock = { now: 0, read: () => clock.now };
    return clock;
  };
  const ceilings = (backoff, count, code = 1011) =>
    Array.from({ length: count }, () => backoff.delay(code, OPTIONS, () => 1));

  test('connections that close at once do not reset it: a flapping node is retried ever more slowly', () => {
    const clock = fakeClock();
    const backoff = new Backoff({ stableAfter: 5000, now: clock.read });
    const delays = [];
    for (let i = 0; i < 6; i += 1) {
      delays.push(backoff.delay(1011, OPTIONS, () => 1));
      backoff.opened();
      clock.now += 200;
      backoff.closed();
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16_000, 32_000]);
  });

  test('a connection that stayed open stableAfter ms starts it again', () => {
    const clock = fakeClock();
    const backoff = new Backoff({ stableAfter: 5000, now: clock.read });
    assert.deepEqual(ceilings(backoff, 3), [1000, 2000, 4000]);
    backoff.opened();
    clock.now += 4999;
    backoff.closed();
    assert.deepEqual(ceilings(backoff, 1), [8000], 'not stable yet: still growing');
    backoff.opened();
    clock.now += 5000;
    backoff.closed();
    assert.deepEqual(ceilings(backoff, 2), [1000, 2000]);
  });

  test('it grows once per round of URLs, and keeps the flood floor after 4029', () => {
    const backoff = new Backoff({ stableAfter: 5000, step: (attempt) => Math.floor(attempt / 2) });
    assert.deepEqual(ceilings(backoff, 4), [1000, 1000, 2000, 2000]);
    assert.equal(
      backoff.delay(CloseCode.FLOODING, OPTIONS, () => 0),
      FLOOD_BACKOFF_MS,
    );
  });

  test('closed without opened (an attempt that failed) changes nothing', () => {
    const backoff = new Backoff({ stableAfter: 0 });
    ceilings(backoff, 3);
    backoff.closed();
    assert.equal(backoff.attempts, 3);
  });
});
