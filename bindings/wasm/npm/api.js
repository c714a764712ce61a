// The public API of the `mqseal` package, over the wasm-bindgen classes.
// Nothing cryptographic happens here: the WebAssembly core seals and opens;
// this layer validates arguments, reserves counters asynchronously and
// shapes results. The entry points (index.js for browsers and bundlers,
// node.js for Node) load the WebAssembly before this module is used.

import {
  Key,
  PublicKey,
  StaticKeyPair,
  PairwiseKeys,
  PlainTopics,
  RawSealer,
  RawOpener,
  clockFloor as coreClockFloor,
  defaultReservationBlock,
  snapshotRecordLen,
} from './wasm/mqseal_wasm.js';
import { onWasmReady } from './ready.js';
import { storedValue } from './stores.js';

export { Key, PublicKey, StaticKeyPair, PairwiseKeys, PlainTopics };
export { MemoryCounterStore, IndexedDbCounterStore } from './stores.js';
export { Member, MemoryMemberStore, IndexedDbMemberStore } from './member.js';

/** The suite names, as in the test vectors and `Opened.header.suite`. */
export const SUITES = Object.freeze(['chacha20poly1305', 'hmac-sha256']);

/** Largest number of bytes an envelope adds to a payload. */
export const MAX_OVERHEAD = 48;

/** Default number of counters a sealer reserves per store write: the core's DEFAULT_RESERVATION_BLOCK (1024). */
export let DEFAULT_RESERVATION_BLOCK;

/**
 * Bytes of a replay-state record of `Opener.snapshot()` / `restore()` without gaps (the core's
 * SenderSnapshot, 52); a record with n gaps below its window has 16 n bytes more. Store the blob whole.
 */
export let SNAPSHOT_RECORD_LEN;

// Read from the core once the entry point has loaded the WebAssembly.
onWasmReady(() => {
  DEFAULT_RESERVATION_BLOCK = defaultReservationBlock();
  SNAPSHOT_RECORD_LEN = snapshotRecordLen();
});

/** The core's clock floor for a Unix time in ms (`unix_millis * 1024`), as a bigint. */
export function clockFloor(unixMillis = Date.now()) {
  return coreClockFloor(unixMillis);
}

const MAX_U32 = 0xffff_ffff;
const encoder = new TextEncoder();

/**
 * An `Error` with `name` 'MqsealError' and a stable `code`: the same codes
 * the WebAssembly core throws (`Error::code()` of the Rust core).
 */
export function mqsealError(code, message, extra) {
  const err = new Error(message);
  err.name = 'MqsealError';
  err.code = code;
  if (extra) Object.assign(err, extra);
  return err;
}

function checkU32(name, v) {
  if (!Number.isInteger(v) || v < 0 || v > MAX_U32) {
    throw mqsealError('invalidConfig', `${name} must be an integer from 0 to 4294967295, got ${v}`);
  }
  return v;
}

function checkPositive(name, v) {
  if (!Number.isSafeInteger(v) || v < 1) {
    throw mqsealError('invalidConfig', `${name} must be a positive integer, got ${v}`);
  }
  return v;
}

function checkSuite(suite) {
  if (!SUITES.includes(suite)) {
    throw mqsealError('invalidConfig', `unknown suite ${JSON.stringify(suite)}; use one of ${SUITES.join(', ')}`);
  }
  return suite;
}

function toKey(key) {
  if (typeof key === 'string') return Key.fromText(key);
  if (key instanceof Key) return key;
  throw mqsealError('invalidKey', 'expected a Key or its text form mqseal:key:v1:<id>:<base64url>');
}

/** Bytes of a payload: a Uint8Array (Buffer included), ArrayBuffer or string (UTF-8). */
export function toBytes(payload) {
  if (payload instanceof Uint8Array) return payload;
  if (typeof payload === 'string') return encoder.encode(payload);
  if (payload instanceof ArrayBuffer) return new Uint8Array(payload);
  if (ArrayBuffer.isView(payload)) return new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
  throw mqsealError('invalidConfig', 'payload must be a Uint8Array, ArrayBuffer or string');
}

function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

/** A store call; errors that are not the package's own become 'counterStore' errors. */
async function storeCall(store, what, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e && e.code === 'counterStore') throw e;
    throw mqsealError('counterStore', `counter store ${what} failed: ${e && e.message ? e.message : e}`, {
      cause: e,
      reason: what === 'open' ? 'read' : 'write',
    });
  }
}

function storeName(store) {
  return typeof store.name === 'string' && store.name ? store.name : 'counter store';
}

/**
 * Seals messages for one sender id under one key.
 *
 * The counter store is a driver of the core's counter primitive: at
 * `Sealer.create` it takes the store (its lock) and reads the stored
 * limit; the core then says which reservation to persist, the store
 * compare-and-swaps it durably, and only then does the core grant those
 * counters. A new reservation is made in the background when half a block
 * is left, so sealing rarely waits; a page reload or crash skips the rest
 * of a block, never reuses a counter. A store that changed under the
 * sealer (reason 'conflict': a second writer) or a lost lock stops it for
 * good. Create it with `await Sealer.create({...})`.
 */
export class Sealer {
  #raw;
  #store;
  #block;
  #timestamps;
  #refill = null;
  #failed = null;

  constructor(token, raw, store, block, timestamps) {
    if (token !== CREATE) {
      throw mqsealError('invalidConfig', 'use `await Sealer.create({ key, senderId, store })`');
    }
    this.#raw = raw;
    this.#store = store;
    this.#block = block;
    this.#timestamps = timestamps;
  }

  /**
   * @param {object} options
   * @param {Key|string} options.key  the key (or its text form)
   * @param {number} options.senderId  this sender's id (u32); one live sealer per (key, sender id)
   * @param {'chacha20poly1305'|'hmac-sha256'} [options.suite]
   * @param {{open():Promise<bigint|null>, swap(current:bigint|null, limit:bigint):Promise<void>, clockFloor?:boolean, name?:string, close?():void}} options.store
   * @param {number} [options.block]  counters reserved per store write (default DEFAULT_RESERVATION_BLOCK, 1024)
   * @param {boolean} [options.timestamps]  add an authenticated timestamp (Date.now) to every message
   */
  static async create({ key, senderId, suite = 'chacha20poly1305', store, block = defaultReservationBlock(), timestamps = false } = {}) {
    const k = toKey(key);
    checkU32('senderId', senderId);
    checkSuite(suite);
    checkPositive('block', block);
    if (!store || typeof store.open !== 'function' || typeof store.swap !== 'function') {
      throw mqsealError(
        'invalidConfig',
        'store: a counter store is required (open() and swap()): IndexedDbCounterStore in browsers, ' +
          'FileCounterStore in Node, MemoryCounterStore for tests',
      );
    }
    const stored = storedValue(await storeCall(store, 'open', () => store.open()), storeName(store));
    let sealer;
    try {
      let raw;
      try {
        // The core decides: no state is refused (reason 'missing') unless
        // the store asks for the clock floor, which the core computes.
        raw = new RawSealer(k, senderId, suite, stored ?? undefined, store.clockFloor ? Date.now() : undefined);
      } catch (e) {
        if (e?.reason === 'missing') {
          e.message =
            `${storeName(store)} holds no counter state: refusing to start over (it would reuse counters); ` +
            'open it with { create: true } for a new sender, or { clockFloor: true }';
        }
        throw e;
      }
      raw.setReservationBlock(BigInt(block));
      sealer = new Sealer(CREATE, raw, store, block, Boolean(timestamps));
      await sealer.#reserve(0);
    } catch (e) {
      if (sealer) await sealer.close();
      else await store.close?.();
      throw e;
    }
    return sealer;
  }

  get senderId() {
    return this.#raw.senderId;
  }
  get keyId() {
    return this.#raw.keyId;
  }
  get suite() {
    return this.#raw.suite;
  }
  /** The counter the next message will carry (a bigint: counters are 64-bit). */
  get nextCounter() {
    return this.#raw.nextCounter;
  }
  /** Counters granted by the core and not used yet. */
  get remaining() {
    return this.#raw.grantedRemaining;
  }
  /** End of the granted range (exclusive, a bigint). */
  get grantedLimit() {
    return this.#raw.grantedLimit;
  }

  /**
   * Seals `payload` for `topic`, reserving counters first when none is
   * left. `timestamp`: seconds since the epoch, or null for none (default:
   * now when the sealer was created with `timestamps: true`).
   * @returns {Promise<Uint8Array>} the envelope
   */
  async seal(topic, payload, options = {}) {
    // Each pass either grants counters or throws; the loop only repeats
    // when concurrent seals used up a block while this one waited.
    while (!this.#failed && this.#raw.grantedRemaining < 1 && this.#raw.reservationNeeded(0n)) {
      await this.#reserve(0);
    }
    return this.sealSync(topic, payload, options);
  }

  /**
   * Seals without waiting: throws code 'counterStore' when no granted
   * counter is left (normally one is: blocks are reserved ahead).
   */
  sealSync(topic, payload, { timestamp } = {}) {
    if (this.#failed) throw this.#failed;
    const ts = timestamp !== undefined ? timestamp : this.#timestamps ? nowSeconds() : null;
    const envelope = this.#raw.seal(String(topic), toBytes(payload), ts ?? undefined);
    const ahead = Math.floor(this.#block / 2);
    if (this.#raw.grantedRemaining <= ahead) {
      // Reserve ahead; a failure surfaces on the next seal that needs it.
      this.#reserve(ahead).catch(() => {});
    }
    return envelope;
  }

  /** Switches to another key (rotation); counters carry on. */
  rotateKey(key) {
    this.#raw.rotateKey(toKey(key));
  }

  /**
   * Waits for a reservation in flight, then releases the store (and its
   * lock). The sealer is unusable after.
   */
  async close() {
    await this.#refill?.catch(() => {});
    this.#failed ??= mqsealError('counterStore', 'the sealer is closed', { reason: 'locked' });
    await this.#store.close?.();
    this.#raw.free();
  }

  /** One reservation at a time: ask the core, persist durably, grant. */
  #reserve(ahead) {
    if (!this.#refill) {
      this.#refill = (async () => {
        if (this.#failed) throw this.#failed;
        const r = this.#raw.reservationNeeded(BigInt(ahead));
        if (!r) return;
        try {
          await storeCall(this.#store, 'swap', () => this.#store.swap(r.current, r.limit));
        } catch (e) {
          // A second writer or a lost lock: never seal again.
          if (e.reason === 'conflict' || e.reason === 'locked') this.#failed = e;
          throw e;
        }
        this.#raw.grant(r.current ?? undefined, r.limit);
      })().finally(() => {
        this.#refill = null;
      });
    }
    return this.#refill;
  }
}

const CREATE = Symbol('Sealer.create');

/**
 * The JSON form of a header: the same fields, with `counter` and
 * `timestamp` (64-bit, so a bigint when large) as decimal strings, since
 * `JSON.stringify` refuses bigints. `timestamp` stays null when absent.
 */
function headerToJSON() {
  return {
    suite: this.suite,
    keyId: this.keyId,
    senderId: this.senderId,
    counter: String(this.counter),
    timestamp: this.timestamp === null ? null : String(this.timestamp),
  };
}

function header(opened) {
  const h = {
    suite: opened.suite,
    keyId: opened.keyId,
    senderId: opened.senderId,
    counter: opened.counter,
    timestamp: opened.timestamp ?? null,
  };
  // Not enumerable: spreading or comparing a header sees only its fields.
  Object.defineProperty(h, 'toJSON', { value: headerToJSON });
  return h;
}

// The opener options that are the core's OpenerConfig, field for field
// (core/src/config.rs); the core converts, validates and applies them.
const CONFIG_FIELDS = ['window', 'gaps', 'maxAge', 'maxSkew', 'requireTimestamp', 'suites', 'eviction'];
const OPENER_OPTIONS = new Set([...CONFIG_FIELDS, 'keys', 'topicRewrite', 'clock']);
const RENAMED = { requireTimestamps: 'requireTimestamp' };

function coreConfig(options, allowed) {
  const config = {};
  for (const [name, value] of Object.entries(options ?? {})) {
    if (!allowed.has(name)) {
      const hint = RENAMED[name] ? ` (it is called ${RENAMED[name]})` : '';
      throw mqsealError('invalidConfig', `${name}: unknown opener option${hint}`, { option: name });
    }
    if (CONFIG_FIELDS.includes(name)) config[name] = value;
  }
  return config;
}

/**
 * Opens and verifies envelopes: keyring, topic binding, replay windows
 * (per key id and sender id), freshness policy. Nothing unverified is ever
 * returned; every rejection throws an Error with a `code`.
 *
 * The policy options are the core's `OpenerConfig` (same names in
 * camelCase, same defaults, validated by the core): `window` (128, 1 to
 * 256), `gaps` (4, 0 to 4: ranges of never-accepted counters kept below
 * the window, so late genuine messages are accepted once; 0 is the plain
 * bitmap window), `maxAge` (none; implies timestamps are required and, without
 * `maxSkew`, a skew bound of min(maxAge, 300)), `maxSkew` (none),
 * `requireTimestamp` (false), `suites` (both), `eviction` ('rejectNew';
 * 'leastRecentlyUsed' needs `maxAge`). Capacities are the core's defaults:
 * 8 keys; a growable sender table of up to 1,000,000 tracked senders
 * (the core's `DEFAULT_MAX_SENDERS`), its hasher keyed from
 * `crypto.getRandomValues`.
 */
export class Opener {
  #raw;
  #rewrite;
  #clock;

  /**
   * @param {object} [options]
   * @param {(Key|string)[]} [options.keys]  keys accepted (up to 8)
   * @param {number} [options.window]  replay window width, 1 to 256 (default 128)
   * @param {number} [options.gaps]  gap budget per sender, 0 to 4 (default 4; 0: everything below the window is a replay)
   * @param {number|null} [options.maxAge]  reject timestamps older than this many seconds, and messages without one
   * @param {number|null} [options.maxSkew]  reject timestamps more than this many seconds ahead (default with maxAge: min(maxAge, 300))
   * @param {boolean} [options.requireTimestamp]  reject messages without a timestamp
   * @param {string[]} [options.suites]  suites accepted (default both)
   * @param {'rejectNew'|'leastRecentlyUsed'} [options.eviction]  when 1,000,000 senders are tracked
   * @param {{received:string, sealed:string}} [options.topicRewrite]  bridged prefix
   * @param {() => number} [options.clock]  seconds since the epoch (default Date.now)
   */
  constructor(options = {}) {
    const config = coreConfig(options, OPENER_OPTIONS);
    const { keys = [], topicRewrite, clock = nowSeconds } = options ?? {};
    if (topicRewrite && (typeof topicRewrite.received !== 'string' || typeof topicRewrite.sealed !== 'string')) {
      throw mqsealError('invalidConfig', 'topicRewrite: needs string `received` and `sealed` prefixes', {
        option: 'topicRewrite',
      });
    }
    if (typeof clock !== 'function') {
      throw mqsealError('invalidConfig', 'clock: must be a function returning seconds since the epoch', { option: 'clock' });
    }
    if (!Array.isArray(keys)) throw mqsealError('invalidConfig', 'keys: must be an array of keys', { option: 'keys' });
    this.#raw = new RawOpener(config);
    this.#rewrite = topicRewrite ?? null;
    this.#clock = clock;
    for (const k of keys) this.addKey(k);
  }

  /**
   * Replaces the whole policy (the core's `set_config`: fields not given
   * take the core's defaults; validated as a whole; unchanged on error).
   */
  setConfig(options = {}) {
    this.#raw.setConfig(coreConfig(options, new Set(CONFIG_FIELDS)));
  }

  /**
   * The policy in force as the core holds it, plus `effectiveMaxSkew` and
   * `timestampsRequired` as the core computes them.
   */
  get config() {
    return this.#raw.config;
  }

  /** Accepts envelopes under this key from now on (rotation). */
  addKey(key) {
    this.#raw.addKey(toKey(key));
  }

  /** Rejects envelopes under this key id from now on ('unknownKey'). */
  retireKey(keyId) {
    this.#raw.retireKey(checkU32('keyId', keyId));
  }

  /** Number of (key id, sender id) pairs tracked. */
  get trackedSenders() {
    return this.#raw.trackedSenders;
  }

  /** Bytes the sender table occupies. */
  get senderMemoryBytes() {
    return this.#raw.senderMemoryBytes;
  }

  /** The most senders tracked before `eviction` applies (1,000,000). */
  get senderLimit() {
    return this.#raw.senderLimit;
  }

  /**
   * The replay state of every tracked sender, to persist across restarts:
   * the core's records (`SNAPSHOT_RECORD_LEN` bytes, 16 more per gap) one
   * after the other, the same record format as the Rust replay-state file and the C
   * and Python snapshot APIs.
   * @returns {Uint8Array}
   */
  snapshot() {
    return this.#raw.snapshot();
  }

  /**
   * Merges saved records into the live replay windows (never rolls a
   * window back: the larger highest counter and the accepted counters of
   * both are kept). The core validates every record first; one invalid
   * record ('invalidSnapshot': wrong length, a record that accepted
   * nothing, a bad width) restores nothing. Records for key ids not in the
   * keyring are left out and counted.
   * @param {Uint8Array|ArrayBuffer} records
   * @returns {{restored: number, unknownKey: number}}
   */
  restore(records) {
    return this.#raw.restore(records instanceof Uint8Array ? records : toBytes(records));
  }

  /**
   * Forgets one sender's replay state (a device taken out of service); its
   * old messages would open again, so combine it with a key rotation or a
   * maxAge. Returns whether the sender was tracked.
   */
  forgetSender(keyId, senderId) {
    return this.#raw.forgetSender(checkU32('keyId', keyId), checkU32('senderId', senderId));
  }

  /**
   * Opens an envelope received on `topic`.
   * @param {string} topic  the topic it arrived on
   * @param {Uint8Array|ArrayBuffer} envelope
   * @param {{now?: number|null}} [options]  current time in seconds (null: none; default: the clock)
   * @returns {{topic: string, payload: Uint8Array, header: {suite:string,keyId:number,senderId:number,counter:bigint,timestamp:number|null}}}
   */
  open(topic, envelope, { now } = {}) {
    const t = now !== undefined ? now : this.#clock();
    const bytes = envelope instanceof Uint8Array ? envelope : toBytes(envelope);
    const opened = this.#raw.open(
      String(topic),
      bytes,
      t ?? undefined,
      this.#rewrite?.received,
      this.#rewrite?.sealed,
    );
    try {
      return { topic: String(topic), payload: opened.payload, header: header(opened) };
    } finally {
      opened.free();
    }
  }

  /** Frees the WebAssembly memory now (otherwise the garbage collector does). */
  free() {
    this.#raw.free();
  }
}
