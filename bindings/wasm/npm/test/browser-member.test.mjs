// A browser dashboard as a fleet member (docs/PROTOCOL.md section 14), in
// Debian's chromium driven by playwright-core, over MQTT-over-WebSocket to
// a real Mosquitto: the control vectors (core/tests/vectors/control-v1.json)
// are published retained with mosquitto_pub; the page's Member applies
// them, persists them in IndexedDB and acks (the ack envelopes must be the
// vectors' byte for byte); a forged, a stale, a replayed and another
// member's control message are refused and reported by code; group traffic
// sealed by the Rust `mqseal pub` with the vector group key opens in the
// page, and the page seals with its assigned key and sender id; the state
// survives a reload (IndexedDB) and a second tab is refused (Web Locks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Key, Opener } from 'mqseal';

import { browserRig } from './browser-rig.mjs';
import { waitFor } from './harness.mjs';

const vectors = JSON.parse(readFileSync(new URL('../../../../core/tests/vectors/control-v1.json', import.meta.url), 'utf8'));
const hex = (h) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (u8) => Buffer.from(u8).toString('hex');
const negative = (name) => vectors.negative.find((n) => n.name === name);
const groupKey = (positive, id) => {
  const k = vectors.positive[positive].state.groups[0].keys.find((x) => x.key_id === id);
  return Key.fromBytes(id, hex(k.secret));
};

const rig = browserRig('mqseal-browser-member-');

let files = 0;
/** Publishes `bytes` (empty: a zero-length payload) with mosquitto_pub. */
function mosquittoPub(topic, bytes, { retain = false } = {}) {
  const f = join(rig.tmp.dir, `msg-${files++}.bin`);
  writeFileSync(f, bytes);
  rig.mosquittoPub(topic, [...(bytes.length === 0 ? ['-n'] : ['-f', f]), ...(retain ? ['-r'] : [])]);
}

/** `mqseal pub` under the group key `key`. */
function rustPub(key, topic, lines, senderId) {
  const kf = join(rig.tmp.dir, `group-${key.id}.key`);
  writeFileSync(kf, `${key.toText()}\n`, { mode: 0o600 });
  return rig.rustPub(kf, topic, lines, senderId);
}

const state = (page) => page.evaluate(() => window.memberTest);

async function openMember(context, { enroll }) {
  const fragment = new URLSearchParams({
    broker: `ws://127.0.0.1:${rig.broker.wsPort}`,
    secret: vectors.member_secret,
    authority: vectors.authority_public,
    member: vectors.member_id,
    group: 'telemetry',
    filter: 'plant/telemetry/#',
    enroll: enroll ? '1' : '0',
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  await page.goto(`http://127.0.0.1:${rig.server.port}/bindings/wasm/npm/test/pages/member.html#${fragment}`);
  await page
    .waitForFunction(() => window.memberTest && (window.memberTest.ready || window.memberTest.error), null, { timeout: 20_000 })
    .catch(async (e) => {
      throw new Error(`the member page did not start: ${e.message}; page errors: ${JSON.stringify(errors)}; console: ${JSON.stringify(logs)}; state: ${JSON.stringify(await state(page).catch(() => null))}`);
    });
  return { page, errors };
}

test('browser member in chromium: applies retained control vectors, acks, rejects bad ones, survives reload, opens and seals group traffic', { timeout: 180_000 }, async () => {
  // The authority's side of the broker: the acks.
  const spy = await rig.spy();
  const acks = [];
  const dash = [];
  spy.on('message', (topic, payload) => (topic === vectors.ack_topic ? acks : dash).push(Buffer.from(payload)));
  await spy.subscribeAsync(vectors.ack_topic, { qos: 1 });
  await spy.subscribeAsync('plant/dash', { qos: 1 });

  // The first state waits retained before the member ever connects.
  mosquittoPub(vectors.control_topic, hex(vectors.positive[0].envelope_hex), { retain: true });

  const context = await rig.browser.newContext();
  const { page, errors } = await openMember(context, { enroll: true });
  assert.equal((await state(page)).error, null, JSON.stringify((await state(page)).error));
  await page.waitForFunction(() => window.memberTest.epoch === 1, null, { timeout: 20_000 });
  await waitFor(() => acks.length >= 1, 20_000, 'the first ack');
  assert.equal(toHex(acks[0]), vectors.positive[0].ack_envelope_hex, 'the ack of the first state, byte for byte');

  // A rotation, retained over the first state.
  mosquittoPub(vectors.control_topic, hex(vectors.positive[1].envelope_hex), { retain: true });
  await page.waitForFunction(() => window.memberTest.epoch === 2, null, { timeout: 20_000 });
  await waitFor(() => acks.length >= 2, 20_000, 'the second ack');
  assert.equal(toHex(acks[1]), vectors.positive[1].ack_envelope_hex);

  // Forged, another member's, a stale epoch and an older envelope: refused, reported, nothing changes.
  for (const name of ['forged', 'other-member', 'stale-epoch', 'older-envelope']) {
    mosquittoPub(vectors.control_topic, hex(negative(name).envelope_hex));
  }
  await page.waitForFunction(() => window.memberTest.rejected.length >= 4, null, { timeout: 20_000 });
  const rejected = (await state(page)).rejected.map((e) => (e.reason ? `${e.code}/${e.reason}` : e.code));
  assert.deepEqual(rejected, ['auth', 'invalidControl/wrongMember', 'staleEpoch', 'replay']);
  assert.equal((await state(page)).epoch, 2);
  assert.equal(acks.length, 2, 'no ack for a refused message');

  // Group traffic sealed by the Rust CLI under the vector group key 2 (still accepted at epoch 2).
  await rustPub(groupKey(1, 2), 'plant/telemetry/line1/temp', ['21.5', '21.7'], 50);
  await page.waitForFunction(() => window.memberTest.messages.length >= 2, null, { timeout: 20_000 });
  assert.deepEqual(
    (await state(page)).messages.map((m) => [m.topic, m.text, m.keyId, m.senderId]),
    [['plant/telemetry/line1/temp', '21.5', 2, 50], ['plant/telemetry/line1/temp', '21.7', 2, 50]],
  );
  // Key 1 ended its acceptance in this state: refused.
  await rustPub(groupKey(0, 1), 'plant/telemetry/line1/temp', ['old key'], 51);
  await page.waitForFunction(() => window.memberTest.groupRejected.length >= 1, null, { timeout: 20_000 });
  assert.equal((await state(page)).groupRejected[0].code, 'unknownKey');

  // The page seals with the key and sender id assigned now (key 3, sender id 9, past its activation).
  const assignment = await page.evaluate(() => window.memberSend('plant/dash', 'from the browser member'));
  assert.deepEqual(assignment, { keyId: 3, senderId: 9, suite: 'chacha20poly1305' });
  await waitFor(() => dash.length >= 1, 20_000, "the page's sealed message");
  const peer = new Opener({ keys: [groupKey(1, 2), groupKey(1, 3)] });
  const opened = peer.open('plant/dash', dash[0]);
  assert.equal(new TextDecoder().decode(opened.payload), 'from the browser member');
  assert.deepEqual([opened.header.keyId, opened.header.senderId], [3, 9]);

  // A second tab of the same member is refused (one writer of its state).
  const second = await openMember(context, { enroll: false });
  const secondState = await state(second.page);
  assert.equal(secondState.ready, false);
  assert.deepEqual([secondState.error?.code, secondState.error?.reason], ['counterStore', 'locked'], JSON.stringify(secondState.error));
  await second.page.close();

  // Reload: the state comes back from IndexedDB (epoch 2, no enrolment); the
  // retained state is seen again and refused as a duplicate, with no new ack.
  await page.reload();
  await page.waitForFunction(() => window.memberTest && (window.memberTest.ready || window.memberTest.error), null, {
    timeout: 20_000,
  });
  // The fragment still says enroll=1: a member with state refuses it.
  assert.equal((await state(page)).error?.code, 'invalidConfig');
  const { page: again, errors: againErrors } = await openMember(context, { enroll: false });
  await page.close();
  const s = await state(again);
  assert.equal(s.error, null, JSON.stringify(s.error));
  assert.equal(s.epoch, 2, 'the epoch survives the reload');
  await again.waitForFunction(() => window.memberTest.rejected.length >= 1, null, { timeout: 20_000 });
  assert.deepEqual((await state(again)).rejected.map((e) => e.code), ['duplicate']);
  await rustPub(groupKey(1, 2), 'plant/telemetry/line1/temp', ['22.0'], 50);
  await again.waitForFunction(() => window.memberTest.messages.length >= 1, null, { timeout: 20_000 });
  assert.equal((await state(again)).messages[0].text, '22.0');
  const afterReload = await again.evaluate(() => window.memberSend('plant/dash', 'after reload'));
  assert.deepEqual(afterReload, { keyId: 3, senderId: 9, suite: 'chacha20poly1305' });
  await waitFor(() => dash.length >= 2, 20_000, 'the sealed message after the reload');
  const reopened = peer.open('plant/dash', dash[1]);
  assert.ok(reopened.header.counter > opened.header.counter, 'counters carry on from IndexedDB, never reused');
  assert.equal(acks.length, 2);

  assert.deepEqual(errors, []);
  assert.deepEqual(againErrors, []);
  // Leave no retained control message behind for other tests on a shared broker.
  mosquittoPub(vectors.control_topic, new Uint8Array(0), { retain: true });
  await spy.endAsync();
  await context.close();
});
