// A persistent counter store in a file, for Node: the same file, format
// and lock as the Rust core's FileCounterStore (core/src/counter.rs,
// core/src/durable.rs), so a Node sender and a Rust sender exclude each
// other on one file.
//
// - File: one line `mqseal-counter v1 <limit>`. Each swap writes
//   `<file>.tmp`, fsyncs it, renames it over the file and fsyncs the
//   directory before the core grants the counters: after a crash the file
//   holds the old or the new limit, never less.
// - One holder: the store holds an exclusive flock(2) (LockFileEx on
//   Windows) on `<file>.lock` from open() to close() and writes its pid
//   there. The lock is the Rust store's lock (fs4 uses flock on Unix and
//   LockFileEx on Windows), so Rust and Node holders exclude each other.
//   flock locks belong to an open file description, so a second open in
//   the same process (another FileCounterStore, a worker_thread) is
//   refused too, and the kernel drops the lock when the holder dies, even
//   by kill -9: a stale lock file never blocks (its old pid is only shown
//   in messages while a live holder has the lock). A second holder fails at
//   open() with reason 'locked', naming the file and the holder's pid; it
//   never waits and never seals.
//
//   Why a native flock (the optional dependency `fs-ext`) rather than an
//   exclusive-create `<file>.lock` with a pid liveness check: Node's
//   standard library has no flock, and a create-based lock can neither be
//   seen by the Rust store (which flocks the same lock file and leaves it in
//   place), nor be taken over from a dead holder without a race between two
//   processes that both find it stale, nor tell a reused pid from the old
//   holder. flock has none of these problems. Without fs-ext (no build
//   tools when it was installed), open() fails with reason 'unavailable':
//   the store never runs unlocked.
// - Compare-and-swap: every swap re-reads the file under the lock and
//   fails with reason 'conflict' when it does not hold the value this store
//   last read or wrote (a writer that ignored the lock); the sealer then
//   stops sealing.
// - Lost state is refused: a missing file is read as "no state", which
//   the core refuses (reason 'missing') unless the store is opened with
//   `create: true` (a new sender: writes 0, refuses an existing file with
//   reason 'conflict') or `clockFloor: true`.

import { constants, closeSync, ftruncateSync, openSync, readSync, writeSync, fstatSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { checkSwapFor, storeError } from './stores.js';

const MAGIC = 'mqseal-counter v1 ';
const MAX_U64 = 0xffff_ffff_ffff_ffffn;

let flockImpl;
function flockSync() {
  if (flockImpl === undefined) {
    try {
      flockImpl = createRequire(import.meta.url)('fs-ext').flockSync;
    } catch (e) {
      flockImpl = e;
    }
  }
  return flockImpl;
}

function holderPid(fd) {
  try {
    const buf = Buffer.alloc(Math.min(64, fstatSync(fd).size));
    const n = readSync(fd, buf, 0, buf.length, 0);
    const text = buf.subarray(0, n).toString('utf8').trim();
    return /^[0-9]{1,10}$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/** Takes the exclusive lock on `<path>.lock` or fails at once; returns its fd. */
function acquireLock(path) {
  const flock = flockSync();
  if (typeof flock !== 'function') {
    throw storeError(
      `counter file ${path}: FileCounterStore needs the optional dependency fs-ext (flock), which is not ` +
        `installed or did not build (${flock?.message ?? flock}); refusing to use the file without an exclusive lock`,
      'unavailable',
      { path, cause: flock },
    );
  }
  const lockPath = `${path}.lock`;
  let fd;
  try {
    fd = openSync(lockPath, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (e) {
    throw storeError(`counter file ${path}: cannot open ${lockPath}: ${e.message}`, 'read', { path, cause: e });
  }
  try {
    flock(fd, 'exnb');
  } catch (e) {
    const pid = holderPid(fd);
    closeSync(fd);
    if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK' || e.code === 'EACCES') {
      const who =
        pid === null
          ? 'another process'
          : pid === process.pid
            ? `another store in this process (pid ${pid}: a worker thread or a second FileCounterStore)`
            : `another process (pid ${pid})`;
      throw storeError(`counter file ${path} is in use by ${who}; refusing to share it`, 'locked', {
        path,
        holderPid: pid,
      });
    }
    throw storeError(`counter file ${path}: cannot lock ${lockPath}: ${e.message}`, 'locked', { path, cause: e });
  }
  // Best effort, as the Rust store: the pid only makes a second holder's
  // error clearer; the lock itself is what excludes it.
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch {
    // ignored
  }
  return fd;
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
  #lockFd = null;
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
      if (this.#lockFd !== null) throw storeError(`${this.name} is already open`, 'locked', { path: this.#path });
      this.#lockFd = acquireLock(this.#path);
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
        this.close();
        throw e;
      }
    });
  }

  /** Durably replaces `current` by `limit`: re-reads the file under the lock first (compare-and-swap). */
  swap(current, limit) {
    return this.#serial(async () => {
      if (this.#lockFd === null) throw storeError(`${this.name} is not open (or closed)`, 'locked', { path: this.#path });
      checkSwapFor(this.name, await this.#load(), current, limit);
      await this.#write(BigInt(limit));
    });
  }

  /** Releases the lock (the lock file stays, as with the Rust store). */
  close() {
    if (this.#lockFd !== null) {
      try {
        closeSync(this.#lockFd);
      } catch {
        // already closed
      }
      this.#lockFd = null;
    }
  }
}
