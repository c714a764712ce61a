// A persistent counter store in a file, for Node. Same file format as the
// Rust core's FileCounterStore: one line `mqseal-counter v1 <limit>`.
// Each reservation writes a temporary file, fsyncs it, renames it over the
// old one and fsyncs the directory before the range is used: after a crash
// the file holds the old or the new limit, never less.
//
// One process per file: two processes reserving from one file at once can
// get overlapping ranges. Within a process, reservations on one path are
// serialized.

import { open, readFile, rename } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { storeError } from './stores.js';

const MAGIC = 'mqseal-counter v1 ';
const MAX_U64 = 0xffff_ffff_ffff_ffffn;

// Reservations of every store on one path run one after the other.
const queues = new Map();

export class FileCounterStore {
  #path;

  /** @param {string} path  one file per (key, sender id) */
  constructor(path) {
    this.#path = String(path);
  }

  get path() {
    return this.#path;
  }

  async #load() {
    let text;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (e) {
      if (e.code === 'ENOENT') return 0n;
      throw storeError(`cannot read ${this.#path}: ${e.message}`, 'read', e);
    }
    const m = /^mqseal-counter v1 (0|[1-9][0-9]*)\n$/.exec(text);
    const n = m ? BigInt(m[1]) : -1n;
    if (n < 0n || n > MAX_U64) throw storeError(`${this.#path} holds a corrupt counter record`, 'corrupt');
    return n;
  }

  async #persist(limit) {
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
      throw storeError(`cannot persist ${this.#path}: ${e.message}`, 'write', e);
    }
  }

  /** Durably reserves `count` counters. */
  reserve(count) {
    const key = resolve(this.#path);
    const next = (queues.get(key) ?? Promise.resolve()).then(async () => {
      const start = await this.#load();
      const end = start + BigInt(count) > MAX_U64 ? MAX_U64 : start + BigInt(count);
      if (end <= start) throw storeError('counters exhausted', 'exhausted');
      await this.#persist(end);
      return { start, end };
    });
    const tail = next.catch(() => {});
    queues.set(key, tail);
    tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key);
    });
    return next;
  }

  close() {}
}
