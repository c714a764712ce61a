// The mqseal dashboard: MQTT.js over WebSocket, every message opened and
// verified by the mqseal WebAssembly core in the page, rejected messages
// counted by reason, and sealed commands back to the devices.
import mqtt from 'mqtt';
import { IndexedDbCounterStore, Key, Opener, Sealer } from 'mqseal';
import { sealClient } from 'mqseal/mqtt';

const $ = (id) => document.getElementById(id);
const decoder = new TextDecoder('utf-8', { fatal: false });

const state = {
  sealed: null,
  sealer: null,
  readings: new Map(), // topic -> { value, senderId, counter, count, at }
  rejected: new Map(), // code -> count
  rejectedTotal: 0,
};

function setStatus(text, cls) {
  const el = $('status');
  el.textContent = text;
  el.className = `status ${cls}`;
}

function log(text, cls = '') {
  const li = document.createElement('li');
  li.className = cls;
  li.textContent = `${new Date().toLocaleTimeString('en-GB')}  ${text}`;
  const list = $('log');
  list.prepend(li);
  while (list.children.length > 50) list.lastChild.remove();
}

function formatValue(payload) {
  const text = decoder.decode(payload);
  try {
    const v = JSON.parse(text);
    return typeof v === 'object' && v !== null
      ? Object.entries(v).map(([k, x]) => `${k}: ${x}`).join(', ')
      : String(v);
  } catch {
    return text;
  }
}

function renderReadings() {
  const body = $('readings');
  body.replaceChildren();
  if (state.readings.size === 0) {
    body.innerHTML = '<tr class="empty"><td colspan="6">no verified message yet</td></tr>';
    return;
  }
  for (const [topic, r] of [...state.readings].sort(([a], [b]) => a.localeCompare(b))) {
    const tr = document.createElement('tr');
    tr.dataset.topic = topic;
    for (const [cls, v] of [
      ['topic', topic],
      ['value', r.value],
      ['sender', r.senderId],
      ['counter', r.counter],
      ['count', r.count],
      ['at', r.at.toLocaleTimeString('en-GB')],
    ]) {
      const td = document.createElement('td');
      td.className = cls;
      td.textContent = String(v);
      tr.append(td);
    }
    body.append(tr);
  }
}

function renderRejected() {
  $('rejected-total').textContent = String(state.rejectedTotal);
  const list = $('rejected-by-reason');
  list.replaceChildren();
  if (state.rejected.size === 0) {
    list.innerHTML = '<li class="empty">none</li>';
    return;
  }
  for (const [code, n] of [...state.rejected].sort(([, a], [, b]) => b - a)) {
    const li = document.createElement('li');
    li.dataset.code = code;
    li.innerHTML = `<code></code><span class="badge"></span>`;
    li.querySelector('code').textContent = code;
    li.querySelector('.badge').textContent = String(n);
    list.append(li);
  }
}

async function connect({ broker, key, topics, cmd, sender }) {
  if (state.sealed) await state.sealed.end(true).catch(() => {});
  if (state.sealer) await state.sealer.close().catch(() => {});
  state.sealer = null;
  $('send').disabled = true;

  let groupKey;
  try {
    groupKey = Key.fromText(key);
  } catch (e) {
    setStatus(`bad key (${e.code})`, 'error');
    return;
  }
  // The core's defaults: 64 senders, and a 65th is rejected rather than an
  // old one forgotten ('leastRecentlyUsed' eviction needs a maxAge, so the
  // devices would have to send timestamps).
  const opener = new Opener({ keys: [groupKey] });
  setStatus(`connecting to ${broker}…`, 'idle');
  const client = mqtt.connect(broker, { reconnectPeriod: 2000, connectTimeout: 10_000 });
  const sealed = sealClient(client, { opener });
  state.sealed = sealed;

  sealed.on('message', (topic, payload, header) => {
    const prev = state.readings.get(topic);
    state.readings.set(topic, {
      value: formatValue(payload),
      senderId: header.senderId,
      counter: header.counter,
      count: (prev?.count ?? 0) + 1,
      at: new Date(),
    });
    renderReadings();
  });
  sealed.on('rejected', (topic, err) => {
    const code = err.code ?? 'error';
    state.rejected.set(code, (state.rejected.get(code) ?? 0) + 1);
    state.rejectedTotal++;
    renderRejected();
    log(`rejected on ${topic}: ${code}`, 'bad');
  });
  client.on('connect', async () => {
    setStatus(`connected to ${broker}`, 'ok');
    log(`connected to ${broker}`);
    const filters = topics.split(',').map((t) => t.trim()).filter(Boolean);
    try {
      await sealed.subscribe(filters, { qos: 1 });
      log(`subscribed to ${filters.join(', ')}`);
    } catch (e) {
      log(`subscribe failed: ${e.message}`, 'bad');
    }
  });
  client.on('reconnect', () => setStatus(`reconnecting to ${broker}…`, 'idle'));
  client.on('error', (e) => setStatus(`error: ${e.message}`, 'error'));
  client.on('close', () => {
    if (state.sealed === sealed) setStatus('disconnected', 'idle');
  });

  // The command sender: counters persist in IndexedDB, reserved before use;
  // one tab per sender id (Web Locks). A browser may drop the database
  // (private windows, cleared site data), so this page starts from the
  // core's clock floor (Date.now() * 1024; 8-byte counters instead of 1-3)
  // rather than refusing a store with no record: the floor stays above
  // every counter an earlier visit used.
  try {
    const senderId = Number(sender);
    state.sealer = await Sealer.create({
      key: groupKey,
      senderId,
      store: new IndexedDbCounterStore(`dashboard-k${groupKey.id}-s${senderId}`, { clockFloor: true }),
      timestamps: true,
    });
    sealed.sealer = state.sealer;
    state.cmdTopic = cmd;
    state.publish = (text) => sealed.publish(cmd, text, { qos: 1 });
    $('send').disabled = false;
    $('command-status').textContent = `commands go to ${cmd} as sender ${senderId}; next counter ${state.sealer.nextCounter}`;
  } catch (e) {
    $('command-status').textContent = `cannot send commands: ${e.message} (${e.code}${e.reason ? `/${e.reason}` : ''})`;
    $('command-status').className = 'hint bad';
    log(`command sender unavailable: ${e.code}`, 'bad');
  }
}

function paramsFromFragment() {
  const p = new URLSearchParams(location.hash.slice(1));
  const form = $('connect-form');
  for (const name of ['broker', 'key', 'topics', 'cmd', 'sender']) {
    if (p.has(name)) form.elements[name].value = p.get(name);
  }
  return p.has('broker') && p.has('key');
}

$('connect-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  connect(Object.fromEntries(f)).catch((e) => setStatus(`error: ${e.message}`, 'error'));
});

$('command-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const text = new FormData(ev.target).get('command');
  if (!state.publish) return;
  try {
    const counter = state.sealer.nextCounter;
    await state.publish(text);
    $('command-status').textContent = `sent "${text}" sealed with counter ${counter} to ${state.cmdTopic}`;
    $('command-status').className = 'hint ok';
    log(`sent sealed command "${text}" (counter ${counter})`);
  } catch (e) {
    $('command-status').textContent = `send failed: ${e.message}`;
    $('command-status').className = 'hint bad';
  }
});

if (paramsFromFragment()) $('connect-form').requestSubmit();
