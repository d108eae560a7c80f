import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { checkHandlers, dispatch } from '../src/dispatch.js';

const event = (type, version) => ({ topic: 'gift-list:1', event: type, seq: 1, ...(version ? { version } : {}) });

/** Handlers that record their name when called, and the reported errors. */
function recorder() {
  const calls = [];
  const errors = [];
  const fn = (name) => () => calls.push(name);
  return { calls, errors, fn, report: (error) => errors.push(error) };
}

describe('dispatch', () => {
  test('one function receives every event', () => {
    const r = recorder();
    dispatch(r.fn('all'), event('ADDED'), r.report);
    dispatch(r.fn('all'), event('CUSTOM_THING'), r.report);
    assert.deepEqual(r.calls, ['all', 'all']);
  });

  test("by event type: the type's handler, then '*'", () => {
    const r = recorder();
    const handlers = { '*': r.fn('any'), ADDED: r.fn('added'), DELETED: r.fn('deleted') };
    dispatch(handlers, event('ADDED'), r.report);
    dispatch(handlers, event('UPDATED'), r.report);
    assert.deepEqual(r.calls, ['added', 'any', 'any']);
    assert.deepEqual(r.errors, []);
  });

  test('by version, as in the seed: a missing version is version 1', () => {
    const r = recorder();
    const handlers = { UPDATED: { 1: r.fn('v1'), 2: r.fn('v2') } };
    dispatch(handlers, event('UPDATED', 2), r.report);
    dispatch(handlers, event('UPDATED', 1), r.report);
    dispatch(handlers, event('UPDATED'), r.report);
    assert.deepEqual(r.calls, ['v2', 'v1', 'v1']);
  });

  test("a version map's '*' takes the versions it does not list", () => {
    const r = recorder();
    dispatch({ UPDATED: { 2: r.fn('v2'), '*': r.fn('other') } }, event('UPDATED', 3), r.report);
    assert.deepEqual(r.calls, ['other']);
  });

  test('an unknown version is reported, as the seed warns in its default branch', () => {
    const r = recorder();
    dispatch({ UPDATED: { 1: r.fn('v1') }, '*': r.fn('any') }, event('UPDATED', 7), r.report);
    assert.deepEqual(r.calls, ['any']);
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0].code, 'UNKNOWN_VERSION');
    assert.match(r.errors[0].message, /version 7 of UPDATED/);
  });

  test('a failing handler is reported, and the next one still runs', async () => {
    const r = recorder();
    const handlers = {
      ADDED: () => {
        throw new Error('boom');
      },
      '*': r.fn('any'),
    };
    dispatch(handlers, event('ADDED'), r.report);
    assert.deepEqual(r.calls, ['any']);
    assert.equal(r.errors[0].code, 'HANDLER_FAILED');
    assert.equal(r.errors[0].cause.message, 'boom');

    let reported;
    const rejected = new Promise((resolve) => (reported = resolve));
    dispatch(async () => Promise.reject(new Error('later')), event('ADDED'), reported);
    assert.equal((await rejected).cause.message, 'later');
  });

  test('only own keys count: a handler map is not searched up its prototype', () => {
    const r = recorder();
    dispatch({}, event('toString'), r.report);
    assert.deepEqual([r.calls, r.errors], [[], []]);
  });
});

describe('checkHandlers', () => {
  test('accepts functions, type maps and version maps', () => {
    checkHandlers(() => {});
    checkHandlers({ ADDED: () => {}, UPDATED: { 1: () => {}, 2: () => {}, '*': () => {} }, '*': () => {} });
  });

  test('refuses what could never be called', () => {
    assert.throws(() => checkHandlers(undefined), TypeError);
    assert.throws(() => checkHandlers({ ADDED: 'nope' }), /handlers.ADDED/);
    assert.throws(() => checkHandlers({ UPDATED: { v2: () => {} } }), /handlers.UPDATED.v2/);
    assert.throws(() => checkHandlers({ UPDATED: { 0: () => {} } }), /positive integers/);
    assert.throws(() => checkHandlers({ UPDATED: { 2: null } }), /handlers.UPDATED.2/);
  });
});
