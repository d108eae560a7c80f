/**
 * liveCollection against a real gateway: a stand-in back end (a Map) is
 * changed, the change is published through the gateway's HTTP API, and the
 * collection follows; after a gateway restart it refetches.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { connect, liveCollection } from '../src/eventwire.js';
import { startGateway } from './support/gateway.js';
import { Inbox } from './support/wait.js';

const FAST = { backoffInitial: 20, backoffMax: 200 };
const TOPIC = 'gift-list:123';

/** The back end: its gifts, and the calls made to its fetch. */
function backend(gifts) {
  const db = new Map(gifts.map((gift) => [gift.id, gift]));
  const calls = new Inbox();
  const fetch = async (id) => {
    calls.push(id ?? '*');
    return id === undefined ? [...db.values()] : (db.get(id) ?? null);
  };
  return { db, calls, fetch };
}

const kite = { id: 'g1', name: 'Kite', price: 10, status: 'available' };
const event = (type, id, payload) => ({ topic: TOPIC, event: type, data: { entity_id: id, payload } });

async function setUp(t, gifts) {
  const gateway = await startGateway();
  t.after(() => gateway.stop('SIGKILL'));
  const client = connect(gateway.wsUrl, FAST);
  t.after(() => client.close());
  const api = backend(gifts);
  const changes = new Inbox();
  const collection = liveCollection(client, TOPIC, { fetch: api.fetch, onChange: (items, e) => changes.push(e) });
  t.after(() => collection.close());
  await collection.ready;
  /** Wait until the collection holds exactly `expected`. */
  const holds = (expected) =>
    changes.until(
      () => {
        try {
          assert.deepEqual(Object.fromEntries(collection.items), expected);
          return true;
        } catch {
          return false;
        }
      },
      5000,
      `the collection to hold ${JSON.stringify(expected)}; it holds ${JSON.stringify(Object.fromEntries(collection.items))}`,
    );
  return { gateway, client, api, changes, collection, holds };
}

describe('liveCollection against a real gateway', () => {
  test('follows ADDED, full and partial UPDATED, STATUS_CHANGED and DELETED', async (t) => {
    const { gateway, api, holds } = await setUp(t, [kite]);
    assert.deepEqual(api.calls.items, ['*']);

    await gateway.publish(event('ADDED', 'g2', { id: 'g2', name: 'Yo-yo', price: 3, status: 'available' }));
    await gateway.publish(event('UPDATED', 'g1', { id: 'g1', name: 'Big kite', price: 15, status: 'available' }));
    await gateway.publish(event('UPDATED', 'g2', { price: 4 }));
    await gateway.publish(
      event('STATUS_CHANGED', 'g1', {
        id: 'g1',
        old_status: 'available',
        new_status: 'purchased',
        purchased_by: 'user-789',
      }),
    );
    await holds({
      g1: { id: 'g1', name: 'Big kite', price: 15, status: 'purchased', purchased_by: 'user-789' },
      g2: { id: 'g2', name: 'Yo-yo', price: 4, status: 'available' },
    });
    await gateway.publish(event('DELETED', 'g2', null));
    await holds({ g1: { id: 'g1', name: 'Big kite', price: 15, status: 'purchased', purchased_by: 'user-789' } });
    assert.deepEqual(api.calls.items, ['*'], 'full and partial payloads need no fetch');
  });

  test('a reference-only event fetches that entity', async (t) => {
    const { gateway, api, holds } = await setUp(t, [kite]);
    api.db.set('g3', { id: 'g3', name: 'Ball' });
    await gateway.publish(event('ADDED', 'g3', null));
    await holds({ g1: kite, g3: { id: 'g3', name: 'Ball' } });
    api.db.set('g1', { ...kite, name: 'Renamed in the back end' });
    await gateway.publish(event('UPDATED', 'g1', null));
    await holds({ g1: { ...kite, name: 'Renamed in the back end' }, g3: { id: 'g3', name: 'Ball' } });
    assert.deepEqual(api.calls.items, ['*', 'g3', 'g1']);
  });

  test('after a gateway restart (history lost) it refetches everything', async (t) => {
    const { gateway, api, holds } = await setUp(t, [kite]);
    await gateway.stop('SIGTERM');
    api.db.set('g4', { id: 'g4', name: 'Changed while nobody listened' }); // its event is lost with the gateway
    const restarted = await startGateway({ port: gateway.port });
    t.after(() => restarted.stop('SIGKILL'));
    await api.calls.take(2, 10_000);
    await holds({ g1: kite, g4: { id: 'g4', name: 'Changed while nobody listened' } });
    await restarted.publish(event('DELETED', 'g1', null));
    await holds({ g4: { id: 'g4', name: 'Changed while nobody listened' } });
    assert.deepEqual(api.calls.items, ['*', '*']);
  });
});
