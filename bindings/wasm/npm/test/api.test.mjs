// The package's API in Node: keys, sealing and opening, policies, error
// codes, counter reservation and the file counter store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  DEFAULT_RESERVATION_BLOCK,
  FileCounterStore,
  SNAPSHOT_RECORD_LEN,
  clockFloor,
  Key,
  MemoryCounterStore,
  Opener,
  Sealer,
  StaticKeyPair,
  MAX_OVERHEAD,
} from 'mqseal';

const text = (u8) => new TextDecoder().decode(u8);
const code = (c) => ({ name: 'MqsealError', code: c });

test('keys: generate, text round trip, bad input', () => {
  const k = Key.generate(7);
  assert.equal(k.id, 7);
  assert.match(k.toText(), /^mqseal:key:v1:7:[A-Za-z0-9_-]{43}$/);
  assert.equal(Key.fromText(k.toText()).toText(), k.toText());
  assert.equal(String(k), 'Key(7)', 'toString never shows the secret');
  assert.notEqual(Key.generate(7).toText(), k.toText());
  assert.throws(() => Key.fromText('mqseal:key:v1:7:short'), code('invalidKey'));
  assert.throws(() => Key.fromBytes(1, new Uint8Array(31)), code('invalidKey'));
  const pair = StaticKeyPair.generate();
  assert.match(pair.publicKey, /^mqseal:x25519-public:v1:/);
  assert.equal(StaticKeyPair.fromSecretText(pair.secretText()).publicKey, pair.publicKey);
  assert.throws(() => pair.pairwise(pair.publicKey, 1), code('selfPairing'));
  assert.throws(() => pair.pairwise('mqseal:x25519-public:v1:' + 'A'.repeat(43), 1), code('weakSharedSecret'));
});

test('keys from non-strings (an unset environment variable) and non-bytes: invalidKey, never a TypeError', () => {
  const invalidKey = (re) => (e) => {
    assert.ok(!(e instanceof TypeError), `a raw TypeError: ${e}`);
    assert.equal(e.name, 'MqsealError');
    assert.equal(e.code, 'invalidKey');
    assert.match(e.message, re);
    return true;
  };
  assert.throws(() => Key.fromText(undefined), invalidKey(/string, got undefined/));
  assert.throws(() => Key.fromText(process.env.MQSEAL_TEST_SURELY_UNSET_VARIABLE), invalidKey(/unset environment variable/));
  assert.throws(() => Key.fromText(null), invalidKey(/got null/));
  assert.throws(() => Key.fromText(42), invalidKey(/got a number/));
  assert.throws(() => Key.fromText({}), invalidKey(/got a object/));
  assert.throws(() => Key.fromText(Buffer.from(Key.generate(1).toText())), invalidKey(/as a string/));
  assert.throws(() => StaticKeyPair.fromSecretText(undefined), invalidKey(/x25519-secret/));
  assert.throws(() => Key.fromBytes(1, 'x'.repeat(32)), invalidKey(/Uint8Array/));
  assert.throws(() => Key.fromBytes(1, undefined), invalidKey(/Uint8Array/));
  // A key file's text with its final newline (readFileSync) parses.
  const k = Key.generate(9);
  assert.equal(Key.fromText(`${k.toText()}\n`).toText(), k.toText());
  assert.equal(Key.fromBytes(2, Buffer.alloc(32, 7)).id, 2, 'a Buffer is a Uint8Array');
});

test('headers: JSON.stringify works (toJSON: counter and timestamp as decimal strings), fields unchanged', async () => {
  const key = Key.generate(4);
  const store = new MemoryCounterStore(2n ** 60n); // counters from 2^60: beyond a number's exact range
  const sealer = await Sealer.create({ key, senderId: 8, store, block: 4 });
  const opener = new Opener({ keys: [key] });
  const { header } = opener.open('t', await sealer.seal('t', 'x', { timestamp: 1_700_000_000 }));
  assert.equal(typeof header.counter, 'bigint');
  assert.throws(() => JSON.stringify({ counter: header.counter }), TypeError, 'a bare bigint does not serialise');
  const json = JSON.parse(JSON.stringify({ header }));
  assert.deepEqual(json.header, {
    suite: 'chacha20poly1305',
    keyId: 4,
    senderId: 8,
    counter: String(header.counter),
    timestamp: '1700000000',
  });
  assert.ok(BigInt(json.header.counter) >= 2n ** 60n);
  assert.deepEqual(Object.keys(header), ['suite', 'keyId', 'senderId', 'counter', 'timestamp'], 'toJSON is not enumerable');
  const untimed = opener.open('t', await sealer.seal('t', 'y')).header;
  assert.equal(JSON.parse(JSON.stringify(untimed)).timestamp, null);
  await sealer.close();
});

test('both suites seal and open; hmac keeps the payload readable', async () => {
  const key = Key.generate(1);
  for (const suite of ['chacha20poly1305', 'hmac-sha256']) {
    const sealer = await Sealer.create({ key, senderId: 5, suite, store: new MemoryCounterStore() });
    const env = await sealer.seal('plant/temp', 'secret-21.5');
    assert.ok(env.length <= 'secret-21.5'.length + MAX_OVERHEAD);
    const readable = text(env).includes('secret-21.5');
    assert.equal(readable, suite === 'hmac-sha256');
    const msg = new Opener({ keys: [key] }).open('plant/temp', env);
    assert.equal(text(msg.payload), 'secret-21.5');
    assert.equal(msg.header.suite, suite);
    assert.equal(msg.header.senderId, 5);
    assert.equal(msg.header.counter, 0n);
  }
});

test('gaps: a late message below the window is accepted once by default, a replay with gaps 0', async () => {
  const key = Key.generate(1);
  const sealer = await Sealer.create({ key, senderId: 1, store: new MemoryCounterStore() });
  const envs = [];
  for (let i = 0; i < 200; i++) envs.push(await sealer.seal('t', `m${i}`));
  for (const [gaps, late] of [[undefined, null], [4, null], [0, 'replay']]) {
    const o = new Opener({ keys: [key], ...(gaps === undefined ? {} : { gaps }) });
    o.open('t', envs[0]);
    o.open('t', envs[199]);
    // Counter 1 is 198 behind, below the window of 128, never accepted.
    if (late === null) {
      assert.equal(BigInt(o.open('t', envs[1]).header.counter), 1n);
      assert.throws(() => o.open('t', envs[1]), code('replay'), 'accepted once');
    } else {
      assert.throws(() => o.open('t', envs[1]), code(late));
    }
    o.free();
  }
});

test('rejections carry stable codes', async () => {
  const key = Key.generate(1);
  const sealer = await Sealer.create({ key, senderId: 1, store: new MemoryCounterStore() });
  const env = await sealer.seal('a/b', 'x');
  const opener = new Opener({ keys: [key], window: 4 });
  assert.throws(() => opener.open('a/c', env), code('auth'));
  const flipped = env.slice();
  flipped[flipped.length - 1] ^= 1;
  assert.throws(() => opener.open('a/b', flipped), code('auth'));
  assert.throws(() => opener.open('a/b', env.slice(0, 3)), code('truncated'));
  opener.open('a/b', env);
  assert.throws(() => opener.open('a/b', env), code('duplicate'));
  for (let i = 0; i < 5; i++) opener.open('a/b', await sealer.seal('a/b', 'y'));
  // Counter 0 is now below the window of 4.
  assert.throws(() => opener.open('a/b', env), code('replay'));
  const other = await Sealer.create({ key: Key.generate(2), senderId: 1, store: new MemoryCounterStore() });
  const underKey2 = await other.seal('a/b', 'z');
  assert.throws(() => opener.open('a/b', underKey2), { code: 'unknownKey', keyId: 2 });
  assert.throws(() => new Opener({ window: 0 }), code('invalidConfig'));
  assert.throws(() => new Opener({ suites: ['aes'] }), code('invalidConfig'));
});

test('policies: suites, timestamps, max age and skew, topic rewrite, key retirement', async () => {
  const key = Key.generate(3);
  const hmac = await Sealer.create({ key, senderId: 2, suite: 'hmac-sha256', store: new MemoryCounterStore() });
  const onlyAead = new Opener({ keys: [key], suites: ['chacha20poly1305'] });
  const hmacEnv = await hmac.seal('t', 'x');
  assert.throws(() => onlyAead.open('t', hmacEnv), code('suiteNotAllowed'));

  const stamped = await Sealer.create({ key, senderId: 3, timestamps: true, store: new MemoryCounterStore() });
  const env = await stamped.seal('t', 'x');
  const now = Math.floor(Date.now() / 1000);
  const fresh = new Opener({ keys: [key], maxAge: 60, maxSkew: 5 }).open('t', env);
  assert.ok(Math.abs(fresh.header.timestamp - now) <= 2);
  assert.throws(() => new Opener({ keys: [key], maxAge: 60 }).open('t', env, { now: now + 3600 }), code('expired'));
  assert.throws(() => new Opener({ keys: [key], maxSkew: 5 }).open('t', env, { now: now - 3600 }), code('fromFuture'));
  assert.throws(() => new Opener({ keys: [key], maxAge: 60 }).open('t', env, { now: null }), code('clockRequired'));
  const plain = await Sealer.create({ key, senderId: 4, store: new MemoryCounterStore() });
  assert.throws(
    () => new Opener({ keys: [key], requireTimestamp: true }).open('t', plain.sealSync('t', 'x')),
    code('timestampRequired'),
  );

  const bridged = new Opener({ keys: [key], topicRewrite: { received: 'cloud/site-a/', sealed: 'site-a/' } });
  const sealedUnder = await plain.seal('site-a/temp', '20');
  assert.equal(text(bridged.open('cloud/site-a/temp', sealedUnder).payload), '20');
  assert.throws(() => bridged.open('elsewhere/temp', sealedUnder), code('topicNotRewritable'));

  const ring = new Opener({ keys: [key, Key.generate(4)] });
  ring.retireKey(4);
  assert.throws(() => ring.retireKey(4), code('keyNotFound'));
});

test('pairwise keys: a message is not reflected back to its sender', async () => {
  const device = StaticKeyPair.generate();
  const browser = StaticKeyPair.generate();
  const onBrowser = browser.pairwise(device.publicKey, 100);
  const onDevice = device.pairwise(browser.publicKey, 100);
  const sealer = await Sealer.create({ key: onBrowser.send, senderId: 1, store: new MemoryCounterStore() });
  const env = await sealer.seal('dev/1/cmd', 'open');
  assert.equal(text(new Opener({ keys: [onDevice.recv] }).open('dev/1/cmd', env).payload), 'open');
  assert.throws(() => new Opener({ keys: [onBrowser.recv] }).open('dev/1/cmd', env), code('auth'));
});

test('sealer: counters only after the store persisted a reservation; the core refuses a bad grant', async () => {
  const swaps = [];
  let fail = false;
  // A store driver: compare-and-swap in memory, with a switch to fail writes.
  const store = {
    value: 10n,
    async open() {
      return this.value;
    },
    async swap(current, limit) {
      if (fail) throw new Error('disk full');
      if (current !== this.value) throw Object.assign(new Error('changed'), { code: 'counterStore', reason: 'conflict' });
      swaps.push([current, limit]);
      this.value = limit;
    },
  };
  const sealer = await Sealer.create({ key: Key.generate(1), senderId: 9, store, block: 4 });
  assert.deepEqual(swaps, [[10n, 14n]], 'the first block is persisted before the first message');
  fail = true; // background refills now fail
  const counters = [];
  for (let i = 0; i < 4; i++) {
    counters.push(sealer.nextCounter);
    sealer.sealSync('t', 'x');
  }
  assert.deepEqual(counters, [10n, 11n, 12n, 13n]);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(sealer.remaining, 0);
  assert.throws(() => sealer.sealSync('t', 'x'), { code: 'counterStore', reason: 'notGranted' });
  await assert.rejects(sealer.seal('t', 'x'), code('counterStore'));
  assert.equal(sealer.nextCounter, 14n, 'a failed reservation uses no counter');
  fail = false;
  await sealer.seal('t', 'x');
  assert.equal(sealer.nextCounter, 15n);
  assert.equal(store.value, 18n);
  // Another writer moved the store on: the next persist conflicts and the sealer stops for good.
  store.value = 100n;
  for (let i = 0; i < 3; i++) sealer.sealSync('t', 'x');
  await new Promise((r) => setTimeout(r, 10));
  await assert.rejects(sealer.seal('t', 'x'), { code: 'counterStore', reason: 'conflict' });
  assert.throws(() => sealer.sealSync('t', 'x'), { code: 'counterStore', reason: 'conflict' });
  assert.equal(store.value, 100n, 'nothing written over the other writer');

  // The WebAssembly sealer itself: nothing granted, nothing sealed; a
  // grant that does not follow from its last reservation is refused.
  const { RawSealer } = await import('../wasm/mqseal_wasm.js');
  const raw = new RawSealer(Key.generate(1), 1, 'chacha20poly1305', 5n, undefined);
  assert.throws(() => raw.seal('t', new Uint8Array(1)), { code: 'counterStore', reason: 'notGranted' });
  const r = raw.reservationNeeded(0n);
  assert.deepEqual(r, { current: 5n, limit: 5n + BigInt(DEFAULT_RESERVATION_BLOCK) });
  assert.throws(() => raw.grant(4n, 2000n), { code: 'counterStore', reason: 'conflict' });
  assert.throws(() => raw.grant(5n, 5n), { code: 'counterStore', reason: 'conflict' });
  raw.grant(r.current, r.limit);
  assert.throws(() => raw.grant(r.current, r.limit), { code: 'counterStore', reason: 'conflict' }, 'granting twice');
  raw.seal('t', new Uint8Array(1));
  assert.equal(raw.nextCounter, 6n);
  assert.throws(() => new RawSealer(Key.generate(1), 1, 'chacha20poly1305', undefined, undefined), {
    code: 'counterStore',
    reason: 'missing',
  });
  raw.free();
});

test('DEFAULT_RESERVATION_BLOCK and the clock floor come from the core', async () => {
  assert.equal(DEFAULT_RESERVATION_BLOCK, 1024);
  assert.equal(clockFloor(1_700_000_000_000), 1_700_000_000_000n * 1024n);
  const store = new MemoryCounterStore();
  const s = await Sealer.create({ key: Key.generate(1), senderId: 1, store });
  assert.equal(store.stored, 1024n, 'one block of the core default reserved');
  assert.equal(s.remaining, 1024);
  // No state: refused unless the store asks for the clock floor.
  await assert.rejects(Sealer.create({ key: Key.generate(1), senderId: 1, store: new MemoryCounterStore(null) }), {
    code: 'counterStore',
    reason: 'missing',
  });
  const before = clockFloor(Date.now());
  const floored = await Sealer.create({ key: Key.generate(1), senderId: 1, store: new MemoryCounterStore(null, { clockFloor: true }) });
  assert.ok(floored.nextCounter >= before);
});

test('opener options are the core OpenerConfig: defaults, implied skew, LRU needs maxAge, errors name the option', async () => {
  const cfg = new Opener().config;
  assert.deepEqual(cfg, {
    window: 128,
    gaps: 4,
    maxAge: null,
    maxSkew: null,
    requireTimestamp: false,
    suites: ['chacha20poly1305', 'hmac-sha256'],
    eviction: 'rejectNew',
    effectiveMaxSkew: null,
    timestampsRequired: false,
  });
  assert.equal(new Opener({ maxAge: 60 }).config.effectiveMaxSkew, 60);
  assert.equal(new Opener({ maxAge: 3600 }).config.effectiveMaxSkew, 300);
  assert.equal(new Opener({ maxAge: 3600, maxSkew: 5 }).config.effectiveMaxSkew, 5);
  assert.equal(new Opener({ maxAge: 60 }).config.timestampsRequired, true);
  // A message dated a year ahead is rejected under maxAge alone.
  const key = Key.generate(1);
  const s = await Sealer.create({ key, senderId: 1, store: new MemoryCounterStore() });
  const now = Math.floor(Date.now() / 1000);
  const ahead = await s.seal('t', 'x', { timestamp: now + 365 * 86400 });
  assert.throws(() => new Opener({ keys: [key], maxAge: 60 }).open('t', ahead, { now }), code('fromFuture'));
  const named = (option, re) => (e) => {
    assert.equal(e.code, 'invalidConfig');
    assert.equal(e.option, option);
    assert.match(e.message, re);
    return true;
  };
  assert.throws(() => new Opener({ eviction: 'leastRecentlyUsed' }), named('eviction', /^eviction: .*needs a maximum age/));
  // The option named in the message too, with the value given (the core's ConfigField).
  assert.throws(() => new Opener({ window: 1000 }), named('window', /^window: must be an integer from 1 to 256, got 1000$/));
  new Opener({ eviction: 'leastRecentlyUsed', maxAge: 60 }).free();
  assert.throws(() => new Opener({ window: 0 }), named('window', /1 to 256/));
  assert.throws(() => new Opener({ window: 257 }), named('window', /1 to 256/));
  assert.throws(() => new Opener({ window: 1.5 }), named('window', /integer/));
  assert.throws(() => new Opener({ gaps: 5 }), named('gaps', /^gaps: must be an integer from 0 to 4, got 5$/));
  assert.throws(() => new Opener({ gaps: -1 }), named('gaps', /0 to 4/));
  assert.throws(() => new Opener({ gaps: '2' }), named('gaps', /0 to 4/));
  assert.throws(() => new Opener({ suites: [] }), named('suites', /at least one/));
  assert.throws(() => new Opener({ suites: ['aes'] }), named('suites', /unknown suite/));
  assert.throws(() => new Opener({ maxAge: -1 }), named('maxAge', /seconds/));
  assert.throws(() => new Opener({ maxSkew: 'x' }), named('maxSkew', /seconds/));
  assert.throws(() => new Opener({ requireTimestamp: 1 }), named('requireTimestamp', /boolean/));
  assert.throws(() => new Opener({ eviction: 'fifo' }), named('eviction', /rejectNew/));
  assert.throws(() => new Opener({ requireTimestamps: true }), named('requireTimestamps', /requireTimestamp/));
  const o = new Opener({ maxAge: 60 });
  assert.throws(() => o.setConfig({ eviction: 'leastRecentlyUsed' }), named('eviction', /needs a maximum age/));
  assert.equal(o.config.maxAge, 60, 'unchanged on error');
  o.setConfig({ window: 16 });
  assert.deepEqual([o.config.window, o.config.maxAge], [16, null], 'setConfig replaces the whole configuration');
});

test('opener snapshot/restore: 52-byte records, round trip, never rolls back, invalid records refused, forgetSender', async () => {
  const key = Key.generate(3);
  const sealer = await Sealer.create({ key, senderId: 4, store: new MemoryCounterStore() });
  const envs = [];
  for (let i = 0; i < 6; i++) envs.push(await sealer.seal('t', `m${i}`));
  const live = new Opener({ keys: [key] });
  for (const e of envs.slice(0, 3)) live.open('t', e);
  const old = live.snapshot();
  assert.equal(old.length, SNAPSHOT_RECORD_LEN);
  assert.equal(SNAPSHOT_RECORD_LEN, 52);
  for (const e of envs.slice(3)) live.open('t', e);
  const latest = live.snapshot();

  // Round trip: a restarted receiver rejects what was accepted before.
  const restarted = new Opener({ keys: [key] });
  assert.deepEqual(restarted.restore(latest), { restored: 1, unknownKey: 0 });
  for (const e of envs) assert.throws(() => restarted.open('t', e), code('duplicate'));
  // No rollback: restoring the older snapshot onto it changes nothing.
  assert.deepEqual(restarted.restore(old), { restored: 1, unknownKey: 0 });
  for (const e of envs) assert.throws(() => restarted.open('t', e), code('duplicate'));
  assert.deepEqual(restarted.snapshot(), latest);

  // A record that accepted nothing (bit 0 clear) would make every counter new again: refused.
  const zero = latest.slice();
  zero.fill(0, 20, 52);
  assert.throws(() => new Opener({ keys: [key] }).restore(zero), code('invalidSnapshot'));
  const badWidth = latest.slice();
  badWidth[8] = 0;
  assert.throws(() => new Opener({ keys: [key] }).restore(badWidth), code('invalidSnapshot'));
  assert.throws(() => new Opener({ keys: [key] }).restore(latest.slice(0, 51)), code('invalidSnapshot'));
  // One invalid record restores nothing.
  const mixed = new Opener({ keys: [key] });
  assert.throws(() => mixed.restore(new Uint8Array([...latest, ...zero])), code('invalidSnapshot'));
  assert.equal(mixed.trackedSenders, 0);
  // A key id the keyring does not hold is left out and counted.
  assert.deepEqual(new Opener({ keys: [Key.generate(9)] }).restore(latest), { restored: 0, unknownKey: 1 });

  assert.equal(restarted.forgetSender(3, 4), true);
  assert.equal(restarted.forgetSender(3, 4), false);
  assert.equal(restarted.trackedSenders, 0);
});

test('sealer: invalid arguments', async () => {
  const store = new MemoryCounterStore();
  await assert.rejects(Sealer.create({ key: Key.generate(1), senderId: -1, store }), code('invalidConfig'));
  await assert.rejects(Sealer.create({ key: Key.generate(1), senderId: 1, suite: 'aes', store }), code('invalidConfig'));
  await assert.rejects(Sealer.create({ key: Key.generate(1), senderId: 1 }), code('invalidConfig'));
  await assert.rejects(Sealer.create({ key: 'nope', senderId: 1, store }), code('invalidKey'));
  assert.throws(() => new Sealer(), code('invalidConfig'));
  const s = await Sealer.create({ key: Key.generate(1), senderId: 1, store });
  await assert.rejects(s.seal('t', 'x', { timestamp: 1.5 }), code('invalidConfig'));
  await assert.rejects(s.seal('t', 42), code('invalidConfig'));
});

test('file counter store: restarts never reuse a counter, same format as the Rust store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mqseal-js-'));
  try {
    const path = join(dir, 'sender-1.ctr');
    const key = Key.generate(1);
    const opener = new Opener({ keys: [key] });
    const seen = new Set();
    for (let run = 0; run < 3; run++) {
      const store = new FileCounterStore(path, { create: run === 0 });
      const sealer = await Sealer.create({ key, senderId: 1, store, block: 8 });
      for (let i = 0; i < 5; i++) {
        const msg = opener.open('t', await sealer.seal('t', `run ${run}`));
        assert.ok(!seen.has(msg.header.counter));
        seen.add(msg.header.counter);
      }
      await sealer.close();
    }
    const limit = BigInt(/^mqseal-counter v1 (\d+)\n$/.exec(readFileSync(path, 'utf8'))[1]);
    assert.ok([...seen].every((c) => c < limit));
    writeFileSync(path, 'garbage');
    await assert.rejects(Sealer.create({ key, senderId: 1, store: new FileCounterStore(path) }), {
      code: 'counterStore',
      reason: 'corrupt',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the TypeScript ErrorCode union lists exactly the core error codes', () => {
  const root = new URL('../../../../', import.meta.url);
  const rust = readFileSync(new URL('core/src/error.rs', root), 'utf8');
  const fromCore = new Set([...rust.matchAll(/^\s*Error::[A-Za-z]+.*=> "([a-zA-Z]+)",$/gm)].map((m) => m[1]));
  const storeCodes = [...rust.matchAll(/^\s*StoreError::[A-Za-z]+ => "([a-zA-Z]+)",$/gm)].map((m) => m[1]);
  const dtsText = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');
  const reasons = /reason\?: ([^;]+);/.exec(dtsText)[1];
  assert.ok(storeCodes.length >= 7);
  for (const c of storeCodes) assert.ok(reasons.includes(`'${c}'`), `reason ${c} missing from index.d.ts`);
  const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');
  const union = /export type ErrorCode =([^;]+);/.exec(dts)[1];
  const fromDts = new Set([...union.matchAll(/'([a-zA-Z]+)'/g)].map((m) => m[1]));
  assert.ok(fromCore.size >= 30, `parsed ${fromCore.size} codes from error.rs`);
  assert.deepEqual([...fromDts].sort(), [...fromCore].sort());
});

test('opener: a fleet of 300 senders, far beyond the old fixed 64', async () => {
  const key = Key.generate(1);
  const opener = new Opener({ keys: [key] });
  assert.equal(opener.senderLimit, 1000000);
  const envs = [];
  for (let id = 0; id < 300; id++) {
    const sealer = await Sealer.create({ key, senderId: id, store: new MemoryCounterStore() });
    envs.push(await sealer.seal('fleet/up', `d${id}`));
  }
  for (const env of envs) opener.open('fleet/up', env);
  assert.equal(opener.trackedSenders, 300);
  assert.ok(opener.senderMemoryBytes > 300 * 64 && opener.senderMemoryBytes < 300 * 400, `${opener.senderMemoryBytes}`);
  for (const env of envs) assert.throws(() => opener.open('fleet/up', env), code('duplicate'));
});
