// Counter stores for the JS Sealer: drivers of the core's one counter
// primitive (core/src/counter.rs). A store does two things:
//
//   open()                 -> Promise<bigint | null>   takes the store (its
//                             lock) and reads the stored limit; null when
//                             it holds no state
//   swap(current, limit)   -> Promise<void>            durably replaces
//                             `current` by `limit`, as a compare-and-swap:
//                             a store that does not hold `current` fails
//                             with reason 'conflict' and writes nothing
//
// plus optional `clockFloor` (boolean: start at or above the core's clock
// floor, which accepts a store with no state), `name` and `close()`.
//
// The Sealer asks the WebAssembly core which reservation to persist
// (`reservationNeeded`), calls `swap`, then `grant`s it to the core. Which
// counters may be used is decided by the core alone; a store never hands
// out counters and never decides whether a value is acceptable beyond the
// compare-and-swap rule, which is the core's too (`checkSwap`).

import { checkSwap } from './wasm/mqseal_wasm.js';

/** A counter-store error with `code === 'counterStore'` and a `reason` (shared with file-store.js). */
export function storeError(message, reason, extra) {
  const { cause, ...rest } = extra ?? {};
  const err = new Error(message, cause ? { cause } : undefined);
  err.name = 'MqsealError';
  err.code = 'counterStore';
  err.reason = reason;
  Object.assign(err, rest);
  return err;
}

const MAX_U64 = 0xffff_ffff_ffff_ffffn;

/** A stored value as a bigint, or null; anything else is `corrupt`. */
export function storedValue(v, where) {
  if (v === null || v === undefined) return null;
  const ok = typeof v === 'bigint' ? v >= 0n && v <= MAX_U64 : Number.isSafeInteger(v) && v >= 0;
  if (!ok) throw storeError(`${where} holds a corrupt counter record`, 'corrupt');
  return BigInt(v);
}

/** The core's compare-and-swap rule (`mqseal::check_swap`), with the store named in the message. */
export function checkSwapFor(where, stored, current, limit) {
  try {
    checkSwap(stored ?? undefined, current ?? undefined, limit);
  } catch (e) {
    throw storeError(
      `${where} holds ${stored ?? 'nothing'}, not ${current ?? 'nothing'} as this sealer last wrote: ` +
        'a second writer uses it; refusing to seal',
      e.reason ?? 'conflict',
      { cause: e },
    );
  }
}

/**
 * Counters in memory: **for tests and volatile senders only** (a key or
 * sender id that never outlives the page). Forgets everything on reload.
 */
export class MemoryCounterStore {
  #stored;
  #clockFloor;
  /**
   * @param {number|bigint|null} [first]  the stored limit (default 0, a new sender); null: no state
   * @param {{clockFloor?: boolean}} [options]
   */
  constructor(first = 0, { clockFloor = false } = {}) {
    this.#stored = storedValue(first, 'MemoryCounterStore');
    this.#clockFloor = Boolean(clockFloor);
  }
  get name() {
    return 'MemoryCounterStore';
  }
  get clockFloor() {
    return this.#clockFloor;
  }
  /** The stored limit (null: none). */
  get stored() {
    return this.#stored;
  }
  async open() {
    return this.#stored;
  }
  async swap(current, limit) {
    checkSwapFor('MemoryCounterStore', this.#stored, current, limit);
    this.#stored = BigInt(limit);
  }
  close() {}
}

/** An IndexedDB request as a promise (shared with member.js). */
export function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * Opens IndexedDB database `database` (version 1; creates the object store
 * `objectStore` on first use) and asks the browser, best effort, not to
 * evict this origin's storage (shared with member.js).
 */
export async function openDatabase(database, objectStore) {
  const req = indexedDB.open(database, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(objectStore);
  const db = await request(req).catch((e) => {
    throw storeError(`cannot open IndexedDB database ${database}: ${e}`, 'unavailable', { cause: e });
  });
  globalThis.navigator?.storage?.persist?.().catch(() => {});
  return db;
}

/**
 * One readwrite transaction on object store `name` with durability 'strict':
 * `fn(store, fail)` issues the requests (`fail(err)` aborts with err); resolves
 * only once the transaction completes (shared with member.js).
 */
export function durableTransaction(db, name, fn) {
  return new Promise((resolve, reject) => {
    let tx;
    try {
      tx = db.transaction(name, 'readwrite', { durability: 'strict' });
    } catch (e) {
      reject(storeError(`IndexedDB transaction failed: ${e}`, 'write', { cause: e }));
      return;
    }
    let failed = null;
    const fail = (err) => {
      failed = err;
      tx.abort();
    };
    fn(tx.objectStore(name), fail);
    // Only a committed write counts.
    tx.oncomplete = () => (failed ? reject(failed) : resolve());
    tx.onerror = () => reject(failed ?? storeError(`IndexedDB write failed: ${tx.error}`, 'write', { cause: tx.error }));
    tx.onabort = () =>
      reject(failed ?? storeError(`IndexedDB transaction aborted: ${tx.error}`, 'write', { cause: tx.error }));
  });
}

/**
 * Takes the exclusive Web Lock `lockName` if nobody holds it (else rejects
 * with `busy()`); resolves with the function that releases it (shared with
 * member.js).
 */
export function exclusiveLock(locks, lockName, busy) {
  return new Promise((resolve, reject) => {
    locks
      .request(lockName, { ifAvailable: true }, (lock) => {
        if (!lock) {
          reject(busy());
          return undefined;
        }
        // Held until released (or until the page goes away).
        return new Promise((release) => resolve(release));
      })
      .catch(reject);
  });
}

/**
 * A persistent counter store in IndexedDB, for browsers.
 *
 * - Refuses lost state: a store name with no record is refused by the
 *   core (reason 'missing') unless `create: true` (a new sender: writes 0,
 *   and refuses an existing record with reason 'conflict') or
 *   `clockFloor: true` (start at or above Date.now() * 1024, computed by
 *   the core; the counter varint then takes 8 bytes instead of 1 to 3).
 * - Each `swap` is one read-compare-write IndexedDB transaction with
 *   `durability: 'strict'`, awaited until it commits, before the core
 *   grants the counters. A record that changed since this store last
 *   wrote it (a second writer) fails with reason 'conflict'.
 * - Several tabs: by default the store takes an exclusive Web Lock named
 *   `mqseal-counter:<database>/<name>` at open; a second tab with the same
 *   store name gets an error (code 'counterStore', reason 'locked').
 *   Without the Web Locks API (a page that is not a secure context) the
 *   compare-and-swap still stops the second writer at its first write.
 */
export class IndexedDbCounterStore {
  #name;
  #database;
  #lock;
  #create;
  #clockFloor;
  #db = null;
  #release = null;

  /**
   * @param {string} name  one name per (key, sender id), e.g. `sender-${senderId}`
   * @param {{database?: string, lock?: boolean, create?: boolean, clockFloor?: boolean}} [options]
   */
  constructor(name, { database = 'mqseal', lock = true, create = false, clockFloor = false } = {}) {
    if (typeof name !== 'string' || name === '') throw storeError('store name must be a non-empty string', 'invalid');
    this.#name = name;
    this.#database = database;
    this.#lock = lock;
    this.#create = Boolean(create);
    this.#clockFloor = Boolean(clockFloor);
  }

  get name() {
    return `IndexedDB counter store "${this.#name}"`;
  }
  get clockFloor() {
    return this.#clockFloor;
  }

  async #acquireLock() {
    const locks = globalThis.navigator?.locks;
    if (!locks) return; // Not a secure context: the compare-and-swap still catches a second writer.
    this.#release = await exclusiveLock(locks, `mqseal-counter:${this.#database}/${this.#name}`, () =>
      storeError(
        `counter store "${this.#name}" is in use in another tab or window; use another sender id and store name per tab`,
        'locked',
      ),
    );
  }

  #tx(fn) {
    return durableTransaction(this.#db, 'counters', fn);
  }

  /** Takes the tab lock, opens the database and reads the stored limit (null: none). */
  async open() {
    if (this.#db) throw storeError(`${this.name} is already open`, 'locked');
    if (typeof indexedDB === 'undefined') throw storeError('IndexedDB is not available here', 'unavailable');
    if (this.#lock) await this.#acquireLock();
    try {
      this.#db = await openDatabase(this.#database, 'counters');
      let stored = null;
      await this.#tx((store, fail) => {
        const get = store.get(this.#name);
        get.onsuccess = () => {
          try {
            stored = storedValue(get.result, this.name);
          } catch (e) {
            fail(e);
            return;
          }
          if (!this.#create) return;
          if (stored !== null) {
            fail(storeError(`${this.name} already exists: its counters may have been used; open it without create`, 'conflict'));
            return;
          }
          store.add(0, this.#name);
          stored = 0n;
        };
      });
      return stored;
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Durably replaces `current` by `limit` (compare-and-swap in one transaction). */
  async swap(current, limit) {
    if (!this.#db) throw storeError(`${this.name} is not open`, 'locked');
    if (BigInt(limit) > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw storeError(`${this.name}: limit ${limit} is beyond what the record holds (2^53 - 1)`, 'write');
    }
    await this.#tx((store, fail) => {
      const get = store.get(this.#name);
      get.onsuccess = () => {
        try {
          checkSwapFor(this.name, storedValue(get.result, this.name), current, limit);
        } catch (e) {
          fail(e);
          return;
        }
        store.put(Number(limit), this.#name);
      };
    });
  }

  /** Closes the database and releases the tab lock. */
  close() {
    this.#release?.();
    this.#release = null;
    this.#db?.close();
    this.#db = null;
  }
}
