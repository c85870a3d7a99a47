import { ABORT, CMD, CTRL, CTRL_BYTES } from '../../codegen/wasm-simd/abi.ts';

/**
 * The worker thread's program, as source text (`new Worker(src, { eval: true })`): the CLI is one
 * esbuild bundle, so a worker cannot load a file of its own.
 *
 * A worker sleeps on the BELL word (spinning first, for the next step of a training loop comes
 * within microseconds), and on each ring does what CMD says: RUN calls the loaded module's
 * step(tid), which runs this thread's share of every kernel; LOAD instantiates a module sent on
 * its port; STOP ends the loop. Any exception (a trap in a kernel) is posted on the port, then
 * CTRL.ABORT is set and the barrier word notified, so the other threads leave their barriers at
 * once and the main thread reports the error.
 */
export const WORKER_SOURCE = `
'use strict';
const { workerData, receiveMessageOnPort, parentPort } = require('node:worker_threads');
const { memory, tid, port, spinMs } = workerData;
const i32 = new Int32Array(memory.buffer, 0, ${CTRL_BYTES / 4});
const BELL = ${CTRL.BELL / 4}, CMDW = ${CTRL.CMD / 4}, MODULE = ${CTRL.MODULE / 4}, ABORTW = ${CTRL.ABORT / 4}, ACK = ${CTRL.ACK / 4}, BAR_GEN = ${CTRL.BAR_GEN / 4};
function wait(addr, expected, ms) {
  const r = Atomics.wait(i32, addr >> 2, expected, ms);
  return r === 'ok' ? 0 : r === 'not-equal' ? 1 : 2;
}
const imports = { env: { memory, exp: Math.exp, log: Math.log, wait, mark() {} } };
const instances = new Map();

function fail(err) {
  try {
    port.postMessage({ type: 'error', tid, message: String((err && err.message) || err), stack: err && err.stack });
  } catch {}
  Atomics.compareExchange(i32, ABORTW, ${ABORT.NONE}, ${ABORT.TRAP});
  Atomics.notify(i32, BAR_GEN);
  Atomics.notify(i32, ACK);
}

function receive() {
  // The main thread posts before it rings, so the message is normally there already.
  for (let t = 0; t < 2000; t++) {
    const m = receiveMessageOnPort(port);
    if (m) return m.message;
    Atomics.wait(i32, ACK, Atomics.load(i32, ACK), 1);
  }
  throw new Error('worker ' + tid + ': no module arrived with the LOAD command');
}

// Read the bell before saying ready: the main thread rings only after it hears 'ready', so no
// ring can fall between the two (a worker descheduled there would otherwise miss its first LOAD).
let seen = Atomics.load(i32, BELL);
parentPort.postMessage('ready');
for (;;) {
  let v = Atomics.load(i32, BELL);
  if (v === seen) {
    const until = performance.now() + spinMs;
    for (let i = 1; v === seen; i++) {
      v = Atomics.load(i32, BELL);
      if ((i & 1023) === 0 && performance.now() > until) break;
    }
  }
  if (v === seen) {
    Atomics.wait(i32, BELL, seen, 500);
    continue;
  }
  seen = v;
  const cmd = Atomics.load(i32, CMDW);
  if (cmd === ${CMD.STOP}) break;
  try {
    if (cmd === ${CMD.LOAD}) {
      const msg = receive();
      instances.set(msg.id, new WebAssembly.Instance(msg.module, imports));
      Atomics.add(i32, ACK, 1);
      Atomics.notify(i32, ACK);
    } else if (cmd === ${CMD.RUN}) {
      const inst = instances.get(Atomics.load(i32, MODULE));
      if (!inst) throw new Error('worker ' + tid + ': module ' + Atomics.load(i32, MODULE) + ' is not loaded');
      inst.exports.step(tid);
    }
  } catch (e) {
    fail(e);
  }
}
`;
