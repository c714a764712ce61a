// Counter stores for the JS Sealer. A store hands out ranges of counters
// that are durably reserved before they are returned:
//
//   reserve(count) -> Promise<{ start, end }>   counters [start, end),
//                                              numbers or bigints
//
// Every range starts at or above the end of every range the store handed
// out before, including in earlier page loads, so a counter is never used
// twice under one (key, sender id). The Rust core's rule is the same
// (persist the limit before using counters below it); this is its
// asynchronous form for browser storage.

/** A counter-store error with `code === 'counterStore'` (shared with file-store.js). */
export function storeError(message, reason, cause) {
  const err = new Error(message, cause ? { cause } : undefined);
  err.name = 'MqsealError';
  err.code = 'counterStore';
  err.reason = reason;
  return err;
}

/**
 * Counters in memory: **for tests and volatile senders only** (a key or
 * sender id that never outlives the page). Forgets everything on reload.
 */
export class MemoryCounterStore {
  #next;
  /** @param {number|bigint} [first]  the first counter (default 0) */
  constructor(first = 0) {
    const ok = typeof first === 'bigint' ? first >= 0n : Number.isSafeInteger(first) && first >= 0;
    if (!ok) throw storeError(`invalid first counter ${first}`, 'invalid');
    this.#next = BigInt(first);
  }
  async reserve(count) {
    const start = this.#next;
    // Counters stop at 2^64 - 1 (the sealer reports counterExhausted there).
    const max = 0xffff_ffff_ffff_ffffn;
    const end = start + BigInt(count) > max ? max : start + BigInt(count);
    if (end <= start) throw storeError('counters exhausted', 'exhausted');
    this.#next = end;
    return { start, end };
  }
  close() {}
}

// Counters from the clock floor are Date.now() * 1024: below 2^53 until
// the year 2248, and ahead of any sender that averages fewer than 1024
// messages per millisecond since its first message.
const FLOOR_PER_MS = 1024;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * A persistent counter store in IndexedDB, for browsers.
 *
 * - Each `reserve` is one read-modify-write IndexedDB transaction with
 *   `durability: 'strict'`, awaited until it commits, before the range is
 *   used. Transactions on one store are serialized by the browser, so two
 *   tabs (or two sealers) can never get overlapping ranges.
 * - Several tabs: by default the store takes an exclusive Web Lock named
 *   `mqseal-counter:<database>/<name>`; a second tab with the same store
 *   name gets an error (code 'counterStore', reason 'locked') instead of a
 *   sealer whose messages receivers would reject as replays (its counters
 *   would lag the first tab's). Give each tab its own sender id and store
 *   name if several tabs must send at once. Without the Web Locks API (a
 *   page that is not a secure context), ranges are still disjoint.
 * - Private windows and cleared site data: the browser drops the database,
 *   so the stored limit is lost. With `clockFloor` (default on), a range
 *   never starts below `Date.now() * 1024`, which stays above every counter
 *   used earlier unless the clock went back or the sender averaged more
 *   than 1024 messages per millisecond.
 */
export class IndexedDbCounterStore {
  #name;
  #database;
  #lock;
  #clockFloor;
  #db = null;
  #opening = null;
  #release = null;

  /**
   * @param {string} name  one name per (key, sender id), e.g. `sender-${senderId}`
   * @param {{database?: string, lock?: boolean, clockFloor?: boolean}} [options]
   */
  constructor(name, { database = 'mqseal', lock = true, clockFloor = true } = {}) {
    if (typeof name !== 'string' || name === '') throw storeError('store name must be a non-empty string', 'invalid');
    this.#name = name;
    this.#database = database;
    this.#lock = lock;
    this.#clockFloor = clockFloor;
  }

  get name() {
    return this.#name;
  }

  async #open() {
    if (this.#db) return this.#db;
    if (!this.#opening) {
      this.#opening = (async () => {
        if (typeof indexedDB === 'undefined') throw storeError('IndexedDB is not available here', 'unavailable');
        if (this.#lock) await this.#acquireLock();
        const req = indexedDB.open(this.#database, 1);
        req.onupgradeneeded = () => req.result.createObjectStore('counters');
        const db = await request(req).catch((e) => {
          throw storeError(`cannot open IndexedDB database ${this.#database}: ${e}`, 'unavailable', e);
        });
        // Best effort: ask the browser not to evict this origin's storage.
        globalThis.navigator?.storage?.persist?.().catch(() => {});
        this.#db = db;
        return db;
      })();
      this.#opening.catch(() => {
        this.#opening = null;
      });
    }
    return this.#opening;
  }

  async #acquireLock() {
    const locks = globalThis.navigator?.locks;
    if (!locks) return; // Not a secure context: ranges stay disjoint anyway.
    const lockName = `mqseal-counter:${this.#database}/${this.#name}`;
    await new Promise((resolve, reject) => {
      locks
        .request(lockName, { ifAvailable: true }, (lock) => {
          if (!lock) {
            reject(
              storeError(
                `counter store "${this.#name}" is in use in another tab or window; ` +
                  'use another sender id and store name per tab',
                'locked',
              ),
            );
            return undefined;
          }
          resolve();
          // Held until close() (or until the page goes away).
          return new Promise((release) => {
            this.#release = release;
          });
        })
        .catch(reject);
    });
  }

  /** Durably reserves `count` counters. */
  async reserve(count) {
    const db = await this.#open();
    const floor = this.#clockFloor ? Date.now() * FLOOR_PER_MS : 0;
    return new Promise((resolve, reject) => {
      let tx;
      try {
        tx = db.transaction('counters', 'readwrite', { durability: 'strict' });
      } catch (e) {
        reject(storeError(`IndexedDB transaction failed: ${e}`, 'write', e));
        return;
      }
      const store = tx.objectStore('counters');
      let range = null;
      const get = store.get(this.#name);
      get.onsuccess = () => {
        const stored = get.result;
        if (stored !== undefined && (!Number.isSafeInteger(stored) || stored < 0)) {
          reject(storeError(`counter store "${this.#name}" holds a corrupt record`, 'corrupt'));
          tx.abort();
          return;
        }
        const start = Math.max(stored ?? 0, floor);
        const end = start + count;
        if (!Number.isSafeInteger(end)) {
          reject(storeError('counters exhausted', 'exhausted'));
          tx.abort();
          return;
        }
        store.put(end, this.#name);
        range = { start, end };
      };
      // The range is usable only once the write has committed.
      tx.oncomplete = () => (range ? resolve(range) : reject(storeError('reservation not written', 'write')));
      tx.onerror = () => reject(storeError(`IndexedDB write failed: ${tx.error}`, 'write', tx.error));
      tx.onabort = () => reject(storeError(`IndexedDB transaction aborted: ${tx.error}`, 'write', tx.error));
    });
  }

  /** Closes the database and releases the tab lock. */
  close() {
    this.#release?.();
    this.#release = null;
    this.#db?.close();
    this.#db = null;
    this.#opening = null;
  }
}
