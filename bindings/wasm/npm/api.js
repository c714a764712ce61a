// The public API of the `mqseal` package, over the wasm-bindgen classes.
// Nothing cryptographic happens here: the WebAssembly core seals and opens;
// this layer validates arguments, reserves counters asynchronously and
// shapes results. The entry points (index.js for browsers and bundlers,
// node.js for Node) load the WebAssembly before this module is used.

import { Key, StaticKeyPair, PairwiseKeys, RawSealer, RawOpener } from './wasm/mqseal_wasm.js';

export { Key, StaticKeyPair, PairwiseKeys };
export { MemoryCounterStore, IndexedDbCounterStore } from './stores.js';

/** The suite names, as in the test vectors and `Opened.header.suite`. */
export const SUITES = Object.freeze(['chacha20poly1305', 'hmac-sha256']);

/** Largest number of bytes an envelope adds to a payload. */
export const MAX_OVERHEAD = 48;

/** Default number of counters a sealer reserves per store write. */
export const DEFAULT_RESERVATION_BLOCK = 256;

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

const MAX_U64 = 0xffff_ffff_ffff_ffffn;

function toU64(v) {
  if (typeof v === 'bigint') return v;
  if (Number.isSafeInteger(v)) return BigInt(v);
  return -1n;
}

/** Asks a store for a durable range and checks what it gives back (as bigints). */
async function reserveFrom(store, count) {
  let range;
  try {
    range = await store.reserve(count);
  } catch (e) {
    if (e && e.code === 'counterStore') throw e;
    throw mqsealError('counterStore', `counter store failed: ${e && e.message ? e.message : e}`, { cause: e });
  }
  const start = toU64(range?.start);
  const end = toU64(range?.end);
  if (start < 0n || end <= start || end > MAX_U64) {
    throw mqsealError('counterStore', `counter store returned an invalid range ${String(range?.start)}..${String(range?.end)}`);
  }
  return { start, end };
}

/**
 * Seals messages for one sender id under one key.
 *
 * Counters come only from ranges the counter store has durably reserved
 * first: `Sealer.create` reserves a block before the first message, and a
 * new block is reserved in the background when half of the current one is
 * used, so a page reload or crash never reuses a counter. Create it with
 * `await Sealer.create({...})`.
 */
export class Sealer {
  #raw;
  #store;
  #block;
  #timestamps;
  #refill = null;

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
   * @param {{reserve(count:number):Promise<{start:number|bigint,end:number|bigint}>, close?():void}} options.store
   * @param {number} [options.block]  counters reserved per store write (default 256)
   * @param {boolean} [options.timestamps]  add an authenticated timestamp (Date.now) to every message
   */
  static async create({ key, senderId, suite = 'chacha20poly1305', store, block = DEFAULT_RESERVATION_BLOCK, timestamps = false } = {}) {
    const k = toKey(key);
    checkU32('senderId', senderId);
    checkSuite(suite);
    checkPositive('block', block);
    if (!store || typeof store.reserve !== 'function') {
      throw mqsealError(
        'invalidConfig',
        'a counter store is required: IndexedDbCounterStore in browsers, FileCounterStore in Node, MemoryCounterStore for tests',
      );
    }
    const { start, end } = await reserveFrom(store, block);
    const raw = new RawSealer(k, senderId, suite, start, end);
    return new Sealer(CREATE, raw, store, block, Boolean(timestamps));
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
  /** Counters reserved and not used yet. */
  get remaining() {
    return this.#raw.remaining;
  }

  /**
   * Seals `payload` for `topic`, reserving counters first when none is
   * left. `timestamp`: seconds since the epoch, or null for none (default:
   * now when the sealer was created with `timestamps: true`).
   * @returns {Promise<Uint8Array>} the envelope
   */
  async seal(topic, payload, options = {}) {
    if (this.#raw.remaining < 1) await this.#reserve();
    return this.sealSync(topic, payload, options);
  }

  /**
   * Seals without waiting: throws code 'counterStore' when no reserved
   * counter is left (normally one is: blocks are reserved ahead).
   */
  sealSync(topic, payload, { timestamp } = {}) {
    const ts = timestamp !== undefined ? timestamp : this.#timestamps ? nowSeconds() : null;
    const envelope = this.#raw.seal(String(topic), toBytes(payload), ts ?? undefined);
    if (this.#raw.remaining <= this.#block / 2) {
      // Reserve ahead; a failure surfaces on the next seal that needs it.
      this.#reserve().catch(() => {});
    }
    return envelope;
  }

  /** Switches to another key (rotation); counters carry on. */
  rotateKey(key) {
    this.#raw.rotateKey(toKey(key));
  }

  /**
   * Waits for a reservation in flight, then releases the store (and its
   * tab lock). The sealer is unusable after.
   */
  async close() {
    await this.#refill?.catch(() => {});
    this.#store.close?.();
    this.#raw.free();
  }

  #reserve() {
    if (!this.#refill) {
      this.#refill = (async () => {
        const { start, end } = await reserveFrom(this.#store, this.#block);
        if (start < this.#raw.reservedUntil) {
          // The store forgot ranges it handed out (storage cleared while
          // the page was open?): using them again would reuse counters.
          throw mqsealError(
            'counterStore',
            `counter store went backwards (range starts at ${start}, below ${this.#raw.reservedUntil}); refusing to reuse counters`,
          );
        }
        this.#raw.grant(start, end);
      })().finally(() => {
        this.#refill = null;
      });
    }
    return this.#refill;
  }
}

const CREATE = Symbol('Sealer.create');

function header(opened) {
  return {
    suite: opened.suite,
    keyId: opened.keyId,
    senderId: opened.senderId,
    counter: opened.counter,
    timestamp: opened.timestamp ?? null,
  };
}

/**
 * Opens and verifies envelopes: keyring, topic binding, replay windows
 * (per key id and sender id), freshness policy. Nothing unverified is ever
 * returned; every rejection throws an Error with a `code`.
 */
export class Opener {
  #raw;
  #rewrite;
  #clock;

  /**
   * @param {object} [options]
   * @param {(Key|string)[]} [options.keys]  keys accepted (up to 16)
   * @param {number} [options.window]  replay window width, 1 to 256 (default 128)
   * @param {number} [options.maxAge]  reject timestamps older than this many seconds (and messages without one)
   * @param {number} [options.maxSkew]  reject timestamps more than this many seconds ahead
   * @param {boolean} [options.requireTimestamps]
   * @param {string[]} [options.suites]  suites accepted (default both)
   * @param {'rejectNew'|'leastRecentlyUsed'} [options.eviction]  when 256 senders are tracked
   * @param {{received:string, sealed:string}} [options.topicRewrite]  bridged prefix
   * @param {() => number} [options.clock]  seconds since the epoch (default Date.now)
   */
  constructor({
    keys = [],
    window,
    maxAge,
    maxSkew,
    requireTimestamps = false,
    suites = SUITES,
    eviction = 'rejectNew',
    topicRewrite,
    clock = nowSeconds,
  } = {}) {
    for (const s of suites) checkSuite(s);
    if (eviction !== 'rejectNew' && eviction !== 'leastRecentlyUsed') {
      throw mqsealError('invalidConfig', `eviction must be 'rejectNew' or 'leastRecentlyUsed', got ${eviction}`);
    }
    if (topicRewrite && (typeof topicRewrite.received !== 'string' || typeof topicRewrite.sealed !== 'string')) {
      throw mqsealError('invalidConfig', 'topicRewrite needs string `received` and `sealed` prefixes');
    }
    if (window !== undefined && window !== null) checkU32('window', window);
    this.#raw = new RawOpener(
      window ?? undefined,
      maxAge ?? undefined,
      maxSkew ?? undefined,
      Boolean(requireTimestamps),
      suites.includes('chacha20poly1305'),
      suites.includes('hmac-sha256'),
      eviction === 'leastRecentlyUsed',
    );
    this.#rewrite = topicRewrite ?? null;
    this.#clock = clock;
    for (const k of keys) this.addKey(k);
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
