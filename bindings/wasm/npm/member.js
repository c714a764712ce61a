// A fleet member (docs/PROTOCOL.md section 14) for browsers and Node: a
// dashboard that receives its group keys and sender ids from the
// authority over MQTT, with its state in IndexedDB.
//
// Everything the protocol decides (verification, counters, limits, epochs,
// which key when) is the WebAssembly core's MemberAgent (RawMember). This
// layer does the I/O in the one safe order of 14.8, and nothing else:
//
//   1. RawMember.handle   checks the envelope and applies it to a copy;
//                         gives back only the member-state record
//   2. store.write        persists the record durably (IndexedDB
//                         transaction complete, durability 'strict')
//   3. RawMember.commit   only now: the ack envelope and the new keys
//   4. publishAck         publishes the ack
//   5. refresh            swaps the openers' and sealers' keys
//
// A failed write discards the copy: no ack, no key is used. The caller
// cannot reorder this: the ack is not reachable before the write.

import { PlainTopics, RawMember, StaticKeyPair } from './wasm/mqseal_wasm.js';
import { Opener, Sealer, mqsealError, toBytes } from './api.js';
import { IndexedDbCounterStore, durableTransaction, exclusiveLock, openDatabase, storeError } from './stores.js';
import { Evented, emit } from './events.js';

const nowSeconds = () => Math.floor(Date.now() / 1000);
// setTimeout's longest delay (about 24.8 days); a later wake-up re-arms.
const MAX_DELAY_MS = 0x7fff_ffff;

function sameBytes(a, b) {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The member-state record in memory: **for tests only** (a reload forgets
 * the epoch, and the member would accept old retained states again).
 * `failWrites = true` makes the next writes fail (to test 14.8).
 */
export class MemoryMemberStore {
  #record;
  failWrites = false;
  constructor(record = null) {
    this.#record = record === null ? null : Uint8Array.from(record);
  }
  get name() {
    return 'MemoryMemberStore';
  }
  /** The stored record (a copy; null: none). */
  get record() {
    return this.#record === null ? null : Uint8Array.from(this.#record);
  }
  async open() {
    return this.record;
  }
  async write(bytes) {
    if (this.failWrites) throw storeError('MemoryMemberStore: write refused (failWrites)', 'write');
    this.#record = Uint8Array.from(bytes);
  }
  close() {}
}

/**
 * The member-state record (14.9) in IndexedDB (database `mqseal-member`,
 * object store `members`, key = the member id), for browsers.
 *
 * - One writer: an exclusive Web Lock `mqseal-member:<database>/<memberId>`
 *   is taken at open and held until close; a second tab or window gets an
 *   error (code 'counterStore', reason 'locked'). Without the Web Locks
 *   API (not a secure context) open fails (reason 'unavailable') unless
 *   `lock: false`.
 * - Each write is one read-compare-write transaction with durability
 *   'strict', awaited until it commits; a record that changed since this
 *   store last read or wrote it (a second writer) fails with reason
 *   'conflict' and writes nothing.
 */
export class IndexedDbMemberStore {
  #memberId;
  #database;
  #lock;
  #db = null;
  #release = null;
  #last = null;

  /**
   * @param {string} memberId
   * @param {{database?: string, lock?: boolean}} [options]
   */
  constructor(memberId, { database = 'mqseal-member', lock = true } = {}) {
    if (typeof memberId !== 'string' || memberId === '') throw storeError('member id must be a non-empty string', 'invalid');
    this.#memberId = memberId;
    this.#database = database;
    this.#lock = lock;
  }

  get name() {
    return `IndexedDB member store "${this.#memberId}"`;
  }

  async #acquireLock() {
    const locks = globalThis.navigator?.locks;
    if (!locks) {
      throw storeError(`${this.name}: the Web Locks API is missing (not a secure context?): cannot guarantee one writer`, 'unavailable');
    }
    this.#release = await exclusiveLock(locks, `mqseal-member:${this.#database}/${this.#memberId}`, () =>
      storeError(`member "${this.#memberId}" is already running in another tab or window`, 'locked'),
    );
  }

  #tx(fn) {
    return durableTransaction(this.#db, 'members', fn);
  }

  /** Takes the lock, opens the database and reads the record (null: none). */
  async open() {
    if (this.#db) throw storeError(`${this.name} is already open`, 'locked');
    if (typeof indexedDB === 'undefined') throw storeError('IndexedDB is not available here', 'unavailable');
    if (this.#lock) await this.#acquireLock();
    try {
      this.#db = await openDatabase(this.#database, 'members');
      let record = null;
      await this.#tx((store, fail) => {
        const get = store.get(this.#memberId);
        get.onsuccess = () => {
          const v = get.result;
          if (v === undefined) return;
          if (!(v instanceof Uint8Array)) {
            fail(storeError(`${this.name} holds a corrupt record`, 'corrupt'));
            return;
          }
          record = v;
        };
      });
      this.#last = record;
      return record === null ? null : Uint8Array.from(record);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Durably replaces the record (compare-and-swap against the last one read or written). */
  async write(bytes) {
    if (!this.#db) throw storeError(`${this.name} is not open`, 'locked');
    const next = Uint8Array.from(bytes);
    await this.#tx((store, fail) => {
      const get = store.get(this.#memberId);
      get.onsuccess = () => {
        const v = get.result === undefined ? null : get.result;
        if (!sameBytes(v, this.#last)) {
          fail(storeError(`${this.name} changed under this member: a second writer uses it; refusing to apply`, 'conflict'));
          return;
        }
        store.put(next, this.#memberId);
      };
    });
    this.#last = next;
  }

  /** Closes the database and releases the lock. */
  close() {
    this.#release?.();
    this.#release = null;
    this.#db?.close();
    this.#db = null;
  }
}

/** The default counter store of an assignment: IndexedDB, one record per (member, group, key id, sender id). */
function defaultCounterStore(memberId) {
  return ({ group, keyId, senderId }) =>
    new IndexedDbCounterStore(`member:${memberId}/${group}/${keyId}/${senderId}`, { clockFloor: true });
}

const CREATE = Symbol('Member.create');

/**
 * A fleet member. Create with `await Member.create({...})`; feed it the
 * control messages of its control topic with `handle` (mqtt.js's
 * `memberClient` does that, and publishes the ack); open and seal group
 * traffic with `opener(group)` and `seal(group, ...)`.
 *
 * Events (`on(event, fn)`): 'applied' ({ epoch, wakeAt }), 'rejected'
 * (error, topic) for a control message that was refused (error.code and,
 * for 'invalidControl', error.reason: the core's names), 'keys' (groups)
 * after keys or sealers changed.
 */
export class Member extends Evented {
  #raw;
  #store;
  #clock;
  #counterStore;
  #openerOptions;
  #openers = new Map(); // group -> { opener, keys: Map<keyId, text> }
  #sealers = new Map(); // group -> { assignment: string, sealer: Promise<Sealer> }
  #queue = Promise.resolve();
  #timer = null;
  #closed = false;

  constructor(token, raw, store, clock, counterStore, openerOptions) {
    if (token !== CREATE) throw mqsealError('invalidConfig', 'use `await Member.create({ ... })`');
    super();
    this.#raw = raw;
    this.#store = store;
    this.#clock = clock;
    this.#counterStore = counterStore;
    this.#openerOptions = openerOptions;
  }

  /**
   * @param {object} options
   * @param {StaticKeyPair|string} options.secret  the member's key pair (or its secret's text form)
   * @param {string} options.authority  the authority's public key (text form)
   * @param {string} options.memberId  as enrolled
   * @param {string} [options.controlPrefix]  default 'mqseal/v1/ctl'
   * @param {string} [options.ackPrefix]  default 'mqseal/v1/ack'
   * @param {{open():Promise<Uint8Array|null>, write(bytes:Uint8Array):Promise<void>, close?():void}} [options.store]
   *   where the member-state record lives (default: IndexedDbMemberStore(memberId))
   * @param {boolean} [options.enroll]  a newly enrolled member: the store must hold no record; writes epoch 0
   * @param {(a:{group:string,keyId:number,senderId:number}) => object} [options.counterStore]  the counter store of
   *   each sealing assignment (default: IndexedDbCounterStore `member:<id>/<group>/<keyId>/<senderId>`, clockFloor)
   * @param {object} [options.opener]  options of the group openers (window, maxAge, ...; not keys)
   * @param {() => number|null} [options.clock]  Unix seconds (default Date.now; null: no clock)
   */
  static async create({
    secret,
    authority,
    memberId,
    controlPrefix,
    ackPrefix,
    store,
    enroll = false,
    counterStore,
    opener = {},
    clock = nowSeconds,
  } = {}) {
    const pair = secret instanceof StaticKeyPair ? secret : StaticKeyPair.fromSecretText(secret);
    if (typeof clock !== 'function') throw mqsealError('invalidConfig', 'clock: must be a function', { option: 'clock' });
    const s = store ?? new IndexedDbMemberStore(String(memberId));
    if (typeof s.open !== 'function' || typeof s.write !== 'function') {
      throw mqsealError('invalidConfig', 'store: needs open() and write(bytes)', { option: 'store' });
    }
    const record = await s.open();
    try {
      let raw;
      if (record === null) {
        if (!enroll) {
          throw mqsealError(
            'invalidSnapshot',
            `${s.name ?? 'the member store'} holds no member state: refusing to start over (it would accept old ` +
              'control messages again and reuse counters); pass { enroll: true } for a newly enrolled member',
          );
        }
        raw = new RawMember(pair, memberId, authority, controlPrefix, ackPrefix, undefined);
        const first = raw.encodeState();
        await s.write(first);
        first.fill(0);
      } else {
        if (enroll) {
          throw mqsealError('invalidConfig', `${s.name ?? 'the member store'} already holds member state: open it without enroll`);
        }
        raw = new RawMember(pair, memberId, authority, controlPrefix, ackPrefix, record);
        record.fill(0);
      }
      const member = new Member(CREATE, raw, s, clock, counterStore ?? defaultCounterStore(memberId), opener);
      member.#schedule(raw.wakeAt(member.#now()));
      return member;
    } catch (e) {
      await s.close?.();
      throw e;
    }
  }

  get memberId() {
    return this.#raw.memberId;
  }
  get controlTopic() {
    return this.#raw.controlTopic;
  }
  get ackTopic() {
    return this.#raw.ackTopic;
  }
  /** The epoch in use (0 before the first state). */
  get epoch() {
    return this.#raw.epoch;
  }
  /** The groups this member belongs to. */
  get groups() {
    return this.#raw.groups();
  }

  #now() {
    const t = this.#clock();
    return t ?? undefined;
  }


  /** One control message at a time, in arrival order. */
  #serial(fn) {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Handles a control message received on `topic`. An empty payload (a
   * deleted retained message) is skipped: resolves null. Otherwise: the
   * core checks it; the new member-state record is written to the store
   * (awaited until durable); only then is the ack handed to `publishAck`
   * (awaited) and are the keys swapped. Resolves `{ epoch, wakeAt, ack }`.
   * A refused message rejects (and emits 'rejected') with the core's error
   * code; nothing changed. A failed write rejects with the store's error;
   * nothing changed, no ack.
   * @param {string} topic
   * @param {Uint8Array|ArrayBuffer} envelope
   * @param {{publishAck?: (topic: string, ack: Uint8Array) => Promise<void>|void}} [options]
   */
  handle(topic, envelope, { publishAck } = {}) {
    return this.#serial(async () => {
      if (this.#closed) throw mqsealError('invalidConfig', 'the member is closed');
      const bytes = toBytes(envelope);
      if (bytes.length === 0) return null;
      let r;
      try {
        r = this.#raw.handle(String(topic), bytes, this.#now());
      } catch (e) {
        emit(this, 'rejected', e, String(topic));
        throw e;
      }
      try {
        await this.#store.write(r.state);
      } catch (e) {
        this.#raw.discard();
        throw e;
      } finally {
        r.state.fill(0);
      }
      const ack = this.#raw.commit();
      try {
        if (publishAck) await publishAck(this.ackTopic, ack);
      } finally {
        // The state is persisted: its keys are the ones to use even when
        // the ack could not be published (the authority sees it as behind).
        await this.#refresh();
        this.#schedule(r.wakeAt);
      }
      const applied = { epoch: r.epoch, wakeAt: r.wakeAt };
      emit(this, 'applied', applied);
      return { ...applied, ack };
    });
  }

  /**
   * Scheduled switches now (the timer set at each wake-up calls it):
   * rebuilds keys and sealers when the core says they changed.
   */
  tick() {
    return this.#serial(async () => {
      const t = this.#raw.tick(this.#now());
      if (t.changed) await this.#refresh();
      this.#schedule(t.wakeAt);
      return t;
    });
  }

  #schedule(wakeAt) {
    clearTimeout(this.#timer);
    this.#timer = null;
    if (wakeAt === null || wakeAt === undefined || this.#closed) return;
    const now = this.#clock();
    if (now === null || now === undefined) return;
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, (Number(wakeAt) - now) * 1000));
    this.#timer = setTimeout(() => {
      this.tick().catch((e) => emit(this, 'error', e));
    }, delay);
    this.#timer?.unref?.();
  }

  /**
   * The opener of `group`: the keys the core accepts now, kept up to date
   * by the member (one Opener per group, its replay windows kept across
   * rotations).
   * @returns {Opener}
   */
  opener(group) {
    let entry = this.#openers.get(group);
    if (!entry) {
      entry = { opener: new Opener({ ...this.#openerOptions, clock: this.#clock }), keys: new Map() };
      this.#openers.set(group, entry);
      this.#syncOpener(group, entry);
    }
    return entry.opener;
  }

  /**
   * Opens group traffic with the member's keys; a message under the
   * group's next key tells a member without a clock to switch (persisted
   * before its sealer changes).
   */
  async open(group, topic, envelope, options) {
    const msg = this.opener(group).open(topic, envelope, options);
    await this.#serial(async () => {
      if (this.#raw.keySeen(group, msg.header.keyId, this.#now())) {
        const record = this.#raw.encodeState();
        try {
          await this.#store.write(record);
        } finally {
          record.fill(0);
        }
        await this.#refresh();
      }
    });
    return msg;
  }

  #syncOpener(group, entry) {
    const accepted = new Map();
    for (const key of this.#raw.acceptedKeys(group, this.#now())) accepted.set(key.id, key);
    for (const [id, text] of entry.keys) {
      if (accepted.get(id)?.toText() !== text) {
        entry.opener.retireKey(id);
        entry.keys.delete(id);
      }
    }
    for (const [id, key] of accepted) {
      if (!entry.keys.has(id)) {
        entry.opener.addKey(key);
        entry.keys.set(id, key.toText());
      }
      key.free();
    }
  }

  /** The sealing assignment of `group` now: { keyId, senderId, suite } (null: not a member). */
  assignment(group) {
    const s = this.#raw.sealing(group, this.#now());
    if (!s) return null;
    const { keyId, senderId, suite } = s;
    s.key.free();
    return { keyId, senderId, suite };
  }

  /**
   * The Sealer of `group`: the key and sender id the authority assigned,
   * with the counter store of that assignment. A new assignment (a
   * rotation) gets a new Sealer; null when not a member of the group.
   * @returns {Promise<Sealer|null>}
   */
  async sealer(group) {
    let entry = this.#sealers.get(group);
    if (!entry) {
      entry = this.#newSealer(group);
      if (!entry) return null;
      this.#sealers.set(group, entry);
    }
    return entry.sealer;
  }

  #newSealer(group) {
    const s = this.#raw.sealing(group, this.#now());
    if (!s) return null;
    const { key, keyId, senderId, suite } = s;
    const assignment = `${keyId}/${senderId}/${suite}`;
    const sealer = Sealer.create({ key, senderId, suite, store: this.#counterStore({ group, keyId, senderId }) }).finally(
      () => key.free(),
    );
    sealer.catch(() => {});
    return { assignment, sealer };
  }

  /** Seals `payload` for `topic` in `group` (code 'invalidConfig' when not a member of the group). */
  async seal(group, topic, payload, options) {
    const sealer = await this.sealer(group);
    if (!sealer) throw mqsealError('invalidConfig', `member ${this.memberId} is not in group ${group}`);
    return sealer.seal(topic, payload, options);
  }

  async #refresh() {
    for (const [group, entry] of this.#openers) this.#syncOpener(group, entry);
    for (const [group, entry] of [...this.#sealers]) {
      const a = this.assignment(group);
      if (a && `${a.keyId}/${a.senderId}/${a.suite}` === entry.assignment) continue;
      this.#sealers.delete(group);
      const next = a ? this.#newSealer(group) : null;
      if (next) this.#sealers.set(group, next);
      await entry.sealer.then((s) => s.close()).catch(() => {});
    }
    emit(this, 'keys', this.groups);
  }

  /** The core's MQTT topic-filter matcher for `filters` (what `memberClient` routes group traffic with). */
  topicMatcher(filters) {
    return new PlainTopics(filters);
  }

  /** Stops the timer, closes the sealers and the store (releases its lock). */
  async close() {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#queue;
    for (const entry of this.#sealers.values()) await entry.sealer.then((s) => s.close()).catch(() => {});
    this.#sealers.clear();
    for (const entry of this.#openers.values()) entry.opener.free();
    this.#openers.clear();
    await this.#store.close?.();
    this.#raw.free();
  }
}
