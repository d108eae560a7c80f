// The seed's gift list made real: the page changes gifts through the demo's
// HTTP API and renders only what the gateway's events say, so every open tab
// converges on the same list without polling.
//
// Event data is text written by whoever may publish: it goes into the page
// as text nodes and form values, never as markup (no innerHTML). URLs are
// relative to the page, so the page works wherever the gateway is mounted.
import { connect, liveCollection } from './js/eventwire.js';

const TOPIC = 'gift-list:family';
const API = new URL('demo/api/gifts', location.href).pathname;
const wsUrl = new URL('ws', location.href);
wsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';

const $ = (id) => document.getElementById(id);
const statusEl = $('status');
const errorEl = $('error');

async function api(method, path = '', body = undefined) {
  const response = await fetch(API + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${answer.code}: ${answer.message}`);
  return answer;
}

async function fetchGifts(entityId) {
  const { gifts } = await api('GET');
  return entityId === undefined ? gifts : gifts.find((gift) => gift.id === entityId) ?? null;
}

function showError(error) {
  errorEl.textContent = error ? String(error.message ?? error) : '';
}

function act(promise) {
  showError(null);
  promise.catch(showError);
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

function button(label, testid, className, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.dataset.testid = testid;
  if (className) b.className = className;
  b.addEventListener('click', onClick);
  return b;
}

function row(gift) {
  const path = `/${encodeURIComponent(gift.id)}`; // an id is data: it names a gift, not a route
  const tr = document.createElement('tr');
  tr.dataset.testid = 'gift';
  tr.dataset.id = gift.id;
  const name = document.createElement('td');
  const input = document.createElement('input');
  input.value = gift.name;
  input.dataset.testid = 'name';
  input.setAttribute('aria-label', `Name of ${gift.name}`);
  name.append(input);
  const status = document.createElement('td');
  const pill = document.createElement('span');
  pill.className = `pill ${gift.status}`;
  pill.dataset.testid = 'status';
  pill.textContent = gift.status;
  status.append(pill);
  const actions = document.createElement('td');
  actions.className = 'row';
  actions.append(
    button('Rename', 'rename', 'plain', () => act(api('PATCH', path, { name: input.value }))),
    button('Mark purchased', 'purchase', 'plain', () =>
      act(api('POST', `${path}/purchase`, { purchased_by: 'you' })),
    ),
    button('Delete', 'delete', 'danger', () => act(api('DELETE', path))),
  );
  actions.querySelector('[data-testid=purchase]').disabled = gift.status === 'purchased';
  tr.append(name, cell(typeof gift.price === 'number' ? `$${gift.price.toFixed(2)}` : ''), status, actions);
  return tr;
}

function render(items) {
  const created = (gift) => String(gift.created_at ?? '');
  const gifts = [...items.values()].sort((a, b) => created(a).localeCompare(created(b)));
  $('gifts').replaceChildren(...gifts.map(row));
  $('empty').hidden = gifts.length > 0;
}

function logEvent(event) {
  const entry = document.createElement('div');
  entry.className = 'entry';
  entry.dataset.testid = 'log-entry';
  const meta = document.createElement('div');
  meta.className = 'meta';
  const kind = document.createElement('b');
  kind.className = `ev-${event.event}`;
  kind.textContent = event.event;
  meta.append(`#${event.seq} `, kind, ` ${event.data.entity_id}`);
  const payload = document.createElement('pre');
  payload.textContent = JSON.stringify(event.data.payload);
  entry.append(meta, payload);
  $('log').prepend(entry);
}

const client = connect(wsUrl.href, {
  onError: (error) => console.warn('gateway error', error),
  onReconnect: () => showStatus(),
});

function showStatus() {
  statusEl.dataset.state = client.state;
  statusEl.textContent = client.state === 'open' ? 'live' : client.state;
}
setInterval(showStatus, 250);

const gifts = liveCollection(client, TOPIC, {
  fetch: fetchGifts,
  onChange: (items) => render(items),
  onError: showError,
});
client.subscribe(TOPIC, logEvent); // every event, GIFT_PURCHASED too, for the log
gifts.ready.then(() => render(gifts.items), showError);

$('add-form').addEventListener('submit', (submit) => {
  submit.preventDefault();
  const form = new FormData(submit.target);
  const gift = { name: form.get('name') };
  if (form.get('price')) gift.price = Number(form.get('price'));
  act(api('POST', '', gift).then(() => submit.target.reset()));
});

window.eventwireDemo = { client, gifts };
