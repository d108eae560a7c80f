/**
 * Compiles only if eventwire.d.ts describes the API the way docs/js-client.md
 * uses it: `npm run typecheck`. Never run; every line is a type assertion.
 */

import {
  CloseCode,
  type EventwireError,
  type Gap,
  type LiveCollection,
  type LivePresence,
  type PresenceState,
  type PresentUser,
  type Position,
  type Reconnected,
  type WebSocketEvent,
  backoffDelay,
  connect,
  liveCollection,
  livePresence,
  mergePatch,
  shouldReconnect,
} from 'eventwire';

interface Gift {
  id: string;
  name: string;
  price?: number;
  status?: string;
}

declare function render(gifts: Gift[]): void;
declare const api: { gifts(): Promise<Gift[]>; gift(id: string): Promise<Gift | null> };

const client = connect('ws://127.0.0.1:8000/ws', {
  getToken: async () => 'token',
  WebSocket,
  backoffInitial: 250,
  backoffMax: 30_000,
  onReconnect: (info: Reconnected) => info.gaps.forEach((gap: Gap) => console.log(gap.topic, gap.historyLost)),
  onError: (error: EventwireError) => console.warn(error.code, error.details, error.topic),
  onClose: ({ code, error }) => console.log(code, error.message),
  validate: (event) => event.data.entity_id.length > 0,
});
await client.ready;
const state: 'connecting' | 'open' | 'reconnecting' | 'closed' = client.state;
const where: Position | undefined = client.positions.get('gift-list:123');

// one handler for every event
const off = client.subscribe('gift-list:123', (event) => {
  const seq: number = event.seq;
  const payload: unknown = event.data.payload;
  console.log(seq, payload, event.trace_id, event.version);
});
const position: Position | null = await off.ready;
off();

// handlers by type and version, untyped payloads
client.subscribe(
  'gift-list:123',
  {
    ADDED: (event) => console.log(event.data.entity_id),
    UPDATED: { 1: (event) => console.log(event.version), 2: (event) => console.log(event.data.payload), '*': () => {} },
    '*': (event) => console.log(event.event),
  },
  { onGap: (gap) => console.log(gap.first, gap.last, gap.count) },
);

// typed payloads by event type: the '*' handler sees a union discriminated by `event`
client.subscribe<{ ADDED: Gift; UPDATED: Partial<Gift>; DELETED: null }>('gift-list:123', {
  ADDED: (event) => {
    const name: string = event.data.payload.name;
    console.log(name);
  },
  UPDATED: { 2: (event) => console.log(event.data.payload.price) },
  '*': (event) => {
    if (event.event === 'ADDED') console.log(event.data.payload.name);
    if (event.event === 'DELETED') {
      const nothing: null = event.data.payload;
      console.log(nothing);
    }
  },
});

// the event versions read: per connection, per subscription (null: as published)
const versioned = connect('/ws', { versions: { '*': [1], 'room.MESSAGE_POSTED': [1, 2] } });
versioned.subscribe(
  'room:lobby',
  { MESSAGE_POSTED: { 2: (event) => console.log(event.version) } },
  {
    versions: { 'room.*': [2] },
  },
);
versioned.subscribe('room:raw', () => {}, { versions: null });
// @ts-expect-error keys are '*', 'resource.*' or 'resource.EVENT'
versioned.subscribe('room:1', () => {}, { versions: { room: [1] } });
// @ts-expect-error versions are numbers
connect('/ws', { versions: { '*': ['1'] } });

// @ts-expect-error a handler map holds functions or version maps, nothing else
client.subscribe('gift-list:123', { ADDED: 'not a function' });
// @ts-expect-error typed payloads are checked
client.subscribe<{ ADDED: Gift }>('gift-list:123', { ADDED: (event) => event.data.payload.nope });

const rtt: number = await client.ping();
await client.close();

// live collections
const gifts: LiveCollection<Gift> = liveCollection<Gift>(client, 'gift-list:123', {
  fetch: (id) => (id ? api.gift(id) : api.gifts()),
  updates: 'merge',
  onChange: (items, event: WebSocketEvent | null) => render([...items.values()]),
});
await gifts.ready;
const kite: Gift | undefined = gifts.items.get('g1');
const stop = gifts.onChange((items) => console.log(items.size));
stop();
await gifts.refresh();
gifts.close();
// @ts-expect-error the collection's Map is read-only for the application
gifts.items.set('g1', { id: 'g1', name: 'x' });

liveCollection<Gift>(client, 'gift-list:9', {
  fetch: async () => new Map<string, Gift>(),
  key: (gift) => gift.id,
  updates: 'replace',
  statusField: 'state',
  versions: { 'gift-list.*': [1] },
  handlers: { GIFT_WRAPPED: (items, event) => items.delete(event.data.entity_id) },
  onError: (error) => console.warn(error.code === 'FETCH_FAILED'),
});

// presence: who is on a topic, asked once or kept current
const presenceState: PresenceState = await client.presence('room:lobby');
const tabs: number = presenceState.users[0]?.connections ?? 0;
const tenant: string | undefined = presenceState.users[0]?.tenant_id;
console.log(presenceState.count, presenceState.connections, presenceState.anonymous, tabs, tenant);
const room: LivePresence = livePresence(client, 'room:lobby', {
  onChange: (users: readonly PresentUser[], event) =>
    console.log(
      users.map((user) => user.user_id),
      event?.event,
    ),
  onError: (error) => console.warn(error.code),
});
await room.ready;
const members: readonly PresentUser[] = room.users;
const howMany: number = room.count;
await room.refresh();
room.close();
console.log(members, howMany);
// @ts-expect-error the users are read-only for the application
room.users.push({ user_id: 'x' });
livePresence(client, 'room:lobby');

// node: the `ws` package's constructor shape fits too
declare class WsPackageSocket {
  constructor(address: string | URL, options?: object);
  binaryType: 'nodebuffer' | 'arraybuffer' | 'fragments';
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: { error: unknown }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
connect('http://127.0.0.1:8000', { WebSocket: WsPackageSocket });

// several nodes of one deployment: the first that answers, then round robin
const nodes = connect(['wss://gw-1.example/ws', new URL('wss://gw-2.example/ws')], { maxReconnectAttempts: 6 });
const inUse: string = nodes.url;
const every: readonly string[] = nodes.urls;
// @ts-expect-error URLs are strings or URL-like objects
connect([8000]);

const reconnects: boolean = shouldReconnect(CloseCode.GOING_AWAY);
const wait: number = backoffDelay(3, 250, 30_000);
const patched: unknown = mergePatch({ a: 1 }, { a: null });
console.log(state, where, position, rtt, kite, reconnects, wait, patched, inUse, every);
