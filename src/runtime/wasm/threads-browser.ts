import { ABORT, CMD, CTRL, CTRL_BYTES } from '../../codegen/wasm-simd/abi.ts';
import type { WasmThreads } from './threads.ts';

interface Init {
  memory: WebAssembly.Memory;
  tid: number;
  spinMs: number;
  ctrl: typeof CTRL;
  cmd: typeof CMD;
  abort: typeof ABORT;
  ctrlWords: number;
}

/**
 * A Web Worker's side of the protocol (compare threads-node.ts, Node's): the same bell, commands
 * and acknowledgements. A page's worker cannot read a message synchronously, so between steps it
 * waits for the bell with Atomics.waitAsync, which lets the modules that LOAD announces arrive
 * as message events; within a step it blocks in the barriers like Node's. Serialised with
 * toString() into a blob: it must not refer to anything outside itself.
 */
function browserWorker(scope: { onmessage: ((e: MessageEvent) => void) | null; postMessage(m: unknown): void; close(): void }): void {
  const inbox: { id: number; module: WebAssembly.Module }[] = [];
  let arrived: (() => void) | undefined;
  scope.onmessage = (e: MessageEvent) => {
    const d = e.data as { type: string } & Init & { id: number; module: WebAssembly.Module };
    if (d.type === 'init') void run(d);
    else {
      inbox.push({ id: d.id, module: d.module });
      arrived?.();
    }
  };
  async function run(init: Init): Promise<void> {
    const { memory, tid, spinMs, ctrl, cmd, abort } = init;
    const i32 = new Int32Array(memory.buffer, 0, init.ctrlWords);
    const W = (a: number) => a / 4;
    const wait = (addr: number, expected: number, ms: number) => {
      const r = Atomics.wait(i32, addr >> 2, expected, ms);
      return r === 'ok' ? 0 : r === 'not-equal' ? 1 : 2;
    };
    const imports = { env: { memory, wait, mark() {} } };
    const instances = new Map<number, WebAssembly.Instance>();
    const fail = (err: unknown) => {
      scope.postMessage({ type: 'error', tid, message: String((err as Error)?.message ?? err) });
      Atomics.compareExchange(i32, W(ctrl.ABORT), abort.NONE, abort.TRAP);
      Atomics.notify(i32, W(ctrl.BAR_GEN));
      Atomics.notify(i32, W(ctrl.ACK));
    };
    let seen = Atomics.load(i32, W(ctrl.BELL));
    scope.postMessage({ type: 'ready' });
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
        // ES2024, in every browser with wasm threads; not in this project's TypeScript lib.
        const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, ms: number): { async: boolean; value: unknown } }).waitAsync;
        const r = waitAsync(i32, W(ctrl.BELL), seen, 500);
        if (r.async) await r.value;
        continue;
      }
      seen = v;
      const c = Atomics.load(i32, W(ctrl.CMD));
      if (c === cmd.STOP) break;
      try {
        if (c === cmd.LOAD) {
          const deadline = performance.now() + 5000;
          while (!inbox.length) {
            if (performance.now() > deadline) throw new Error(`worker ${tid}: no module arrived with the LOAD command`);
            await new Promise<void>((resolve) => {
              arrived = resolve;
              setTimeout(resolve, 50);
            });
          }
          const m = inbox.shift()!;
          instances.set(m.id, new WebAssembly.Instance(m.module, imports));
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
    scope.close();
  }
}

/** Web Workers made from a blob (allowed under the cross-origin isolation that shared memory needs). */
export function browserThreads(): WasmThreads {
  const url = URL.createObjectURL(new Blob([`(${browserWorker.toString()})(self);`], { type: 'text/javascript' }));
  return {
    async spawn(tid, memory, spinMs, onError) {
      const worker = new Worker(url, { name: `kiln wasm thread ${tid}` });
      const errors: string[] = [];
      await new Promise<void>((resolve, reject) => {
        worker.onmessage = (e: MessageEvent) => {
          const d = e.data as { type: string; tid?: number; message?: string };
          if (d.type === 'ready') resolve();
          else if (d.type === 'error') errors.push(`wasm worker ${d.tid} trapped: ${d.message}`);
        };
        worker.onerror = (e) => {
          const m = `wasm worker ${tid} failed: ${e.message}`;
          reject(new Error(m));
          onError(m);
        };
        const init: Init & { type: 'init' } = { type: 'init', memory, tid, spinMs, ctrl: CTRL, cmd: CMD, abort: ABORT, ctrlWords: CTRL_BYTES / 4 };
        worker.postMessage(init);
      });
      return {
        send: (id, module) => worker.postMessage({ type: 'module', id, module }),
        // Reports arrive as message events, which a thread blocked in a step cannot see: it may be empty.
        takeError: () => errors.shift(),
        terminate: () => worker.terminate(),
      };
    },
  };
}
