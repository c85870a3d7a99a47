import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { graphFor } from '../../src/cli/graphs.ts';
import { loadModelFile } from '../../src/frontend/loader.ts';
import { epochOrder } from '../../src/runtime/data/shuffle.ts';
import { initDraws, initialState } from '../../src/runtime/init.ts';
import { TorchGenerator, fmaF32 } from '../../src/runtime/torch-generator.ts';

// Made by test/fixtures/pytorch/make_rng_fixture.py with PyTorch 1.13. Everything here is exact:
// the same seed must give PyTorch's bits, not numbers close to them.
interface Fixture {
  draws: { seed: number; int64: string[]; uniform: Record<string, number[]>; randperm: Record<string, number[]> }[];
  init: Record<string, Record<string, { shape: number[]; first: number[]; sha256: string }[]>>;
  orders: Record<string, Record<string, { first: number[]; sha256: string }[]>>;
}
const fixture = JSON.parse(readFileSync('test/fixtures/pytorch/rng.json', 'utf8')) as Fixture;
const SAMPLES: Record<string, string> = { SimpleCNN: 'simple-cnn', LeNet: 'lenet', MLP: 'mlp' };
const sha256 = (a: Float32Array | Int32Array) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

async function modelState(name: string) {
  const loaded = await loadModelFile(`samples/${SAMPLES[name]}.ts`, { lint: false });
  return graphFor(loaded, 'train', { batchSize: 2, optimizer: loaded.training.optimizer }).state;
}

describe('TorchGenerator draws what torch.manual_seed(S) draws', () => {
  it.each(fixture.draws.map((d) => [d.seed, d] as const))('seed %i', (seed, d) => {
    const g = new TorchGenerator(seed);
    expect(d.int64.map(() => g.randomInt64().toString())).toEqual(d.int64);
    for (const [bound, values] of Object.entries(d.uniform)) expect(values.map(() => g.uniform(-Number(bound), Number(bound)))).toEqual(values);
    for (const [n, perm] of Object.entries(d.randperm)) expect(Array.from(new TorchGenerator(seed).randperm(Number(n)))).toEqual(perm);
  });
});

describe('fmaF32', () => {
  it('rounds once where the f64 sum lands exactly between two floats', () => {
    // a·b = 2^-24 − 2^-70, so a·b + c lies just below the midpoint 1 + 3·2^-24: the f64 sum rounds
    // onto the midpoint, and rounding that to f32 (ties to even) would go up a float.
    const [a, b, c] = [1 + 2 ** -23, 2 ** -24 * (1 - 2 ** -23), 1 + 2 ** -23];
    expect(Math.fround(a * b + c)).toBe(1 + 2 ** -22);
    expect(fmaF32(a, b, c)).toBe(1 + 2 ** -23);
    expect(fmaF32(a, -b, -c)).toBe(-(1 + 2 ** -23));
    expect(fmaF32(0.5, 0.25, 1)).toBe(1.125);
  });
});

describe('initial weights are PyTorch\'s for the same seed, bit for bit', () => {
  it.each(Object.keys(fixture.init).flatMap((m) => Object.keys(fixture.init[m]!).map((s) => [m, Number(s)] as const)))('%s, seed %i', async (model, seed) => {
    const state = await modelState(model);
    const init = initialState(state, seed);
    const params = state.filter((t) => t.kind === 'param');
    const want = fixture.init[model]![seed]!;
    expect(params.map((p) => p.shape)).toEqual(want.map((w) => w.shape));
    params.forEach((p, i) => {
      const data = init.get(p.name)!;
      expect(Array.from(data.subarray(0, 4)), p.name).toEqual(want[i]!.first);
      expect(sha256(data), p.name).toBe(want[i]!.sha256);
    });
  });
});

describe('epoch orders are those PyTorch\'s DataLoader(shuffle=True) hands out', () => {
  it.each(Object.keys(fixture.orders).flatMap((m) => Object.keys(fixture.orders[m]!).map((s) => [m, Number(s)] as const)))('%s, seed %i, epochs 0-2', async (model, seed) => {
    const draws = initDraws(await modelState(model));
    fixture.orders[model]![seed]!.forEach((want, epoch) => {
      const order = Int32Array.from(epochOrder(60000, epoch, { seed, initDraws: draws }));
      expect(Array.from(order.subarray(0, 8))).toEqual(want.first);
      expect(sha256(order)).toBe(want.sha256);
    });
  });
});
