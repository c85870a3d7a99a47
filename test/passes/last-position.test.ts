import { describe, expect, it } from 'vitest';
import { graphFor } from '../../src/cli/graphs.ts';
import { loadModelFile } from '../../src/frontend/loader.ts';
import { getOp } from '../../src/ir/op.ts';
import type { Graph } from '../../src/ir/graph.ts';
import { compileProgram } from '../../src/passes/compile.ts';
import { lastPositionGraph } from '../../src/passes/last-position.ts';
import { WASM_TARGET } from '../../src/codegen/wasm-simd/target.ts';
import { REFERENCE_TARGET } from '../../src/runtime/reference/target.ts';
import { randomFeeds, runGraph, runProgram } from './helpers.ts';
import { runProgramOnce } from '../runtime/wasm/run-program.ts';
import { parityError } from '../runtime/parity/backends.ts';

// Generation reads the logits of a window's last position only. lastPositionGraph cuts the
// evaluation step down to them; its logits must be the full step's last row: bit for bit on the
// reference (the same ops on the same rows), within 1e-4 on wasm (other kernels, other tilings).

const flops = (g: Graph) => g.nodes.reduce((s, n) => s + getOp(n.op).flops(n.inputs.map((i) => g.nodes[i]!.shape), n.shape, n.attrs), 0);

describe('lastPositionGraph', () => {
  it.each(['samples/gpt.ts', 'test/fixtures/models/gpt-no-dropout.ts', 'test/fixtures/models/byte-mixer.ts'])('%s: the last row of the logits, for less work', async (file) => {
    const m = await loadModelFile(file, { lint: false });
    const full = graphFor(m, 'eval', { batchSize: 1, optimizer: m.training.optimizer });
    const cut = lastPositionGraph(full);
    const [T, V] = full.nodes[full.outputs.logits!]!.shape as [number, number];
    expect(cut.nodes[cut.outputs.logits!]!.shape).toEqual([1, V]);
    expect(cut.state.map((s) => s.name)).toEqual(full.state.map((s) => s.name));
    expect(flops(cut)).toBeLessThan(flops(full));
    const { feeds, state } = randomFeeds(full, 7);
    feeds.x = Float32Array.from(feeds.x!, (v, i) => Math.floor(Math.abs(v) * 256) % 256 + (i % 3));
    const want = runGraph(full, feeds, state).get('logits')!.slice((T - 1) * V);
    const cutFeeds = { x: feeds.x, labels: Float32Array.of(3) };
    expect(Array.from(runProgram(compileProgram(cut, REFERENCE_TARGET), cutFeeds, state).get('logits')!)).toEqual(Array.from(want));
    // wasm: the same step through the fusion pass and the wasm kernels.
    const p = compileProgram(cut, WASM_TARGET);
    const writes = [...p.state.map((s) => ({ offset: s.slice.offset, data: state.get(s.name)! })), ...Object.entries(p.inputs).map(([k, s]) => ({ offset: s.offset, data: cutFeeds[k as 'x' | 'labels'] }))];
    const [got] = await runProgramOnce(p, writes, [p.outputs.logits!]);
    const { error, at } = parityError(got!, want, { scale: 1 });
    expect(error, `worst at ${at}`).toBeLessThanOrEqual(1e-4);
  });

  it('refuses what is not a language model at batch 1', async () => {
    const m = await loadModelFile('samples/gpt.ts', { lint: false });
    expect(() => lastPositionGraph(graphFor(m, 'eval', { batchSize: 2, optimizer: m.training.optimizer }))).toThrow(/batch 1/);
  });
});
