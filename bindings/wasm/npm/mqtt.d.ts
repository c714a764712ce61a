// Type declarations of `mqseal/mqtt`, the MQTT.js helper.
//
// They never import 'mqtt': MQTT.js is a peer dependency, and its types
// are the application's own. `sealClient(client)` takes the application's
// MqttClient (MQTT.js 4.x or 5.x) as a type parameter, so `sealed.client`
// is exactly that type. (An import of 'mqtt' here would resolve next to
// this file: after `npm install <path>`, a symlink, that is the package's
// own development copy of MQTT.js, and a client of another version would
// not type-check.)
import type { Applied, Header, Member, MqsealError, Opener, Payload, PlainTopics, Sealer } from './index.js';

/**
 * What the helper calls on an MQTT.js client: the callback API that
 * MQTT.js 4.x and 5.x share. Any MQTT.js `MqttClient` satisfies it.
 */
export interface MqttClientLike {
  publish(topic: string, message: any, opts: any, callback: (...args: any[]) => void): unknown;
  subscribe(topic: any, opts: any, callback: (...args: any[]) => void): unknown;
  unsubscribe(topic: any, opts: any, callback: (...args: any[]) => void): unknown;
  end(force: boolean, opts: any, callback: (...args: any[]) => void): unknown;
  on(event: any, listener: (...args: any[]) => void): unknown;
  removeListener(event: any, listener: (...args: any[]) => void): unknown;
}

/** The fields of MQTT.js's PUBLISH packet (4.x and 5.x) that 'message' handlers use. */
export interface PublishPacket {
  cmd: 'publish';
  topic: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  messageId?: number;
  properties?: { [property: string]: unknown };
}

/** Publish options, passed to MQTT.js as they are (its IClientPublishOptions). */
export interface PublishOptions {
  qos?: 0 | 1 | 2;
  retain?: boolean;
  dup?: boolean;
  /** MQTT 5 properties; `topicAlias` is resolved before sealing (the seal binds the full topic). */
  properties?: { topicAlias?: number; [property: string]: unknown };
  [option: string]: unknown;
}

/** Subscribe options, passed to MQTT.js as they are (its IClientSubscribeOptions). */
export interface SubscribeOptions {
  qos?: 0 | 1 | 2;
  [option: string]: unknown;
}

export interface SealedClientOptions {
  /** Needed to publish. */
  sealer?: Sealer;
  /** Needed to receive. */
  opener?: Opener;
  /**
   * The topics on which plain payloads are allowed (default: none, every topic is sealed). Messages there
   * are emitted as 'plain', unverified; a plain payload on any other topic is 'rejected'.
   */
  plainTopics?: PlainTopics;
}

export declare class SealedClient<C extends MqttClientLike = MqttClientLike> {
  constructor(client: C, options?: SealedClientOptions);
  /** The application's MQTT.js client, with its own type. */
  readonly client: C;
  /** Used by publish; may be set after construction. */
  sealer: Sealer | null;
  opener: Opener | null;
  on(event: 'message', fn: (topic: string, payload: Uint8Array, header: Header, packet: PublishPacket) => void): this;
  on(event: 'rejected', fn: (topic: string, error: MqsealError, packet: PublishPacket) => void): this;
  on(event: 'plain', fn: (topic: string, payload: Uint8Array, packet: PublishPacket) => void): this;
  off(event: 'message' | 'rejected' | 'plain', fn: (...args: any[]) => void): this;
  /**
   * Seals and publishes; resolves with MQTT.js's result (the packet, or undefined at QoS 0). MQTT 5 topic
   * aliases: a publish with `properties.topicAlias` and a topic registers the alias (per client, until the
   * connection closes); one with the alias and topic '' is sealed for the registered topic; an unregistered
   * alias throws an MqsealError with code 'unknownTopicAlias'.
   */
  publish(topic: string, payload: Payload, options?: PublishOptions): Promise<unknown>;
  /** Resolves with the granted subscriptions, as MQTT.js reports them. */
  subscribe(topics: string | string[], options?: SubscribeOptions): Promise<unknown>;
  unsubscribe(topics: string | string[], options?: object): Promise<unknown>;
  end(force?: boolean): Promise<void>;
}

/** Error codes of the helper itself, besides the core's. */
export type HelperErrorCode = 'unknownTopicAlias' | 'invalidConfig';

export declare function sealClient<C extends MqttClientLike>(client: C, options?: SealedClientOptions): SealedClient<C>;

/** One group's traffic of a MemberClient: opened with the member's current keys, sealed with its assignment. */
export declare class MemberGroup {
  readonly name: string;
  subscribe(filter: string, options?: SubscribeOptions): Promise<unknown>;
  publish(topic: string, payload: Payload, options?: PublishOptions): Promise<unknown>;
  on(event: 'message', fn: (topic: string, payload: Uint8Array, header: Header, packet: PublishPacket) => void): this;
  on(event: 'rejected', fn: (topic: string, error: MqsealError, packet: PublishPacket) => void): this;
  off(event: 'message' | 'rejected', fn: (...args: any[]) => void): this;
}

/**
 * A fleet member on an MQTT.js client: control topic subscribed at QoS 1, control messages applied
 * (persisted before the ack, QoS 1, not retained, is published), empty payloads skipped.
 */
export declare class MemberClient<C extends MqttClientLike = MqttClientLike> {
  constructor(client: C, member: Member);
  readonly client: C;
  readonly member: Member;
  /** Subscribes to the control topic. */
  start(): Promise<unknown>;
  group(name: string): MemberGroup;
  on(event: 'applied', fn: (applied: Applied & { ack: Uint8Array }) => void): this;
  on(event: 'controlRejected', fn: (error: MqsealError, topic: string, packet: PublishPacket) => void): this;
  on(event: 'controlCleared', fn: (topic: string) => void): this;
  off(event: 'applied' | 'controlRejected' | 'controlCleared', fn: (...args: any[]) => void): this;
  end(force?: boolean): Promise<void>;
}

export declare function memberClient<C extends MqttClientLike>(client: C, member: Member): MemberClient<C>;
