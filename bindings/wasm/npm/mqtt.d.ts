// Type declarations of `mqseal/mqtt`, the MQTT.js helper.
import type { Header, MqsealError, Opener, Payload, Sealer } from './index.js';

type MqttClient = import('mqtt').MqttClient;
type IClientPublishOptions = import('mqtt').IClientPublishOptions;
type IClientSubscribeOptions = import('mqtt').IClientSubscribeOptions;
type Packet = import('mqtt').Packet;

export interface SealedClientOptions {
  /** Needed to publish. */
  sealer?: Sealer;
  /** Needed to receive. */
  opener?: Opener;
  /** Which incoming topics are sealed (default: all). Others are emitted as 'plain'. */
  filter?: (topic: string) => boolean;
}

export declare class SealedClient {
  constructor(client: MqttClient, options?: SealedClientOptions);
  readonly client: MqttClient;
  /** Used by publish; may be set after construction. */
  sealer: Sealer | null;
  opener: Opener | null;
  on(event: 'message', fn: (topic: string, payload: Uint8Array, header: Header, packet: Packet) => void): this;
  on(event: 'rejected', fn: (topic: string, error: MqsealError, packet: Packet) => void): this;
  on(event: 'plain', fn: (topic: string, payload: Uint8Array, packet: Packet) => void): this;
  off(event: string, fn: (...args: any[]) => void): this;
  /**
   * Seals and publishes. MQTT 5 topic aliases: a publish with `properties.topicAlias` and a topic registers
   * the alias (per client, until the connection closes); one with the alias and topic '' is sealed for the
   * registered topic; an unregistered alias throws an MqsealError with code 'unknownTopicAlias'.
   */
  publish(topic: string, payload: Payload, options?: IClientPublishOptions): Promise<Packet | undefined>;
  subscribe(topics: string | string[], options?: IClientSubscribeOptions): Promise<unknown>;
  unsubscribe(topics: string | string[], options?: object): Promise<unknown>;
  end(force?: boolean): Promise<void>;
}

/** Error codes of the helper itself, besides the core's. */
export type HelperErrorCode = 'unknownTopicAlias' | 'invalidConfig';

export declare function sealClient(client: MqttClient, options?: SealedClientOptions): SealedClient;
