// The README's examples run as written. The fenced blocks after a
// `<!-- readme-test: NAME -->` marker are extracted and run in an
// application directory set up as the README says (`npm init -y`, so
// npm's default "type": "commonjs", then `npm install <the package's npm
// pack tarball> mqtt`):
//   - keys: as keys.mjs, with MQSEAL_KEY set and a group.key file; and
//     with MQSEAL_KEY unset, which must fail with invalidKey;
//   - node: as sensor.mjs against the harness's Mosquitto, with MQTT.js
//     4.x and 5.x, first with the key from MQSEAL_KEY, then from group.key
//     (the counter file carries on); a plain MQTT.js client checks that
//     what crossed the broker was sealed (an envelope this test opens);
//   - browser: as index.html, served from the app directory on localhost
//     and opened in Debian's chromium, against Mosquitto's WebSocket
//     listener; the page must show the verified message it sent, and the
//     wire bytes must be an envelope from its sender id;
//   - node-bundle: the esbuild commands of "Bundling for Node", run in
//     the app directory; the bundle must run alone (dist/ copied away from
//     node_modules), and name the missing .wasm when it is not beside it.
// Relative links and the project's GitHub links in the README must exist.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import mqtt from 'mqtt';
import { chromium } from 'playwright-core';
import { Key, Opener } from 'mqseal';

import { repoRoot, startBroker, tempDir, waitFor } from './harness.mjs';

const pkgDir = fileURLToPath(new URL('../', import.meta.url));
const readme = readFileSync(join(pkgDir, 'README.md'), 'utf8');
const CHROMIUM = process.env.MQSEAL_CHROMIUM || '/usr/bin/chromium';
// The MQTT.js versions of the peer range the Node example runs with (the
// browser example's import map needs 5.x's ES module build).
const MQTT_VERSIONS = ['4.3.8', '5.16.0'];

/** The fenced block after `<!-- readme-test: name ... -->`. */
function snippet(name) {
  const re = new RegExp(`<!-- readme-test: ${name}\\b[^>]*-->\\n\`\`\`(\\w+)\\n([\\s\\S]*?)\\n\`\`\`\\n`);
  const m = re.exec(readme);
  assert.ok(m, `README.md has no block marked readme-test: ${name}`);
  return m[2] + '\n';
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180_000, ...opts });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function node(file, { cwd, env, timeoutMs = 30_000 }) {
  return new Promise((resolvePromise) => {
    const p = spawn(process.execPath, [file], { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

let broker;
let tmp;
let tarball;
const key = Key.generate(1);

/** An application directory as the README sets one up. */
function app(name, mqttVersion) {
  const dir = join(tmp.dir, name);
  mkdirSync(dir);
  run('npm', ['init', '-y'], { cwd: dir });
  assert.equal(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).type ?? 'commonjs', 'commonjs');
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball, `mqtt@${mqttVersion}`], { cwd: dir });
  writeFileSync(join(dir, 'group.key'), `${key.toText()}\n`);
  return dir;
}

/** A plain MQTT.js client collecting what crosses the broker on `filter`. */
async function spy(url, filter) {
  const c = mqtt.connect(url, { reconnectPeriod: 0 });
  const got = [];
  c.on('message', (topic, payload) => got.push({ topic, payload: new Uint8Array(payload) }));
  await c.subscribeAsync(filter, { qos: 1 });
  return { got, end: () => c.endAsync() };
}

before(async () => {
  broker = await startBroker();
  tmp = tempDir('mqseal-readme-');
  tarball = process.env.MQSEAL_TEST_TARBALL;
  if (!tarball) {
    const name = run('npm', ['pack', '--silent', '--pack-destination', tmp.dir], { cwd: pkgDir }).trim().split('\n').pop();
    tarball = join(tmp.dir, name);
  }
  assert.ok(existsSync(tarball), `no package tarball at ${tarball}`);
});

after(async () => {
  await broker?.stop();
  tmp?.remove();
});

test('README links: relative paths and the project GitHub paths exist', () => {
  const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
  assert.ok(links.length > 0);
  for (const link of links) {
    const gh = /^https:\/\/github\.com\/mqseal\/mqseal\/blob\/main\/([^#]+)(?:#(.+))?$/.exec(link);
    let file;
    let anchor;
    if (gh) [, file, anchor] = [null, join(repoRoot, gh[1]), gh[2]];
    else if (/^https?:/.test(link)) continue;
    else if (link.startsWith('#')) [file, anchor] = [join(pkgDir, 'README.md'), link.slice(1)];
    else [file, anchor] = [resolve(pkgDir, link.split('#')[0]), link.split('#')[1]];
    assert.ok(existsSync(file), `README.md links to ${link}: ${file} does not exist`);
    if (anchor) {
      // GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'.
      const slugs = readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => /^#{1,6} /.test(l))
        .map((l) => l.replace(/^#+ /, '').toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-'));
      assert.ok(slugs.includes(anchor), `README.md links to ${link}: no heading #${anchor} in ${file}`);
    }
  }
});

test('README keys block: from MQSEAL_KEY and from group.key; unset variable is invalidKey', async () => {
  const dir = app('keys', MQTT_VERSIONS.at(-1));
  writeFileSync(join(dir, 'keys.mjs'), snippet('keys'));
  const ok = await node('keys.mjs', { cwd: dir, env: { MQSEAL_KEY: key.toText() } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), 'Key(1) Key(1)');
  const unset = await node('keys.mjs', { cwd: dir, env: {} });
  assert.notEqual(unset.code, 0);
  assert.match(unset.stderr, /invalidKey/);
  assert.match(unset.stderr, /got undefined/);
});

for (const version of MQTT_VERSIONS) {
  test(`README Node example runs as written (sensor.mjs, "type": "commonjs", MQTT.js ${version}) through Mosquitto`, async () => {
    const dir = app(`node-mqtt${version}`, version);
    writeFileSync(join(dir, 'sensor.mjs'), snippet('node'));
    const url = `mqtt://127.0.0.1:${broker.mqttPort}`;
    const wire = await spy(url, 'plant/telemetry/#');
    const line = /^verified plant\/telemetry\/line1\/temp 21\.5 (\{.*\})$/m;
    const counters = [];
    try {
      // As the README says to run it (key from the environment), then with the key from group.key.
      for (const env of [{ MQSEAL_KEY: key.toText(), MQTT_URL: url }, { MQTT_URL: url }]) {
        const res = await node('sensor.mjs', { cwd: dir, env });
        assert.equal(res.code, 0, `sensor.mjs failed: ${res.stderr}`);
        const m = line.exec(res.stdout);
        assert.ok(m, `unexpected output: ${res.stdout}\n${res.stderr}`);
        const header = JSON.parse(m[1]);
        assert.deepEqual(Object.keys(header), ['suite', 'keyId', 'senderId', 'counter', 'timestamp']);
        assert.equal(header.senderId, 7);
        assert.equal(header.keyId, 1);
        assert.match(header.counter, /^\d+$/);
        assert.ok(Math.abs(Number(header.timestamp) - Date.now() / 1000) < 60);
        counters.push(BigInt(header.counter));
      }
      assert.ok(counters[1] > counters[0], `the counter file carries on: ${counters}`);
      await waitFor(() => wire.got.length >= 2, 5000, 'the two messages on the wire');
    } finally {
      await wire.end();
    }
    // What crossed the broker is an envelope, not the reading.
    const opener = new Opener({ keys: [key] });
    for (const { topic, payload } of wire.got) {
      assert.notEqual(new TextDecoder().decode(payload), '21.5');
      const msg = opener.open(topic, payload);
      assert.equal(new TextDecoder().decode(msg.payload), '21.5');
      assert.equal(msg.header.senderId, 7);
    }
  });
}

test('README "Bundling for Node": the esbuild commands make a bundle that runs on its own, and says so when the .wasm is missing', async () => {
  const dir = app('bundle', MQTT_VERSIONS.at(-1));
  writeFileSync(join(dir, 'sensor.mjs'), snippet('node'));
  run('bash', ['-euo', 'pipefail', '-c', snippet('node-bundle')], { cwd: dir });
  // dist/ alone, away from node_modules.
  const alone = join(tmp.dir, 'bundle-alone');
  cpSync(join(dir, 'dist'), alone, { recursive: true });
  const env = { MQSEAL_KEY: key.toText(), MQTT_URL: `mqtt://127.0.0.1:${broker.mqttPort}` };
  const res = await node('sensor.mjs', { cwd: alone, env });
  assert.equal(res.code, 0, `the bundle failed: ${res.stderr}`);
  assert.match(res.stdout, /^verified plant\/telemetry\/line1\/temp 21\.5 \{"suite":"chacha20poly1305","keyId":1,"senderId":7,/m);
  rmSync(join(alone, 'wasm'), { recursive: true });
  const missing = await node('sensor.mjs', { cwd: alone, env });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /mqseal: the WebAssembly module is missing at .*bundle-alone\/wasm\/mqseal_wasm_bg\.wasm/);
  assert.match(missing.stderr, /copy node_modules\/mqseal\/wasm\/mqseal_wasm_bg\.wasm/);
});

const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };

/** A static file server for `root` on 127.0.0.1 (what `python3 -m http.server` does). */
function serve(root) {
  const server = createServer((req, res) => {
    const path = normalize(join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
    if (!path.startsWith(root) || !existsSync(path) || !statSync(path).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': MIME[extname(path)] ?? 'application/octet-stream' });
    createReadStream(path).pipe(res);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

test('README browser example runs as written (index.html in chromium, WebSocket listener)', async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/test-parts/20-wasm.sh (it installs Debian's chromium)`);
  const dir = app('browser', MQTT_VERSIONS.at(-1));
  writeFileSync(join(dir, 'index.html'), snippet('browser'));
  const server = await serve(dir);
  const wire = await spy(`mqtt://127.0.0.1:${broker.mqttPort}`, 'plant/cmd');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const url = `http://127.0.0.1:${server.address().port}/index.html#broker=ws://127.0.0.1:${broker.wsPort}&key=${key.toText()}`;
    await page.goto(url);
    const log = await waitFor(
      async () => {
        const text = await page.textContent('#log');
        // Both lines, in either order: the message can come back before publish() resolves.
        const done = /^verified plant\/cmd valve open /m.test(text) && /^sent plant\/cmd$/m.test(text);
        return done || /^error /m.test(text) ? text : null;
      },
      20_000,
      'the page to verify its message',
    );
    assert.doesNotMatch(log, /^error /m, log);
    assert.match(log, /^sent plant\/cmd$/m);
    const header = JSON.parse(/^verified plant\/cmd valve open (\{.*\})$/m.exec(log)[1]);
    assert.equal(header.senderId, 1000);
    assert.deepEqual(errors, []);
    await waitFor(() => wire.got.length >= 1, 5000, 'the page\'s message on the wire');
    const msg = new Opener({ keys: [key] }).open('plant/cmd', wire.got[0].payload);
    assert.equal(new TextDecoder().decode(msg.payload), 'valve open');
    assert.equal(msg.header.senderId, 1000);
  } finally {
    await browser.close();
    await wire.end();
    server.close();
  }
});
