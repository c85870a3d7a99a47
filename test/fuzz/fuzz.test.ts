import { existsSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphFor } from '../../src/cli/graphs.ts';
import { loadModelFile } from '../../src/frontend/loader.ts';
import { compileProgram } from '../../src/passes/compile.ts';
import { REFERENCE_TARGET } from '../../src/runtime/reference/target.ts';
import { fusedKernels, type FusedKernel } from '../../src/runtime/reference/fused.ts';
import { BACKEND_NAMES, openBackends, runCase, SCHEDULE, writeReproducer, type FuzzBackend } from './check.ts';
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
