/**
 * liveCollection against a stand-in client: the test decides when the
 * subscription is confirmed, which events arrive, when gaps happen and when
 * each fetch returns, so every interleaving is reached without a network.
 * The same against a real gateway: gateway-live-collection.test.js.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { liveCollection } from '../src/eventwire.js';
import { withStatus } from '../src/live-collection.js';
import { Inbox } from './support/wait.js';

const T = 'gift-list:1';

/** The part of a Client a live collection uses: subscribe(topic, handler, {onGap}). */
class StandInClient {
  subscriptions = [];
  #seq = 0;

  subscribe(topic, handler, { onGap }) {
    let confirm;
    let refuse;
    const ready = new Promise((resolve, reject) => ((confirm = resolve), (refuse = reject)));
    ready.catch(() => {});
    const off = Object.assign(() => (sub.active = false), { topic, ready });
    const sub = { topic, handler, onGap, confirm, refuse, active: true };
    this.subscriptions.push(sub);
    return off;
  }

  get sub() {
    return this.subscriptions.at(-1);
  }

  /** One event, as the client hands it to handlers. */
  emit(event, entityId, payload, extra = {}) {
    this.sub.handler({
      topic: T,
      event,
      data: { entity_id: entityId, payload, timestamp: 'T' },
      seq: ++this.#seq,
      ...extra,
    });
  }

  gap() {
    this.sub.onGap({ topic: T, first: 1, last: 0, epoch: 'new', historyLost: true, count: 0 });
  }
}

/**
 * A back end whose answers the test releases one by one: `calls` records
 * each fetch's argument; `answer(value)` resolves the oldest pending one.
 */
class Backend {
  calls = new Inbox();
  #pending = [];

  fetch = (entityId) => {
    this.calls.push(entityId);
    return new Promise((resolve, reject) => this.#pending.push({ resolve, reject }));
  };

  /** Resolve the oldest fetch still waiting (waiting for it to be made first). */
  async answer(value, index = this.#answered) {
    await this.calls.take(index + 1);
    this.#answered = index + 1;
    this.#pending[index].resolve(value);
  }

  async fail(error) {
    await this.calls.take(this.#answered + 1);
    this.#pending[this.#answered++].reject(error);
  }

  #answered = 0;
}

const kite = { id: 'g1', name: 'Kite', price: 10, status: 'available' };
const yoyo = { id: 'g2', name: 'Yo-yo', price: 3, status: 'available' };

/** A collection filled with `items` by its first fetch; `changes` collects [items snapshot, event]. */
async function filled(items = [kite, yoyo], options = {}) {
  const client = new StandInClient();
  const backend = new Backend();
  const errors = new Inbox();
  const changes = new Inbox();
  const gifts = liveCollection(client, T, {
    fetch: backend.fetch,
    onError: errors.push,
    onChange: (map, event) => changes.push([Object.fromEntries(map), event]),
    ...options,
  });
  client.sub.confirm({ seq: 0, epoch: 'e1' });
  await backend.answer(items);
  await gifts.ready;
  return { client, backend, gifts, errors, changes };
}

/** Wait until the collection has applied `count` changes in all. */
const settled = (changes, count) => changes.take(count).then(() => changes.items.at(-1)[0]);

describe('liveCollection', () => {
  test('fetches once the subscription is confirmed, not before', async () => {
    const client = new StandInClient();
    const backend = new Backend();
    const gifts = liveCollection(client, T, { fetch: backend.fetch });
    await Promise.resolve();
    assert.equal(backend.calls.items.length, 0);
    client.sub.confirm({ seq: 0, epoch: 'e1' });
    await backend.answer([kite]);
    await gifts.ready;
    assert.deepEqual(backend.calls.items, [undefined]);
    assert.deepEqual([...gifts.items.keys()], ['g1']);
  });

  test('ADDED sets, UPDATED merges a partial DTO, DELETED deletes', async () => {
    const { client, gifts, changes } = await filled();
    client.emit('ADDED', 'g3', { id: 'g3', name: 'Ball', price: 5 });
    client.emit('UPDATED', 'g1', { price: 12, notes: 'blue' });
    client.emit('DELETED', 'g2', null);
    const items = await settled(changes, 4);
    assert.deepEqual(items, {
      g1: { ...kite, price: 12, notes: 'blue' },
      g3: { id: 'g3', name: 'Ball', price: 5 },
    });
    assert.deepEqual(
      changes.items.slice(1).map(([, event]) => event.event),
      ['ADDED', 'UPDATED', 'DELETED'],
    );
    assert.equal(gifts.items.get('g1').name, 'Kite');
  });

  test('UPDATED with a full DTO replaces the item, as a new object', async () => {
    const { client, gifts, changes } = await filled();
    const before = gifts.items.get('g1');
    const dto = { id: 'g1', name: 'Big kite', price: 15, status: 'available' };
    client.emit('UPDATED', 'g1', dto);
    assert.deepEqual((await settled(changes, 2)).g1, dto);
    assert.notEqual(gifts.items.get('g1'), before);
    assert.deepEqual(before, kite, 'the old item object is left as it was');
  });

  test("updates: 'replace' drops the fields a DTO leaves out; 'merge' keeps them", async () => {
    const replaced = await filled([kite], { updates: 'replace' });
    replaced.client.emit('UPDATED', 'g1', { id: 'g1', name: 'Kite' });
    assert.deepEqual((await settled(replaced.changes, 2)).g1, { id: 'g1', name: 'Kite' });

    const merged = await filled([kite]);
    merged.client.emit('UPDATED', 'g1', { id: 'g1', name: 'Kite', price: null });
    assert.deepEqual((await settled(merged.changes, 2)).g1, { id: 'g1', name: 'Kite', status: 'available' });
  });

  test('STATUS_CHANGED sets status and copies the extra fields, not old_status', async () => {
    const { client, changes } = await filled();
    const payload = { id: 'g1', old_status: 'available', new_status: 'purchased', purchased_by: 'user-789' };
    client.emit('STATUS_CHANGED', 'g1', payload);
    assert.deepEqual((await settled(changes, 2)).g1, { ...kite, status: 'purchased', purchased_by: 'user-789' });
  });

  test('statusField names the field a status change sets', () => {
    assert.deepEqual(withStatus({ id: 'a', state: 'x' }, { new_status: 'y' }, 'state'), { id: 'a', state: 'y' });
  });

  test('a reference-only event fetches its entity; null from fetch deletes it', async () => {
    const { client, backend, changes } = await filled();
    client.emit('UPDATED', 'g1', null);
    await backend.answer({ ...kite, name: 'Fetched kite' });
    assert.equal((await settled(changes, 2)).g1.name, 'Fetched kite');
    client.emit('ADDED', 'g9', null);
    await backend.answer(null);
    await changes.take(3);
    assert.deepEqual(backend.calls.items, [undefined, 'g1', 'g9']);
    assert.equal('g9' in changes.items.at(-1)[0], false);
  });

  test('a patch or a status change for an unknown item fetches that item', async () => {
    const { client, backend, changes } = await filled([]);
    client.emit('UPDATED', 'g1', { price: 12 });
    await backend.answer({ ...kite, price: 12 });
    client.emit('STATUS_CHANGED', 'g2', { new_status: 'purchased' });
    await backend.answer({ ...yoyo, status: 'purchased' });
    const items = await settled(changes, 3);
    assert.deepEqual(backend.calls.items, [undefined, 'g1', 'g2']);
    assert.deepEqual(items, { g1: { ...kite, price: 12 }, g2: { ...yoyo, status: 'purchased' } });
  });

  test('events behind a fetch wait for it, then apply over what it returned', async () => {
    const { client, backend, changes } = await filled();
    client.emit('UPDATED', 'g1', null); // fetch in flight...
    client.emit('UPDATED', 'g1', { price: 99 }); // ...these wait for it
    client.emit('DELETED', 'g2', null);
    assert.equal(changes.items.length, 1);
    await backend.answer({ ...kite, name: 'Fetched' });
    const items = await settled(changes, 4);
    assert.deepEqual(items, { g1: { ...kite, name: 'Fetched', price: 99 } });
  });

  test('events during the first fetch apply over its result, in order', async () => {
    const client = new StandInClient();
    const backend = new Backend();
    const changed = new Inbox();
    const gifts = liveCollection(client, T, { fetch: backend.fetch, onChange: (_, event) => changed.push(event) });
    client.sub.confirm({ seq: 0, epoch: 'e1' });
    await backend.calls.take(1);
    client.emit('UPDATED', 'g1', { price: 11 });
    client.emit('ADDED', 'g3', { id: 'g3' });
    await backend.answer([kite]);
    await gifts.ready;
    await changed.take(3);
    assert.deepEqual(
      changed.items.map((event) => event?.event ?? null),
      [null, 'UPDATED', 'ADDED'],
    );
    assert.deepEqual(Object.fromEntries(gifts.items), { g1: { ...kite, price: 11 }, g3: { id: 'g3' } });
  });

  test('a gap refetches everything, superseding the events still queued', async () => {
    const { client, backend, changes } = await filled();
    client.emit('UPDATED', 'g1', null); // a fetch of g1 in flight
    client.emit('ADDED', 'g5', null); // queued: would fetch g5
    client.gap();
    await backend.answer(kite); // g1 answered
    await backend.answer([yoyo]); // then the refetch: g5 was never fetched
    const items = await settled(changes, 3);
    assert.deepEqual(backend.calls.items, [undefined, 'g1', undefined]);
    assert.deepEqual(items, { g2: yoyo });
    assert.equal(changes.items.at(-1)[1], null, 'a full fetch is announced with event null');
  });

  test('fetch may answer a Map or an object by id; key picks the id of array items', async () => {
    const byMap = await filled(new Map([['g1', kite]]));
    assert.deepEqual([...byMap.gifts.items.keys()], ['g1']);
    const byObject = await filled({ g2: yoyo });
    assert.deepEqual([...byObject.gifts.items.keys()], ['g2']);
    const byKey = await filled([{ uid: 7, name: 'x' }], { key: (item) => item.uid });
    assert.deepEqual([...byKey.gifts.items.keys()], ['7']);
  });

  test('a fetch(id) that answers the whole collection replaces it', async () => {
    const { client, backend, changes } = await filled();
    client.emit('UPDATED', 'g1', null);
    await backend.answer([yoyo]);
    assert.deepEqual(await settled(changes, 2), { g2: yoyo });
  });

  test('handlers apply custom event types to the Map', async () => {
    const { client, changes } = await filled([], {
      handlers: { USER_JOINED: (items, event) => items.set(event.data.entity_id, event.data.payload) },
    });
    client.emit('USER_JOINED', 'u1', { name: 'Alice' });
    client.emit('SOMETHING_ELSE', 'x', {}); // unknown and unhandled: ignored
    client.emit('USER_JOINED', 'u2', { name: 'Bob' });
    assert.deepEqual(await settled(changes, 3), { u1: { name: 'Alice' }, u2: { name: 'Bob' } });
  });

  test('a failing fetch is reported and rejects ready; refresh() tries again', async () => {
    const client = new StandInClient();
    const backend = new Backend();
    const errors = new Inbox();
    const gifts = liveCollection(client, T, { fetch: backend.fetch, onError: errors.push });
    client.sub.confirm({ seq: 0, epoch: 'e1' });
    await backend.fail(new Error('503'));
    await assert.rejects(gifts.ready, { code: 'FETCH_FAILED' });
    assert.match((await errors.take(1))[0].message, /fetch\(\) failed: 503/);
    const refreshed = gifts.refresh();
    await backend.answer([kite]);
    await refreshed;
    assert.deepEqual([...gifts.items.keys()], ['g1']);
  });

  test('a refused subscription rejects ready with its error and closes the collection', async () => {
    const client = new StandInClient();
    const gifts = liveCollection(client, T, { fetch: async () => [] });
    const refusal = Object.assign(new Error('invalid topic'), { code: 'INVALID_TOPIC' });
    client.sub.refuse(refusal);
    await assert.rejects(gifts.ready, { code: 'INVALID_TOPIC' });
    assert.equal(client.sub.active, false);
  });

  test('onChange listeners can be removed; close() unsubscribes', async () => {
    const { client, gifts, changes } = await filled();
    const extra = new Inbox();
    const off = gifts.onChange(extra.push);
    client.emit('DELETED', 'g1', null);
    await extra.take(1);
    off();
    client.emit('DELETED', 'g2', null);
    await changes.take(3);
    assert.equal(extra.items.length, 1);
    gifts.close();
    assert.equal(client.sub.active, false);
  });

  test('checks its options', () => {
    const client = new StandInClient();
    assert.throws(() => liveCollection(client, T, {}), /fetch/);
    assert.throws(() => liveCollection(client, T, { fetch: () => [], updates: 'patch' }), /updates/);
  });
});
