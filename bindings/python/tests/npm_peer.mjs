// The npm package's side of the Python <-> npm interop test
// (test_npm_interop.py): MQTT.js over ws:// with the package's sealClient.
//
//   node npm_peer.mjs '<json>'
//
// json: { "npm": "<bindings/wasm/npm>", "mode": "open" | "seal", "url":
// "ws://127.0.0.1:PORT/mqtt", "topic": ..., "suite": ..., "senderId": N,
// "messages": ["..."], and the key: "key": "mqseal:key:v1:..." (a group
// key), or "x25519": "<this side's secret text>", "peer": "<the other
// side's public text>", "keyId": N (pairwise keys) }.
//
// open: subscribes, prints {"ready": true}, then one JSON line per message
// ({"payload", "senderId", "keyId", "counter", "suite"} when verified,
// {"rejected": code} when not) until len(messages) were verified.
// seal: seals each message to the topic (QoS 1) and exits once all are
// acknowledged. Both print their errors and exit non-zero on failure.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const cfg = JSON.parse(process.argv[2]);
const mqseal = await import(pathToFileURL(join(cfg.npm, 'node.js')).href);
const { sealClient } = await import(pathToFileURL(join(cfg.npm, 'mqtt.js')).href);
const mqtt = createRequire(join(cfg.npm, 'package.json'))('mqtt');

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

function keys() {
  if (cfg.key) {
    const key = mqseal.Key.fromText(cfg.key);
    return { send: key, recv: key };
  }
  return mqseal.StaticKeyPair.fromSecretText(cfg.x25519).pairwise(cfg.peer, cfg.keyId);
}

const client = mqtt.connect(cfg.url, { reconnectPeriod: 0, connectTimeout: 10_000 });
await new Promise((resolve, reject) => {
  client.once('connect', resolve);
  client.once('error', reject);
});
const k = keys();
try {
  if (cfg.mode === 'open') {
    const opener = new mqseal.Opener({ keys: [k.recv] });
    const sealed = sealClient(client, { opener });
    let verified = 0;
    const done = new Promise((resolve) => {
      sealed.on('message', (_topic, payload, header) => {
        out({
          payload: new TextDecoder().decode(payload),
          senderId: header.senderId,
          keyId: header.keyId,
          counter: header.counter.toString(),
          suite: header.suite,
        });
        verified += 1;
        if (verified >= cfg.messages.length) resolve();
      });
      sealed.on('rejected', (_topic, err) => out({ rejected: err.code }));
    });
    await sealed.subscribe(cfg.topic, { qos: 1 });
    out({ ready: true });
    await done;
  } else {
    const sealer = await mqseal.Sealer.create({
      key: k.send,
      senderId: cfg.senderId,
      suite: cfg.suite,
      store: new mqseal.MemoryCounterStore(),
    });
    const sealed = sealClient(client, { sealer });
    for (const m of cfg.messages) await sealed.publish(cfg.topic, m, { qos: 1 });
    await sealer.close();
    out({ sent: cfg.messages.length });
  }
} finally {
  await client.endAsync();
}
