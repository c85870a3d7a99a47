/**
 * The wasm backend on SimpleCNN, as the issue measures it: compile time, training images/s at
 * batch 64 on 1 and 2 threads (real MNIST batches, the sample's Adam step), inference images/s at
 * batch 1000 (a language model: tokens/s, and generation windows/s at batch 1), GFLOP/s over the IR's FLOP count, the fraction of this machine's SIMD peak
 * (src/cli/simd-peak.ts), with --profile the time of every kernel and of each kernel kind, and
 * with --times every measured step's time (a shared machine's slow stretches show there).
 *
 *   node bench/run.mjs bench/wasm-simple-cnn.ts [--model samples/simple-cnn.ts] [--threads 1,2] [--steps 300] [--profile] [--times]
 */
import { availableParallelism } from 'node:os';
import { graphFor } from '../src/cli/graphs.ts';
import { Emitter, Fn, loadBinaryen } from '../src/codegen/wasm-simd/emitter.ts';
import { relaxedSimdSupported } from '../src/runtime/wasm/features.ts';
import { loadModelFile } from '../src/frontend/loader.ts';
import { getOp } from '../src/ir/op.ts';
import { memoizeSteps } from '../src/runtime/backend.ts';
import { fillBatch } from '../src/runtime/data/dataset.ts';
import { loadDataset } from '../src/runtime/data/dataset-file.ts';
import { initialState } from '../src/runtime/init.ts';
import { scheduleScalars } from '../src/runtime/schedule.ts';
import { createWasmBackend } from '../src/runtime/wasm/compile.ts';
import { measureSimdPeak, measureSimdPeakThreads } from '../src/cli/simd-peak.ts';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const model = arg('model', 'samples/simple-cnn.ts');
const threadList = arg('threads', [1, availableParallelism()].filter((t, i, a) => a.indexOf(t) === i).join(',')).split(',').map(Number);
const steps = Number(arg('steps', '300'));
const profile = process.argv.includes('--profile');
const stepTimes = process.argv.includes('--times');
const optArg = arg('optimize', '');
const optimize = optArg === '' ? undefined : optArg === 'none' ? false : /^\d$/.test(optArg) ? Number(optArg) : optArg.split(',');
const say = (s: string) => process.stdout.write(`${s}\n`);

const t0 = performance.now();
await loadBinaryen();
const importMs = performance.now() - t0;
const loaded = await loadModelFile(model, { lint: false });
const t = loaded.training;
const source = memoizeSteps({ train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer: t.optimizer }), eval: (b) => graphFor(loaded, 'eval', { batchSize: b, optimizer: t.optimizer }) });
const B = t.batchSize;
const flops = (kind: 'train' | 'eval', b: number) => {
  const g = source[kind](b);
  return g.nodes.reduce((s, n) => s + getOp(n.op).flops(n.inputs.map((i) => g.nodes[i]!.shape), n.shape, n.attrs), 0);
};
// A language model (training.dataset 'text') gets B windows of T byte ids from a fixed hash (a
// step's speed does not depend on what the bytes say) and is measured in tokens; an MNIST model
// gets MNIST, any other image model hashed pixels (CIFAR's ResNet) with labels 0-9.
const text = t.dataset === 'text';
const T = text ? t.input[0]! : t.input.reduce((a, d) => a * d, 1);
const data = t.dataset === 'mnist' ? loadDataset('mnist') : undefined;
const perExample = text ? T : 1;
const unit = text ? 'tok' : 'img';
const batch = (split: 'train' | 'test', first: number, n: number) => {
  if (!data) {
    let h = first + 1;
    const x = Float32Array.from({ length: n * T }, () => ((h = (Math.imul(h, 1103515245) + 12345) >>> 0) >>> 16) & 255);
    if (text) return { x, labels: Float32Array.from(x, (v, i) => x[(i + 1) % x.length]!) };
    return { x: x.map((v) => v / 255), labels: Float32Array.from({ length: n }, (_, i) => x[i]! % 10) };
  }
  const s = data[split];
  const idx = Uint32Array.from({ length: n }, (_, i) => (first + i) % s.count);
  const x = new Float32Array((n * s.images.length) / s.count);
  const labels = new Float32Array(n);
  fillBatch(s, idx, 0, n, x, labels);
  return { x, labels };
};
const EVAL = text ? 1 : 1000;
// A scheduled optimizer's per-step learning rate: its first step's (a step costs the same at any lr).
const scalars = scheduleScalars(t.optimizer, 1)?.(0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * The peak of f32x4.relaxed_madd on one thread: 12 independent chains acc = acc·m + a, one
 * instruction (8 flops) per chain and iteration; src/cli/simd-peak.ts measures the same with a
 * separate multiply and add, what plain SIMD128 can do.
 */
async function fmaPeak(): Promise<number | undefined> {
  if (!relaxedSimdSupported()) return undefined;
  const lib = await loadBinaryen();
  const e = new Emitter(lib, { relaxed: true, threads: 1 });
  const { m, b } = e;
  m.setFeatures(b.Features.SIMD128 | b.Features.RelaxedSIMD);
  const fn = new Fn(e, [b.i32]);
  const n = fn.params[0]!;
  const acc = Array.from({ length: 12 }, () => fn.v128());
  const [mv, av] = [fn.v128(), fn.v128()];
  const body = [
    ...acc.map((x, k) => x.set(e.vconst(1 + k / 16))),
    mv.set(e.vconst(0.999)),
    av.set(e.vconst(0.001)),
    m.loop('l', e.block([...acc.map((x) => x.set(e.madd(x.get(), mv.get(), av.get()))), n.set(m.i32.sub(n.get(), e.i32(1))), m.br('l', n.get())])),
    acc.reduce((s: number, x) => m.f32.add(s, m.f32x4.extract_lane(x.get(), 0)), e.f32(0)),
  ];
  m.addFunction('run', b.i32, b.f32, fn.vars, e.block([...body.slice(0, -1), m.return(body[body.length - 1]!)]));
  m.addFunctionExport('run', 'run');
  const run = new WebAssembly.Instance(new WebAssembly.Module(m.emitBinary() as Uint8Array<ArrayBuffer>)).exports.run as (n: number) => number;
  m.dispose();
  run(100_000);
  let best = 0;
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    run(5_000_000);
    best = Math.max(best, (5_000_000 * 12 * 8) / ((performance.now() - t) * 1e6));
  }
  return best;
}

say(`${loaded.name} (${model}), batch ${B}; binaryen import ${importMs.toFixed(0)} ms`);
const peak1 = measureSimdPeak();
const fma = await fmaPeak();
say(`SIMD peak on 1 thread: ${peak1.toFixed(1)} GFLOP/s with f32x4 mul+add (src/cli/simd-peak.ts)${fma ? `, ${fma.toFixed(1)} GFLOP/s with f32x4.relaxed_madd` : ''}`);
for (const threads of threadList) {
  const peak = threads === 1 ? peak1 : await measureSimdPeakThreads(threads);
  const c0 = performance.now();
  const backend = await createWasmBackend(source, initialState(source.train(B).state, t.seed), B, t.seed, { threads, profile, optimize, relaxed: process.argv.includes('--plain') ? false : 'auto' });
  const trainCompile = backend.compiled('train', B).compileMs;
  const evalCompile = backend.compiled('eval', EVAL).compileMs;
  const compileMs = performance.now() - c0;
  // Training: warm up (tier-up), then time each step, as the trainer calls it.
  const batches = Array.from({ length: 16 }, (_, i) => batch('train', i * B, B));
  for (let s = 0; s < 20; s++) backend.trainStep(batches[s % 16]!.x, batches[s % 16]!.labels, s, scalars);
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { x, labels } = batches[s % 16]!;
    const a = performance.now();
    backend.trainStep(x, labels, 20 + s, scalars);
    times.push(performance.now() - a);
  }
  if (stepTimes) say(`step times, ms: ${times.map((ms) => ms.toFixed(0)).join(' ')}`);
  const stepMs = median(times);
  const trainIps = (B * perExample) / (stepMs / 1000);
  const gflops = flops('train', B) / (stepMs / 1000) / 1e9;
  // Inference at batch 1000 (a language model: batch 1, one window, as generation runs it).
  const ev = batch('test', 0, EVAL);
  // A generation step takes a few ms: many more of them, so that the median holds still.
  for (let s = 0; s < (text ? 30 : 3); s++) backend.evalStep(ev.x, ev.labels);
  const evTimes: number[] = [];
  for (let s = 0; s < (text ? 300 : 15); s++) {
    const a = performance.now();
    backend.evalStep(ev.x, ev.labels);
    evTimes.push(performance.now() - a);
  }
  const evMs = median(evTimes);
  say(
    `${threads} thread${threads > 1 ? 's' : ''} (${backend.relaxed ? 'relaxed SIMD' : 'SIMD128'}): train ${Math.round(trainIps).toLocaleString('en-US')} ${unit}/s ` +
      `(${stepMs.toFixed(2)} ms/step, ${gflops.toFixed(1)} GFLOP/s, ${((100 * gflops) / peak).toFixed(0)}% of the ${peak.toFixed(1)} GFLOP/s SIMD peak); ` +
      `infer ${Math.round(EVAL / (evMs / 1000)).toLocaleString('en-US')} ${text ? 'windows' : 'img'}/s (${evMs.toFixed(1)} ms/batch of ${EVAL}, ${(flops('eval', EVAL) / (evMs / 1000) / 1e9).toFixed(1)} GFLOP/s); ` +
      `compile ${compileMs.toFixed(0)} ms (train module ${trainCompile.toFixed(0)} ms, eval module ${evalCompile.toFixed(0)} ms)`,
  );
  if (profile) {
    for (const [kind, b] of [['train', B], ['eval', EVAL]] as const) {
      const rows = backend.profile(kind, b);
      const total = rows.reduce((s, r) => s + r.ms, 0);
      say(`  ${kind} ${b}: ${total.toFixed(3)} ms per step in kernels`);
      const byKind = new Map<string, { ms: number; n: number }>();
      for (const r of rows) {
        const k = byKind.get(r.kind) ?? { ms: 0, n: 0 };
        byKind.set(r.kind, { ms: k.ms + r.ms, n: k.n + 1 });
      }
      for (const [k, v] of [...byKind].sort((a, b) => b[1].ms - a[1].ms)) say(`    ${v.ms.toFixed(3).padStart(8)} ms ${((100 * v.ms) / total).toFixed(0).padStart(3)}%  ${k} (${v.n} kernels)`);
      for (const r of rows) say(`    ${r.ms.toFixed(3).padStart(8)} ms  ${r.kernel}`);
    }
  }
  backend.dispose();
}
