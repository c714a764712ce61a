// The mixed-fleet end-to-end test of issue 12 (run by
// scripts/test-parts/36-fleet.sh): one `mqseal authority serve
// --rotate-every` and 20 members of four kinds on a real Mosquitto (TCP +
// WebSocket listeners on loopback, started here through the npm tests'
// harness):
//   - CLI members (`mqseal sub/pub --member`), 3 subscribers, 6 publishers;
//   - rumqttc members (examples/rumqttc/fleet_member.rs): 2 that publish
//     and subscribe, 1 subscriber, 2 publishers, 2 publishers without a
//     clock (they keep sealing under the old key after a scheduled switch,
//     until their next control state), and one that publishes and
//     subscribes and is revoked during the run;
//   - 2 C sensors (examples/c/sensor.c --member, no clock);
//   - 1 browser member in Debian's chromium (the npm `Member` over
//     `memberClient`, test/pages/member.html).
// Every member is enrolled with `mqseal authority member add` from a key
// pair it made (`mqseal member init`, or `mqseal keygen x25519` for the C
// sensor and the browser). Telemetry (QoS 1) flows while the group rotates
// on schedule at least twice; one member is revoked in the middle.
// Checks: every message a publisher reports sent is received verified
// exactly once by every subscriber (CLI, rumqttc, browser); messages sealed
// under the old key after the switch are accepted during the grace period;
// after the revocation the revoked member opens no message under the new
// keys, and what it seals after the grace period is rejected by all;
// `mqseal authority status` shows every member current at its newest epoch.
// Exits non-zero on any failure.
//
// Environment: MQSEAL_CLI, FLEET_MEMBER (the rumqttc example binary),
// C_SENSOR (examples/c sensor binary), MQSEAL_CHROMIUM (default
// /usr/bin/chromium), FLEET_SECONDS (telemetry, default 75), FLEET_GRACE
// (scheduled rotations' grace, default 20s; 0s makes the test fail: the
// members without a clock are then rejected after each switch),
// FLEET_REVOKE_AT (seconds from the revocation to its switch, default 3; 0:
// at once, which lost a message in one of two runs: a member that got its new
// state first sealed under a key that later receivers did not hold yet).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { repoRoot, sleep, startBroker, tempDir, waitFor } from '../../bindings/wasm/npm/test/harness.mjs';
import { startServer } from '../../examples/dashboard/serve.mjs';

const npm = createRequire(join(repoRoot, 'bindings/wasm/npm/package.json'));
const { chromium } = npm('playwright-core');

const CLI = process.env.MQSEAL_CLI || join(repoRoot, 'target/debug/mqseal');
const RS = process.env.FLEET_MEMBER || join(repoRoot, 'target/debug/examples/fleet-member');
const SENSOR = process.env.C_SENSOR;
const CHROMIUM = process.env.MQSEAL_CHROMIUM || '/usr/bin/chromium';
const SECONDS = Number(process.env.FLEET_SECONDS || 75);
const GRACE = process.env.FLEET_GRACE || '20s';
const EVERY = 15;
// The revocation switches 3 s ahead (`revoke --at +3s`): every member has the
// new key before anyone seals with it. Its grace covers the members without a
// clock until their next control state (the next scheduled hand-out).
// FLEET_REVOKE_AT=0 revokes at once (no --at), to show the messages that loses.
const REVOKE_AT = Number(process.env.FLEET_REVOKE_AT ?? 3);
const REVOKE_GRACE = 15;
const GROUP = 'telemetry';
const INTERVAL_MS = 500;
if (!SENSOR) throw new Error('C_SENSOR: the path of the built examples/c sensor');

const tmp = tempDir('mqseal-fleet-');
const env = { ...process.env, MQSEAL_AUTHORITY_DB: join(tmp.dir, 'authority.db') };
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

function cli(args) {
  const r = spawnSync(CLI, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mqseal ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return r.stdout.trim();
}

/** A child process whose stdout and stderr lines are kept with their arrival time. */
const procs = [];
function start(name, cmd, args) {
  const proc = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const p = { name, proc, lines: [], err: [], exit: null };
  const collect = (into) => {
    let rest = '';
    return (d) => {
      const parts = (rest + d).split('\n');
      rest = parts.pop();
      const t = Date.now();
      for (const line of parts) into.push({ t, line });
    };
  };
  proc.stdout.on('data', collect(p.lines));
  proc.stderr.on('data', collect(p.err));
  p.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve((p.exit = { code, signal }))));
  procs.push(p);
  return p;
}
async function stop(p, signal = 'SIGTERM') {
  if (p.exit === null) p.proc.kill(signal);
  return p.exited;
}
const dump = (p) => `${p.name} stdout:\n${p.lines.map((l) => l.line).join('\n')}\nstderr:\n${p.err.map((l) => l.line).join('\n')}`;

// Verified messages as [time, topic, keyId, senderId, payload]: `V topic key sender payload`
// lines (the CLI's -F and the rumqttc example print the same).
const verifiedOf = (p) =>
  p.lines
    .filter((l) => l.line.startsWith('V '))
    .map((l) => {
      const [, topic, key, sender, ...rest] = l.line.split(' ');
      return { t: l.t, topic, keyId: Number(key), senderId: Number(sender), payload: rest.join(' ') };
    });

let broker;
let server;
let browser;
let serve;
try {
  broker = await startBroker();
  const conn = ['-h', '127.0.0.1', '-p', String(broker.mqttPort)];
  console.log(`mosquitto: mqtt://127.0.0.1:${broker.mqttPort} ws://127.0.0.1:${broker.wsPort}`);

  // ---- the authority and the enrolment of 20 members ----
  const authority = cli(['authority', 'init']);
  const created = cli(['authority', 'group', 'create', GROUP]);
  const keyActivation = new Map([[Number(/key (\d+)/.exec(created)[1]), Math.floor(Date.now() / 1000)]]);
  const kinds = {
    cliSub: ['cli-sub-1', 'cli-sub-2', 'cli-sub-3'],
    cliPub: ['cli-pub-1', 'cli-pub-2', 'cli-pub-3', 'cli-pub-4', 'cli-pub-5', 'cli-pub-6'],
    rsPair: ['rs-pair-1', 'rs-pair-2'],
    rsSub: ['rs-sub-1'],
    rsPub: ['rs-pub-1', 'rs-pub-2'],
    rsNoClock: ['rs-noclock-1', 'rs-noclock-2'],
    sensor: ['c-1', 'c-2'],
    browser: ['browser-1'],
  };
  const REVOKED = 'rs-rev';
  const all = [...Object.values(kinds).flat(), REVOKED];
  if (all.length !== 20) throw new Error(`the fleet has ${all.length} members, not 20`);
  const dirs = {};
  const secrets = {};
  for (const id of all) {
    const dir = join(tmp.dir, id);
    dirs[id] = dir;
    let pub;
    if (kinds.sensor.includes(id) || kinds.browser.includes(id)) {
      // The C sensor's directory of examples/c/sensor.c; the browser's secret goes in its URL.
      mkdirSync(dir);
      pub = cli(['keygen', 'x25519', '-o', join(dir, 'secret')]);
      writeFileSync(join(dir, 'authority.public'), `${authority}\n`);
      writeFileSync(join(dir, 'id'), `${id}\n`);
      secrets[id] = readFileSync(join(dir, 'secret'), 'utf8').trim();
    } else {
      pub = cli(['member', 'init', '--dir', dir, '--id', id, '--authority', authority]);
    }
    cli(['authority', 'member', 'add', '--id', id, '--public', pub, '--group', GROUP]);
  }
  console.log(`enrolled ${all.length} members in ${GROUP}`);

  serve = start('serve', CLI, ['authority', 'serve', ...conn, '--rotate-every', `${EVERY}s`, '--rotate-lead', '5s',
    '--grace', GRACE, '--poll', '1']);
  const rotations = () =>
    serve.lines
      .map((l) => [l.t, /^rotated \S+: key (\d+) at (\d+)$/.exec(l.line)])
      .filter(([, m]) => m)
      .map(([t, m]) => ({ t, keyId: Number(m[1]), at: Number(m[2]) }));
  const status = () =>
    cli(['authority', 'status']).split('\n').map((l) => {
      const [id, ...f] = l.split(' ');
      const kv = Object.fromEntries(f.filter((x) => x.includes('=')).map((x) => x.split('=')));
      return { id, epoch: Number(kv.epoch), acked: Number(kv.acked), state: f.find((x) => !x.includes('=')), line: l };
    });
  const allCurrent = (ids) => {
    const s = status();
    return ids.every((id) => s.some((m) => m.id === id && m.state === 'current' && m.acked === m.epoch && m.epoch > 0));
  };

  // ---- subscribers first (CLI, rumqttc, browser) ----
  const FILTER = 'fleet/#';
  const subs = [];
  for (const id of kinds.cliSub) {
    subs.push(start(id, CLI, ['sub', ...conn, '--member', dirs[id], '--group', GROUP, '-t', FILTER, '-q', '1',
      '-F', 'V %t %K %S %p']));
  }
  const rs = (id, extra) => start(id, RS, ['--dir', dirs[id], '--group', GROUP, '--port', String(broker.mqttPort), ...extra]);
  const count = Math.floor((SECONDS * 1000) / INTERVAL_MS);
  const pubArgs = (id) => ['--publish', `fleet/${id}`, '--count', String(count), '--interval-ms', String(INTERVAL_MS)];
  for (const id of kinds.rsSub) subs.push(rs(id, ['--subscribe', FILTER]));
  // Members that subscribe and publish start publishing once every subscriber is ready.
  const pairs = kinds.rsPair.map((id) => rs(id, ['--subscribe', FILTER, ...pubArgs(id), '--start-on-stdin']));
  subs.push(...pairs);
  const revoked = rs(REVOKED, ['--subscribe', FILTER, ...pubArgs(REVOKED), '--start-on-stdin']);

  server = await startServer(0);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  const page = await (await browser.newContext()).newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const bid = kinds.browser[0];
  const fragment = new URLSearchParams({ broker: `ws://127.0.0.1:${broker.wsPort}`, secret: secrets[bid], authority,
    member: bid, group: GROUP, filter: FILTER, enroll: '1' });
  await page.goto(`http://127.0.0.1:${server.port}/bindings/wasm/npm/test/pages/member.html#${fragment}`);
  await page.waitForFunction(() => window.memberTest && (window.memberTest.ready || window.memberTest.error), null, { timeout: 30_000 });
  const pageState = () => page.evaluate(() => window.memberTest);
  if ((await pageState()).error) throw new Error(`browser member: ${JSON.stringify((await pageState()).error)}`);

  await waitFor(() => allCurrent([...kinds.cliSub, ...kinds.rsSub, ...kinds.rsPair, REVOKED, bid]), 60_000,
    'every subscriber to apply its first state');
  await sleep(1500); // their group subscriptions are acknowledged by now
  console.log('subscribers ready');

  // ---- publishers: CLI (lines on stdin), rumqttc (with and without a clock), C sensors, the browser ----
  const t0 = Date.now();
  for (const p of [...pairs, revoked]) p.proc.stdin.write('start\n');
  const cliPubs = kinds.cliPub.map((id) => {
    const p = start(id, CLI, ['pub', ...conn, '--member', dirs[id], '--group', GROUP, '-t', `fleet/${id}`, '-q', '1', '-l']);
    p.sent = [];
    return p;
  });
  const rsPubs = [...kinds.rsPub.map((id) => rs(id, pubArgs(id))), ...kinds.rsNoClock.map((id) => rs(id, ['--no-clock', ...pubArgs(id)]))];
  const readings = Math.floor((SECONDS * 1000) / 200) - 25;
  const sensors = kinds.sensor.map((id) =>
    start(id, SENSOR, ['--member', dirs[id], '127.0.0.1', String(broker.mqttPort), `fleet/${id}`, String(readings), '600']));
  const browserSent = [];
  let revokeAt = null;
  let seq = 0;
  while (Date.now() - t0 < SECONDS * 1000) {
    seq += 1;
    const line = `${seq} ${Date.now()}`;
    for (const p of cliPubs) {
      p.proc.stdin.write(`${line}\n`);
      p.sent.push(line);
    }
    const text = `${seq} ${Date.now()}`;
    await page.evaluate((t) => window.memberSend('fleet/browser-1', t), text);
    browserSent.push(text);
    if (revokeAt === null && Date.now() - t0 > (SECONDS * 1000) / 2) {
      cli(['authority', 'revoke', REVOKED, ...(REVOKE_AT ? ['--at', `+${REVOKE_AT}s`] : []), '--grace', `${REVOKE_GRACE}s`]);
      revokeAt = Date.now();
      console.log(`revoked ${REVOKED} at ${revokeAt}`);
    }
    await sleep(INTERVAL_MS);
  }
  const t1 = Date.now();
  console.log(`telemetry for ${(t1 - t0) / 1000} s`);

  // ---- drain, then the authority's view while everyone still runs ----
  await waitFor(() => [...pairs, ...rsPubs, revoked].every((p) => p.lines.some((l) => l.line.startsWith('sent '))), 30_000,
    'the rumqttc publishers to have every message acknowledged');
  await sleep(4000);
  const members = all.filter((id) => id !== REVOKED);
  let finalStatus = '';
  const current = await waitFor(() => {
    if (allCurrent(members)) return true;
    finalStatus = status().map((m) => m.line).join('\n');
    return false;
  }, 25_000, 'every member at its newest epoch').catch((e) => (console.log(finalStatus), false));
  const statusLines = status();
  console.log(statusLines.map((m) => m.line).join('\n'));
  check(current, '`mqseal authority status`: every member current (acked its newest epoch)');
  check(statusLines.find((m) => m.id === REVOKED)?.state === 'revoked', `${REVOKED} is revoked`);
  const newestEpoch = Math.max(...statusLines.filter((m) => m.id !== REVOKED).map((m) => m.epoch));
  check(statusLines.filter((m) => m.id !== REVOKED).every((m) => m.epoch === newestEpoch),
    `every member holds the newest epoch ${newestEpoch}`);

  // ---- stop everyone ----
  for (const p of cliPubs) p.proc.stdin.end();
  const cliPubExits = await Promise.all(cliPubs.map((p) => p.exited));
  for (const p of [...sensors, ...pairs, ...rsPubs, revoked, ...subs]) await stop(p);
  const pageFinal = await pageState();
  await stop(serve);

  // ---- what each publisher reports sent ----
  const sent = new Map();
  cliPubs.forEach((p, i) => {
    check(cliPubExits[i].code === 0, `${p.name} exited 0 (every line acknowledged)${cliPubExits[i].code === 0 ? '' : `\n${dump(p)}`}`);
    sent.set(`fleet/${p.name}`, p.sent);
  });
  const seqs = (n) => Array.from({ length: n }, (_, i) => i + 1);
  for (const p of [...pairs, ...rsPubs, revoked]) {
    const m = p.lines.map((l) => /^published (\d+) acked (\d+)$/.exec(l.line)).find(Boolean);
    check(m && Number(m[1]) === count && Number(m[2]) === count, `${p.name} published and had acknowledged ${count}${m ? '' : `\n${dump(p)}`}`);
  }
  // The rumqttc example's payloads are `<seq> <unix ms>`: compared by seq.
  const rsTopics = new Set([...pairs, ...rsPubs].map((p) => `fleet/${p.name}`));
  for (const p of [...pairs, ...rsPubs]) sent.set(`fleet/${p.name}`, seqs(count).map(String));
  for (const p of sensors) {
    const m = p.lines.map((l) => /^published (\d+) sealed readings as a member; done$/.exec(l.line)).find(Boolean);
    check(m && Number(m[1]) === readings && p.exit.code === 0, `${p.name} (C) published ${readings} readings${m ? '' : `\n${dump(p)}`}`);
    sent.set(`fleet/${p.name}`, seqs(readings).map((i) => `reading ${i} temp=21.${(i - 1) % 10}`));
  }
  sent.set(`fleet/${bid}`, browserSent);

  // ---- what each subscriber verified ----
  const received = new Map(subs.map((p) => [p.name, verifiedOf(p)]));
  received.set(bid, pageFinal.messages.map((m) => ({ t: null, topic: m.topic, keyId: m.keyId, senderId: m.senderId, payload: m.text })));
  check(pageErrors.length === 0, `no page errors in the browser member ${JSON.stringify(pageErrors)}`);

  // Every message reported sent, verified exactly once, and nothing else (revoked member apart).
  const payloadSeq = (payload) => Number(payload.split(' ')[0]);
  const payloadTime = (payload) => Number(payload.split(' ')[1]);
  const revokedTopic = `fleet/${REVOKED}`;
  let total = 0;
  for (const [sub, msgs] of received) {
    const byTopic = new Map();
    for (const m of msgs) {
      if (!byTopic.has(m.topic)) byTopic.set(m.topic, new Map());
      const c = byTopic.get(m.topic);
      const k = rsTopics.has(m.topic) ? m.payload.split(' ')[0] : m.payload;
      c.set(k, (c.get(k) ?? 0) + 1);
    }
    for (const [topic, want] of sent) {
      const got = byTopic.get(topic) ?? new Map();
      const missing = want.filter((w) => got.get(w) !== 1);
      const extra = [...got.keys()].filter((g) => !want.includes(g));
      total += want.length - missing.length;
      check(missing.length === 0 && extra.length === 0,
        `${sub} verified each of the ${want.length} messages of ${topic} exactly once` +
          (missing.length || extra.length ? ` (missing or duplicated: ${missing.slice(0, 5).join(' | ')}; extra: ${extra.slice(0, 5).join(' | ')})` : ''));
    }
    // The revoked member: what it sealed before the revocation is received once; what it
    // sealed after the grace period of the revocation (plus a second of margin) by none.
    const got = byTopic.get(revokedTopic) ?? new Map();
    const before = [...got.keys()].filter((g) => payloadTime(g) < revokeAt - 1000).map(payloadSeq).sort((a, b) => a - b);
    const late = [...got.keys()].filter((g) => payloadTime(g) > revokeAt + (REVOKE_AT + REVOKE_GRACE + 1) * 1000);
    check(before.length > 0 && before.every((n, i) => n === i + 1) && late.length === 0 && [...got.values()].every((c) => c === 1),
      `${sub}: ${REVOKED}'s messages 1..${before.length} from before its revocation verified once, none sealed after the grace period (${late.length})`);
  }
  console.log(`${total} verified deliveries checked`);
  // The revoked member's late messages are reported rejected by the others.
  const rejectedRevoked = [...kinds.cliSub.map((id) => subs.find((p) => p.name === id).err.filter((l) => l.line.includes(`rejected message on ${revokedTopic}`)).length),
    ...[...kinds.rsSub, ...kinds.rsPair].map((id) => subs.find((p) => p.name === id).lines.filter((l) => l.line.startsWith(`R ${revokedTopic} `)).length),
    pageFinal.groupRejected.filter((r) => r.topic === revokedTopic).length];
  check(rejectedRevoked.every((n) => n > 0), `every subscriber reported ${REVOKED}'s messages after the revocation rejected (${rejectedRevoked.join(',')})`);

  // Rotations: at least two scheduled switches during the telemetry, and the revocation's.
  const rot = rotations();
  for (const r of rot) keyActivation.set(r.keyId, r.at);
  // Key ids count up: the keys above every key made before the revocation are
  // the revocation's and the scheduled ones after it.
  const before = Math.max(...[...keyActivation.keys()].filter((k) => !rot.some((r) => r.keyId === k && r.t > revokeAt)));
  const allKeys = new Set([...received.values()].flat().map((m) => m.keyId));
  const revokeKeys = [...allKeys].filter((k) => k > before);
  for (const k of revokeKeys) if (!keyActivation.has(k)) keyActivation.set(k, Math.floor(revokeAt / 1000) + REVOKE_AT);
  // A key planned before the revocation is withdrawn by it: count the keys that carried traffic.
  const switches = rot.filter((r) => r.at * 1000 > t0 && r.at * 1000 < t1 && allKeys.has(r.keyId));
  console.log(`scheduled rotations: ${JSON.stringify(rot)}`);
  check(switches.length >= 2, `at least two scheduled switches during the telemetry (${switches.length})`);
  const keysSeen = new Set(received.get('cli-sub-1').map((m) => m.keyId));
  check(keysSeen.size >= 4, `traffic under ${keysSeen.size} keys (${[...keysSeen].join(',')}): initial, scheduled and the revocation's`);

  // Old key in the grace period: messages of the members without a clock, sealed
  // under a key whose successor had been active for over a second, verified.
  const superseded = (keyId, t) => [...keyActivation].some(([k, at]) => k > keyId && at * 1000 + 1000 < t);
  const clockless = [...kinds.rsNoClock, ...kinds.sensor].map((id) => `fleet/${id}`);
  const oldKey = [...kinds.cliSub, ...kinds.rsSub, ...kinds.rsPair].map((id) =>
    received.get(id).filter((m) => clockless.includes(m.topic) && superseded(m.keyId, m.t)).length);
  check(oldKey.every((n) => n > 0), `old-key messages accepted during the grace period by each CLI and rumqttc subscriber (${oldKey.join(',')})`);

  // The revoked member opens nothing under the keys made after its revocation.
  const revOpened = verifiedOf(revoked).filter((m) => revokeKeys.includes(m.keyId));
  const revRejected = revoked.lines.filter((l) => l.line.startsWith('R fleet/') && l.t > revokeAt).length;
  const othersNew = received.get('cli-sub-1').filter((m) => revokeKeys.includes(m.keyId)).length;
  check(othersNew > 0 && revOpened.length === 0 && revRejected > 0,
    `${REVOKED} opened none of the ${othersNew} messages under keys ${revokeKeys.join(',')} (it rejected ${revRejected})`);
} catch (e) {
  failures.push(String(e?.stack ?? e));
  console.error(e);
  for (const p of procs) if (p.exit !== null && p.exit.code !== 0 && p.exit.signal === null) console.error(dump(p));
} finally {
  for (const p of procs) if (p.exit === null) p.proc.kill('SIGKILL');
  await browser?.close();
  server?.server.close();
  await broker?.stop();
  tmp.remove();
}
if (failures.length) {
  // Every process's output, for the CI artifacts.
  const logs = join(repoRoot, 'artifacts/fleet');
  mkdirSync(logs, { recursive: true });
  for (const p of procs) writeFileSync(join(logs, `${p.name}.log`), `${dump(p)}\n`);
  console.error(`process logs: ${logs}`);
  console.error(`\nfleet: ${failures.length} check(s) failed:\n${failures.join('\n')}`);
  process.exit(1);
}
console.log('fleet: all checks passed');
