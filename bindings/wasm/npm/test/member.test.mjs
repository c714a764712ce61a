// The fleet member (docs/PROTOCOL.md section 14) through the npm package's
// public API, with the shared control vectors (core/tests/vectors/
// control-v1.json): every positive state applied in order gives the
// expected ack envelope and member-state record; every negative case is
// refused with its error code and reason and changes nothing; a store
// write that fails gives no ack and no key (14.8); scheduled switches and
// group traffic with the assigned keys and sender ids. Node has no
// IndexedDB: the member state lives in a MemoryMemberStore here (the
// browser test runs IndexedDbMemberStore in chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { Key, Member, MemoryCounterStore, MemoryMemberStore, Opener, Sealer } from 'mqseal';

const vectors = JSON.parse(readFileSync(new URL('../../../../core/tests/vectors/control-v1.json', import.meta.url), 'utf8'));
const hex = (h) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');

/** A member of the vector fleet whose store holds `record` (null: just enrolled). */
async function vectorMember(record, { clock = () => null, store } = {}) {
  const s = store ?? new MemoryMemberStore(record);
  const member = await Member.create({
    secret: vectors.member_secret,
    authority: vectors.authority_public,
    memberId: vectors.member_id,
    store: s,
    enroll: record === null && !store,
    clock,
    counterStore: () => new MemoryCounterStore(0),
  });
  return { member, store: s };
}

const afterPositive = (n) => (n === 0 ? null : hex(vectors.positive[n - 1].member_state_hex));

test('topics and a new member', async () => {
  const { member, store } = await vectorMember(null);
  assert.equal(member.controlTopic, vectors.control_topic);
  assert.equal(member.ackTopic, vectors.ack_topic);
  assert.equal(member.epoch, 0);
  assert.deepEqual(member.groups, []);
  assert.ok(store.record !== null, 'enrolment writes the epoch-0 record at once');
  await member.close();
});

test('positive: every state in order gives the vector ack and member-state record', async () => {
  const { member, store } = await vectorMember(null);
  for (const v of vectors.positive) {
    const acks = [];
    const r = await member.handle(vectors.control_topic, hex(v.envelope_hex), {
      publishAck: async (topic, ack) => {
        // The record is durable before the ack is handed out.
        assert.equal(toHex(store.record), v.member_state_hex, `${v.name}: persisted before the ack`);
        acks.push({ topic, ack: toHex(ack) });
      },
    });
    assert.equal(r.epoch, v.state.epoch, v.name);
    assert.deepEqual(acks, [{ topic: vectors.ack_topic, ack: v.ack_envelope_hex }], v.name);
    assert.equal(toHex(r.ack), v.ack_envelope_hex);
    assert.equal(toHex(store.record), v.member_state_hex, v.name);
    assert.equal(member.epoch, v.state.epoch);
    assert.deepEqual(member.groups, v.state.groups.map((g) => g.name));
  }
  await member.close();
});

test('a member resumes from each vector record', async () => {
  for (const [i, v] of vectors.positive.entries()) {
    const { member } = await vectorMember(afterPositive(i + 1));
    assert.equal(member.epoch, v.state.epoch);
    await member.close();
  }
});

for (const v of vectors.negative) {
  test(`negative ${v.name}: ${v.error}${v.reason ? `/${v.reason}` : ''}, nothing changes`, async () => {
    const before = afterPositive(v.after_positive);
    const { member, store } = await vectorMember(before);
    const epoch = member.epoch;
    const recordBefore = store.record;
    const reported = [];
    member.on('rejected', (e) => reported.push(e.code));
    let acked = false;
    await assert.rejects(
      member.handle(v.topic, hex(v.envelope_hex), { publishAck: () => (acked = true) }),
      (e) => {
        assert.equal(e.name, 'MqsealError');
        assert.equal(e.code, v.error);
        if (v.reason) assert.equal(e.reason, v.reason);
        return true;
      },
    );
    assert.deepEqual(reported, [v.error], 'reported');
    assert.equal(acked, false);
    assert.equal(member.epoch, epoch);
    assert.deepEqual(store.record, recordBefore);
    await member.close();
  });
}

test('14.8: a failed write gives no ack and no key; the same envelope applies once the store works', async () => {
  const { member, store } = await vectorMember(null, { clock: () => 1767225700 });
  const v = vectors.positive[0];
  store.failWrites = true;
  let acked = false;
  await assert.rejects(member.handle(vectors.control_topic, hex(v.envelope_hex), { publishAck: () => (acked = true) }), {
    code: 'counterStore',
    reason: 'write',
  });
  assert.equal(acked, false);
  assert.equal(member.epoch, 0);
  assert.equal(member.assignment('telemetry'), null, 'no key in use');
  assert.equal(await member.sealer('telemetry'), null);
  store.failWrites = false;
  const r = await member.handle(vectors.control_topic, hex(v.envelope_hex));
  assert.equal(toHex(r.ack), v.ack_envelope_hex, 'the ack counter was not spent by the failed attempt');
  await member.close();
});

test('missing or bad member state is refused, never silently started over', async () => {
  await assert.rejects(vectorMember(null, { store: new MemoryMemberStore(null) }), { code: 'invalidSnapshot' });
  const bad = hex(vectors.positive[0].member_state_hex);
  bad[bad.length - 1] ^= 1;
  await assert.rejects(vectorMember(bad), { code: 'invalidSnapshot' });
  await assert.rejects(
    Member.create({
      secret: vectors.member_secret,
      authority: vectors.authority_public,
      memberId: 'sensor-8',
      store: new MemoryMemberStore(hex(vectors.positive[0].member_state_hex)),
    }),
    { code: 'invalidSnapshot' },
    "another member's record",
  );
  await assert.rejects(
    Member.create({ secret: vectors.member_secret, authority: vectors.authority_public, memberId: 'sensor-7', store: new MemoryMemberStore(bad), enroll: true }),
    { code: 'invalidConfig' },
    'enroll over an existing record',
  );
});

test('empty control payload (deleted retained message) is skipped', async () => {
  const { member, store } = await vectorMember(null);
  const before = store.record;
  assert.equal(await member.handle(vectors.control_topic, new Uint8Array(0)), null);
  assert.deepEqual(store.record, before);
  await member.close();
});

test('which key when: assigned sealer, live opener keys, scheduled switch and retirement', async () => {
  const v = vectors.positive[0];
  const tele = v.state.groups[0];
  const [k1, k2] = tele.keys.map((k) => Key.fromBytes(k.key_id, hex(k.secret)));
  let now = tele.keys[0].activation + 100;
  const { member } = await vectorMember(null, { clock: () => now });
  const r = await member.handle(vectors.control_topic, hex(v.envelope_hex));
  assert.equal(r.wakeAt, tele.keys[1].activation, 'wake up at the next key activation');
  assert.deepEqual(member.assignment('telemetry'), { keyId: 1, senderId: 17, suite: 'chacha20poly1305' });
  assert.deepEqual(member.assignment('commands'), { keyId: 300, senderId: 1, suite: 'hmac-sha256' });
  assert.equal(member.assignment('nope'), null);

  // The member seals with its assigned key and sender id; a peer with the group key opens it.
  const peer = new Opener({ keys: [k1, k2], clock: () => now });
  const mine = await member.seal('telemetry', 'plant/t', 'from the dashboard');
  const opened = peer.open('plant/t', mine);
  assert.deepEqual([opened.header.keyId, opened.header.senderId], [1, 17]);
  await assert.rejects(member.seal('nope', 'plant/t', 'x'), { code: 'invalidConfig' });

  // The member opens group traffic sealed under its current key.
  const device1 = await Sealer.create({ key: k1, senderId: 50, store: new MemoryCounterStore(0) });
  const msg = await member.open('telemetry', 'plant/t', await device1.seal('plant/t', 'current key'));
  assert.equal(new TextDecoder().decode(msg.payload), 'current key');

  // The scheduled switch: the sealer moves to key 2, sender id 4.
  now = tele.keys[1].activation;
  const t = await member.tick();
  assert.equal(t.changed, true);
  assert.equal(t.wakeAt, tele.keys[0].end_of_acceptance);
  assert.deepEqual(member.assignment('telemetry'), { keyId: 2, senderId: 4, suite: 'chacha20poly1305' });
  const after = peer.open('plant/t', await member.seal('telemetry', 'plant/t', 'after the switch'));
  assert.deepEqual([after.header.keyId, after.header.senderId], [2, 4]);
  const device = await Sealer.create({ key: k2, senderId: 50, store: new MemoryCounterStore(0) });
  const next = await member.open('telemetry', 'plant/t', await device.seal('plant/t', 'next key'));
  assert.equal(next.header.keyId, 2);

  // Key 1 is retired at its end of acceptance: the opener refuses it.
  const old = await Sealer.create({ key: k1, senderId: 51, store: new MemoryCounterStore(0) });
  const late = await old.seal('plant/t', 'late');
  now = tele.keys[0].end_of_acceptance;
  await member.tick();
  await assert.rejects(member.open('telemetry', 'plant/t', late), { code: 'unknownKey' });

  // Revoked from every group: no sealer, no key.
  await member.handle(vectors.control_topic, hex(vectors.positive[1].envelope_hex));
  await member.handle(vectors.control_topic, hex(vectors.positive[2].envelope_hex));
  assert.deepEqual(member.groups, []);
  assert.equal(member.assignment('telemetry'), null);
  const after2 = await device.seal('plant/t', 'after revocation');
  await assert.rejects(member.open('telemetry', 'plant/t', after2), { code: 'unknownKey' });
  await member.close();
});

test('a member without a clock switches when it first sees the next key, persisted first', async () => {
  const v = vectors.positive[0];
  const tele = v.state.groups[0];
  const k2 = Key.fromBytes(2, hex(tele.keys[1].secret));
  const { member, store } = await vectorMember(null, { clock: () => null });
  const r = await member.handle(vectors.control_topic, hex(v.envelope_hex));
  assert.equal(r.wakeAt, null, 'no clock: no wake-up');
  assert.equal(member.assignment('telemetry').keyId, 1);
  const before = store.record;
  const device = await Sealer.create({ key: k2, senderId: 50, store: new MemoryCounterStore(0) });
  await member.open('telemetry', 'plant/t', await device.seal('plant/t', 'next key in use'));
  assert.deepEqual(member.assignment('telemetry'), { keyId: 2, senderId: 4, suite: 'chacha20poly1305' });
  assert.notDeepEqual(store.record, before, 'the switch is persisted (next_seen)');
  await member.close();
  const { member: again } = await vectorMember(store.record, { clock: () => null });
  assert.equal(again.assignment('telemetry').keyId, 2, 'and survives a restart');
  await again.close();
});
