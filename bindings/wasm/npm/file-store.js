// A persistent counter store in a file, for Node: the same file, format
// and lock as the Rust core's FileCounterStore (core/src/counter.rs,
// core/src/durable.rs), so a Node sender and a Rust sender exclude each
// other on one file.
//
// - File: one line `mqseal-counter v1 <limit>`. Each swap writes
//   `<file>.tmp`, fsyncs it, renames it over the file and fsyncs the
//   directory before the core grants the counters: after a crash the file
//   holds the old or the new limit, never less.
// - One holder: the store holds an exclusive flock(2) on `<file>.lock`
//   from open() to close() and writes its pid there. That is the Rust
//   store's lock (fs4 takes flock(2) on the same file), so Rust and Node
//   holders exclude each other. flock locks belong to an open file
//   description, so a second store in the same process or in a
//   worker_thread is refused as well as another process, and the kernel
//   drops the lock when its holder dies, even by kill -9: a stale lock
//   file never blocks (its old pid only shows in messages). A second
//   holder fails at open() with reason 'locked', naming the file and the
//   holder's pid; it never waits and never seals.
//
//   How Node gets a flock(2): its standard library has none, so the store
//   runs `flock -n <file>.lock sh -c 'echo locked; exec cat'` (flock(1)
//   from util-linux, or busybox) as a child that holds the lock while its
//   stdin, a pipe from this process, stays open. Closing the store ends
//   the pipe; if this process dies the kernel closes the pipe, the child
//   reads end-of-file and exits, and the lock goes with it. Rejected
//   alternatives: an exclusive-create `<file>.lock` with a pid liveness
//   check is invisible to the Rust store (which flocks the lock file and
//   leaves it in place), races when two processes both find a lock stale,
//   and cannot tell a reused pid from the old holder; the npm package
//   fs-ext (a native flock) crashes V8 when loaded in worker_threads (its
//   addon keeps V8 handles in static variables across isolates); Linux
//   fcntl/OFD locks (os-lock, fs-native-extensions) do not exclude
//   flock(2), so not the Rust store. Without flock(1) on PATH (macOS and
//   Windows do not ship one) open() fails with reason 'unavailable': the
//   store never runs unlocked. If the helper dies while the store is open
//   (someone killed it), the next swap fails with reason 'locked' and the
//   sealer stops.
// - Compare-and-swap: every swap re-reads the file under the lock and
//   fails with reason 'conflict' when it does not hold the value this store
//   last read or wrote (a writer that ignored the lock); the sealer then
//   stops sealing.
// - Lost state is refused: a missing file is read as "no state", which
//   the core refuses (reason 'missing') unless the store is opened with
//   `create: true` (a new sender: writes 0, refuses an existing file with
//   reason 'conflict') or `clockFloor: true`.

import { spawn } from 'node:child_process';
import { closeSync, constants, ftruncateSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { checkSwapFor, storeError } from './stores.js';

const MAGIC = 'mqseal-counter v1 ';
const MAX_U64 = 0xffff_ffff_ffff_ffffn;

function readPid(lockPath) {
  try {
    const first = readFileSync(lockPath, 'utf8').split('\n')[0].trim();
    return /^[0-9]{1,10}$/.test(first) ? Number(first) : null;
  } catch {
    return null;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/**
 * The pid the holder wrote into the lock file. A holder writes it just
 * after it got the lock (and a Node holder empties the file before it lets
 * go), so a pid that is missing or dead may be the previous holder's or not
 * written yet: look again for up to a second, on a loaded machine too (only
 * a refused open waits, and only for its message).
 */
async function holderPid(lockPath) {
  let pid = readPid(lockPath);
  for (let i = 0; i < 50 && (pid === null || !alive(pid)); i++) {
    await new Promise((r) => setTimeout(r, 20));
    pid = readPid(lockPath);
  }
  return pid;
}

function lockedError(path, pid) {
  const who =
    pid === null
      ? 'another process'
      : pid === process.pid
        ? `another store in this process (pid ${pid}: a worker thread or a second FileCounterStore)`
        : `another process (pid ${pid})`;
  return storeError(`counter file ${path} is in use by ${who}; refusing to share it`, 'locked', { path, holderPid: pid });
}

/**
 * Takes the exclusive flock(2) on `<path>.lock` through a flock(1) child,
 * or fails at once. Resolves to the child, which holds the lock until its
 * stdin closes.
 */
function acquireLock(path) {
  const lockPath = `${path}.lock`;
  // Create it here (not truncated: it may name the holder), so that the
  // error for a missing directory is about the file.
  try {
    closeSync(openSync(lockPath, constants.O_RDWR | constants.O_CREAT, 0o644));
  } catch (e) {
    return Promise.reject(storeError(`counter file ${path}: cannot open ${lockPath}: ${e.message}`, 'read', { path, cause: e }));
  }
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['-n', '-x', lockPath, 'sh', '-c', 'echo locked && exec cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let settled = false;
    child.once('error', (e) => {
      if (settled) return;
      settled = true;
      reject(
        storeError(
          `counter file ${path}: FileCounterStore needs flock(1) (util-linux or busybox) to take the exclusive ` +
            `lock the Rust store also takes (${e.message}); refusing to use the file unlocked`,
          'unavailable',
          { path, cause: e },
        ),
      );
    });
    child.stdout.on('data', (d) => {
      out += d;
      if (!settled && out.includes('locked\n')) {
        settled = true;
        child.stdout.destroy();
        child.stderr.destroy();
        // Holding the lock must not keep this process alive by itself.
        child.unref();
        child.stdin.unref?.();
        resolve(child);
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => {
      if (settled) return;
      settled = true;
      // flock -n exits 1, silently, when another holder has the lock.
      if (code === 1 && err.trim() === '') holderPid(lockPath).then((pid) => reject(lockedError(path, pid)));
      else reject(storeError(`counter file ${path}: flock on ${lockPath} failed: ${err.trim() || `exit ${code}`}`, 'locked', { path }));
    });
  });
}

/** Writes our pid into the lock file (best effort, as the Rust store). */
function writePid(lockPath) {
  try {
    const fd = openSync(lockPath, constants.O_RDWR);
    try {
      // Write, then cut: a reader never sees an empty file.
      const line = `${process.pid}\n`;
      writeSync(fd, line, 0);
      ftruncateSync(fd, Buffer.byteLength(line));
    } finally {
      closeSync(fd);
    }
  } catch {
    // The pid only makes a second holder's error clearer.
  }
}

/** Empties the lock file, while we hold its lock (best effort, as writePid). */
function clearPid(lockPath) {
  try {
    truncateSync(lockPath, 0);
  } catch {
    // The pid only makes a second holder's error clearer.
  }
}

function parse(text, path) {
  const m = /^mqseal-counter v1 (0|[1-9][0-9]*)\n$/.exec(text);
  const n = m ? BigInt(m[1]) : -1n;
  if (n < 0n || n > MAX_U64) throw storeError(`counter file ${path} holds a corrupt counter record`, 'corrupt', { path });
  return n;
}

export class FileCounterStore {
  #path;
  #create;
  #clockFloor;
  #lock = null;
  #lockLost = false;
  #busy = Promise.resolve();

  /**
   * @param {string} path  one file per (key, sender id)
   * @param {{create?: boolean, clockFloor?: boolean}} [options]
   *   create: a new sender (writes 0; refuses an existing file);
   *   clockFloor: start at or above the core's clock floor (accepts a missing file)
   */
  constructor(path, { create = false, clockFloor = false } = {}) {
    this.#path = String(path);
    this.#create = Boolean(create);
    this.#clockFloor = Boolean(clockFloor);
  }

  get path() {
    return this.#path;
  }
  get name() {
    return `counter file ${this.#path}`;
  }
  get clockFloor() {
    return this.#clockFloor;
  }

  async #load() {
    let text;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (e) {
      if (e.code === 'ENOENT') return null;
      throw storeError(`cannot read counter file ${this.#path}: ${e.message}`, 'read', { path: this.#path, cause: e });
    }
    return parse(text, this.#path);
  }

  async #write(limit) {
    const tmp = `${this.#path}.tmp`;
    try {
      const f = await open(tmp, 'w');
      try {
        await f.writeFile(`${MAGIC}${limit}\n`);
        await f.sync();
      } finally {
        await f.close();
      }
      await rename(tmp, this.#path);
      const d = await open(dirname(this.#path), 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch (e) {
      throw storeError(`cannot persist counter file ${this.#path}: ${e.message}`, 'write', { path: this.#path, cause: e });
    }
  }

  #serial(fn) {
    const next = this.#busy.then(fn);
    this.#busy = next.catch(() => {});
    return next;
  }

  /**
   * Takes the lock and reads the stored limit (null: no file). Fails at
   * once with reason 'locked' (and `holderPid`) when another store, in
   * this process, a worker thread or another process (Node or Rust),
   * holds the file.
   */
  open() {
    return this.#serial(async () => {
      if (this.#lock !== null) throw storeError(`${this.name} is already open`, 'locked', { path: this.#path });
      const lock = await acquireLock(this.#path);
      this.#lock = lock;
      this.#lockLost = false;
      lock.once('exit', () => {
        if (this.#lock === lock) this.#lockLost = true;
      });
      writePid(`${this.#path}.lock`);
      try {
        const stored = await this.#load();
        if (!this.#create) return stored;
        if (stored !== null) {
          throw storeError(
            `counter file ${this.#path} already exists: its counters may have been used; open it without create`,
            'conflict',
            { path: this.#path },
          );
        }
        await this.#write(0n);
        return 0n;
      } catch (e) {
        await this.#release();
        throw e;
      }
    });
  }

  /** Durably replaces `current` by `limit`: re-reads the file under the lock first (compare-and-swap). */
  swap(current, limit) {
    return this.#serial(async () => {
      if (this.#lock === null) throw storeError(`${this.name} is not open (or closed)`, 'locked', { path: this.#path });
      if (this.#lockLost) {
        throw storeError(`${this.name}: its lock holder (flock, pid ${this.#lock.pid}) went away; refusing to write unlocked`, 'locked', {
          path: this.#path,
        });
      }
      checkSwapFor(this.name, await this.#load(), current, limit);
      await this.#write(BigInt(limit));
    });
  }

  async #release() {
    const lock = this.#lock;
    this.#lock = null;
    if (!lock) return;
    if (lock.exitCode === null && lock.signalCode === null) {
      // Still holding the lock: take our pid out of the lock file, so that
      // the next holder's rival never names this (still live) process
      // before the next holder has written its own pid.
      clearPid(`${this.#path}.lock`);
      const gone = new Promise((resolve) => lock.once('exit', resolve));
      lock.ref(); // wait for it even if nothing else keeps this process alive
      lock.stdin.end();
      await gone;
    }
  }

  /**
   * Releases the lock (the lock file stays, as with the Rust store);
   * resolves once it is released. Waits for a swap in flight first.
   */
  close() {
    return this.#serial(() => this.#release());
  }
}
