// The rig of the browser tests: Debian's chromium driven by playwright-core,
// the repository served by the dashboard's static server on localhost, a
// real Mosquitto, a temp dir, and the Rust CLI and mosquitto_pub as the
// other side of the broker. `browserRig` registers the suite's before/after
// hooks and returns the rig, filled in once `before` has run.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';

import mqtt from 'mqtt';
import { chromium } from 'playwright-core';

import { startServer } from '../../../../examples/dashboard/serve.mjs';
import { runCli, startBroker, tempDir } from './harness.mjs';

const CHROMIUM = process.env.MQSEAL_CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** `{ broker, server, browser, tmp, mosquittoPub, rustPub, spy }` for one test file. */
export function browserRig(tmpPrefix) {
  const rig = {
    broker: null,
    server: null,
    browser: null,
    tmp: null,

    /** `mosquitto_pub` at QoS 1 on `topic` with the payload `args` (`-m …`, `-f …`, `-n`, `-r`). */
    mosquittoPub(topic, args) {
      const r = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(rig.broker.mqttPort), '-q', '1', '-t', topic, ...args]);
      assert.equal(r.status, 0, `mosquitto_pub failed: ${r.stderr}`);
    },

    /** `mqseal pub` seals `lines` on `topic` with key file `kf` as `senderId` (its counter file kept in the temp dir). */
    async rustPub(kf, topic, lines, senderId) {
      const ctr = join(rig.tmp.dir, `ctr-${basename(kf)}-${senderId}`);
      const res = await runCli(
        ['pub', '-L', `mqtt://127.0.0.1:${rig.broker.mqttPort}`, '-t', topic, '-q', '1', '-l', '--key-file', kf, '--sender-id',
          String(senderId), '--counter-file', ctr, ...(existsSync(ctr) ? [] : ['--new-counter-file'])],
        { input: lines.map((l) => `${l}\n`).join('') },
      ).done;
      assert.equal(res.code, 0, `mqseal pub failed: ${res.stderr}`);
    },

    /** A plain MQTT client on the broker's TCP port, connected: the broker's other side. */
    async spy() {
      const client = mqtt.connect(`mqtt://127.0.0.1:${rig.broker.mqttPort}`, { reconnectPeriod: 0 });
      await new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject));
      return client;
    },
  };

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: run scripts/test-parts/20-wasm.sh (it installs Debian's chromium)`);
    }
    rig.broker = await startBroker();
    rig.server = await startServer(0);
    rig.tmp = tempDir(tmpPrefix);
    rig.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  });

  after(async () => {
    await rig.browser?.close();
    rig.server?.server.close();
    await rig.broker?.stop();
    rig.tmp?.remove();
  });

  return rig;
}
