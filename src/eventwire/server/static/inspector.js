// Operators' view of one node: live counts, a tail of every topic (or those a
// pattern matches), each event pretty-printed, and a form to publish one.
//
// Event data is text written by whoever may publish: it goes into the page
// as text nodes only, never as markup. URLs are relative to the page, so the
// page works wherever the gateway is mounted (such as /realtime/inspector).
import { connect } from './js/eventwire.js';

const $ = (id) => document.getElementById(id);
const wsUrl = new URL('ws', location.href);
wsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
const MAX_ENTRIES = 500;
$('gateway').textContent = location.host;

async function refreshStats() {
  try {
    const response = await fetch('v1/stats', { headers: authHeaders($('publish-form').key.value) });
    if (!response.ok) return;
    const stats = await response.json();
    for (const [name, value] of Object.entries(stats)) {
      const el = $(`stat-${name}`);
      if (el) el.textContent = value.toLocaleString();
    }
  } catch {
    // the node is restarting; the next tick tries again
  }
}
setInterval(refreshStats, 1000);
refreshStats();

function authHeaders(key) {
  return key ? { authorization: `Bearer ${key}` } : {};
}

function entry(event) {
  const div = document.createElement('div');
  div.className = 'entry';
  div.dataset.testid = 'log-entry';
  const meta = document.createElement('div');
  meta.className = 'meta';
  const kind = document.createElement('b');
  kind.className = `ev-${event.event}`;
  kind.textContent = event.event;
  meta.append(`${event.data.timestamp.slice(11, 23)}  ${event.topic}  #${event.seq}  `, kind);
  const json = document.createElement('pre');
  json.textContent = JSON.stringify(event, null, 2);
  div.append(meta, json);
  return div;
}

let client = null;
let stopWatching = null;

function watch(pattern, token) {
  if (stopWatching) stopWatching();
  if (client) client.close();
  $('tail-error').textContent = '';
  client = connect(wsUrl.href, {
    token: token || undefined,
    onError: (error) => {
      $('tail-error').textContent = `${error.code}: ${error.message}`;
    },
  });
  stopWatching = client.subscribe(pattern, (event) => {
    const log = $('log');
    log.prepend(entry(event));
    while (log.childElementCount > MAX_ENTRIES) log.lastElementChild.remove();
  });
  stopWatching.ready.then(
    () => {
      $('watching').textContent = `watching ${pattern}`;
      $('watching').dataset.pattern = pattern;
    },
    (error) => {
      $('tail-error').textContent = `${error.code}: ${error.message}`;
    },
  );
}

setInterval(() => {
  const state = client ? client.state : 'closed';
  $('status').dataset.state = state;
  $('status').textContent = state === 'open' ? 'live' : state;
}, 250);

$('tail-form').addEventListener('submit', (submit) => {
  submit.preventDefault();
  watch(submit.target.pattern.value.trim() || '*', submit.target.token.value.trim());
});
$('clear').addEventListener('click', () => $('log').replaceChildren());

$('publish-form').addEventListener('submit', async (submit) => {
  submit.preventDefault();
  const form = submit.target;
  const result = $('publish-result');
  let payload;
  try {
    payload = JSON.parse(form.payload.value || 'null');
  } catch (error) {
    result.textContent = `payload is not JSON: ${error.message}`;
    return;
  }
  const event = { topic: form.topic.value, event: form.event.value, data: { entity_id: form.entity_id.value, payload } };
  const response = await fetch('v1/publish', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(form.key.value) },
    body: JSON.stringify(event),
  });
  const answer = await response.json();
  result.textContent = response.ok
    ? `published ${answer.topic} ${answer.event} seq=${answer.seq}`
    : `${answer.code}: ${answer.message} ${JSON.stringify(answer.details)}`;
});

const initial = new URLSearchParams(location.hash.slice(1));
watch(initial.get('pattern') || '*', initial.get('token') || '');
