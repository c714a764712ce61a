// The Node file counter store under real concurrency: two worker_threads
// and two processes started together on one file, many rounds; a holder
// killed with SIGKILL; a flock(2) holder from outside Node (the lock the
// Rust store takes); lost state refused unless created or clock-floored;
// a writer behind the store's back stops the sealer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { FileCounterStore, Key, Opener, Sealer, clockFloor } from 'mqseal';
import { sleep, testTempDir, waitFor } from './harness.mjs';

const holder = fileURLToPath(new URL('./holder.mjs', import.meta.url));
const code = (reason) => ({ name: 'MqsealError', code: 'counterStore', reason });

async function newFile(dir, name) {
  const path = join(dir, name);
  const s = new FileCounterStore(path, { create: true });
  await s.open();
  await s.close();
  return path;
}

/** Whether util-linux flock(1) is installed; skips `t` when it is not. */
function haveFlock(t) {
  if (spawnSync('sh', ['-c', 'command -v flock']).status === 0) return true;
  t.skip('util-linux flock(1) is not installed');
  return false;
}

/**
 * flock(1) holding flock(2) LOCK_EX on `<path>.lock` from outside Node, the
 * lock fs4 takes for the Rust store, running `script` (with the lock file as
 * $0) under it; resolves once it holds the lock (the script prints a line).
 */
async function outsideHolder(path, script) {
  const p = spawn('flock', ['-n', '-F', `${path}.lock`, 'sh', '-c', script, `${path}.lock`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve) => p.stdout.once('data', resolve));
  return p;
}

/** Checks one round: exactly one winner, the other refused with 'locked'; returns the winner's counters. */
function checkRound(results, round, expectHolderPid) {
  const ok = results.filter((r) => r.ok);
  const refused = results.filter((r) => !r.ok);
  assert.equal(ok.length, 1, `round ${round}: ${JSON.stringify(results)}`);
  assert.equal(refused.length, 1, `round ${round}: ${JSON.stringify(results)}`);
  assert.equal(refused[0].code, 'counterStore');
  assert.equal(refused[0].reason, 'locked', refused[0].message);
  assert.equal(refused[0].holderPid, expectHolderPid(ok[0]), refused[0].message);
  assert.match(refused[0].message, /counter file .* is in use by/);
  return ok[0].counters;
}

function assertNeverShared(all, counters, round) {
  for (const c of counters) {
    assert.ok(!all.has(c), `round ${round}: counter ${c} used twice`);
    all.add(c);
  }
}

test('two worker_threads started together on one file: one holds it, the other is refused; counters never shared', { timeout: 120_000 }, async (t) => {
  const tmp = testTempDir(t);
  const key = Key.generate(1).toText();
  const path = await newFile(tmp.dir, 'threads.ctr');
  const all = new Set();
  for (let round = 0; round < 25; round++) {
    const barrier = new SharedArrayBuffer(4);
    const workers = [0, 1].map(
      () => new Worker(holder, { workerData: { args: ['race', path, key, '6'], barrier } }),
    );
    const results = workers.map((w) => new Promise((resolve, reject) => w.once('message', resolve).once('error', reject)));
    const online = workers.map((w) => new Promise((resolve) => w.once('online', resolve)));
    await Promise.all(online);
    await sleep(20); // both waiting on the barrier
    const b = new Int32Array(barrier);
    Atomics.store(b, 0, 1);
    Atomics.notify(b, 0);
    const got = await Promise.all(results);
    // In one process the holder's pid is our own.
    const counters = checkRound(got, round, () => process.pid);
    assertNeverShared(all, counters, round);
    for (const w of workers) w.postMessage('release');
    await Promise.all(workers.map((w) => new Promise((resolve) => w.once('exit', resolve))));
  }
  assert.equal(all.size, 25 * 6);
});

function child(args) {
  const proc = spawn(process.execPath, [holder, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = [];
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      (waiters.shift() ?? ((m) => lines.push(m)))(msg);
    }
  });
  const exited = new Promise((resolve) => proc.once('exit', (c, s) => resolve({ code: c, signal: s })));
  const next = () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiters.push(r)));
  return { proc, next, exited };
}

test('two processes started together on one file: one holds it, the other is refused naming its pid; counters never shared', { timeout: 180_000 }, async (t) => {
  const tmp = testTempDir(t);
  const key = Key.generate(1).toText();
  const path = await newFile(tmp.dir, 'procs.ctr');
  const all = new Set();
  for (let round = 0; round < 15; round++) {
    const kids = [child(['race', path, key, '6']), child(['race', path, key, '6'])];
    await Promise.all(kids.map((k) => k.next())); // {ready}
    for (const k of kids) k.proc.stdin.write('go\n');
    const got = await Promise.all(kids.map((k) => k.next()));
    const counters = checkRound(got, round, (winner) => winner.pid);
    assertNeverShared(all, counters, round);
    for (const k of kids) k.proc.stdin.end('release\n');
    for (const k of kids) assert.equal((await k.exited).code, 0);
  }
  assert.equal(all.size, 15 * 6);
});

test('a holder killed with SIGKILL never blocks the file, and its counters are never reused', { timeout: 120_000 }, async (t) => {
  const tmp = testTempDir(t);
  const key = Key.generate(1);
  const path = await newFile(tmp.dir, 'killed.ctr');
  const used = new Set();
  for (let round = 0; round < 5; round++) {
    const kid = child(['hold', path, key.toText()]);
    const held = await kid.next();
    assert.equal(held.held, kid.proc.pid);
    for (const c of held.counters) used.add(c);
    // While it lives, it holds the file.
    await assert.rejects(Sealer.create({ key, senderId: 7, store: new FileCounterStore(path) }), (e) => {
      assert.equal(e.reason, 'locked');
      assert.equal(e.holderPid, kid.proc.pid);
      assert.ok(e.message.includes(path) && e.message.includes(String(kid.proc.pid)), e.message);
      return true;
    });
    kid.proc.kill('SIGKILL');
    assert.equal((await kid.exited).signal, 'SIGKILL');
    // The lock file still names the dead pid; the kernel released its lock.
    assert.equal(readFileSync(`${path}.lock`, 'utf8').trim(), String(kid.proc.pid));
    // The helper holding the flock sees end-of-file on its pipe from the
    // dead process and exits; bounded wait, then the file is free.
    const t0 = Date.now();
    const sealer = await waitFor(
      () => Sealer.create({ key, senderId: 7, store: new FileCounterStore(path), block: 4 }).catch((e) => {
        assert.equal(e.reason, 'locked', e.message);
        return null;
      }),
      5_000,
      'the lock of the killed holder to be released',
    );
    assert.ok(Date.now() - t0 < 5_000);
    for (let i = 0; i < 3; i++) {
      const c = String(sealer.nextCounter);
      assert.ok(!used.has(c), `counter ${c} reused after kill -9`);
      used.add(c);
      await sealer.seal('t', 'x');
    }
    await sealer.close();
  }
});

test('the lock is flock(2) on <file>.lock, the lock the Rust FileCounterStore takes: an outside holder excludes Node and Node excludes it', { timeout: 60_000 }, async (t) => {
  if (!haveFlock(t)) return;
  const tmp = testTempDir(t);
  const key = Key.generate(1);
  const path = await newFile(tmp.dir, 'outside.ctr');
  const outside = await outsideHolder(path, 'echo $$ > "$0"; echo locked; exec sleep 60');
  await assert.rejects(Sealer.create({ key, senderId: 7, store: new FileCounterStore(path) }), code('locked'));
  outside.kill('SIGKILL');
  await new Promise((resolve) => outside.once('exit', resolve));
  await waitFor(async () => {
    const s = new FileCounterStore(path);
    try {
      await s.open();
      return true;
    } catch {
      return false;
    } finally {
      await s.close();
    }
  }, 5_000, 'the outside lock to go away with its holder');
  // Now Node holds it, and flock -n from outside is refused.
  const sealer = await Sealer.create({ key, senderId: 7, store: new FileCounterStore(path) });
  const r = spawnSync('flock', ['-n', '-E', '75', `${path}.lock`, 'true']);
  assert.equal(r.status, 75, 'flock(1) must not get the lock while Node holds it');
  await sealer.close();
  assert.equal(spawnSync('flock', ['-n', '-E', '75', `${path}.lock`, 'true']).status, 0);
});

test('a store that let go never names its still-live process as the next holder', { timeout: 60_000 }, async (t) => {
  if (!haveFlock(t)) return;
  const tmp = testTempDir(t);
  const key = Key.generate(1);
  // This process held the lock and let it go (newFile opens and closes).
  const path = await newFile(tmp.dir, 'released.ctr');
  // The next holder has not written its pid (yet): flock(1) writes none.
  const outside = await outsideHolder(path, 'echo locked; exec sleep 60');
  try {
    const err = await Sealer.create({ key, senderId: 7, store: new FileCounterStore(path) }).then(
      () => assert.fail('opened a locked file'),
      (e) => e,
    );
    assert.equal(err.code, 'counterStore');
    assert.equal(err.reason, 'locked');
    assert.equal(err.holderPid, null, err.message);
    assert.doesNotMatch(err.message, /in this process/);
  } finally {
    outside.kill('SIGKILL');
  }
});

test('a missing counter file is refused unless created explicitly or started from the clock floor', async (t) => {
  const tmp = testTempDir(t);
  const key = Key.generate(1);
  const path = join(tmp.dir, 'lost.ctr');
  const opener = new Opener({ keys: [key] });
  const first = await Sealer.create({ key, senderId: 1, store: new FileCounterStore(path, { create: true }) });
  opener.open('t', await first.seal('t', 'a'));
  await first.close();
  // create refuses an existing file: its counters may have been used.
  await assert.rejects(Sealer.create({ key, senderId: 1, store: new FileCounterStore(path, { create: true }) }), code('conflict'));
  rmSync(path); // the volume was lost
  await assert.rejects(Sealer.create({ key, senderId: 1, store: new FileCounterStore(path) }), (e) => {
    assert.equal(e.reason, 'missing');
    assert.ok(e.message.includes(path), e.message);
    return true;
  });
  assert.ok(!existsSync(path), 'a refused start writes nothing');
  const before = clockFloor(Date.now());
  const floored = await Sealer.create({ key, senderId: 1, store: new FileCounterStore(path, { clockFloor: true }) });
  assert.ok(floored.nextCounter >= before, `${floored.nextCounter} >= ${before}`);
  assert.ok(floored.nextCounter <= clockFloor(Date.now()));
  // The receiver accepts it: far above the lost counters.
  assert.equal(opener.open('t', await floored.seal('t', 'b')).header.counter >= before, true);
  await floored.close();
  // The floor never lowers what is stored.
  const stored = BigInt(/^mqseal-counter v1 (\d+)\n$/.exec(readFileSync(path, 'utf8'))[1]);
  const again = await Sealer.create({ key, senderId: 1, store: new FileCounterStore(path, { clockFloor: true }) });
  assert.ok(again.nextCounter >= stored);
  await again.close();
});

test('a writer behind the store\'s back is detected at the next persist and the sealer stops for good', async (t) => {
  const tmp = testTempDir(t);
  const key = Key.generate(1);
  const path = await newFile(tmp.dir, 'cas.ctr');
  const sealer = await Sealer.create({ key, senderId: 1, store: new FileCounterStore(path), block: 4 });
  await sealer.seal('t', 'x');
  assert.equal(readFileSync(path, 'utf8'), 'mqseal-counter v1 4\n');
  writeFileSync(path, 'mqseal-counter v1 4000\n'); // ignores the lock
  let err = null;
  for (let i = 0; i < 10 && !err; i++) {
    await sealer.seal('t', 'x').catch((e) => (err = e));
  }
  assert.equal(err?.reason, 'conflict', String(err));
  assert.match(err.message, /second writer/);
  await assert.rejects(sealer.seal('t', 'x'), code('conflict'));
  assert.throws(() => sealer.sealSync('t', 'x'), code('conflict'));
  assert.equal(readFileSync(path, 'utf8'), 'mqseal-counter v1 4000\n', 'nothing written over the other writer');
  await sealer.close();
  writeFileSync(path, 'garbage');
  await assert.rejects(Sealer.create({ key, senderId: 1, store: new FileCounterStore(path) }), code('corrupt'));
});
