import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nn } from '../../src/frontend/api.ts';
import type { Module } from '../../src/frontend/module.ts';
import type { StateTensor } from '../../src/ir/graph.ts';
import { initDraws, initialState } from '../../src/runtime/init.ts';
import { TorchGenerator } from '../../src/runtime/torch-generator.ts';
import { normalFill } from '../../src/runtime/torch-normal.ts';

// Made by test/fixtures/pytorch/make_normal_fixture.py with PyTorch 1.13 on an AVX2 CPU. Exact:
// the same seed must give PyTorch's bits.
interface Fixture {
  draws: { seed: number; mean: number; std: number; tensors: { n: number; sha256: string; values?: number[]; first?: number[] }[] }[];
  models: Record<string, [string, ...unknown[]][]>;
  init: Record<string, Record<string, { params: { shape: number[]; first: number[]; sha256: string }[]; next_int64: string }>>;
}
const fixture = JSON.parse(readFileSync('test/fixtures/pytorch/normal.json', 'utf8')) as Fixture;
const sha256 = (a: Float32Array) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

describe('normal_ draws what PyTorch draws after torch.manual_seed(S)', () => {
  it.each(fixture.draws.map((d) => [`seed ${d.seed}, mean ${d.mean}, std ${d.std}`, d] as const))('%s', (_, d) => {
    const g = new TorchGenerator(d.seed);
    for (const t of d.tensors) {
      const got = normalFill(g, t.n, d.mean, d.std);
      expect(Array.from(got.subarray(0, 100)), `a tensor of ${t.n}`).toEqual(t.values ?? t.first);
      expect(sha256(got), `a tensor of ${t.n}`).toBe(t.sha256);
    }
  });
});

const LAYERS: Record<string, new (...args: never[]) => Module> = { Embedding: nn.Embedding, Linear: nn.Linear, LayerNorm: nn.LayerNorm };

/** The state of layers built in order, as a model's constructor builds them. */
function stateOf(layers: [string, ...unknown[]][]): StateTensor[] {
  return layers.flatMap(([kind, ...args], i) => {
    const m = new (LAYERS[kind] as unknown as new (...a: unknown[]) => Module)(...args);
    return [...m.declaredState].map(([name, d]) => ({ name: `${i}.${name}`, shape: d.shape, init: d.init, kind: d.kind, node: 0 }));
  });
}

describe("default initialisation of Embedding (N(0, 1)) and LayerNorm (ones, zeros) is PyTorch's", () => {
  it.each(Object.entries(fixture.init).flatMap(([name, bySeed]) => Object.entries(bySeed).map(([seed, want]) => [name, Number(seed), want] as const)))('%s, seed %i', (name, seed, want) => {
    const state = stateOf(fixture.models[name]!);
    const values = [...initialState(state, seed).values()];
    expect(values.map((v, i) => [state[i]!.shape, Array.from(v.subarray(0, 8)), sha256(v)])).toEqual(want.params.map((p) => [p.shape, p.first, p.sha256]));
    // The data order draws after initialisation: initDraws must count exactly what it took.
    const g = new TorchGenerator(seed);
    g.skip(initDraws(state));
    expect(g.randomInt64().toString()).toBe(want.next_int64);
  });
});
