/**
 * How the wasm backend starts its worker threads: Node's worker_threads (threads-node.ts) or a
 * page's Web Workers (threads-browser.ts). Both run the same protocol over the shared memory
 * (src/codegen/wasm-simd/abi.ts: the bell, LOAD/RUN/STOP, acknowledgements, aborts).
 */
export interface WasmThreads {
  /** Starts worker `tid` on `memory`; resolves once it listens for commands. `onError` hears a worker that dies. */
  spawn(tid: number, memory: WebAssembly.Memory, spinMs: number, onError: (message: string) => void): Promise<WasmWorker>;
}

export interface WasmWorker {
  /** Hands the worker a module; the main thread then rings LOAD and waits for the acknowledgement. */
  send(id: number, module: WebAssembly.Module): void;
  /** The message of a trap the worker reported, if it has arrived (workers report before they set ABORT). */
  takeError(): string | undefined;
  terminate(): void;
}
