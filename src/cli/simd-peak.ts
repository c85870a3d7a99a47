/**
 * This machine's peak f32 rate for WebAssembly SIMD (128-bit, no relaxed SIMD): the yardstick
 * `kiln bench` divides a backend's GFLOP/s by.
 *
 * The kernel is hand-assembled so it needs neither binaryen nor a flag: K independent chains of
 * `acc = acc * m + a` on f32x4 (plain SIMD has no FMA, so a multiply and an add, 8 flops per
 * chain and iteration). Twelve chains cover the ~6-cycle mul+add latency at two of each per cycle
 * on current x86 cores, and fit the 16 xmm registers with m and a. m < 1 keeps every value normal
 * (the chains converge to a / (1 - m)), so no denormal slow path is measured.
 */
import { Worker } from 'node:worker_threads';
import { evalWorkerSource } from '../runtime/wasm/threads-node.ts';

const CHAINS = 12;
/** Flops per loop iteration: CHAINS × 4 lanes × (mul + add). */
const FLOPS_PER_ITER = CHAINS * 4 * 2;

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const f32x4Const = (v: number): number[] => {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < 4; i++) dv.setFloat32(4 * i, v, true);
  return [0xfd, 0x0c, ...b];
};
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];

const SIMD = 0xfd;
const OP = { localGet: 0x20, localSet: 0x21, localTee: 0x22, i32Const: 0x41, i32Sub: 0x6b, loop: 0x03, brIf: 0x0d, end: 0x0b, f32Add: 0x92 } as const;
const F32X4_ADD = [SIMD, ...uleb(228)];
const F32X4_MUL = [SIMD, ...uleb(230)];
const F32X4_EXTRACT = (lane: number) => [SIMD, 0x1f, lane];

/** `(func (export "run") (param $n i32) (result f32))`: n iterations over the chains, then their sum. */
export function peakModuleBytes(): Uint8Array<ArrayBuffer> {
  // Locals after the parameter: CHAINS accumulators, then m and a.
  const acc = (k: number) => 1 + k;
  const M = 1 + CHAINS;
  const A = 2 + CHAINS;
  const code: number[] = [];
  for (let k = 0; k < CHAINS; k++) code.push(...f32x4Const(1 + k / 16), OP.localSet, acc(k));
  code.push(...f32x4Const(0.999), OP.localSet, M, ...f32x4Const(0.001), OP.localSet, A);
  code.push(OP.loop, 0x40);
  for (let k = 0; k < CHAINS; k++) {
    code.push(OP.localGet, acc(k), OP.localGet, M, ...F32X4_MUL, OP.localGet, A, ...F32X4_ADD, OP.localSet, acc(k));
  }
  code.push(OP.localGet, 0, OP.i32Const, 1, OP.i32Sub, OP.localTee, 0, OP.brIf, 0, OP.end);
  // Sum every chain's lane 0 so no chain is dead.
  code.push(OP.localGet, acc(0), ...F32X4_EXTRACT(0));
  for (let k = 1; k < CHAINS; k++) code.push(OP.localGet, acc(k), ...F32X4_EXTRACT(0), OP.f32Add);
  code.push(OP.end);
  const locals = [...uleb(1), ...uleb(CHAINS + 2), 0x7b];
  const body = [...locals, ...code];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, 1, 0x7f, 1, 0x7d]])),
    ...section(3, vec([[0]])),
    ...section(7, vec([[...uleb(3), ...Buffer.from('run'), 0x00, 0]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ]);
}

type Run = (n: number) => number;

function instantiate(): Run {
  const inst = new WebAssembly.Instance(new WebAssembly.Module(peakModuleBytes()));
  return inst.exports.run as Run;
}

/** Runs `iters` iterations and returns GFLOP/s; the same code runs in each worker. */
function timeIterations(run: Run, iters: number): number {
  const t = performance.now();
  run(iters);
  return (iters * FLOPS_PER_ITER) / ((performance.now() - t) * 1e6);
}

/** Best of `repeats` runs of about `ms` milliseconds each, on this thread. */
export function measureSimdPeak(ms = 150, repeats = 5): number {
  const run = instantiate();
  // Calibrate the iteration count to about `ms` after one warm-up (tier-up to the optimising compiler).
  run(100_000);
  const rate = timeIterations(run, 1_000_000);
  const iters = Math.max(100_000, Math.round((rate * 1e6 * ms) / FLOPS_PER_ITER));
  let best = 0;
  for (let r = 0; r < repeats; r++) best = Math.max(best, timeIterations(run, iters));
  return best;
}

interface PeakWorkerData {
  bytes: Uint8Array<ArrayBuffer>;
  iters: number;
  repeats: number;
  flops: number;
}

/** A worker's part of measureSimdPeakThreads: compile and warm up, say ready, then time on 'go'. */
function peakWorker({ parentPort, workerData }: typeof import('node:worker_threads')): void {
  const { bytes, iters, repeats, flops } = workerData as PeakWorkerData;
  const run = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.run as (n: number) => number;
  run(100000);
  parentPort!.postMessage('ready');
  parentPort!.once('message', () => {
    let best = 0;
    for (let r = 0; r < repeats; r++) {
      const t = performance.now();
      run(iters);
      best = Math.max(best, (iters * flops) / ((performance.now() - t) * 1e6));
    }
    parentPort!.postMessage(best);
  });
}

/**
 * Aggregate GFLOP/s of `threads` workers running the kernel at once (each worker's best run,
 * summed): the peak a backend on that many threads could reach.
 */
export async function measureSimdPeakThreads(threads: number, ms = 150, repeats = 5): Promise<number> {
  if (threads <= 1) return measureSimdPeak(ms, repeats);
  const single = measureSimdPeak(50, 1);
  const iters = Math.max(100_000, Math.round((single * 1e6 * ms) / FLOPS_PER_ITER));
  const workers = Array.from({ length: threads }, () => new Worker(evalWorkerSource(peakWorker), { eval: true, workerData: { bytes: peakModuleBytes(), iters, repeats, flops: FLOPS_PER_ITER } satisfies PeakWorkerData }));
  try {
    await Promise.all(workers.map((w) => new Promise((res, rej) => (w.once('message', res), w.once('error', rej)))));
    const rates = workers.map((w) => new Promise<number>((res, rej) => (w.once('message', res), w.once('error', rej))));
    for (const w of workers) w.postMessage('go');
    return (await Promise.all(rates)).reduce((a, b) => a + b, 0);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
