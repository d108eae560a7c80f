/**
 * Reconnection against real gateway processes: the gateway is stopped and a
 * new one started on the same port; the client comes back by itself,
 * resubscribes, reports what it missed, and never delivers an event twice.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { connect } from '../src/eventwire.js';
import { startGateway } from './support/gateway.js';
import { Inbox } from './support/wait.js';

const FAST = { backoffInitial: 20, backoffMax: 200 };
const RECONNECT_TIMEOUT = 10_000;
const TOPIC = 'room:lobby';

const joined = (user) => ({
  topic: TOPIC,
  event: 'USER_JOINED',
  data: { entity_id: user, payload: { user_id: user } },
});

/** A gateway stopped after the test, and a client on it closed after the test, with inboxes. */
async function setUp(t, options = {}) {
  const gateway = await startGateway();
  t.after(() => gateway.stop('SIGKILL'));
  const inboxes = { events: new Inbox(), gaps: new Inbox(), reconnects: new Inbox(), errors: new Inbox() };
  const client = connect(gateway.wsUrl, {
    ...FAST,
    onReconnect: inboxes.reconnects.push,
    onError: inboxes.errors.push,
    ...options,
  });
  t.after(() => client.close());
  const off = client.subscribe(TOPIC, inboxes.events.push, { onGap: inboxes.gaps.push });
  const position = await off.ready;
  return { gateway, client, position, ...inboxes };
}

/** Stop `gateway` with `signal` and start another on its port, stopped after the test. */
async function restart(t, gateway, signal) {
  await gateway.stop(signal);
  const restarted = await startGateway({ port: gateway.port });
  t.after(() => restarted.stop('SIGKILL'));
  return restarted;
}

const summary = (events) => events.map((e) => `${e.data.entity_id}@${e.seq}`);

describe('reconnection against real gateways', () => {
  for (const [signal, closeCode] of [
    ['SIGTERM', 1001], // graceful shutdown: the gateway closes every client with 1001
    ['SIGKILL', 1006], // the process vanishes: the connection just drops
  ]) {
    test(`a gateway restarted on the same port (${signal}): resubscribed, history loss reported, no duplicates`, async (t) => {
      const { gateway, client, position, events, gaps, reconnects } = await setUp(t);
      await gateway.publish(joined('u1'));
      await events.take(1);

      const restarted = await restart(t, gateway, signal);
      const [notice] = await reconnects.take(1, RECONNECT_TIMEOUT);
      assert.equal(notice.count, 1);
      assert.equal(notice.closeCode, closeCode);
      // the in-memory broker starts a new history at every start: a new epoch
      const [gap] = notice.gaps;
      assert.equal(notice.gaps.length, 1);
      assert.deepEqual([gap.topic, gap.historyLost, gap.count], [TOPIC, true, 0]);
      assert.notEqual(gap.epoch, position.epoch);
      assert.deepEqual(gaps.items, [gap]);
      assert.equal((await restarted.topic(TOPIC)).subscribers, 1);
      assert.equal(client.state, 'open');

      await restarted.publish(joined('u2'));
      await restarted.publish(joined('u3'));
      await events.take(3);
      assert.deepEqual(summary(events.items), ['u1@1', 'u2@1', 'u3@2']);
      assert.deepEqual(client.positions.get(TOPIC), { seq: 2, epoch: gap.epoch });
    });
  }

  for (const recover of [true, false]) {
    const title = recover
      ? 'events published while disconnected are replayed on reconnect: no gap, none twice'
      : 'recover: false: events published while disconnected are reported as a gap in the same epoch';
    test(title, async (t) => {
      const sockets = [];
      class TrackedWebSocket extends WebSocket {
        constructor(...args) {
          super(...args);
          sockets.push(this);
        }
      }
      let gateway;
      let connections = 0;
      // asked before each connection: the second time, publish while nobody listens
      const getToken = async () => {
        connections += 1;
        if (connections === 2) {
          await gateway.publish(joined('u2'));
          await gateway.publish(joined('u3'));
        }
        return 'token';
      };
      const setup = await setUp(t, { WebSocket: TrackedWebSocket, getToken, recover });
      gateway = setup.gateway;
      const { events, reconnects, position } = setup;
      await gateway.publish(joined('u1'));
      await events.take(1);

      sockets.at(-1).close(4000, 'test: drop the connection'); // 4000–4499: reconnect
      const [notice] = await reconnects.take(1, RECONNECT_TIMEOUT);
      assert.equal(notice.closeCode, 4000);
      if (!recover) {
        assert.deepEqual(notice.gaps, [
          { topic: TOPIC, first: 2, last: 3, epoch: position.epoch, historyLost: false, count: 2 },
        ]);
        await gateway.publish(joined('u4'));
        await events.take(2);
        assert.deepEqual(summary(events.items), ['u1@1', 'u4@4']);
        return;
      }
      assert.deepEqual(notice.gaps, []);
      await gateway.publish(joined('u4'));
      await events.take(4);
      assert.deepEqual(summary(events.items), ['u1@1', 'u2@2', 'u3@3', 'u4@4']);
    });
  }
});
