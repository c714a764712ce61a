// The shared test vectors (core/tests/vectors/v1.json, the same file the
// Rust core and the Python reference check) through the npm package's
// public API, loaded the way Node users load it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { Key, MemoryCounterStore, Opener, Sealer, StaticKeyPair } from 'mqseal';

const vectorsUrl = new URL('../../../../core/tests/vectors/v1.json', import.meta.url);
const vectors = JSON.parse(readFileSync(vectorsUrl, 'utf8'));

const hex = (h) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');

test('vector file is the expected format', () => {
  assert.equal(vectors.format, 'mqseal-test-vectors');
  assert.equal(vectors.version, 1);
  assert.ok(vectors.positive.length > 0);
  assert.ok(vectors.negative.length > 0);
});

for (const v of vectors.positive) {
  test(`positive ${v.name}: seals to envelope_hex`, async () => {
    const sealer = await Sealer.create({
      key: v.sender_key,
      senderId: v.sender_id,
      suite: v.suite,
      store: new MemoryCounterStore(v.counter),
    });
    assert.equal(sealer.nextCounter, BigInt(v.counter));
    const envelope = await sealer.seal(v.topic, hex(v.plaintext_hex), { timestamp: v.timestamp });
    assert.equal(toHex(envelope), v.envelope_hex);
  });

  test(`positive ${v.name}: opens to plaintext_hex`, () => {
    const opener = new Opener({ keys: [Key.fromText(v.open_key)] });
    const msg = opener.open(v.topic, hex(v.envelope_hex), { now: v.timestamp });
    assert.equal(toHex(msg.payload), v.plaintext_hex);
    assert.deepEqual(msg.header, {
      suite: v.suite,
      keyId: Key.fromText(v.open_key).id,
      senderId: v.sender_id,
      counter: BigInt(v.counter),
      timestamp: v.timestamp,
    });
    // Once is enough: the same envelope again is a duplicate.
    assert.throws(() => opener.open(v.topic, hex(v.envelope_hex)), { name: 'MqsealError', code: 'duplicate' });
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

for (const v of vectors.negative) {
  test(`negative ${v.name}: fails with ${v.error}`, () => {
    const opener = new Opener({
      keys: [v.open_key],
      window: v.window,
      maxAge: v.max_age,
      maxSkew: v.max_skew,
    });
    for (const pre of v.preopen) opener.open(v.topic, hex(pre), { now: v.now });
    assert.throws(
      () => opener.open(v.topic, hex(v.envelope_hex), { now: v.now }),
      (err) => {
        assert.ok(err instanceof Error, 'a JS Error');
        assert.equal(err.name, 'MqsealError');
        assert.equal(err.code, v.error, `${err.message}`);
        return true;
      },
    );
  });
}
