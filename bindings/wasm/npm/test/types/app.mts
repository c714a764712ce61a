// A consumer application of the `mqseal` package, type-checked (tsc
// --strict) by scripts/test-parts/20-wasm.sh against MQTT.js 4.x and 5.x,
// with the package installed as users install it (`npm install <path>`,
// a symlink, and the `npm pack` tarball). The MQTT.js types are the
// application's own: `sealClient(connect(...))` must type-check whichever
// version the application has, and `sealed.client` is that version's type.
import { readFileSync } from 'node:fs';
import { connect, type MqttClient } from 'mqtt';
import {
  Key, Member, MemoryCounterStore, MemoryMemberStore, Opener, PlainTopics, Sealer,
  type Assignment, type ControlErrorReason, type Header, type HeaderJSON, type MqsealError,
} from 'mqseal';
import { memberClient, sealClient, type MemberClient, type MemberGroup, type PublishPacket, type SealedClient } from 'mqseal/mqtt';

const key: Key = Key.fromText(process.env.MQSEAL_KEY ?? readFileSync('group.key', 'utf8'));
const client: MqttClient = connect(process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883');
const sealed: SealedClient<MqttClient> = sealClient(client, { opener: new Opener({ keys: [key], maxAge: 60 }) });
// The application's own client type comes back out.
const same: MqttClient = sealed.client;
same.on('connect', () => console.log('connected'));

sealed.on('message', (topic: string, payload: Uint8Array, header: Header, packet: PublishPacket) => {
  const json: HeaderJSON = header.toJSON();
  const counter: bigint = header.counter;
  const qos: 0 | 1 | 2 = packet.qos;
  console.log(topic, new TextDecoder().decode(payload), json.counter, counter, qos, JSON.stringify(header));
});
sealed.on('rejected', (topic: string, err: MqsealError) => console.warn(topic, err.code, err.option));

export async function main(): Promise<void> {
  const sealer = await Sealer.create({ key, senderId: 7, store: new MemoryCounterStore() });
  sealed.sealer = sealer;
  await sealed.subscribe('plant/#', { qos: 1 });
  await sealed.publish('plant/cmd', 'valve open', { qos: 1, retain: false, properties: { topicAlias: 1 } });
  await sealed.end();
  await sealer.close();
}

// Plain topics: an allowlist checked by the core; everything else is sealed.
const plainTopics = new PlainTopics(['$SYS/#', 'status/+']);
const allowed: boolean = plainTopics.allows('status/dev1');
const withPlain = sealClient(client, { opener: new Opener({ keys: [key] }), plainTopics });
withPlain.on('plain', (topic: string, payload: Uint8Array) => console.log(allowed, topic, payload.length));
// @ts-expect-error: the old `filter(topic)` option is gone.
sealClient(client, { filter: (topic: string) => topic !== 'x' });

// @ts-expect-error: not an MQTT client (the helper's types are not `any`).
sealClient({ publish: 1 });
// @ts-expect-error: header.counter is a bigint, not a number.
export const wrong: number = ({} as Header).counter;

// A dashboard as a fleet member (state in IndexedDB by default; a MemoryMemberStore here).
export async function fleetMember(): Promise<void> {
  const member: Member = await Member.create({
    secret: process.env.MEMBER_SECRET ?? '',
    authority: process.env.AUTHORITY_PUBLIC ?? '',
    memberId: 'dashboard-1',
    store: new MemoryMemberStore(null),
    enroll: true,
    counterStore: () => new MemoryCounterStore(0),
  });
  const mc: MemberClient<MqttClient> = memberClient(client, member);
  mc.on('applied', (a) => console.log(a.epoch, a.wakeAt, a.ack.length));
  mc.on('controlRejected', (e: MqsealError) => {
    const reason: ControlErrorReason | undefined = e.code === 'invalidControl' ? (e.reason as ControlErrorReason) : undefined;
    console.warn(e.code, reason);
  });
  await mc.start();
  const telemetry: MemberGroup = mc.group('telemetry');
  telemetry.on('message', (topic: string, payload: Uint8Array, header: Header) => console.log(topic, payload.length, header.keyId));
  await telemetry.subscribe('plant/#');
  await telemetry.publish('plant/dash', 'hello');
  const a: Assignment | null = member.assignment('telemetry');
  console.log(a?.keyId, a?.senderId, member.epoch, member.controlTopic);
  await member.close();
}
