import type { WasmThreads, WasmWorker } from './threads.ts';
import { WORKER_SOURCE } from './worker-source.ts';

/**
 * Node's worker_threads, imported on first use so that kiln-runtime.mjs, which a page loads too,
 * has no static `node:` import.
 */
export async function nodeThreads(): Promise<WasmThreads> {
  const { MessageChannel, receiveMessageOnPort, Worker } = await import('node:worker_threads');
  return {
    async spawn(tid, memory, spinMs, onError) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { memory, tid, port: port2, spinMs }, transferList: [port2] });
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
