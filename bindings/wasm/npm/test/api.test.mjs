// The package's API in Node: keys, sealing and opening, policies, error
// codes, counter reservation and the file counter store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  FileCounterStore,
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
    () => new Opener({ keys: [key], requireTimestamps: true }).open('t', plain.sealSync('t', 'x')),
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

test('sealer: counters come only from reserved blocks; sealSync fails when none is left', async () => {
  const reserved = [];
  let fail = false;
  const store = {
    next: 10,
    async reserve(count) {
      if (fail) throw new Error('disk full');
      const r = { start: this.next, end: this.next + count };
      this.next = r.end;
      reserved.push(r);
      return r;
    },
  };
  const sealer = await Sealer.create({ key: Key.generate(1), senderId: 9, store, block: 4 });
  assert.deepEqual(reserved, [{ start: 10, end: 14 }]);
  const opener = new Opener({ keys: [] });
  fail = true; // background refills now fail
  const counters = [];
  for (let i = 0; i < 4; i++) {
    counters.push(sealer.nextCounter);
    sealer.sealSync('t', 'x');
  }
  assert.deepEqual(counters, [10n, 11n, 12n, 13n]);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(sealer.remaining, 0);
  assert.throws(() => sealer.sealSync('t', 'x'), code('counterStore'));
  await assert.rejects(sealer.seal('t', 'x'), code('counterStore'));
  assert.equal(sealer.nextCounter, 14n, 'a failed reservation uses no counter');
  fail = false;
  store.next = 100; // another writer moved the store on: the sealer skips ahead
  await sealer.seal('t', 'x');
  assert.equal(sealer.nextCounter, 101n);
  fail = true; // background refills fail again
  for (let i = 0; i < 3; i++) sealer.sealSync('t', 'x');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(sealer.remaining, 0);
  fail = false;
  store.next = 50; // a store that forgot what it handed out
  await assert.rejects(sealer.seal('t', 'x'), { code: 'counterStore', message: /went backwards/ });
  assert.equal(sealer.nextCounter, 104n, 'nothing sealed, no counter used');
  opener.free();
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
      const sealer = await Sealer.create({ key, senderId: 1, store: new FileCounterStore(path), block: 8 });
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
  const fromCore = new Set([...rust.matchAll(/=> "([a-zA-Z]+)",/g)].map((m) => m[1]));
  const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');
  const union = /export type ErrorCode =([^;]+);/.exec(dts)[1];
  const fromDts = new Set([...union.matchAll(/'([a-zA-Z]+)'/g)].map((m) => m[1]));
  assert.ok(fromCore.size >= 30, `parsed ${fromCore.size} codes from error.rs`);
  assert.deepEqual([...fromDts].sort(), [...fromCore].sort());
});
