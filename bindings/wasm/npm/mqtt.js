// MQTT.js helper: seals on publish, opens on receive. It only moves bytes
// between an MQTT.js client and a Sealer / Opener from the `mqseal`
// package; it imports neither (pass them in), so it works with the browser
// and the Node entry alike.
//
//   import mqtt from 'mqtt';
//   import { sealClient } from 'mqseal/mqtt';
//   const sealed = sealClient(mqtt.connect('ws://broker:8080'), { sealer, opener });
//   sealed.on('message', (topic, payload, header) => ...);   // verified only
//   sealed.on('rejected', (topic, error) => ...);            // error.code: 'auth', 'replay', ...
//   await sealed.subscribe('plant/#');
//
// Plain topics: every topic is sealed unless allowlisted, the rule of every
// mqseal adapter. Pass `plainTopics: new PlainTopics(['$SYS/#'])` (from
// `mqseal`): messages on those topics are emitted as 'plain', unverified;
// a plain payload on any other topic does not open and is 'rejected'.
//   await sealed.publish('plant/cmd', 'start');
//
// MQTT 5 topic aliases: the seal binds the full topic, never an alias. A
// publish with `properties.topicAlias` and a topic registers the alias on
// this connection; a publish with the alias and an empty topic is sealed
// for the topic registered last with that alias (as the rumqttc adapter
// does). An alias this connection never registered is an error (code
// 'unknownTopicAlias') and nothing is sealed. Aliases live as long as one
// network connection: the table is cleared when the connection closes.
// Incoming aliases are resolved by MQTT.js itself before 'message'.

import { Evented, emit } from './events.js';

function helperError(code, message) {
  const err = new Error(message);
  err.name = 'MqsealError';
  err.code = code;
  return err;
}

// MQTT.js on Node wants a Buffer for binary payloads; in browsers its
// bundled Buffer polyfill accepts a Uint8Array.
function wireBytes(bytes) {
  const B = globalThis.Buffer;
  return B ? B.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
}

// Outgoing topic alias -> topic, per MQTT.js client (shared by every
// SealedClient over it: aliases belong to the connection), cleared when
// the connection closes.
const aliasTables = new WeakMap();
function aliasTable(client) {
  let table = aliasTables.get(client);
  if (!table) {
    table = new Map();
    aliasTables.set(client, table);
    client.on('close', () => table.clear());
  }
  return table;
}

/**
 * An MQTT.js client that seals what it publishes and opens what it receives.
 *
 * Events (`on(event, fn)`): 'message' (topic, payload: Uint8Array, header,
 * packet) for verified messages only; 'rejected' (topic, error, packet) with
 * `error.code` ('auth', 'duplicate', 'replay', 'unknownKey', ...); 'plain'
 * (topic, payload, packet) on the allowlisted plain topics.
 */
export class SealedClient extends Evented {
  #client;
  #sealer;
  #opener;
  #plainTopics;
  #onMessage;
  #aliases;

  /**
   * @param {import('mqtt').MqttClient} client  a connected or connecting MQTT.js client (4.x or 5.x)
   * @param {object} options
   * @param {import('mqseal').Sealer} [options.sealer]  needed to publish
   * @param {import('mqseal').Opener} [options.opener]  needed to receive
   * @param {import('mqseal').PlainTopics} [options.plainTopics]  the topics on which plain payloads are
   *   allowed (default: none, every topic is sealed); messages there are emitted as 'plain', unverified
   */
  constructor(client, options) {
    super();
    const opts = options ?? {};
    const { sealer, opener, plainTopics } = opts;
    if (!client || typeof client.publish !== 'function' || typeof client.on !== 'function') {
      throw helperError('invalidConfig', 'sealClient needs an MQTT.js client');
    }
    if ('filter' in opts) {
      // An earlier `filter(topic)` option said which topics are sealed,
      // the opposite of this allowlist: refused, never silently ignored.
      throw helperError('invalidConfig', "the 'filter' option is gone: pass plainTopics: new PlainTopics([...filters])");
    }
    if (plainTopics != null && typeof plainTopics.allows !== 'function') {
      throw helperError('invalidConfig', "plainTopics must be a PlainTopics from 'mqseal' (new PlainTopics([...filters]))");
    }
    this.#client = client;
    this.#sealer = sealer ?? null;
    this.#opener = opener ?? null;
    this.#plainTopics = plainTopics ?? null;
    this.#onMessage = (topic, payload, packet) => this.#receive(topic, payload, packet);
    this.#aliases = aliasTable(client);
    client.on('message', this.#onMessage);
  }

  /** The wrapped MQTT.js client (connect, close, error events, ...). */
  get client() {
    return this.#client;
  }

  /** The sealer used by publish (may be set later, e.g. once its store is ready). */
  get sealer() {
    return this.#sealer;
  }
  set sealer(sealer) {
    this.#sealer = sealer ?? null;
  }

  /** The opener used for incoming messages. */
  get opener() {
    return this.#opener;
  }
  set opener(opener) {
    this.#opener = opener ?? null;
  }

  #receive(topic, payload, packet) {
    if (this.#plainTopics?.allows(topic)) {
      emit(this, 'plain', topic, payload, packet);
      return;
    }
    if (!this.#opener) {
      emit(this, 'rejected', topic, helperError('invalidConfig', 'no opener configured'), packet);
      return;
    }
    let msg;
    try {
      msg = this.#opener.open(topic, payload);
    } catch (e) {
      emit(this, 'rejected', topic, e, packet);
      return;
    }
    emit(this, 'message', topic, msg.payload, msg.header, packet);
  }

  /**
   * The topic a publish is sealed for: `topic`, or, for an MQTT 5 publish
   * with a topic alias and an empty topic, the topic this connection
   * registered last with that alias.
   */
  #boundTopic(topic, options) {
    const alias = options?.properties?.topicAlias;
    if (alias === undefined || alias === null) return topic;
    if (topic !== '') {
      this.#aliases.set(alias, topic);
      return topic;
    }
    const bound = this.#aliases.get(alias);
    if (bound === undefined) {
      throw helperError('unknownTopicAlias', `unknown MQTT 5 topic alias ${alias}: publish it once with its topic first`);
    }
    return bound;
  }

  /** Seals `payload` for `topic` (topic alias resolved) and publishes the envelope. */
  async publish(topic, payload, options = {}) {
    if (!this.#sealer) throw helperError('invalidConfig', 'no sealer configured: cannot publish');
    const t = String(topic);
    const envelope = await this.#sealer.seal(this.#boundTopic(t, options), payload);
    return settle((cb) => this.#client.publish(t, wireBytes(envelope), options, cb));
  }

  /** Subscribes; resolves with the granted subscriptions. */
  subscribe(topics, options = {}) {
    return settle((cb) => this.#client.subscribe(topics, options, cb));
  }

  unsubscribe(topics, options = {}) {
    return settle((cb) => this.#client.unsubscribe(topics, options, cb));
  }

  /** Stops listening and ends the MQTT.js client. */
  async end(force = false) {
    this.#client.removeListener('message', this.#onMessage);
    await settle((cb) => this.#client.end(force, {}, cb));
  }
}

// MQTT.js's callback API, which 4.x and 5.x share (5.x's *Async methods
// are these callbacks in a promise): resolves with the callback's result.
function settle(call) {
  return new Promise((resolve, reject) => {
    call((err, result) => (err ? reject(err) : resolve(result)));
  });
}

/** `new SealedClient(client, options)`. */
export function sealClient(client, options) {
  return new SealedClient(client, options);
}

const DELIVER = Symbol('MemberGroup.deliver');

/**
 * A fleet member on an MQTT.js client (docs/PROTOCOL.md section 14): subscribes to the member's
 * control topic (QoS 1), hands every control message to `member.handle` (which persists the new
 * state before the ack is published here, QoS 1, not retained, and before any key changes), skips
 * empty payloads (a deleted retained message), and routes group traffic to `group(name)` wrappers
 * that open it with the member's current keys and seal with its assigned key and sender id.
 *
 *   const mc = memberClient(mqtt.connect(url), member);
 *   mc.on('applied', ({ epoch }) => ...).on('controlRejected', (error) => ...);  // error.code, error.reason
 *   await mc.start();
 *   const telemetry = mc.group('telemetry');
 *   telemetry.on('message', (topic, payload, header) => ...);
 *   await telemetry.subscribe('plant/#');
 *
 * Events (`on(event, fn)`): 'applied' ({ epoch, wakeAt, ack }); 'controlRejected' (error, topic,
 * packet) for a control message the core refused (error.code, error.reason for 'invalidControl')
 * or whose state could not be persisted; 'controlCleared' (topic) for an empty retained payload.
 */
export class MemberClient extends Evented {
  #client;
  #member;
  #groups = new Map();
  #onMessage;
  #publishAck;

  constructor(client, member) {
    super();
    if (!client || typeof client.publish !== 'function' || typeof client.on !== 'function') {
      throw helperError('invalidConfig', 'memberClient needs an MQTT.js client');
    }
    if (!member || typeof member.handle !== 'function' || typeof member.controlTopic !== 'string') {
      throw helperError('invalidConfig', "memberClient needs a Member from 'mqseal' (await Member.create({...}))");
    }
    this.#client = client;
    this.#member = member;
    this.#publishAck = (topic, ack) => settle((cb) => client.publish(topic, wireBytes(ack), { qos: 1, retain: false }, cb));
    this.#onMessage = (topic, payload, packet) => this.#receive(topic, payload, packet);
    client.on('message', this.#onMessage);
  }

  get client() {
    return this.#client;
  }
  get member() {
    return this.#member;
  }

  /** Subscribes to the control topic (QoS 1); the retained state arrives then. */
  start() {
    return settle((cb) => this.#client.subscribe(this.#member.controlTopic, { qos: 1 }, cb));
  }

  #receive(topic, payload, packet) {
    if (topic === this.#member.controlTopic) {
      if (payload.length === 0) {
        emit(this, 'controlCleared', topic);
        return;
      }
      this.#member.handle(topic, payload, { publishAck: this.#publishAck }).then(
        (r) => emit(this, 'applied', r),
        (e) => emit(this, 'controlRejected', e, topic, packet),
      );
      return;
    }
    for (const g of this.#groups.values()) g[DELIVER](topic, payload, packet);
  }

  /** The wrapper of one group's traffic (one per name). */
  group(name) {
    let g = this.#groups.get(name);
    if (!g) {
      g = new MemberGroup(this.#client, this.#member, String(name));
      this.#groups.set(name, g);
    }
    return g;
  }

  /** Stops listening and ends the MQTT.js client (the member stays open: close it yourself). */
  async end(force = false) {
    this.#client.removeListener('message', this.#onMessage);
    await settle((cb) => this.#client.end(force, {}, cb));
  }
}

/**
 * One group's traffic of a MemberClient (see `MemberClient.group`).
 *
 * Events (`on(event, fn)`): 'message' (topic, payload, header, packet), verified only; 'rejected'
 * (topic, error, packet).
 */
export class MemberGroup extends Evented {
  #client;
  #member;
  #name;
  #filters = [];
  #matcher = null;

  constructor(client, member, name) {
    super();
    this.#client = client;
    this.#member = member;
    this.#name = name;
  }

  get name() {
    return this.#name;
  }

  /** Subscribes to `filter` (default QoS 1); messages matching it are opened with this group's keys. */
  subscribe(filter, options = { qos: 1 }) {
    const next = [...this.#filters, String(filter)];
    this.#matcher = this.#member.topicMatcher(next);
    this.#filters = next;
    return settle((cb) => this.#client.subscribe(String(filter), options, cb));
  }

  /** Seals with the member's assigned key and sender id for this group, and publishes. */
  async publish(topic, payload, options = {}) {
    const t = String(topic);
    const envelope = await this.#member.seal(this.#name, t, payload);
    return settle((cb) => this.#client.publish(t, wireBytes(envelope), options, cb));
  }

  [DELIVER](topic, payload, packet) {
    if (!this.#matcher?.allows(topic)) return;
    this.#member.open(this.#name, topic, payload).then(
      (msg) => emit(this, 'message', topic, msg.payload, msg.header, packet),
      (e) => emit(this, 'rejected', topic, e, packet),
    );
  }
}

/** `new MemberClient(client, member)`. */
export function memberClient(client, member) {
  return new MemberClient(client, member);
}
