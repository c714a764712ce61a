// Shared pieces of the integration tests: a real Mosquitto broker on
// loopback (the one the part script started, from MQSEAL_TEST_MQTT_PORT /
// MQSEAL_TEST_WS_PORT, or one started here on free ports with its own
// config in a temp dir), the `mqseal` CLI as the Rust device side, and
// process helpers. Nothing is mocked; nothing listens beyond 127.0.0.1.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

export function tempDir(prefix = 'mqseal-test-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A temp dir that is removed when test `t` ends, passed or failed. */
export function testTempDir(t, prefix) {
  const tmp = tempDir(prefix);
  t.after(() => tmp.remove());
  return tmp;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

async function waitForPort(port, ms) {
  const deadline = Date.now() + ms;
  const { connect } = await import('node:net');
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The broker: `{ mqttPort, wsPort, stop() }`. Fails with a clear message
 * when Mosquitto is missing (the part script installs it).
 */
export async function startBroker() {
  const envMqtt = Number(process.env.MQSEAL_TEST_MQTT_PORT);
  const envWs = Number(process.env.MQSEAL_TEST_WS_PORT);
  if (envMqtt && envWs) return { mqttPort: envMqtt, wsPort: envWs, stop: async () => {} };

  const bin = which('mosquitto') ?? (existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : null);
  if (!bin) {
    throw new Error('mosquitto is not installed: run scripts/test-parts/20-wasm.sh (it installs it) or apt-get install mosquitto');
  }
  const mqttPort = await freePort();
  const wsPort = await freePort();
  const tmp = tempDir('mqseal-mosquitto-');
  const conf = join(tmp.dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      `listener ${mqttPort} 127.0.0.1`,
      'protocol mqtt',
      'allow_anonymous true',
      `listener ${wsPort} 127.0.0.1`,
      'protocol websockets',
      // Mosquitto 2.0 hands a WebSocket listener's address to libwebsockets
      // only with a socket_domain: without it, it listens on every interface.
      'socket_domain ipv4',
      'allow_anonymous true',
      '',
    ].join('\n'),
  );
  const proc = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  try {
    await waitForPort(mqttPort, 10_000);
    await waitForPort(wsPort, 10_000);
  } catch (e) {
    proc.kill();
    throw new Error(`mosquitto did not start: ${e.message}\n${stderr}`);
  }
  try {
    assertLoopbackListeners(proc.pid, 2);
  } catch (e) {
    proc.kill();
    throw e;
  }
  return {
    mqttPort,
    wsPort,
    stop: async () => {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.once('exit', r)));
      tmp.remove();
    },
  };
}

function isLoopbackHex(hex) {
  // /proc/net/tcp: the address as 32-bit words in host (little-endian) order.
  if (hex.length === 8) return hex.slice(6, 8) === '7F';
  if (hex === '00000000000000000000000001000000') return true; // ::1
  return hex.startsWith('0000000000000000FFFF0000') && hex.slice(30, 32) === '7F'; // ::ffff:127.x
}

/**
 * The listening TCP sockets of process `pid` as `{ hex, port, loopback }`,
 * from its socket inodes (/proc/PID/fd) and /proc/PID/net/tcp{,6}.
 */
export function listeningSockets(pid) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let link;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]);
  }
  const out = [];
  for (const table of ['tcp', 'tcp6']) {
    const lines = readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== '0A' || !inodes.has(f[9])) continue; // 0A: LISTEN
      const [hex, port] = f[1].split(':');
      out.push({ hex, port: parseInt(port, 16), loopback: isLoopbackHex(hex) });
    }
  }
  return out;
}

/**
 * Throws unless process `pid` has at least `min` listening TCP sockets and
 * every one is bound to loopback: a test broker never listens beyond it.
 */
export function assertLoopbackListeners(pid, min = 1) {
  const socks = listeningSockets(pid);
  const bad = socks.filter((s) => !s.loopback);
  if (bad.length) {
    throw new Error(`the test broker (pid ${pid}) listens beyond loopback: ${bad.map((s) => `${s.hex}:${s.port}`).join(', ')}`);
  }
  if (socks.length < min) {
    throw new Error(`the test broker (pid ${pid}) has ${socks.length} listening sockets, expected at least ${min}`);
  }
  return socks;
}

/** Path of the `mqseal` CLI (MQSEAL_CLI, else target/debug/mqseal). */
export function cliPath() {
  const p = process.env.MQSEAL_CLI || join(process.env.CARGO_TARGET_DIR || join(repoRoot, 'target'), 'debug/mqseal');
  if (!existsSync(p)) {
    throw new Error(`the mqseal CLI is not built at ${p}: run \`cargo build -p mqseal-cli\` (the part script does)`);
  }
  return p;
}

/**
 * Runs the CLI; resolves `{ code, stdout, stderr }` when it exits. `input`
 * is written to stdin (then closed) unless `keepStdin`.
 */
export function runCli(args, { input, timeoutMs = 30_000, env } = {}) {
  const proc = spawn(cliPath(), args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr += d));
  if (input !== undefined) proc.stdin.end(input);
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const done = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { proc, done, output: () => ({ stdout, stderr }) };
}

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function waitFor(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}
