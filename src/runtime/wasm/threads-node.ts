import type { MessagePort } from 'node:worker_threads';
import { ABORT, CMD, CTRL, CTRL_BYTES } from '../../codegen/wasm-simd/abi.ts';
import type { WasmThreads, WasmWorker } from './threads.ts';

/**
 * The source text of a worker for `new Worker(source, { eval: true })` that calls `main` with
 * Node's worker_threads module. kiln runs from esbuild bundles (dist/kiln.mjs, train.mjs), so a
 * worker has no file of its own to load; a function's own text survives any bundling, minified
 * or not. `main` must refer to nothing outside itself: it runs in a fresh context where only
 * globals and `require` (an eval'd worker is a CommonJS script) exist.
 */
export function evalWorkerSource(main: (threads: typeof import('node:worker_threads')) => void): string {
  return `'use strict';\n(${main.toString()})(require('node:worker_threads'));\n`;
}

interface Init {
  memory: WebAssembly.Memory;
  tid: number;
  /** Where the worker reads modules and posts traps. */
  port: MessagePort;
  spinMs: number;
  ctrl: typeof CTRL;
  cmd: typeof CMD;
  abort: typeof ABORT;
  ctrlWords: number;
}

/**
 * A worker thread's program (threads-browser.ts has a page's). It sleeps on the BELL word
 * (spinning first, for the next step of a training loop comes within microseconds), and on each
 * ring does what CMD says: RUN calls the loaded module's step(tid), which runs this thread's share
 * of every kernel; LOAD instantiates a module sent on its port; STOP ends the loop. Any exception
 * (a trap in a kernel) is posted on the port, then CTRL.ABORT is set and the barrier word
 * notified, so the other threads leave their barriers at once and the main thread reports the
 * error.
 */
function nodeWorker({ workerData, receiveMessageOnPort, parentPort }: typeof import('node:worker_threads')): void {
  const { memory, tid, port, spinMs, ctrl, cmd, abort, ctrlWords } = workerData as Init;
  const i32 = new Int32Array(memory.buffer, 0, ctrlWords);
  const W = (a: number) => a / 4;
  const wait = (addr: number, expected: number, ms: number) => {
    const r = Atomics.wait(i32, addr >> 2, expected, ms);
    return r === 'ok' ? 0 : r === 'not-equal' ? 1 : 2;
  };
  const imports = { env: { memory, wait, mark() {} } };
  const instances = new Map<number, WebAssembly.Instance>();

  const fail = (err: unknown) => {
    try {
      const e = err as Error | undefined;
      port.postMessage({ type: 'error', tid, message: String(e?.message || err), stack: e?.stack });
    } catch {}
    Atomics.compareExchange(i32, W(ctrl.ABORT), abort.NONE, abort.TRAP);
    Atomics.notify(i32, W(ctrl.BAR_GEN));
    Atomics.notify(i32, W(ctrl.ACK));
  };

  const receive = (): { id: number; module: WebAssembly.Module } => {
    // The main thread posts before it rings, so the message is normally there already.
    for (let t = 0; t < 2000; t++) {
      const m = receiveMessageOnPort(port);
      if (m) return m.message as { id: number; module: WebAssembly.Module };
      Atomics.wait(i32, W(ctrl.ACK), Atomics.load(i32, W(ctrl.ACK)), 1);
    }
    throw new Error(`worker ${tid}: no module arrived with the LOAD command`);
  };

  // Read the bell before saying ready: the main thread rings only after it hears 'ready', so no
  // ring can fall between the two (a worker descheduled there would otherwise miss its first LOAD).
  let seen = Atomics.load(i32, W(ctrl.BELL));
  parentPort!.postMessage('ready');
  for (;;) {
    let v = Atomics.load(i32, W(ctrl.BELL));
    if (v === seen) {
      const until = performance.now() + spinMs;
      for (let i = 1; v === seen; i++) {
        v = Atomics.load(i32, W(ctrl.BELL));
        if ((i & 1023) === 0 && performance.now() > until) break;
      }
    }
    if (v === seen) {
      Atomics.wait(i32, W(ctrl.BELL), seen, 500);
      continue;
    }
    seen = v;
    const c = Atomics.load(i32, W(ctrl.CMD));
    if (c === cmd.STOP) break;
    try {
      if (c === cmd.LOAD) {
        const msg = receive();
        instances.set(msg.id, new WebAssembly.Instance(msg.module, imports));
        Atomics.add(i32, W(ctrl.ACK), 1);
        Atomics.notify(i32, W(ctrl.ACK));
      } else if (c === cmd.RUN) {
        const inst = instances.get(Atomics.load(i32, W(ctrl.MODULE)));
        if (!inst) throw new Error(`worker ${tid}: module ${Atomics.load(i32, W(ctrl.MODULE))} is not loaded`);
        (inst.exports.step as (t: number) => number)(tid);
      }
    } catch (e) {
      fail(e);
    }
  }
}

/**
 * Node's worker_threads, imported on first use so that kiln-runtime.mjs, which a page loads too,
 * has no static `node:` import.
 */
export async function nodeThreads(): Promise<WasmThreads> {
  const { MessageChannel, receiveMessageOnPort, Worker } = await import('node:worker_threads');
  const source = evalWorkerSource(nodeWorker);
  return {
    async spawn(tid, memory, spinMs, onError) {
      const { port1, port2 } = new MessageChannel();
      const init: Init = { memory, tid, port: port2, spinMs, ctrl: CTRL, cmd: CMD, abort: ABORT, ctrlWords: CTRL_BYTES / 4 };
      const worker = new Worker(source, { eval: true, workerData: init, transferList: [port2] });
      worker.unref();
      port1.unref();
      await new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`wasm worker ${tid} exited (code ${code}) before it started`)));
      });
      worker.removeAllListeners('exit');
      worker.on('error', (e) => onError(`wasm worker ${tid} failed: ${e.message}`));
      const handle: WasmWorker = {
        send: (id, module) => port1.postMessage({ id, module }),
        takeError() {
          const m = receiveMessageOnPort(port1)?.message as { type?: string; tid?: number; message?: string } | undefined;
          return m?.type === 'error' ? `wasm worker ${m.tid} trapped: ${m.message}` : undefined;
        },
        terminate() {
          port1.close();
          void worker.terminate();
        },
      };
      return handle;
    },
  };
}
