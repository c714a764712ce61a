// Type declarations of the `mqseal` package (browsers, bundlers, Node).

/** Suite names, as in `header.suite` and the test vectors. */
export type SuiteName = 'chacha20poly1305' | 'hmac-sha256';
export declare const SUITES: readonly SuiteName[];
/** Largest number of bytes an envelope adds to a payload (48). */
export declare const MAX_OVERHEAD: number;
/** Counters a sealer reserves per store write by default (256). */
export declare const DEFAULT_RESERVATION_BLOCK: number;

/**
 * Stable error codes: the Rust core's `Error::code()` names.
 * Every error thrown by the package is an `MqsealError` with one of these.
 */
export type ErrorCode =
  | 'truncated' | 'unsupportedVersion' | 'unknownSuite' | 'badVarint' | 'unknownFlags'
  | 'auth'
  | 'unknownKey' | 'duplicate' | 'replay' | 'expired' | 'fromFuture' | 'timestampRequired'
  | 'clockRequired' | 'suiteNotAllowed' | 'tooManySenders' | 'topicNotRewritable'
  | 'topicTooLong' | 'bufferTooSmall' | 'payloadTooLarge' | 'counterExhausted' | 'counterStore' | 'keyringFull'
  | 'duplicateKeyId' | 'keyNotFound' | 'noPrimaryKey' | 'keyIsPrimary' | 'invalidKey'
  | 'weakSharedSecret' | 'selfPairing' | 'invalidConfig' | 'encode' | 'decode' | 'rng';

export interface MqsealError extends Error {
  name: 'MqsealError';
  code: ErrorCode;
  /** For 'unknownKey': the key id in the envelope. */
  keyId?: number;
  /** For 'counterStore' from the JS stores: 'locked', 'corrupt', 'read', 'write', 'unavailable', 'exhausted', 'invalid'. */
  reason?: string;
}

/** Builds an MqsealError (used by the package's JS layer and stores). */
export declare function mqsealError(code: ErrorCode, message: string, extra?: object): MqsealError;

export type Payload = Uint8Array | ArrayBuffer | ArrayBufferView | string;
export declare function toBytes(payload: Payload): Uint8Array;

/** A symmetric key with its key id. */
export declare class Key {
  private constructor();
  /** Parses `mqseal:key:v1:<id>:<base64url>`. Throws 'invalidKey'. */
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
 * Durable counter storage: `reserve(count)` resolves to a range
 * `[start, end)` that is persisted before it is returned and never
 * overlaps a range handed out before.
 */
export interface CounterStore {
  reserve(count: number): Promise<{ start: number | bigint; end: number | bigint }>;
  close?(): void;
}

/** Counters in memory: tests and volatile senders only. */
export declare class MemoryCounterStore implements CounterStore {
  constructor(first?: number | bigint);
  reserve(count: number): Promise<{ start: number | bigint; end: number | bigint }>;
  close(): void;
}

/**
 * IndexedDB counter store for browsers: atomic, durable reservations, an
 * exclusive Web Lock per store name (a second tab gets 'counterStore' with
 * reason 'locked'), and a clock floor against lost storage (private
 * windows, cleared site data).
 */
export declare class IndexedDbCounterStore implements CounterStore {
  constructor(name: string, options?: { database?: string; lock?: boolean; clockFloor?: boolean });
  readonly name: string;
  reserve(count: number): Promise<{ start: number | bigint; end: number | bigint }>;
  close(): void;
}

/** Node only (`mqseal` under Node): same file format as the Rust FileCounterStore. */
export declare class FileCounterStore implements CounterStore {
  constructor(path: string);
  readonly path: string;
  reserve(count: number): Promise<{ start: number | bigint; end: number | bigint }>;
  close(): void;
}

export interface SealerOptions {
  key: Key | string;
  /** This sender's id (u32). One live sealer per (key, sender id). */
  senderId: number;
  suite?: SuiteName;
  store: CounterStore;
  /** Counters reserved per store write (default 256). */
  block?: number;
  /** Add an authenticated timestamp (seconds, from Date.now) to every message. */
  timestamps?: boolean;
}

export interface SealOptions {
  /** Seconds since the epoch, or null for none. Default: now if the sealer adds timestamps. */
  timestamp?: number | null;
}

export declare class Sealer {
  private constructor();
  /** Reserves the first block of counters, then returns the sealer. */
  static create(options: SealerOptions): Promise<Sealer>;
  readonly senderId: number;
  readonly keyId: number;
  readonly suite: SuiteName;
  /** 64-bit counter of the next message. */
  readonly nextCounter: bigint;
  readonly remaining: number;
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
  /** Seconds since the epoch, when the sender included one. */
  timestamp: number | null;
}

export interface OpenedMessage {
  topic: string;
  payload: Uint8Array;
  header: Header;
}

export interface OpenerOptions {
  keys?: (Key | string)[];
  /** Replay window width, 1 to 256 (default 128). */
  window?: number;
  /** Reject timestamps older than this (seconds), and messages without one. */
  maxAge?: number | null;
  /** Reject timestamps further ahead than this (seconds). */
  maxSkew?: number | null;
  requireTimestamps?: boolean;
  suites?: SuiteName[];
  /** What to do when 256 senders are tracked (default 'rejectNew'). */
  eviction?: 'rejectNew' | 'leastRecentlyUsed';
  /** A bridge moved messages from `sealed` prefix to `received` prefix. */
  topicRewrite?: { received: string; sealed: string };
  /** Seconds since the epoch (default from Date.now). */
  clock?: () => number;
}

export declare class Opener {
  constructor(options?: OpenerOptions);
  addKey(key: Key | string): void;
  retireKey(keyId: number): void;
  readonly trackedSenders: number;
  /** Opens and verifies; throws an MqsealError on any rejection. `now: null` means no clock. */
  open(topic: string, envelope: Uint8Array | ArrayBuffer, options?: { now?: number | null }): OpenedMessage;
  free(): void;
}
