// A second writer for the file-store tests, run as a worker_thread or a
// child process (never by itself: it does nothing without its arguments).
//
//   race <path> <key> <count>   wait for "go" (stdin line or the shared
//                               barrier), open a Sealer on the file, seal
//                               <count> messages, report the counters (or
//                               the error) as one JSON line, then hold the
//                               store until "release"
//   hold <path> <key>           open, seal one message, print
//                               {"held":...}, hold until killed
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createInterface } from 'node:readline';

const args = isMainThread ? process.argv.slice(2) : workerData?.args;
if (args && ['race', 'hold'].includes(args[0])) await main(args);

function report(obj) {
  if (isMainThread) process.stdout.write(`${JSON.stringify(obj)}\n`);
  else parentPort.postMessage(obj);
}

function nextCommand() {
  if (!isMainThread) return new Promise((resolve) => parentPort.once('message', resolve));
  if (!nextCommand.lines) {
    nextCommand.lines = [];
    nextCommand.waiters = [];
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (l) => (nextCommand.waiters.shift() ?? ((x) => nextCommand.lines.push(x)))(l.trim()));
    rl.on('close', () => process.exit(0));
  }
  const queued = nextCommand.lines.shift();
  return queued !== undefined ? Promise.resolve(queued) : new Promise((r) => nextCommand.waiters.push(r));
}

async function main([mode, path, keyText, count = '1']) {
  const { FileCounterStore, Sealer } = await import('mqseal');
  if (mode === 'race') {
    if (isMainThread) {
      report({ ready: process.pid });
      await nextCommand(); // "go"
    } else {
      // All workers wake at once on the shared barrier.
      const barrier = new Int32Array(workerData.barrier);
      Atomics.wait(barrier, 0, 0);
    }
  }
  let sealer;
  try {
    sealer = await Sealer.create({ key: keyText, senderId: 7, store: new FileCounterStore(path), block: 4 });
    const counters = [];
    for (let i = 0; i < Number(count); i++) {
      counters.push(String(sealer.nextCounter));
      await sealer.seal('race/topic', `m${i}`);
    }
    if (mode === 'hold') {
      report({ held: process.pid, counters });
      setInterval(() => {}, 1 << 30); // keep running until killed
      await new Promise(() => {});
    }
    report({ ok: true, pid: process.pid, counters });
  } catch (e) {
    report({ ok: false, pid: process.pid, code: e.code, reason: e.reason, holderPid: e.holderPid, message: e.message });
  }
  await nextCommand(); // "release"
  await sealer?.close();
  if (isMainThread) process.exit(0);
}
