import { existsSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphFor } from '../../src/cli/graphs.ts';
import { loadModelFile } from '../../src/frontend/loader.ts';
import type { ResolvedOptimizer } from '../../src/frontend/training-options.ts';
import { compileProgram } from '../../src/passes/compile.ts';
import { REFERENCE_TARGET } from '../../src/runtime/reference/target.ts';
import { fusedKernels, type FusedKernel } from '../../src/runtime/reference/fused.ts';
import { adamExplained, BACKEND_NAMES, openBackends, runCase, SCHEDULE, writeReproducer, type FuzzBackend } from './check.ts';
import { generateModel } from './generate.ts';

// The differential fuzzer on a fixed set of seeds: each a random model file loaded through the
// frontend, its Programs verified, and the schedule of training and evaluation steps compared on
// every backend (reference Programs, wasm relaxed and plain SIMD, webgpu where an adapter exists)
// against the reference backend running the graph (test/fuzz/check.ts says how and within what).
// About a minute on two cores with llvmpipe; `npm run fuzz` runs as many more as asked.

const SEEDS = Array.from({ length: 12 }, (_, i) => i + 1);

let backends: FuzzBackend[] = [];
beforeAll(async () => {
  const opened = await openBackends(BACKEND_NAMES);
  backends = opened.backends;
  for (const s of opened.skipped) console.warn(`skipped: ${s}`);
});
afterAll(async () => {
  for (const b of backends) await b.close();
});

/** The first case whose training Program (reference target) has a kernel of `kind`. */
async function firstSeedWith(kind: string): Promise<number | undefined> {
  for (let seed = 1; seed < 100; seed++) {
    const { file } = writeReproducer(generateModel(seed).source, seed);
    const loaded = await loadModelFile(file, { lint: false });
    rmSync(file);
    const g = graphFor(loaded, 'train', { batchSize: SCHEDULE[0]!.batch, optimizer: loaded.training.optimizer });
    if (compileProgram(g, REFERENCE_TARGET).kernels.some((k) => k.kind === kind)) return seed;
  }
  return undefined;
}

describe('differential fuzzer', () => {
  it.each(SEEDS)('case %i agrees with the oracle on every backend', async (seed) => {
    const r = await runCase(seed, { backends });
    expect(r.report ?? '', r.describe).toBe('');
  });

  it('generates the same model file for the same seed, and different ones for others', () => {
    expect(generateModel(5).source).toBe(generateModel(5).source);
    expect(new Set(SEEDS.map((s) => generateModel(s).source)).size).toBe(SEEDS.length);
  });

  it("judges an Adam-updated weight net of what its own exp_avg and exp_avg_sq explain, and only that", () => {
    // Fuzz seed 102, fc1.weight[20596] after step 0 on relaxed wasm: a gradient of 3.8e-8 (3.4e-7
    // of the tensor's peak) that wasm rounds to 3.9e-8, which Adam (lr 0.01) turns into a weight
    // 4.1e-5 away from the oracle's; the rest of the difference must be f32 rounding of the update.
    const opt: ResolvedOptimizer = { type: 'adam', lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 };
    const one = (name: string, m: number, v: number) => new Map([[`${name}.exp_avg`, Float32Array.of(m)], [`${name}.exp_avg_sq`, Float32Array.of(v)]]);
    const got = one('fc1.weight', 3.886660771001971e-9, 1.5106131578711308e-18);
    const want64 = one('fc1.weight', 3.7896525917346935e-9, 1.4361465334187742e-18);
    const [pGot, pWant] = [-0.013223434798419476, -0.013181988149881363];
    const d = adamExplained(opt, 0, 'fc1.weight', got, want64)!;
    expect(Math.abs(pGot - pWant)).toBeGreaterThan(4e-5);
    expect(Math.abs(pGot - d[0]! - pWant)).toBeLessThan(1e-8);
    // The same optimizer state explains nothing: an update kernel's own error is still charged.
    expect(Array.from(adamExplained(opt, 0, 'fc1.weight', want64, want64)!)).toEqual([0]);
    // Not for SGD, nor for a tensor that is not an Adam-updated parameter.
    expect(adamExplained({ type: 'sgd', lr: 0.1, momentum: 0, nesterov: false, weightDecay: 0 }, 0, 'fc1.weight', got, want64)).toBeUndefined();
    expect(adamExplained(opt, 0, 'fc1.weight.exp_avg', got, want64)).toBeUndefined();
  });

  it('catches a deliberately broken kernel and prints a reproducer that loads', async () => {
    // The reference backend's fused conv block, off by ±1e-3 of each output (alternating signs:
    // no batch norm or Adam step can divide it out). Patched in the kernel table itself, the way a
    // wrong kernel would be, and only for this test.
    const table = fusedKernels as unknown as Record<string, FusedKernel>;
    const good = table.conv_block!;
    const seed = (await firstSeedWith('conv_block'))!;
    const reference = backends.filter((b) => b.name === 'reference');
    table.conv_block = (k, ins, ctx) => {
      const outs = good(k, ins, ctx);
      const y = outs[0]!.data;
      for (let i = 0; i < y.length; i++) y[i] = y[i]! * (1 + (i % 2 ? 1e-3 : -1e-3));
      return outs;
    };
    let r: Awaited<ReturnType<typeof runCase>>;
    try {
      r = await runCase(seed, { backends: reference });
    } finally {
      table.conv_block = good;
    }
    expect(r.ok).toBe(false);
    const first = r.mismatches[0]!;
    expect(first.backend).toBe('reference');
    expect(first.step).toBe(0);
    expect(SCHEDULE[first.step!]!.kind).toBe('train');
    expect(first.message).toMatch(/^error \S+ > 0\.0001 at element \d+/);
    // The report: seed, path, first mismatch, and the model file, which loads as it stands.
    expect(r.report).toContain(`FAIL case ${seed}: reproducer ${r.file}`);
    expect(r.report).toContain(r.source.trimEnd());
    expect(existsSync(r.file)).toBe(true);
    expect(readFileSync(r.file, 'utf8')).toBe(r.source);
    const loaded = await loadModelFile(r.file);
    expect(loaded.name).toBe(`FuzzModel${seed}`);
    rmSync(r.file);
    // The kernel restored, the same case passes.
    expect((await runCase(seed, { backends: reference })).ok).toBe(true);
  });
});
