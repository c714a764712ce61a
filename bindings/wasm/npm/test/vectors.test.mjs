// The shared test vectors (core/tests/vectors/v1.json, the same file the
// Rust core, the C bindings and the Python reference check) through the
// npm package's public API, loaded the way Node users load it. Schema:
// docs/PROTOCOL.md section 11. JSON.parse reads numbers as doubles, so
// every u64 comes from its `_dec` string (11.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { Key, MemoryCounterStore, Opener, PublicKey, Sealer, StaticKeyPair } from 'mqseal';

const vectorsUrl = new URL('../../../../core/tests/vectors/v1.json', import.meta.url);
const vectors = JSON.parse(readFileSync(vectorsUrl, 'utf8'));

const hex = (h) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');
/** A u64 field from its decimal string: a bigint, or null. */
const u64 = (dec) => (dec === null || dec === undefined ? null : BigInt(dec));
/** How the package reports a u64 timestamp: a number below 2^53, else a bigint. */
const asReported = (v) => (v === null ? null : v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
const code = (c) => ({ name: 'MqsealError', code: c });

test('vector file is the expected format, and its numbers need the _dec strings', () => {
  assert.equal(vectors.format, 'mqseal-test-vectors');
  assert.equal(vectors.version, 1);
  assert.equal(BigInt(vectors.max_u64_dec), 0xffff_ffff_ffff_ffffn);
  assert.notEqual(String(vectors.max_u64), vectors.max_u64_dec, 'JSON.parse rounds 2^64 - 1: the runner reads _dec');
  for (const section of ['positive', 'negative', 'keys', 'pairwise', 'sequences']) {
    assert.ok(vectors[section].length > 0, section);
  }
});

for (const v of vectors.positive) {
  const counter = u64(v.counter_dec);
  const timestamp = u64(v.timestamp_dec);

  test(`positive ${v.name}: seals to envelope_hex`, async () => {
    const sealer = await Sealer.create({
      key: v.sender_key,
      senderId: v.sender_id,
      suite: v.suite,
      store: new MemoryCounterStore(counter),
    });
    assert.equal(sealer.nextCounter, counter);
    const envelope = await sealer.seal(v.topic, hex(v.plaintext_hex), { timestamp });
    assert.equal(toHex(envelope), v.envelope_hex);
  });

  test(`positive ${v.name}: opens to plaintext_hex`, () => {
    const opener = new Opener({ keys: [Key.fromText(v.open_key)] });
    const msg = opener.open(v.topic, hex(v.envelope_hex), { now: null });
    assert.equal(toHex(msg.payload), v.plaintext_hex);
    assert.deepEqual(msg.header, {
      suite: v.suite,
      keyId: Key.fromText(v.open_key).id,
      senderId: v.sender_id,
      counter,
      timestamp: asReported(timestamp),
    });
    // Once is enough: the same envelope again is a duplicate.
    assert.throws(() => opener.open(v.topic, hex(v.envelope_hex), { now: null }), code('duplicate'));
  });

  if (v.pairwise) {
    test(`positive ${v.name}: pairwise keys derive sender_key and open_key`, () => {
      const sender = StaticKeyPair.fromSecretText(v.pairwise.sender_secret);
      const receiver = StaticKeyPair.fromSecretText(v.pairwise.receiver_secret);
      const onSender = sender.pairwise(receiver.publicKey, v.pairwise.key_id);
      const onReceiver = receiver.pairwise(sender.publicKey, v.pairwise.key_id);
      assert.equal(onSender.send.toText(), v.sender_key);
      assert.equal(onReceiver.recv.toText(), v.open_key);
      assert.equal(onSender.recv.toText(), onReceiver.send.toText());
      assert.notEqual(onSender.send.toText(), onSender.recv.toText());
    });
  }
}

function openerFor(v) {
  const options = {
    keys: [v.open_key],
    window: v.window,
    maxAge: u64(v.max_age_dec),
    maxSkew: u64(v.max_skew_dec),
    requireTimestamp: v.require_timestamp,
    eviction: v.eviction,
  };
  if (v.suites !== null) options.suites = v.suites;
  if (v.rewrite) options.topicRewrite = v.rewrite;
  return new Opener(options);
}

for (const v of vectors.negative) {
  // The package's opener has the core's fixed capacity (DEFAULT_SENDERS,
  // 64 senders): vectors that need another capacity are skipped, by name
  // (PROTOCOL.md 11.3); the Rust and C runners cover them.
  const skip = v.senders !== null ? `needs a sender table of ${v.senders}; the JS opener's is fixed at 64` : false;
  test(`negative ${v.name}: fails with ${v.error}`, { skip }, () => {
    if (v.error === 'invalidConfig') {
      assert.throws(() => openerFor(v), code('invalidConfig'));
      return;
    }
    const opener = openerFor(v);
    const now = u64(v.now_dec);
    for (const pre of v.preopen) opener.open(v.topic, hex(pre), { now });
    const envelope = hex(v.envelope_hex);
    const copy = envelope.slice();
    assert.throws(
      () => opener.open(v.topic, envelope, { now }),
      (err) => {
        assert.ok(err instanceof Error, 'a JS Error');
        assert.equal(err.name, 'MqsealError');
        assert.equal(err.code, v.error, `${err.message}`);
        return true;
      },
    );
    assert.deepEqual(envelope, copy, "the caller's bytes are never changed");
  });
}

for (const v of vectors.sequences) {
  test(`sequence ${v.name}: ${v.config_error ?? `${v.steps.length} envelopes as stated`}`, () => {
    const options = { keys: [v.open_key], window: v.window, gaps: v.gaps, maxAge: u64(v.max_age_dec), maxSkew: u64(v.max_skew_dec) };
    if (v.config_error !== null) {
      assert.throws(() => new Opener(options), code(v.config_error));
      return;
    }
    const opener = new Opener(options);
    v.steps.forEach((step, i) => {
      const now = u64(step.now_dec);
      if (step.expect === null) {
        assert.equal(BigInt(opener.open(v.topic, hex(step.envelope_hex), { now }).header.counter), u64(step.counter_dec), `step ${i}`);
      } else {
        assert.throws(() => opener.open(v.topic, hex(step.envelope_hex), { now }), code(step.expect), `step ${i}`);
      }
    });
  });
}

for (const v of vectors.keys) {
  test(`keys ${v.name} (${v.kind}): ${v.error ?? 'parses'}`, () => {
    const parse = {
      key: () => Key.fromText(v.text),
      'x25519-secret': () => StaticKeyPair.fromSecretText(v.text),
      'x25519-public': () => PublicKey.fromText(v.text),
    }[v.kind];
    assert.ok(parse, `unknown kind ${v.kind}`);
    if (v.error !== null) {
      assert.throws(parse, code(v.error));
      return;
    }
    const parsed = parse();
    if (v.kind === 'key') {
      assert.equal(parsed.id, v.key_id);
      assert.equal(parsed.toText(), v.canonical_text);
      assert.equal(Key.fromBytes(v.key_id, hex(v.bytes_hex)).toText(), v.canonical_text, 'bytes_hex');
    } else if (v.kind === 'x25519-secret') {
      assert.equal(parsed.secretText(), v.canonical_text);
      assert.equal(StaticKeyPair.fromSecretBytes(hex(v.bytes_hex)).secretText(), v.canonical_text, 'bytes_hex');
      assert.equal(parsed.publicKey, v.public_text);
    } else {
      assert.equal(parsed.toText(), v.canonical_text);
    }
  });
}

for (const v of vectors.pairwise) {
  test(`pairwise ${v.name}: ${v.error ?? 'derives send_key and recv_key'}`, () => {
    const own = StaticKeyPair.fromSecretText(v.secret);
    if (v.error !== null) {
      assert.throws(() => own.pairwise(v.peer_public, v.key_id), code(v.error));
      return;
    }
    const keys = own.pairwise(v.peer_public, v.key_id);
    assert.equal(keys.send.toText(), v.send_key);
    assert.equal(keys.recv.toText(), v.recv_key);
  });
}
