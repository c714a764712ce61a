// Type declarations of the `mqseal` package (browsers, bundlers, Node).

/** Suite names, as in `header.suite` and the test vectors. */
export type SuiteName = 'chacha20poly1305' | 'hmac-sha256';
export declare const SUITES: readonly SuiteName[];
/** Largest number of bytes an envelope adds to a payload (48). */
export declare const MAX_OVERHEAD: number;
/** Counters a sealer reserves per store write by default: the core's DEFAULT_RESERVATION_BLOCK (1024). */
export declare const DEFAULT_RESERVATION_BLOCK: number;
/** Bytes of a replay-state record of `Opener.snapshot()` without gaps (the core's SenderSnapshot: 52; 16 more per gap). */
export declare const SNAPSHOT_RECORD_LEN: number;
/** The core's clock floor for a Unix time in ms (`unixMillis * 1024`; default now). */
export declare function clockFloor(unixMillis?: number): bigint;

/**
 * Stable error codes: the Rust core's `Error::code()` names.
 * Every error thrown by the package is an `MqsealError` with one of these.
 */
export type ErrorCode =
  | 'truncated' | 'unsupportedVersion' | 'unknownSuite' | 'badVarint' | 'unknownFlags'
  | 'auth'
  | 'unknownKey' | 'duplicate' | 'replay' | 'expired' | 'fromFuture' | 'timestampRequired'
  | 'clockRequired' | 'suiteNotAllowed' | 'tooManySenders' | 'topicNotRewritable'
  | 'topicTooLong' | 'invalidTopic' | 'invalidFilter' | 'invalidSnapshot' | 'bufferTooSmall' | 'payloadTooLarge' | 'counterExhausted' | 'counterStore' | 'keyringFull'
  | 'duplicateKeyId' | 'keyNotFound' | 'noPrimaryKey' | 'keyIsPrimary' | 'invalidKey'
  | 'weakSharedSecret' | 'selfPairing' | 'invalidConfig' | 'encode' | 'decode' | 'rng'
  | 'staleEpoch' | 'invalidControl';

export interface MqsealError extends Error {
  name: 'MqsealError';
  code: ErrorCode;
  /** For 'unknownKey': the key id in the envelope. */
  keyId?: number;
  /**
   * For 'counterStore': the core's StoreError code ('read', 'write', 'corrupt', 'missing', 'conflict',
   * 'locked', 'notGranted', and 'leaseLost', which only Redis sender-id leases give and JS has none of)
   * or, from the JS stores only, 'unavailable' (no IndexedDB, no flock) or 'invalid'.
   * For 'invalidControl': the core's ControlError code (ControlErrorReason).
   */
  reason?: 'read' | 'write' | 'corrupt' | 'missing' | 'conflict' | 'locked' | 'notGranted' | 'leaseLost' | 'unavailable' | 'invalid'
    | ControlErrorReason;
  /** For reason 'locked' from FileCounterStore: the pid written by the holder, when known. */
  holderPid?: number | null;
  /** For FileCounterStore errors: the counter file. */
  path?: string;
  /** For 'invalidConfig' from the Opener: the option at fault. */
  option?: string;
  /** For 'staleEpoch': the epoch the member holds and the one received. */
  held?: number | bigint;
  received?: number | bigint;
}

/**
 * The reason of an 'invalidControl' error (`error.reason`): the core's ControlError codes
 * (docs/PROTOCOL.md 14.6).
 */
export type ControlErrorReason =
  | 'wrongTopic' | 'wrongSender' | 'malformed' | 'unsupportedFormat' | 'tooManyGroups' | 'tooManyKeys'
  | 'badName' | 'wrongMember' | 'zeroEpoch' | 'duplicateGroup' | 'duplicateKeyId' | 'badSuite'
  | 'endBeforeActivation' | 'sealKeyMissing' | 'badNextKey' | 'badStatus';

/** Builds an MqsealError (used by the package's JS layer and stores). */
export declare function mqsealError(code: ErrorCode, message: string, extra?: object): MqsealError;

export type Payload = Uint8Array | ArrayBuffer | ArrayBufferView | string;
export declare function toBytes(payload: Payload): Uint8Array;

/** A symmetric key with its key id. */
/**
 * The plain-topic rule of every mqseal adapter: every topic is sealed unless
 * it matches one of these MQTT topic filters (`+` one level, `#` the rest; a
 * `$` topic such as `$SYS/...` only by a filter naming its first level,
 * `$SYS/#`). Pass it as the `plainTopics` option of `mqseal/mqtt`.
 */
export declare class PlainTopics {
  /** Throws 'invalidFilter' for anything but an array of valid MQTT topic filters. */
  constructor(filters: readonly string[]);
  /** Whether a plain (unsealed) payload is allowed on `topic`. */
  allows(topic: string): boolean;
  free(): void;
}

export declare class Key {
  private constructor();
  /**
   * Parses `mqseal:key:v1:<id>:<base64url>` (surrounding whitespace, such as
   * a key file's final newline, is ignored). Throws 'invalidKey', also for a
   * value that is not a string (an unset environment variable).
   */
  static fromText(text: string): Key;
  /** A key from 32 bytes of key material. Throws 'invalidKey'. */
  static fromBytes(id: number, bytes: Uint8Array): Key;
  /** A fresh random key (crypto.getRandomValues). Throws 'rng'. */
  static generate(id: number): Key;
  readonly id: number;
  /** The text form (the secret). */
  toText(): string;
  /** `Key(<id>)`, never the secret. */
  toString(): string;
  free(): void;
}

/** An X25519 public key (a peer's). */
export declare class PublicKey {
  private constructor();
  /** Parses `mqseal:x25519-public:v1:<base64url>`. Throws 'invalidKey'. */
  static fromText(text: string): PublicKey;
  /** The canonical text form. */
  toText(): string;
  free(): void;
}

/** A static X25519 key pair, for pairwise keys. */
export declare class StaticKeyPair {
  private constructor();
  static fromSecretText(text: string): StaticKeyPair;
  static fromSecretBytes(bytes: Uint8Array): StaticKeyPair;
  static generate(): StaticKeyPair;
  /** `mqseal:x25519-public:v1:<base64url>`, to give to peers. */
  readonly publicKey: string;
  secretText(): string;
  /** Throws 'invalidKey', 'weakSharedSecret', 'selfPairing'. */
  pairwise(peerPublicKey: string, keyId: number): PairwiseKeys;
  free(): void;
}

export declare class PairwiseKeys {
  private constructor();
  /** Seals messages to the peer. */
  readonly send: Key;
  /** Opens messages from the peer. */
  readonly recv: Key;
  free(): void;
}

/**
 * A counter store: a driver of the core's counter primitive. The sealer
 * asks the core which reservation to persist; the store persists it as a
 * compare-and-swap; only then does the core grant the counters. A store
 * never decides which counters may be used.
 */
export interface CounterStore {
  /** Takes the store (its lock) and reads the stored limit; null when it holds no state. */
  open(): Promise<bigint | number | null>;
  /**
   * Durably replaces `current` by `limit`. Must fail (an MqsealError with code 'counterStore',
   * reason 'conflict') and write nothing when the store does not hold `current`.
   */
  swap(current: bigint | null, limit: bigint): Promise<void>;
  /** Start at or above the core's clock floor; a store with no state is then accepted. */
  readonly clockFloor?: boolean;
  /** Names the store in messages. */
  readonly name?: string;
  close?(): void | Promise<void>;
}

/** Counters in memory: tests and volatile senders only. `first` null: no state. */
export declare class MemoryCounterStore implements CounterStore {
  constructor(first?: number | bigint | null, options?: { clockFloor?: boolean });
  readonly name: string;
  readonly clockFloor: boolean;
  readonly stored: bigint | null;
  open(): Promise<bigint | null>;
  swap(current: bigint | null, limit: bigint): Promise<void>;
  close(): void;
}

/**
 * IndexedDB counter store for browsers: durable compare-and-swap
 * transactions, an exclusive Web Lock per store name (a second tab gets
 * 'counterStore' with reason 'locked'). A name with no record is refused
 * (reason 'missing') unless `create` (a new sender; an existing record is
 * a 'conflict') or `clockFloor` (start at or above Date.now() * 1024;
 * costs 5 to 7 bytes of counter varint per message).
 */
export declare class IndexedDbCounterStore implements CounterStore {
  constructor(name: string, options?: { database?: string; lock?: boolean; create?: boolean; clockFloor?: boolean });
  readonly name: string;
  readonly clockFloor: boolean;
  open(): Promise<bigint | null>;
  swap(current: bigint | null, limit: bigint): Promise<void>;
  close(): void;
}

/**
 * Node only (`mqseal` under Node): same file, format and lock as the Rust
 * FileCounterStore. Holds an exclusive flock(2) on `<path>.lock` from
 * open() to close() (needs flock(1) on PATH: util-linux or busybox); a
 * second holder (thread, process, Rust) gets reason 'locked' with
 * `holderPid`. Every swap is a compare-and-swap against the file. A missing
 * file is refused (reason 'missing') unless `create` (a new sender; an
 * existing file is a 'conflict') or `clockFloor`.
 */
export declare class FileCounterStore implements CounterStore {
  constructor(path: string, options?: { create?: boolean; clockFloor?: boolean });
  readonly path: string;
  readonly name: string;
  readonly clockFloor: boolean;
  open(): Promise<bigint | null>;
  swap(current: bigint | null, limit: bigint): Promise<void>;
  /** Resolves once the lock is released. */
  close(): Promise<void>;
}

export interface SealerOptions {
  key: Key | string;
  /** This sender's id (u32). One live sealer per (key, sender id). */
  senderId: number;
  suite?: SuiteName;
  store: CounterStore;
  /** Counters reserved per store write (default DEFAULT_RESERVATION_BLOCK, 1024). */
  block?: number;
  /** Add an authenticated timestamp (seconds, from Date.now) to every message. */
  timestamps?: boolean;
}

export interface SealOptions {
  /** Seconds since the epoch (number or bigint), or null for none. Default: now if the sealer adds timestamps. */
  timestamp?: number | bigint | null;
}

export declare class Sealer {
  private constructor();
  /** Opens the store, persists the first reservation, then returns the sealer. */
  static create(options: SealerOptions): Promise<Sealer>;
  readonly senderId: number;
  readonly keyId: number;
  readonly suite: SuiteName;
  /** 64-bit counter of the next message. */
  readonly nextCounter: bigint;
  /** Counters granted by the core and not used yet. */
  readonly remaining: number;
  /** End of the granted range (exclusive). */
  readonly grantedLimit: bigint;
  /** Seals; waits for a reservation when no counter is left. */
  seal(topic: string, payload: Payload, options?: SealOptions): Promise<Uint8Array>;
  /** Seals now; throws 'counterStore' when no reserved counter is left. */
  sealSync(topic: string, payload: Payload, options?: SealOptions): Uint8Array;
  rotateKey(key: Key | string): void;
  close(): Promise<void>;
}

export interface Header {
  suite: SuiteName;
  keyId: number;
  senderId: number;
  /** 64-bit counter. */
  counter: bigint;
  /** Seconds since the epoch, when the sender included one (a bigint from 2^53 on). */
  timestamp: number | bigint | null;
  /**
   * The JSON form (`JSON.stringify(header)` calls it; not enumerable): the
   * same fields, `counter` and `timestamp` as decimal strings.
   */
  toJSON(): HeaderJSON;
}

/** `header.toJSON()`: bigints as decimal strings, so `JSON.stringify` works. */
export interface HeaderJSON {
  suite: SuiteName;
  keyId: number;
  senderId: number;
  /** The 64-bit counter in decimal. */
  counter: string;
  /** The timestamp in decimal, or null when the message has none. */
  timestamp: string | null;
}

export interface OpenedMessage {
  topic: string;
  payload: Uint8Array;
  header: Header;
}

/** The core's OpenerConfig, field for field (same defaults; validated by the core). */
export interface OpenerConfig {
  /** Replay window width, 1 to 256 (default 128). */
  window?: number;
  /** Gap budget per sender, 0 to 4 (default 4): ranges of never-accepted counters kept below the window, so late genuine messages are accepted once; 0 is the plain bitmap window. */
  gaps?: number;
  /** Reject timestamps older than this (seconds), and messages without one. Implies maxSkew min(maxAge, 300) when none is set. */
  maxAge?: number | bigint | null;
  /** Reject timestamps further ahead than this (seconds). */
  maxSkew?: number | bigint | null;
  /** Reject messages without a timestamp (default false). */
  requireTimestamp?: boolean;
  /** Suites accepted (default both; not empty). */
  suites?: SuiteName[];
  /** When 64 senders are tracked (default 'rejectNew'); 'leastRecentlyUsed' needs maxAge. */
  eviction?: 'rejectNew' | 'leastRecentlyUsed';
}

export interface OpenerOptions extends OpenerConfig {
  /** Keys accepted (up to 8). */
  keys?: (Key | string)[];
  /** A bridge moved messages from `sealed` prefix to `received` prefix. */
  topicRewrite?: { received: string; sealed: string };
  /** Seconds since the epoch (default from Date.now). */
  clock?: () => number;
}

export declare class Opener {
  /** Throws 'invalidConfig' (with `option`) for an unknown option or one the core refuses. */
  constructor(options?: OpenerOptions);
  /** Replaces the whole policy (absent fields at the defaults); unchanged on error. */
  setConfig(config: OpenerConfig): void;
  /** The policy in force, plus what the core derives from it. */
  readonly config: Required<OpenerConfig> & { effectiveMaxSkew: number | null; timestampsRequired: boolean };
  addKey(key: Key | string): void;
  retireKey(keyId: number): void;
  readonly trackedSenders: number;
  /** Bytes the sender table occupies. */
  readonly senderMemoryBytes: number;
  /** The most senders tracked before `eviction` applies (1,000,000). */
  readonly senderLimit: number;
  /** Replay state of every tracked sender: records of SNAPSHOT_RECORD_LEN bytes plus 16 per gap, one after the other. */
  snapshot(): Uint8Array;
  /**
   * Merges saved records (never rolls a window back). Throws 'invalidSnapshot' (nothing restored)
   * for a bad length or record, 'tooManySenders' when full. Unknown key ids are counted, not restored.
   */
  restore(records: Uint8Array | ArrayBuffer): { restored: number; unknownKey: number };
  /** Forgets one sender's replay state; whether it was tracked. */
  forgetSender(keyId: number, senderId: number): boolean;
  /** Opens and verifies; throws an MqsealError on any rejection. `now: null` means no clock. */
  open(topic: string, envelope: Uint8Array | ArrayBuffer, options?: { now?: number | bigint | null }): OpenedMessage;
  free(): void;
}

/** Where a member keeps its member-state record (docs/PROTOCOL.md 14.9). */
export interface MemberStore {
  /** Takes the store (its lock) and reads the record; null when it holds none. */
  open(): Promise<Uint8Array | null>;
  /** Durably replaces the record; resolves only once it is durable. */
  write(record: Uint8Array): Promise<void>;
  readonly name?: string;
  close?(): void;
}

/** The record in memory: for tests only (a reload forgets the epoch). */
export declare class MemoryMemberStore implements MemberStore {
  constructor(record?: Uint8Array | null);
  readonly name: string;
  /** A copy of the stored record (null: none). */
  readonly record: Uint8Array | null;
  /** Make the next writes fail (code 'counterStore', reason 'write'). */
  failWrites: boolean;
  open(): Promise<Uint8Array | null>;
  write(record: Uint8Array): Promise<void>;
  close(): void;
}

/**
 * The record in IndexedDB (database 'mqseal-member', object store 'members'), one writer under the Web
 * Lock `mqseal-member:<database>/<memberId>` (a second tab: code 'counterStore', reason 'locked'); each
 * write a compare-and-swap transaction with durability 'strict' (a second writer: reason 'conflict').
 */
export declare class IndexedDbMemberStore implements MemberStore {
  constructor(memberId: string, options?: { database?: string; lock?: boolean });
  readonly name: string;
  open(): Promise<Uint8Array | null>;
  write(record: Uint8Array): Promise<void>;
  close(): void;
}

/** The key and sender id a member seals with in a group now. */
export interface Assignment {
  keyId: number;
  senderId: number;
  suite: SuiteName;
}

export interface MemberOptions {
  /** The member's key pair, or its secret's text form mqseal:x25519-secret:v1:... */
  secret: StaticKeyPair | string;
  /** The authority's public key, text form mqseal:x25519-public:v1:... */
  authority: string;
  /** The member id it was enrolled with. */
  memberId: string;
  /** Default 'mqseal/v1/ctl'. */
  controlPrefix?: string;
  /** Default 'mqseal/v1/ack'. */
  ackPrefix?: string;
  /** Default: `new IndexedDbMemberStore(memberId)`. */
  store?: MemberStore;
  /** A newly enrolled member: the store must hold no record (it gets the epoch-0 one). Without it, no record is 'invalidSnapshot'. */
  enroll?: boolean;
  /** The counter store of each sealing assignment (default: IndexedDbCounterStore `member:<id>/<group>/<keyId>/<senderId>` with clockFloor). */
  counterStore?: (assignment: { group: string; keyId: number; senderId: number }) => CounterStore;
  /** Options of the group openers (window, maxAge, ...). */
  opener?: OpenerConfig;
  /** Unix seconds (default from Date.now); null: no clock. */
  clock?: () => number | null;
}

export interface Applied {
  /** The epoch now in use. */
  epoch: number | bigint;
  /** When the next scheduled switch is (Unix seconds; null: none). */
  wakeAt: number | bigint | null;
}

/**
 * A fleet member (docs/PROTOCOL.md section 14) over the core's member agent. `handle` persists the new
 * state before it hands the ack to `publishAck` and before any key changes (14.8).
 */
export declare class Member {
  static create(options: MemberOptions): Promise<Member>;
  readonly memberId: string;
  readonly controlTopic: string;
  readonly ackTopic: string;
  readonly epoch: number | bigint;
  readonly groups: string[];
  /**
   * Handles a control message: null for an empty payload (skipped); rejects with the core's error
   * (code, and `reason` for 'invalidControl') when refused, or the store's when the write failed.
   */
  handle(
    topic: string,
    envelope: Uint8Array | ArrayBuffer,
    options?: { publishAck?: (ackTopic: string, ack: Uint8Array) => Promise<unknown> | unknown },
  ): Promise<(Applied & { ack: Uint8Array }) | null>;
  /** Scheduled switches now (the member's timer calls it at each wake-up). */
  tick(): Promise<{ changed: boolean; wakeAt: number | bigint | null }>;
  /** The live opener of a group (keys kept up to date). */
  opener(group: string): Opener;
  /** Opens group traffic (a message under the next key switches a member without a clock). */
  open(group: string, topic: string, envelope: Uint8Array | ArrayBuffer, options?: { now?: number | null }): Promise<OpenedMessage>;
  assignment(group: string): Assignment | null;
  sealer(group: string): Promise<Sealer | null>;
  /** Seals with the assigned key and sender id ('invalidConfig' when not in the group). */
  seal(group: string, topic: string, payload: Payload, options?: SealOptions): Promise<Uint8Array>;
  /** The core's MQTT topic-filter matcher. */
  topicMatcher(filters: string[]): PlainTopics;
  on(event: 'applied', fn: (applied: Applied) => void): this;
  on(event: 'rejected', fn: (error: MqsealError, topic: string) => void): this;
  on(event: 'keys', fn: (groups: string[]) => void): this;
  on(event: 'error', fn: (error: unknown) => void): this;
  off(event: 'applied' | 'rejected' | 'keys' | 'error', fn: (...args: any[]) => void): this;
  close(): Promise<void>;
}
