import { describe, expect, it } from 'vitest';
import { nn } from '../../src/frontend/api.ts';
import { GraphBuilder } from '../../src/ir/builder.ts';
import type { Graph } from '../../src/ir/graph.ts';
import { KERNEL_KINDS } from '../../src/ir/kernels.ts';
import { getOp } from '../../src/ir/op.ts';
import { WASM_TARGET } from '../../src/codegen/wasm-simd/target.ts';
import { WEBGPU_PORTABLE } from '../../src/codegen/wgsl/target.ts';
import { fuse } from '../../src/passes/fuse.ts';
import type { KernelGraph } from '../../src/passes/kernel-graph.ts';
import { simplify } from '../../src/passes/simplify.ts';
import { modelGraphs, randomModel, sampleGraph } from './helpers.ts';
import { resolveOptimizer } from '../../src/frontend/training-options.ts';
import { trace } from '../../src/frontend/trace.ts';
import { buildTrainGraph } from '../../src/passes/train-graph.ts';

const kinds = (kg: KernelGraph) => kg.kernels.map((k) => k.kind);
const names = (kg: KernelGraph, vs: readonly number[]) => vs.map((v) => kg.values[v]!.name);
/** Storage buffers a kernel will bind: new values of persistent tensors it reads are written in place. */
const buffers = (kg: KernelGraph, i: number) => {
  const k = kg.kernels[i]!;
  const stateValue = new Map(kg.state.map((s) => [s.name, s.value]));
  const inPlace = new Set(Object.entries(kg.updates).filter(([n]) => k.inputs.includes(stateValue.get(n)!)).map(([, v]) => v));
  // Constants are literals and the step a uniform; every other tensor, one-element ones included, binds a buffer.
  return new Set([...k.inputs, ...k.outputs.filter((v) => !inPlace.has(v))].filter((v) => kg.values[v]!.constant === undefined && v !== kg.inputs.step)).size;
};

describe('fuse', () => {
  it('SimpleCNN train: conv block, linear + cross-entropy, linear grads, conv block grad, two Adam launches', async () => {
    const kg = fuse(simplify(await sampleGraph('simple-cnn', 'train', 64)), WEBGPU_PORTABLE);
    expect(kinds(kg)).toEqual(['conv_block', 'linear_cross_entropy', 'linear_grad', 'conv_block_grad', 'foreach', 'foreach']);
    const [conv, ce, lg, cg, opt] = kg.kernels;
    expect(conv!.ops).toEqual(['conv2d', 'relu', 'max_pool2d']);
    expect(names(kg, conv!.inputs)).toEqual(['x', 'conv1.weight', 'conv1.bias']);
    expect(conv!.outputs.map((v) => kg.values[v]!.shape)).toEqual([[64, 32, 13, 13], [64, 32, 13, 13]]); // pooled, argmax
    expect(ce!.ops).toEqual(['linear', 'cross_entropy', 'cross_entropy_grad']);
    expect(lg!.ops).toEqual(['matmul', 'matmul', 'sum']);
    expect(cg!.ops).toEqual(['max_pool2d_grad', 'relu_grad', 'conv2d_grad_weight', 'sum']);
    expect(cg!.attrs).toMatchObject({ saved: 'argmax', act: 'relu', pool: 'max', dx: false });
    // Adam for two parameters per launch: their p, g, m, v are eight buffers.
    expect(opt!.attrs).toEqual({ groups: 2, groupInputs: 4, groupOutputs: 3 });
    expect(names(kg, opt!.inputs)).toEqual(['conv1.weight.exp_avg', '%21', 'conv1.weight.exp_avg_sq', 'conv1.weight', 'conv1.bias.exp_avg', '%22', 'conv1.bias.exp_avg_sq', 'conv1.bias', 'step']);
    expect(opt!.expr!.steps.filter((s) => s.prim === 'pow1m')).toHaveLength(2);
    // No stand-alone elementwise kernel is left.
    expect(kinds(kg)).not.toContain('elementwise');
    kg.kernels.forEach((_, i) => expect(buffers(kg, i)).toBeLessThanOrEqual(8));
  });

  it('SimpleCNN eval: two kernels, and the forward writes no argmax nothing reads', async () => {
    const kg = fuse(simplify(await sampleGraph('simple-cnn', 'eval', 64)), WEBGPU_PORTABLE);
    expect(kinds(kg)).toEqual(['conv_block', 'linear_cross_entropy']);
    expect(kg.kernels[0]!.attrs.argmax).toBe(false);
    expect(kg.kernels[0]!.outputs).toHaveLength(1);
    expect(kg.kernels[1]!.attrs).toEqual({ bias: true, grad: false, gradScale: 1 });
  });

  it('MLP: ReLU and dropout ride on the linear layers, the masks on their input gradients', async () => {
    const kg = fuse(simplify(await sampleGraph('mlp', 'train', 64)), WEBGPU_PORTABLE);
    expect(kinds(kg)).toEqual(['linear_ew', 'linear_ew', 'linear_cross_entropy', 'linear_grad', 'linear_grad', 'linear_grad', 'foreach', 'foreach', 'foreach']);
    const first = kg.kernels[0]!;
    expect(first.ops).toEqual(['linear', 'relu', 'dropout']);
    // Both the ReLU output (the mask backward reads) and the dropout output (the next layer's input) are written.
    const steps = first.expr!.steps;
    expect(first.expr!.outputs.map((o) => steps[o]!.prim)).toEqual(['select', 'select']);
    expect(steps.filter((s) => s.prim === 'rng')).toHaveLength(1);
    const back = kg.kernels[4]!;
    expect(back.ops).toEqual(['matmul', 'matmul', 'sum', 'dropout', 'relu_grad']);
    // The dropout reads the input gradient (acc); one output, the masked gradient.
    expect(back.expr!.steps.some((s) => s.prim === 'acc')).toBe(true);
    expect(back.expr!.outputs).toHaveLength(1);
    expect(kg.kernels[5]!.attrs).toEqual({ bias: true, dx: false });
  });

  it('LeNet: independent small elementwise kernels of one phase share a launch; the optimizer packs by parameter', async () => {
    const kg = fuse(simplify(await sampleGraph('lenet', 'train', 64)), WEBGPU_PORTABLE);
    const ops = kg.kernels.filter((k) => k.kind === 'elementwise').map((k) => k.ops.join(' '));
    // The three step counters in one (the running statistics are batch_norm_stats epilogues).
    expect(ops).toContain('add add add');
    expect(ops.filter((o) => o.includes('axpby'))).toEqual([]);
    // 16 parameters, Adam, two per launch.
    expect(kinds(kg).filter((k) => k === 'foreach')).toHaveLength(8);
    kg.kernels.forEach((_, i) => expect(buffers(kg, i)).toBeLessThanOrEqual(8));
  });

  it("with no binding limit (the wasm target), one launch updates all 16 of LeNet's parameters", async () => {
    const kg = fuse(simplify(await sampleGraph('lenet', 'train', 64)), WASM_TARGET);
    expect(kg.kernels.filter((k) => k.kind === 'foreach').map((k) => k.attrs.groups)).toEqual([16]);
  });

  it("LeNet: each batch norm's statistics are one kernel, and its per-channel gradients (with dbeta's sum) another", async () => {
    const kg = fuse(simplify(await sampleGraph('lenet', 'train', 64)), WASM_TARGET);
    const of = (kind: string) => kg.kernels.filter((k) => k.kind === kind);
    // With the running-statistics update (running = (1-m)·running + m·stat, var unbiased) as an
    // epilogue over [C] that writes both running tensors in place, and the normalization, its
    // ReLU (and bn3's dropout) as an epilogue over x's shape.
    // The pool after bn1's and bn2's ReLU as their tail, each plane pooled as it is written; the
    // three step counters (num_batches_tracked += 1) ride in the first.
    const running = ['batch_mean', 'batch_var', 'axpby', 'mul', 'axpby'];
    const sorted = (ops: readonly string[]) => [...ops].sort();
    expect(of('batch_norm_stats').map((k) => sorted(k.ops))).toEqual(
      [[...running, 'add', 'add', 'add', 'batch_norm', 'relu', 'max_pool2d'], [...running, 'batch_norm', 'relu', 'avg_pool2d'], [...running, 'batch_norm', 'relu', 'dropout']].map(sorted),
    );
    expect(of('batch_norm_stats').map((k) => [k.attrs.pool, k.attrs.poolOf, k.attrs.scalarResults])).toEqual([['max', 0, 3], ['avg', 0, undefined], [undefined, undefined, undefined]]);
    // Written: the pool's output, the running statistics ([C]), the counters, then the ReLU's output (and the dropout's).
    expect(of('batch_norm_stats').map((k) => [k.attrs.xResults, k.outputs.length])).toEqual([[1, 9], [1, 6], [2, 6]]);
    expect(kinds(kg).filter((k) => k.includes('pool2d'))).toEqual([]);
    // With the input gradient from the partials (dx = g·γ·r + dvar·2(x-μ)/n + dmean/n) as an
    // epilogue over x's domain, and g itself, the ReLU's mask of the gradient, computed at each
    // element in both passes (gExpr): never written.
    // The pool after bn2's and bn1's ReLU: its backward too, made a plane at a time (gPool) and
    // written by the kernel where the pool's own kernel wrote it.
    const dx = ['add', 'add', 'batch_norm_grad', 'batch_var_grad', 'expand', 'mul'];
    const own = ['relu_grad', 'batch_norm_grad', 'batch_norm_grad', 'batch_norm_grad', ...dx, 'sum'];
    expect(of('batch_norm_grad_stats').map((k) => [...k.ops].sort())).toEqual([own, [...own, 'avg_pool2d_grad'], [...own, 'max_pool2d_grad']].map((o) => o.sort()));
    expect(of('batch_norm_grad_stats').map((k) => [k.attrs.gExpr, k.attrs.gPool])).toEqual([[true, undefined], [true, 'avg'], [true, 'max']]);
    expect(of('batch_norm_grad_stats').map((k) => k.outputs.length)).toEqual([5, 6, 6]);

    expect(kinds(kg).filter((k) => k === 'elementwise')).toHaveLength(0);
    // Nothing of them is left running alone.
    expect(kinds(kg).filter((k) => k === 'batch_mean' || k === 'batch_var' || k === 'batch_norm_grad' || k === 'sum')).toEqual([]);
    // Under WebGPU's 8 buffers the five inputs and four outputs do not fit: dbeta stays a sum.
    const gpu = fuse(simplify(await sampleGraph('lenet', 'train', 64)), WEBGPU_PORTABLE);
    expect(gpu.kernels.filter((k) => k.kind === 'batch_norm_grad_stats').map((k) => [k.attrs.dbeta, k.attrs.gExpr])).toEqual(Array(3).fill([false, false]));
    expect(kinds(gpu).filter((k) => k === 'batch_norm_stats')).toHaveLength(3);
  });

  it('every kernel kind is a documented fused kind or an op of the op table', async () => {
    for (const g of [await sampleGraph('lenet', 'train'), await sampleGraph('lenet', 'eval')]) {
      for (const k of fuse(simplify(g), WASM_TARGET).kernels) expect(k.kind in KERNEL_KINDS || getOp(k.kind) !== undefined).toBe(true);
    }
  });

  it('splits by exception: a ReLU output read elsewhere is written, and the pool stays apart', () => {
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [2, 1, 6, 6] });
    const w = b.addState({ name: 'w', shape: [3, 1, 3, 3], kind: 'param', init: { kind: 'constant', value: 0.1 } });
    const r = b.op('relu', [b.op('conv2d', [x, w], { stride: [1, 1], padding: [0, 0] })]);
    const p = b.op('max_pool2d', [r], { kernel: [2, 2], stride: [2, 2], padding: [0, 0] });
    const out = b.op('add', [b.op('sum', [r], { axes: [2, 3], keepdim: false }), b.op('sum', [p], { axes: [2, 3], keepdim: false })]);
    const g: Graph = { stage: 'eval', nodes: b.nodes, state: b.state, inputs: { x }, outputs: { logits: out }, updates: {}, grads: {}, batchSize: 2 };
    const kg = fuse(g, WASM_TARGET);
    expect(kinds(kg)).toEqual(['conv_block', 'max_pool2d', 'sum', 'sum', 'elementwise']);
    expect(kg.kernels[0]!.attrs).toMatchObject({ act: 'relu', pool: 'none' });
  });

  // Found by the fuzzer (test/fuzz): `y = x.mul(2); y.add(relu(fc(y)))` merged the mul into the
  // linear's epilogue kernel, which then read y as the linear's input while writing it.
  it("never merges the producer of a linear layer's input into that layer's epilogue", () => {
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [4, 6] });
    const w = b.addState({ name: 'w', shape: [6, 6], kind: 'param', init: { kind: 'constant', value: 0.1 } });
    const y = b.op('mul', [x, b.constant(2)]);
    const out = b.op('add', [y, b.op('relu', [b.op('linear', [y, w])])]);
    const g: Graph = { stage: 'eval', nodes: b.nodes, state: b.state, inputs: { x }, outputs: { logits: out }, updates: {}, grads: {}, batchSize: 4 };
    const kg = fuse(g, WASM_TARGET);
    kg.kernels.forEach((k) => expect(k.inputs.filter((v) => k.outputs.includes(v)), `${k.kind} reads what it writes`).toEqual([]));
    expect(kinds(kg)).toEqual(['elementwise', 'linear_ew']);
  });

  // Found by the fuzzer (test/fuzz): one-element tensors (a one-channel 1×1 convolution's weight
  // and bias) were counted as binding nothing, though a WGSL shader binds them like any tensor;
  // a launch of 16 Adam updates bound 32 storage buffers where 16 were allowed.
  it('packs optimizer updates within the limit when parameter sizes differ', () => {
    const { train } = modelGraphs(() => new nn.Sequential(new nn.Conv2d(1, 1, 1), new nn.Conv2d(1, 3, 3), new nn.Flatten(), new nn.Linear(3 * 4 * 4, 5), new nn.Linear(5, 5), new nn.Linear(5, 3)), [1, 6, 6], 2);
    const kg = fuse(simplify(train), WEBGPU_PORTABLE);
    expect(kinds(kg)).toContain('foreach');
    kg.kernels.forEach((k, i) => expect(buffers(kg, i), `${k.kind} ${i}`).toBeLessThanOrEqual(WEBGPU_PORTABLE.maxStorageBuffers));
  });

  it("AdamW under a schedule still updates every parameter in one launch (its 1 - lr·wd is computed once and shared)", () => {
    const make = () => new nn.Sequential(new nn.Flatten(), new nn.Linear(16, 8), new nn.ReLU(), new nn.Linear(8, 4));
    const optimizer = resolveOptimizer({ type: 'adamw', lr: 1e-3, weightDecay: 0.05 }, (m) => {
      throw new Error(m);
    }, { kind: 'cosine' });
    const train = buildTrainGraph(trace(make(), { input: [1, 4, 4], batchSize: 2, mode: 'train' }), optimizer);
    const kg = fuse(simplify(train), WASM_TARGET);
    expect(kg.kernels.filter((k) => k.kind === 'foreach').map((k) => k.attrs.groups)).toEqual([4]);
    expect(kg.kernels.filter((k) => k.kind === 'elementwise').map((k) => k.ops.join(' '))).toEqual(['mul sub']);
  });

  it('respects a tighter storage-buffer limit by fusing less', async () => {
    const g = simplify(await sampleGraph('simple-cnn', 'train', 8));
    const kg = fuse(g, { maxStorageBuffers: 4 });
    kg.kernels.forEach((_, i) => expect(buffers(kg, i)).toBeLessThanOrEqual(4));
    // The conv block (x, w, b, y, argmax) and linear + cross-entropy (x, w, b, labels, logits,
    // dlogits) do not fit; cross-entropy alone does. One Adam group binds four buffers: no packing.
    expect(kinds(kg)).not.toContain('conv_block');
    expect(kinds(kg)).toContain('softmax_cross_entropy');
    expect(kinds(kg).filter((k) => k === 'elementwise').length).toBeGreaterThanOrEqual(4);
    expect(kinds(kg)).not.toContain('foreach');
  });

  it.each([WEBGPU_PORTABLE, WASM_TARGET].map((t) => [t.name, t] as const))('random models, %s: kernels in a runnable order, within the limit, covering every computed node', (_, target) => {
    for (let seed = 0; seed < 40; seed++) {
      const m = randomModel(seed);
      for (const g of Object.values(modelGraphs(m.make, m.input, 3))) {
        const s = simplify(g);
        const kg = fuse(s, target);
        const written = new Set(s.nodes.filter((n) => ['input', 'param', 'const'].includes(n.op)).map((n) => n.id));
        const base = (v: number): number => (kg.values[v]!.viewOf === undefined ? v : base(kg.values[v]!.viewOf!));
        kg.kernels.forEach((k, i) => {
          for (const v of k.inputs) expect(written.has(base(v)), `${m.describe}: kernel ${i} reads ${kg.values[v]!.name} before it is written`).toBe(true);
          for (const v of k.outputs) written.add(v);
          expect(buffers(kg, i)).toBeLessThanOrEqual(target.maxStorageBuffers);
        });
        const ops = s.nodes.filter((n) => !['input', 'param', 'const', 'reshape'].includes(n.op)).map((n) => n.op).sort();
        expect(kg.kernels.flatMap((k) => k.ops).sort(), m.describe).toEqual(ops);
      }
    }
  });
});
