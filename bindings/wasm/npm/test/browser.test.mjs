// A real browser: Debian's chromium, driven by playwright-core, loads the
// example dashboard (examples/dashboard) from a localhost static server.
// The Rust `mqseal pub` CLI sends sealed readings through Mosquitto; the
// page must show the decrypted values, count injected forgeries and a
// replay as rejected by reason, and send a sealed command that the Rust
// `mqseal sub` verifies, with counters that survive a page reload (the
// IndexedDB counter store) and a second tab refused (Web Locks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Key, MemoryCounterStore, Sealer } from 'mqseal';

import { browserRig } from './browser-rig.mjs';
import { repoRoot, runCli, sleep, waitFor } from './harness.mjs';

const rig = browserRig('mqseal-browser-');

/** Clicks "Seal & send" until `mqseal sub -C 1` has verified one command; returns its counter. */
async function commandVerifiedByRust(page, kf) {
  const sub = runCli(
    ['sub', '-L', `mqtt://127.0.0.1:${rig.broker.mqttPort}`, '-t', 'plant/cmd', '-q', '1', '--key-file', kf, '--meta', '-C', '1',
      '-W', '40'],
  );
  for (let i = 0; i < 150 && sub.proc.exitCode === null; i++) {
    await page.click('#send');
    await sleep(250);
  }
  const res = await sub.done;
  assert.equal(res.code, 0, `mqseal sub failed: ${res.stderr}`);
  const m = /^\[sender=1000 key=1 counter=(\d+) ts=(\d+)\] valve open$/.exec(res.stdout.trim());
  assert.ok(m, `unexpected output of mqseal sub: ${res.stdout}`);
  assert.ok(Math.abs(Number(m[2]) - Date.now() / 1000) < 120, 'the page adds an authenticated timestamp');
  return BigInt(m[1]);
}

test('dashboard in chromium: live decrypted telemetry, rejections by reason, sealed commands', { timeout: 180_000 }, async () => {
  const key = Key.generate(1);
  const kf = join(rig.tmp.dir, 'group.key');
  writeFileSync(kf, `${key.toText()}\n`, { mode: 0o600 });

  const fragment = new URLSearchParams({
    broker: `ws://127.0.0.1:${rig.broker.wsPort}`,
    key: key.toText(),
    topics: 'plant/telemetry/#',
    cmd: 'plant/cmd',
    sender: '1000',
  });
  const context = await rig.browser.newContext({ viewport: { width: 1280, height: 820 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${rig.server.url}#${fragment}`);
  await page.waitForSelector('#log li:has-text("subscribed to plant/telemetry/#")', { timeout: 20_000 });
  await page.waitForFunction(() => !document.getElementById('send').disabled, null, { timeout: 20_000 });

  // Capture the raw envelopes too, to replay one later.
  const spy = await rig.spy();
  const captured = [];
  spy.on('message', (topic, payload) => captured.push({ topic, payload: Buffer.from(payload) }));
  await spy.subscribeAsync('plant/telemetry/#', { qos: 1 });

  // The Rust device side: sealed readings through Mosquitto (TCP); the page reads them over ws://.
  await rig.rustPub(kf, 'plant/telemetry/line1/temp', ['21.5', '21.7', '22.4'], 7);
  await rig.rustPub(kf, 'plant/telemetry/line2/pressure', ['{"bar": 1.02}'], 8);

  const temp = page.locator('tr[data-topic="plant/telemetry/line1/temp"]');
  await temp.locator('td.count', { hasText: /^3$/ }).waitFor({ timeout: 20_000 });
  assert.equal(await temp.locator('td.value').textContent(), '22.4');
  assert.equal(await temp.locator('td.sender').textContent(), '7');
  const pressure = page.locator('tr[data-topic="plant/telemetry/line2/pressure"]');
  await pressure.waitFor({ timeout: 20_000 });
  assert.equal(await pressure.locator('td.value').textContent(), 'bar: 1.02');
  assert.equal(await page.textContent('[data-testid=rejected-total]'), '0');

  // Injected messages: plain text, a well-formed envelope sealed under a
  // key the attacker made up (same key id), and a replay of a real one.
  await waitFor(() => captured.length >= 4, 10_000, 'the spy to capture the envelopes');
  rig.mosquittoPub('plant/telemetry/line1/temp', ['-m', '99.9']);
  const forger = await Sealer.create({ key: Key.generate(1), senderId: 7, store: new MemoryCounterStore(1000) });
  const forged = join(rig.tmp.dir, 'forged.bin');
  writeFileSync(forged, await forger.seal('plant/telemetry/line1/temp', '99.9'));
  rig.mosquittoPub('plant/telemetry/line1/temp', ['-f', forged]);
  const replay = join(rig.tmp.dir, 'replay.bin');
  writeFileSync(replay, captured[0].payload);
  rig.mosquittoPub(captured[0].topic, ['-f', replay]);

  await page.waitForFunction(
    () => document.querySelector('[data-testid=rejected-total]').textContent === '3',
    null,
    { timeout: 20_000 },
  );
  const reasons = await page.$$eval('#rejected-by-reason li', (lis) =>
    Object.fromEntries(lis.map((li) => [li.dataset.code, li.querySelector('.badge').textContent])));
  assert.equal(reasons.auth, '1', JSON.stringify(reasons));
  assert.equal(reasons.duplicate, '1', JSON.stringify(reasons));
  const formatCodes = ['unsupportedVersion', 'unknownSuite', 'truncated', 'badVarint', 'unknownFlags'];
  assert.equal(formatCodes.filter((c) => reasons[c] === '1').length, 1, JSON.stringify(reasons));
  assert.equal(await temp.locator('td.value').textContent(), '22.4', 'forgeries never reach the table');
  assert.equal(await temp.locator('td.count').textContent(), '3');

  // A sealed command from the page, verified by Rust.
  const first = await commandVerifiedByRust(page, kf);
  await page.waitForSelector('[data-testid=command-status]:has-text("sent")');

  mkdirSync(join(repoRoot, 'artifacts'), { recursive: true });
  await page.screenshot({ path: join(repoRoot, 'artifacts/dashboard.png'), fullPage: true });

  // A second tab with the same sender id is refused (Web Locks) ...
  const second = await context.newPage();
  await second.goto(`${rig.server.url}#${fragment}`);
  await second.waitForSelector('[data-testid=command-status]:has-text("another tab")', { timeout: 20_000 });
  assert.equal(await second.isDisabled('#send'), true);
  await second.close();

  // ... and after a reload the counters carry on from IndexedDB, never reused.
  await page.reload();
  await page.waitForSelector('#log li:has-text("subscribed to plant/telemetry/#")', { timeout: 20_000 });
  await page.waitForFunction(() => !document.getElementById('send').disabled, null, { timeout: 20_000 });
  const afterReload = await commandVerifiedByRust(page, kf);
  assert.ok(afterReload > first, `counter after reload ${afterReload} must exceed ${first}`);

  assert.deepEqual(pageErrors, []);
  await spy.endAsync();
  await context.close();
});

test('IndexedDbCounterStore in chromium: missing state refused unless create or clockFloor, compare-and-swap, tab lock, corrupt record', { timeout: 60_000 }, async () => {
  const context = await rig.browser.newContext();
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(rig.server.url);
  const r = await page.evaluate(async () => {
    const { IndexedDbCounterStore, Key, Sealer, clockFloor } = await import('/bindings/wasm/npm/index.js');
    const outcome = async (p) => {
      try {
        const v = await p;
        return { ok: v === undefined ? null : String(v) };
      } catch (e) {
        return { code: e.code, reason: e.reason, message: e.message };
      }
    };
    const key = Key.generate(1);
    const sealer = (store) => Sealer.create({ key, senderId: 1, store, block: 8 });
    // No record: refused, and nothing is written.
    const missing = await outcome(sealer(new IndexedDbCounterStore('fresh')));
    const stillMissing = await outcome(sealer(new IndexedDbCounterStore('fresh')));
    // An explicit create for a new sender; a second create is refused.
    const first = await sealer(new IndexedDbCounterStore('fresh', { create: true }));
    const firstCounters = [];
    for (let i = 0; i < 3; i++) {
      firstCounters.push(String(first.nextCounter));
      await first.seal('t', 'x');
    }
    // The tab lock: a second holder is refused while the first is open.
    const locked = await outcome(sealer(new IndexedDbCounterStore('fresh')));
    await first.close();
    const recreate = await outcome(sealer(new IndexedDbCounterStore('fresh', { create: true })));
    const again = await sealer(new IndexedDbCounterStore('fresh'));
    const resumedAt = String(again.nextCounter);
    await again.close();
    // Two unlocked stores on one record: the second writer's swap conflicts.
    const a = new IndexedDbCounterStore('fresh', { lock: false });
    const b = new IndexedDbCounterStore('fresh', { lock: false });
    const va = await a.open();
    const vb = await b.open();
    const swapA = await outcome(a.swap(va, va + 5n));
    const swapB = await outcome(b.swap(vb, vb + 5n));
    a.close();
    b.close();
    // A record that is not a counter.
    const db = await new Promise((res, rej) => {
      const q = indexedDB.open('mqseal', 1);
      q.onsuccess = () => res(q.result);
      q.onerror = () => rej(q.error);
    });
    await new Promise((res) => {
      const tx = db.transaction('counters', 'readwrite');
      tx.objectStore('counters').put('garbage', 'bad');
      tx.oncomplete = res;
    });
    db.close();
    const corrupt = await outcome(sealer(new IndexedDbCounterStore('bad')));
    // The clock floor, computed by the core.
    const before = clockFloor(Date.now());
    const floored = await sealer(new IndexedDbCounterStore('floor', { clockFloor: true }));
    const floor = floored.nextCounter;
    await floored.close();
    const after = clockFloor(Date.now());
    return {
      missing, stillMissing, firstCounters, locked, recreate, resumedAt, swapA, swapB, corrupt,
      floorOk: floor >= before && floor <= after, floor: String(floor),
    };
  });

  assert.equal(r.missing.reason, 'missing', JSON.stringify(r.missing));
  assert.match(r.missing.message, /fresh/);
  assert.equal(r.stillMissing.reason, 'missing');
  assert.deepEqual(r.firstCounters, ['0', '1', '2']);
  assert.equal(r.locked.reason, 'locked');
  assert.equal(r.recreate.reason, 'conflict');
  assert.ok(BigInt(r.resumedAt) > 2n, `resumed at ${r.resumedAt}`);
  assert.equal(r.swapA.ok, null);
  assert.equal(r.swapB.reason, 'conflict', JSON.stringify(r.swapB));
  assert.equal(r.corrupt.reason, 'corrupt');
  assert.ok(r.floorOk, r.floor);
  assert.deepEqual(pageErrors, []);
  await context.close();
});
