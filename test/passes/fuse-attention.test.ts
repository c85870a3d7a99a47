import { describe, expect, it } from 'vitest';
import { F, Module, nn, ones, tril } from '../../src/frontend/api.ts';
import type { Tensor } from '../../src/frontend/tensor.ts';
import { WASM_TARGET } from '../../src/codegen/wasm-simd/target.ts';
import { compileProgram } from '../../src/passes/compile.ts';
import type { Program } from '../../src/ir/program.ts';
import { modelGraphs, sampleGraph } from './helpers.ts';

// The fusion pass reads attention back from the ops that compute it (src/passes/fuse-attention.ts):
// written out (attention-tiny) or through F.scaledDotProductAttention, with dropout, forward and
// backward as one kernel each, p never in memory; a mask that is not causal, or a softmax whose
// probabilities something else reads, leaves the ops as they are.

const kinds = (p: Program) => p.kernels.map((k) => k.kind);

/** Self-attention over [B, 6, 8] inputs (an MNIST-free shape), 2 heads, with the given scores → output step. */
class Heads extends Module {
  qkv = new nn.Linear(8, 24);
  head = new nn.Linear(6 * 8, 10);
  constructor(readonly attend: (q: Tensor, k: Tensor, v: Tensor) => Tensor) {
    super();
  }

  forward(x: Tensor): Tensor {
    const B = x.size(0);
    const [q, k, v] = this.qkv.forward(x.view(B, 6, 8)).split(8, 2).map((t) => t.view(B, 6, 2, 4).transpose(1, 2)) as [Tensor, Tensor, Tensor];
    return this.head.forward(this.attend(q, k, v).transpose(1, 2).contiguous().view(B, 48));
  }
}

const compiled = (attend: (q: Tensor, k: Tensor, v: Tensor) => Tensor) => {
  const g = modelGraphs(() => new Heads(attend), [48], 4);
  return { train: compileProgram(g.train, WASM_TARGET), eval: compileProgram(g.eval, WASM_TARGET) };
};

describe('attention fusion', () => {
  it('attention-tiny (written out): one attention and one attention_grad kernel, no softmax left, p never stored', async () => {
    const p = compileProgram(await sampleGraph('attention-tiny', 'train'), WASM_TARGET);
    expect(kinds(p).filter((k) => k.startsWith('attention'))).toEqual(['attention', 'attention_grad']);
    expect(kinds(p).some((k) => k.startsWith('softmax'))).toBe(false);
    // Nothing [B, H, T, T] is in memory: the largest slice is no bigger than a [B, H, T, D] one.
    expect(p.kernels.flatMap((k) => [...k.inputs, ...k.outputs]).some((s) => s.shape.length === 4 && s.shape[2] === 28 && s.shape[3] === 28)).toBe(false);
    expect(p.memory.arenaBytes).toBe(p.memory.lowerBoundBytes);
  });

  it('F.scaledDotProductAttention, causal, with dropout and a given scale: the same kernels; the eval step needs no logsumexp', () => {
    const p = compiled((q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true, dropoutP: 0.2, scale: 0.3 }));
    const fwd = p.train.kernels.find((k) => k.kind === 'attention')!;
    expect(fwd.attrs).toMatchObject({ causal: true, scale: 0.3, dropout: true, p: 0.2, lse: true });
    expect(kinds(p.train).filter((k) => k === 'attention_grad')).toHaveLength(1);
    expect(p.eval.kernels.find((k) => k.kind === 'attention')!.attrs).toMatchObject({ lse: false });
  });

  it('a mask that is not causal (the diagonal masked too) is left to the ops', () => {
    const p = compiled((q, k, v) => q.matmul(k.transpose(-2, -1)).maskedFill(tril(ones(6, 6), -1).eq(0), -Infinity).softmax(-1).matmul(v));
    expect(kinds(p.train).some((k) => k.startsWith('attention'))).toBe(false);
    expect(kinds(p.train)).toContain('softmax');
  });

  it('probabilities read by something else than the product with v are left to the ops', () => {
    const p = compiled((q, k, v) => {
      const w = F.softmax(q.matmul(k.transpose(-2, -1)), -1);
      return w.matmul(v).add(w.sum(-1, true));
    });
    expect(kinds(p.train).some((k) => k.startsWith('attention'))).toBe(false);
  });

  it("the GPT sample: one kernel per direction per layer, memory at the lower bound", async () => {
    const { loadModelFile } = await import('../../src/frontend/loader.ts');
    const { graphFor } = await import('../../src/cli/graphs.ts');
    const m = await loadModelFile('samples/gpt.ts', { lint: false });
    const p = compileProgram(graphFor(m, 'train', { batchSize: 2, optimizer: m.training.optimizer }), WASM_TARGET);
    expect(kinds(p).filter((k) => k === 'attention')).toHaveLength(4);
    expect(kinds(p).filter((k) => k === 'attention_grad')).toHaveLength(4);
    expect(p.memory.arenaBytes).toBe(p.memory.lowerBoundBytes);
    // q, k and v read in place from the qkv projection's output, y written in the merged heads'
    // layout, dy read from the projection's input gradient: the split into heads and the merge
    // back run no kernel of their own (T = 128, 4 heads of 32 in a [2, 128, 384] qkv).
    const att = p.kernels.filter((k) => k.kind === 'attention');
    for (const k of att) {
      expect(new Set(k.inputs.slice(0, 3).map((s) => s.offset)).size).toBe(1);
      expect([k.attrs.qView, k.attrs.kView, k.attrs.vView].map((v) => (v as number[])[4])).toEqual([0, 128, 256]);
      expect(k.attrs.yView).toEqual([2, 4, 128, 32, 0, 128 * 128, 32, 128]);
    }
    // The backward writes dq, dk and dv in place into the qkv projection's gradient.
    for (const k of p.kernels.filter((k) => k.kind === 'attention_grad')) {
      expect(k.attrs.dyView).toEqual([2, 4, 128, 32, 0, 128 * 128, 32, 128]);
      expect([k.attrs.dqkv, k.outputs.length, k.outputs[0]!.shape]).toEqual([true, 1, [2, 128, 384]]);
      expect([k.attrs.dqView, k.attrs.dkView, k.attrs.dvView].map((v) => (v as number[])[4])).toEqual([0, 128, 256]);
    }
    expect(kinds(p).filter((k) => k === 'slice' || k === 'permute' || k === 'pad')).toEqual([]);
    // Each of the 9 layer norms: one kernel forward (with its weight and bias), one backward (with
    // dw, db and the residual gradient), and nothing else of theirs (the one sum_to left is the
    // position embedding's gradient, summed over the batch).
    expect(['layer_norm_ew', 'layer_norm_backward'].map((kind) => kinds(p).filter((k) => k === kind).length)).toEqual([9, 9]);
    expect(kinds(p).filter((k) => k === 'sum_to' || k === 'layer_norm' || k === 'layer_norm_grad')).toHaveLength(1);
  });
});
