// Interop through a real Mosquitto with a WebSocket listener: messages
// sealed by the Rust `mqseal` CLI are opened in Node (MQTT.js over ws://),
// and messages sealed in Node are opened by the Rust CLI (`mqseal sub`).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import mqtt from 'mqtt';
import { FileCounterStore, Key, MemoryCounterStore, Opener, PlainTopics, Sealer, StaticKeyPair } from 'mqseal';
import { sealClient } from 'mqseal/mqtt';

import { runCli, sleep, startBroker, tempDir, waitFor } from './harness.mjs';

let broker;
let tmp;

before(async () => {
  broker = await startBroker();
  tmp = tempDir('mqseal-interop-');
});

after(async () => {
  await broker?.stop();
  tmp?.remove();
});

const text = (u8) => new TextDecoder().decode(u8);

async function wsClient() {
  const client = mqtt.connect(`ws://127.0.0.1:${broker.wsPort}`, { reconnectPeriod: 0, connectTimeout: 10_000 });
  await new Promise((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  return client;
}

function keyFile(name, key) {
  const path = join(tmp.dir, name);
  writeFileSync(path, `${key.toText()}\n`, { mode: 0o600 });
  return path;
}

for (const suite of ['chacha20poly1305', 'hmac-sha256']) {
  test(`Rust CLI seals (${suite}, TCP) -> Node opens (MQTT.js, ws://)`, async () => {
    const key = Key.generate(11);
    const kf = keyFile(`rust2js-${suite}.key`, key);
    const opener = new Opener({ keys: [key], maxAge: 300, maxSkew: 60 });
    const sealed = sealClient(await wsClient(), { opener });
    const got = [];
    const rejected = [];
    sealed.on('message', (topic, payload, header) => got.push({ topic, text: text(payload), header }));
    sealed.on('rejected', (topic, err) => rejected.push(err.code));
    const topic = `interop/${suite}/rust2js`;
    await sealed.subscribe(topic, { qos: 1 });

    const lines = ['reading 1', 'reading 2', 'reading 3'];
    const pub = runCli(
      ['pub', '-L', `mqtt://127.0.0.1:${broker.mqttPort}`, '-t', topic, '-q', '1', '-l', '--key-file', kf,
        '--sender-id', '77', '--counter-file', join(tmp.dir, `ctr-${suite}`), '--new-counter-file', '--suite', suite,
        '--timestamps'],
      { input: lines.join('\n') + '\n' },
    );
    const res = await pub.done;
    assert.equal(res.code, 0, `mqseal pub failed: ${res.stderr}`);
    await waitFor(() => got.length >= 3, 10_000, 'three verified messages');
    assert.deepEqual(got.map((m) => m.text), lines);
    for (const m of got) {
      assert.equal(m.topic, topic);
      assert.equal(m.header.senderId, 77);
      assert.equal(m.header.keyId, 11);
      assert.equal(m.header.suite, suite);
      assert.ok(Math.abs(m.header.timestamp - Date.now() / 1000) < 60);
    }
    assert.ok(got[0].header.counter < got[1].header.counter && got[1].header.counter < got[2].header.counter);
    assert.deepEqual(rejected, []);

    // A forgery injected with mosquitto_pub is rejected, never delivered.
    const forged = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.mqttPort), '-t', topic, '-m',
      'not an envelope at all, just text']);
    assert.equal(forged.status, 0, String(forged.stderr));
    await waitFor(() => rejected.length >= 1, 10_000, 'the forged message to be rejected');
    assert.ok(['unsupportedVersion', 'unknownSuite', 'truncated', 'badVarint', 'unknownFlags', 'auth'].includes(rejected[0]));
    assert.equal(got.length, 3);
    await sealed.end();
  });
}

test('Node seals (MQTT.js, ws://) -> Rust CLI opens (group key, both suites); replays are rejected by Rust', async () => {
  const key = Key.generate(5);
  const kf = keyFile('js2rust.key', key);
  const topic = 'interop/js2rust';
  const sub = runCli(
    ['sub', '-L', `mqtt://127.0.0.1:${broker.mqttPort}`, '-t', topic, '-q', '1', '--key-file', kf, '--meta', '-C', '6',
      '-W', '30'],
  );
  const client = await wsClient();
  const aead = await Sealer.create({ key, senderId: 3, store: new FileCounterStore(join(tmp.dir, 'js-ctr'), { create: true }) });
  const hmac = await Sealer.create({ key, senderId: 4, suite: 'hmac-sha256', store: new MemoryCounterStore() });
  const sealedA = sealClient(client, { sealer: aead });
  const sealedH = sealClient(client, { sealer: hmac });
  // `mqseal sub` prints nothing when it has subscribed: send until it has
  // seen its messages (every message has a fresh counter).
  let i = 0;
  let firstEnvelope = null;
  const sending = (async () => {
    while (sub.proc.exitCode === null && i < 200) {
      const env = await aead.seal(topic, `from js ${i}`);
      firstEnvelope ??= env;
      await client.publishAsync(topic, Buffer.from(env), { qos: 1 });
      await sealedH.publish(topic, `hmac from js ${i}`, { qos: 1 });
      i++;
      // A replay of the first envelope: Rust must report it, not print it.
      if (i > 1) await client.publishAsync(topic, Buffer.from(firstEnvelope), { qos: 1 });
      await sleep(150);
    }
  })();
  const res = await sub.done;
  await sending;
  assert.equal(res.code, 0, `mqseal sub failed: ${res.stderr}`);
  const lines = res.stdout.trim().split('\n');
  assert.equal(lines.length, 6, res.stdout);
  for (const line of lines) {
    assert.match(line, /^\[sender=(3|4) key=5 counter=\d+\] (hmac )?from js \d+$/);
  }
  assert.ok(lines.some((l) => l.startsWith('[sender=3 ')), 'AEAD messages opened by Rust');
  assert.ok(lines.some((l) => l.startsWith('[sender=4 ')), 'HMAC messages opened by Rust');
  if (lines.some((l) => l.endsWith('] from js 0'))) {
    // Rust saw the first envelope, so its replays must have been rejected.
    assert.match(res.stderr, /\((duplicate|replay)\)/, res.stderr);
  }
  assert.equal(lines.filter((l) => l.endsWith('] from js 0')).length <= 1, true, 'a replay was printed twice');
  await sealedA.end();
});

test('Node seals with a pairwise X25519 key -> Rust CLI opens with its own key pair', async () => {
  const rust = StaticKeyPair.generate();
  const browser = StaticKeyPair.generate();
  const secretFile = join(tmp.dir, 'rust.x25519');
  writeFileSync(secretFile, `${rust.secretText()}\n`, { mode: 0o600 });
  const topic = 'interop/pairwise';
  const sub = runCli(
    ['sub', '-L', `ws://127.0.0.1:${broker.wsPort}/mqtt`, '-t', topic, '--x25519', secretFile, '--peer', browser.publicKey,
      '--pair-key-id', '42', '--meta', '-C', '1', '-W', '30'],
  );
  const { send } = browser.pairwise(rust.publicKey, 42);
  const sealed = sealClient(await wsClient(), {
    sealer: await Sealer.create({ key: send, senderId: 9, store: new MemoryCounterStore() }),
  });
  let n = 0;
  while (sub.proc.exitCode === null && n < 200) {
    await sealed.publish(topic, `pairwise ${n++}`);
    await sleep(150);
  }
  const res = await sub.done;
  assert.equal(res.code, 0, `mqseal sub failed: ${res.stderr}`);
  assert.match(res.stdout.trim(), /^\[sender=9 key=42 counter=\d+\] pairwise \d+$/);
  await sealed.end();
});

test('MQTT 5 topic alias (real Mosquitto): a publish by alias is sealed for the aliased topic; an unknown alias is refused', async () => {
  const key = Key.generate(21);
  const opts = { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000 };
  const connect = () =>
    new Promise((resolve, reject) => {
      const c = mqtt.connect(`mqtt://127.0.0.1:${broker.mqttPort}`, opts);
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
  const rx = sealClient(await connect(), { opener: new Opener({ keys: [key] }) });
  const got = [];
  const rejected = [];
  rx.on('message', (topic, payload, header) => got.push({ topic, text: text(payload), counter: header.counter }));
  rx.on('rejected', (topic, err) => rejected.push(`${topic}:${err.code}`));
  await rx.subscribe('alias/#', { qos: 1 });
  // The raw bytes too: the second publish really goes out with an empty topic and the alias.
  const sent = [];
  const txClient = await connect();
  assert.ok(txClient.topicAliasSend, 'Mosquitto grants topic aliases (topicAliasMaximum in CONNACK)');
  txClient.on('packetsend', (p) => p.cmd === 'publish' && sent.push({ topic: String(p.topic), alias: p.properties?.topicAlias }));
  const tx = sealClient(txClient, { sealer: await Sealer.create({ key, senderId: 5, store: new MemoryCounterStore() }) });
  await tx.publish('alias/plant/temp', 'first', { qos: 1, properties: { topicAlias: 1 } });
  await tx.publish('', 'by alias', { qos: 1, properties: { topicAlias: 1 } });
  await assert.rejects(tx.publish('', 'never sent', { qos: 1, properties: { topicAlias: 2 } }), {
    name: 'MqsealError',
    code: 'unknownTopicAlias',
  });
  // Without an alias an empty topic is refused by the core before any counter is used.
  await assert.rejects(tx.publish('', 'no topic', { qos: 1 }), { code: 'invalidTopic' });
  await waitFor(() => got.length >= 2, 10_000, 'both messages');
  assert.deepEqual(sent, [
    { topic: 'alias/plant/temp', alias: 1 },
    { topic: '', alias: 1 },
  ]);
  assert.deepEqual(got.map((m) => [m.topic, m.text]), [
    ['alias/plant/temp', 'first'],
    ['alias/plant/temp', 'by alias'],
  ]);
  assert.deepEqual(got.map((m) => m.counter), [0n, 1n], 'no counter used by the refused publishes');
  assert.deepEqual(rejected, []);
  // Aliases belong to one connection: after a reconnect the alias is unknown again.
  await new Promise((resolve) => {
    txClient.once('close', resolve);
    txClient.stream.destroy();
  });
  await assert.rejects(tx.publish('', 'stale alias', { properties: { topicAlias: 1 } }), { code: 'unknownTopicAlias' });
  await tx.end(true);
  await rx.end();
});

test('a Rust `mqseal pub` and a Node FileCounterStore exclude each other on one counter file (one flock)', async () => {
  const key = Key.generate(31);
  const kf = keyFile('lock.key', key);
  const ctr = join(tmp.dir, 'shared.ctr');
  // Rust holds it: a long-running publisher reading lines from stdin.
  const rust = runCli(['pub', '-L', `mqtt://127.0.0.1:${broker.mqttPort}`, '-t', 'lock/t', '-l', '--key-file', kf,
    '--sender-id', '3', '--counter-file', ctr, '--new-counter-file']);
  rust.proc.stdin.write('one\n');
  await waitFor(() => {
    try {
      return readFileSync(`${ctr}.lock`, 'utf8').trim() === String(rust.proc.pid) && readFileSync(ctr, 'utf8').length > 0;
    } catch {
      return false;
    }
  }, 20_000, 'mqseal pub to take the counter file');
  await assert.rejects(Sealer.create({ key, senderId: 3, store: new FileCounterStore(ctr) }), (e) => {
    assert.equal(e.reason, 'locked', e.message);
    assert.equal(e.holderPid, rust.proc.pid);
    assert.ok(e.message.includes(ctr), e.message);
    return true;
  });
  rust.proc.stdin.end();
  const res = await rust.done;
  assert.equal(res.code, 0, res.stderr);
  // Node holds it: the Rust publisher is refused and names Node's pid.
  const sealer = await Sealer.create({ key, senderId: 3, store: new FileCounterStore(ctr) });
  const refused = await runCli(['pub', '-L', `mqtt://127.0.0.1:${broker.mqttPort}`, '-t', 'lock/t', '-m', 'x', '--key-file', kf,
    '--sender-id', '3', '--counter-file', ctr]).done;
  assert.notEqual(refused.code, 0, 'mqseal pub must refuse a counter file Node holds');
  assert.ok(refused.stderr.includes(ctr) && refused.stderr.includes(`pid ${process.pid}`), refused.stderr);
  await sealer.close();
});

test('plain topics (real Mosquitto): sealed unless allowlisted by a PlainTopics; $SYS only by a filter naming it', async () => {
  const key = Key.generate(31);
  const opts = { reconnectPeriod: 0, connectTimeout: 10_000 };
  const connect = () =>
    new Promise((resolve, reject) => {
      const c = mqtt.connect(`mqtt://127.0.0.1:${broker.mqttPort}`, opts);
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
  assert.throws(() => new PlainTopics(['a/#/b']), { name: 'MqsealError', code: 'invalidFilter' });
  assert.throws(() => new PlainTopics('status/#'), { code: 'invalidFilter' });
  const fake = { publish() {}, on() {} };
  assert.throws(() => sealClient(fake, { filter: () => true }), { code: 'invalidConfig' }, 'the old option is refused');
  assert.throws(() => sealClient(fake, { plainTopics: ['a/#'] }), { code: 'invalidConfig' }, 'strings, not a PlainTopics');
  const plainTopics = new PlainTopics(['plaintest/status/+', '$SYS/broker/uptime']);
  const rx = sealClient(await connect(), { opener: new Opener({ keys: [key] }), plainTopics });
  const got = [];
  rx.on('message', (topic, payload) => got.push(`sealed ${topic} ${text(payload)}`));
  rx.on('plain', (topic, payload) => got.push(`plain ${topic} ${text(payload)}`));
  rx.on('rejected', (topic, err) => got.push(`rejected ${topic} ${err.code}`));
  await rx.subscribe(['plaintest/#', '$SYS/broker/uptime'], { qos: 1 });
  const raw = await connect();
  const tx = sealClient(raw, { sealer: await Sealer.create({ key, senderId: 6, store: new MemoryCounterStore() }) });
  const rawPublish = (topic, payload) => new Promise((res, rej) => raw.publish(topic, payload, { qos: 1 }, (e) => (e ? rej(e) : res())));
  await rawPublish('plaintest/status/dev1', 'online');
  await rawPublish('plaintest/status/dev1/cmd', 'open');
  await tx.publish('plaintest/cmd', 'start', { qos: 1 });
  await waitFor(() => got.length >= 3 && got.some((g) => g.includes('$SYS')), 15_000, 'three messages and the $SYS uptime');
  assert.ok(got.includes('plain plaintest/status/dev1 online'), got.join('\n'));
  assert.ok(got.includes('rejected plaintest/status/dev1/cmd unsupportedVersion'), got.join('\n'));
  assert.ok(got.includes('sealed plaintest/cmd start'), got.join('\n'));
  assert.ok(got.some((g) => g.startsWith('plain $SYS/broker/uptime ')), got.join('\n'));
  assert.equal(plainTopics.allows('$SYS/broker/uptime'), true);
  assert.equal(new PlainTopics(['#']).allows('$SYS/broker/uptime'), false);
  await rx.end();
  await tx.end();
});
