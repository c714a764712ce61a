// Seal+open per second in Node through the npm package `mqseal` (the
// WebAssembly build of the core, as shipped: bindings/wasm/npm), for the
// sizes and suites of the native benchmarks.
//
//   node benches/wasm/bench.mjs [--seconds 1] [--rounds 3] [--json out.json]
//
// The package must be built first (bash bindings/wasm/build.sh);
// scripts/bench.sh does it and sets the native figures beside these.
// Every opened payload is checked against what was sealed.
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
// --pkg DIR: another build of the package (a copy of bindings/wasm/npm
// with its own wasm/), to compare build settings.
const pkgDir = opt('--pkg', null);
const pkg = pkgDir
  ? new URL(`file://${pkgDir.startsWith('/') ? '' : process.cwd() + '/'}${pkgDir}/node.js`)
  : new URL('../../bindings/wasm/npm/node.js', import.meta.url);
const { Key, MemoryCounterStore, Opener, Sealer } = await import(pkg.href);
const seconds = Number(opt('--seconds', '1'));
const rounds = Number(opt('--rounds', '3'));
const jsonOut = opt('--json', null);

const SIZES = [16, 64, 256, 1024, 16384];
const TOPIC = 'factory/line1/press7/tel'; // as in the native benches
const KEY_BYTES = new Uint8Array(32).fill(0x42);

function payload(len) {
  const p = new Uint8Array(len);
  for (let i = 0; i < len; i++) p[i] = ((i * 31) ^ 0x5a) & 0xff;
  return p;
}

async function measure(suite, size) {
  const key = Key.fromBytes(1, KEY_BYTES);
  // A large reservation block: the store is touched once, as a long-lived
  // sender would; sealSync then never waits.
  const sealer = await Sealer.create({ key, senderId: 7, suite, store: new MemoryCounterStore(), block: 1 << 24 });
  const opener = new Opener({ keys: [key] });
  const msg = payload(size);
  const once = () => {
    const env = sealer.sealSync(TOPIC, msg);
    const opened = opener.open(TOPIC, env, { now: null });
    if (opened.payload.length !== size || opened.payload[size - 1] !== msg[size - 1]) {
      throw new Error(`round trip mismatch at ${size} B`);
    }
  };
  // Warm-up: JIT and WebAssembly tier-up (Liftoff to TurboFan).
  const warm = performance.now() + 300;
  while (performance.now() < warm) for (let i = 0; i < 20; i++) once();
  const rates = [];
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const start = performance.now();
    const end = start + seconds * 1000;
    let now = start;
    while (now < end) {
      for (let i = 0; i < 50; i++) once();
      n += 50;
      now = performance.now();
    }
    rates.push(n / ((now - start) / 1000));
  }
  rates.sort((a, b) => a - b);
  sealer.close && (await sealer.close());
  opener.free && opener.free();
  return { suite, size, ops_per_s: rates[Math.floor(rates.length / 2)], all: rates };
}

const results = [];
for (const suite of ['chacha20poly1305', 'hmac-sha256']) {
  for (const size of SIZES) {
    const r = await measure(suite, size);
    results.push(r);
    console.log(`wasm ${suite} ${size} B: ${r.ops_per_s.toFixed(0)} seal+open/s (${(1e6 / r.ops_per_s).toFixed(2)} µs)`);
  }
}
const out = { node: process.version, package: pkg.pathname, seconds, rounds, results };
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(out, null, 1) + '\n');
