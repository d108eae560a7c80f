// The seed's gift list made real: the page changes gifts through the demo's
// HTTP API and renders only what the gateway's events say, so every open tab
// converges on the same list without polling.
import { connect, liveCollection } from '/static/js/eventwire.js';

const TOPIC = 'gift-list:family';
const API = '/demo/api/gifts';
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;

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
    button('Rename', 'rename', 'plain', () => act(api('PATCH', `/${gift.id}`, { name: input.value }))),
    button('Mark purchased', 'purchase', 'plain', () =>
      act(api('POST', `/${gift.id}/purchase`, { purchased_by: 'you' })),
    ),
    button('Delete', 'delete', 'danger', () => act(api('DELETE', `/${gift.id}`))),
  );
  actions.querySelector('[data-testid=purchase]').disabled = gift.status === 'purchased';
  tr.append(name, cell(gift.price === undefined ? '' : `$${gift.price.toFixed(2)}`), status, actions);
  return tr;
}

function render(items) {
  const gifts = [...items.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
  $('gifts').replaceChildren(...gifts.map(row));
  $('empty').hidden = gifts.length > 0;
}

function logEvent(event) {
  const entry = document.createElement('div');
  entry.className = 'entry';
  entry.dataset.testid = 'log-entry';
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.innerHTML = `#${event.seq} <b class="ev-${event.event}"></b> ${event.data.entity_id}`;
  meta.querySelector('b').textContent = event.event;
  const payload = document.createElement('pre');
  payload.textContent = JSON.stringify(event.data.payload);
  entry.append(meta, payload);
  $('log').prepend(entry);
}

const client = connect(wsUrl, {
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
