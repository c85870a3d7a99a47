import type { Attrs, Node } from '../../ir/graph.ts';
import { foreachGroups, headRow, headView, KERNEL_KINDS, splitLinearCrossEntropy, statsEpilogue, type ConvAttrs, type FusedKind } from '../../ir/kernels.ts';
import { getOp } from '../../ir/op.ts';
import type { Expr, Kernel } from '../../ir/program.ts';
import { splitFirst } from '../../ir/expr.ts';
import { numel, type Shape } from '../../ir/shape.ts';
import { evalExpr } from '../../ir/eval-expr.ts';
import { referenceKernels, type KernelContext } from './kernels/index.ts';
import { argmax, eachCell } from './kernels/pool.ts';
import { convBlockPoolAttrs as poolAttrs, poolWindow } from '../../ir/ops/pool.ts';

/** A tensor in the reference backend: f32 data and its shape. */
export interface Tensor {
  readonly data: Float32Array;
  readonly shape: Shape;
}

/** Runs one op of the op table with its reference kernel into a fresh f32 tensor. */
export function runOp(op: string, attrs: Attrs, ins: readonly Tensor[], ctx: KernelContext, shape?: Shape): Tensor {
  const kernel = referenceKernels[op];
  if (!kernel) throw new Error(`reference backend: no kernel for op '${op}'`);
  const out = shape ?? getOp(op).shape(ins.map((t) => t.shape), attrs);
  const node: Node = { id: -1, op, inputs: [], attrs, shape: out, phase: 'forward' };
  const data = new Float32Array(numel(out));
  kernel(data, ins.map((t) => t.data), node, ins.map((t) => t.shape), ctx);
  return { data, shape: out };
}

/** A kernel's expression over `domain`, into fresh f32 tensors (each step rounded, as a backend stores it). */
function runExpr(expr: Expr, operands: readonly Tensor[], acc: Tensor | undefined, domain: Shape, ctx: KernelContext): Tensor[] {
  const outs = expr.outputs.map(() => new Float32Array(numel(domain)));
  evalExpr(expr, { domain, operands, acc: acc?.data, seed: ctx.seed }, outs, true);
  return outs.map((data) => ({ data, shape: domain }));
}

/** A kernel's expression where its attrs make one required. */
function needExpr(k: Kernel, expr: Expr | undefined): Expr {
  if (!expr) throw new Error(`${k.name}: ${k.kind} with gExpr has no expression`);
  return expr;
}

const scalar = (v: number): Tensor => ({ data: Float32Array.of(v), shape: [] });
const view = (t: Tensor, shape: Shape): Tensor => ({ data: t.data, shape });
const poolOp = (pool: 'max' | 'avg') => (pool === 'max' ? 'max_pool2d' : 'avg_pool2d');

/** The block's activation before pooling: conv2d, then ReLU when act = relu. */
function activation(a: ConvAttrs, x: Tensor, w: Tensor, b: Tensor | undefined, ctx: KernelContext): Tensor {
  const c = runOp('conv2d', { stride: a.stride, padding: a.padding }, b ? [x, w, b] : [x, w], ctx);
  return a.act === 'relu' ? runOp('relu', {}, [c], ctx) : c;
}

export type FusedKernel = (k: Kernel, ins: readonly Tensor[], ctx: KernelContext) => Tensor[];

/** The kernel over the tensors its input slices hold, for its kind's view. */
const over = (k: Kernel, ins: readonly Tensor[]) => ({ ...k, inputs: ins });

/**
 * Every fused kind of src/ir/kernels.ts, as the ops it fuses run one after another with the op
 * kernels: obviously what the unfused graph computes, value for value. Only the argmax is new
 * code, and it uses the max-pool kernel's own window rule.
 */
export const fusedKernels: { readonly [K in FusedKind]: FusedKernel } = {
  copy: (k, ins) => {
    const { src } = KERNEL_KINDS.copy.read(over(k, ins)).inputs;
    return [{ data: Float32Array.from(src.data), shape: src.shape }];
  },

  elementwise: (k, ins, ctx) => {
    const { expr, outputs } = KERNEL_KINDS.elementwise.read(over(k, ins));
    return runExpr(expr, ins, undefined, outputs.results[0]!.shape, ctx);
  },

  foreach: (k, ins, ctx) => {
    const { expr, groups } = foreachGroups(over(k, ins));
    return groups.flatMap((g) => runExpr(expr, g.inputs, undefined, g.outputs[0]!.shape, ctx));
  },

  linear_ew: (k, ins, ctx) => {
    const { inputs: { x, w, b }, expr } = KERNEL_KINDS.linear_ew.read(over(k, ins));
    const acc = runOp('linear', {}, b ? [x, w, b] : [x, w], ctx);
    return runExpr(expr, ins, acc, acc.shape, ctx);
  },

  linear_grad: (k, ins, ctx) => {
    const { attrs, inputs: { g, x, w }, expr } = KERNEL_KINDS.linear_grad.read(over(k, ins));
    const out = [runOp('matmul', { transA: true, transB: false }, [g, x], ctx)];
    if (attrs.bias) out.push(runOp('sum', { axes: [0], keepdim: false }, [g], ctx));
    if (!attrs.dx) return out;
    const dx = runOp('matmul', { transA: false, transB: false }, [g, w!], ctx);
    return [...out, ...(expr ? runExpr(expr, ins, dx, dx.shape, ctx) : [dx])];
  },

  layer_norm_ew: (k, ins, ctx) => {
    const { attrs: { eps, dims, grad }, inputs: { g, x }, expr } = KERNEL_KINDS.layer_norm_ew.read(over(k, ins));
    const acc = grad ? runOp('layer_norm_grad', { eps, dims }, [g!, x], ctx) : runOp('layer_norm', { eps, dims }, [x], ctx);
    return runExpr(expr, ins, acc, acc.shape, ctx);
  },

  layer_norm_backward: (k, ins, ctx) => {
    const { attrs: { eps, dims, bias }, inputs: { g, x, xhat, w }, expr } = KERNEL_KINDS.layer_norm_backward.read(over(k, ins));
    const sums = [runOp('sum_to', { shape: w.shape }, [runOp('mul', {}, [g, xhat], ctx)], ctx), ...(bias ? [runOp('sum_to', { shape: w.shape }, [g], ctx)] : [])];
    const dx = runOp('layer_norm_grad', { eps, dims }, [runOp('mul', {}, [g, w], ctx), x], ctx);
    return [...sums, ...(expr ? runExpr(expr, ins, dx, dx.shape, ctx) : [dx])];
  },

  softmax_cross_entropy: (k, ins, ctx) => {
    const { attrs, inputs: { logits, labels } } = KERNEL_KINDS.softmax_cross_entropy.read(over(k, ins));
    return crossEntropy(attrs, logits, labels, ctx);
  },

  linear_cross_entropy: (k, ins, ctx) => {
    const { attrs, inputs: { x, w, b, labels } } = KERNEL_KINDS.linear_cross_entropy.read(over(k, ins));
    const logits = runOp('linear', {}, b ? [x, w, b] : [x, w], ctx);
    const forward = [logits, ...crossEntropy(attrs, logits, labels, ctx)];
    if (!attrs.backward) return forward;
    const { backward } = splitLinearCrossEntropy(over(k, ins), () => forward[2]!);
    return [...forward, ...fusedKernels.linear_grad({ ...k, ...backward, inputs: [], expr: backward.expr }, backward.inputs, ctx)];
  },

  batch_norm_stats: (k, ins, ctx) => {
    const { attrs: a, inputs: { x, operands }, expr } = KERNEL_KINDS.batch_norm_stats.read(over(k, ins));
    const mean = runOp('batch_mean', {}, [x], ctx);
    const v = runOp('batch_var', {}, [x, mean], ctx);
    if (!expr) return [mean, v];
    const parts = statsEpilogue(a, expr);
    const run = (e: Expr, domain: Shape) => (e.outputs.length ? runExpr(e, [mean, v, ...operands], undefined, domain, ctx) : []);
    const wide = run(parts.wide, x.shape);
    const pool = a.pool && { kernel: a.poolKernel!, stride: a.poolStride!, padding: a.poolPadding! };
    const pooled = pool ? [runOp(poolOp(a.pool!), pool, [wide[a.poolOf!]!], ctx)] : [];
    return [mean, v, ...pooled, ...run(parts.channel, mean.shape), ...run(parts.scalar, []), ...wide];
  },

  batch_norm_grad_stats: (k, ins, ctx) => {
    const { attrs: a, inputs: { g: gIn, x, mean, var: v, gamma, gPooled, poolIn }, expr } = KERNEL_KINDS.batch_norm_grad_stats.read(over(k, ins));
    const parts = a.gExpr ? splitFirst(needExpr(k, expr)) : undefined;
    // With gPool the expression reads the pool's backward where it names gPooled.
    const pool = a.gPool && { kernel: a.poolKernel!, stride: a.poolStride!, padding: a.poolPadding! };
    const pooled = pool && gPooled && (a.gPool === 'max' ? runOp('max_pool2d_grad', pool, [gPooled, poolIn!], ctx) : runOp('avg_pool2d_grad', { ...pool, shape: x.shape }, [gPooled], ctx));
    const read = ins.map((t) => (pooled && t === gPooled ? pooled : t));
    const g = parts ? runExpr(parts.first, read, undefined, x.shape, ctx)[0]! : gIn!;
    const partial = (wrt: string) => runOp('batch_norm_grad', { eps: a.eps, wrt }, [g, x, mean, v, gamma], ctx);
    const partials = [
      ...(a.dgamma ? [partial('gamma')] : []),
      ...(a.dbeta ? [runOp('sum', { axes: x.shape.length === 4 ? [0, 2, 3] : [0], keepdim: false }, [g], ctx)] : []),
      ...(a.dmean ? [partial('mean')] : []),
      ...(a.dvar ? [partial('var')] : []),
    ];
    const rest = parts ? parts.rest : expr;
    return [...partials, ...(pooled ? [pooled] : []), ...(rest && rest.outputs.length ? runExpr(rest, [...read, ...partials], undefined, x.shape, ctx) : [])];
  },

  attention: (k, ins, ctx) => {
    const { attrs: a, inputs } = KERNEL_KINDS.attention.read(over(k, ins));
    const [q, key, v] = [throughView(inputs.q, a.qView), throughView(inputs.k, a.kView), throughView(inputs.v, a.vView)];
    const { kept, masked } = attentionWeights(a, q, key, inputs.step, ctx);
    const y = intoView(runOp('matmul', { transA: false, transB: false }, [kept, v], ctx), k.outputs[0]!.shape, a.yView);
    return a.lse ? [y, logSumExp(masked)] : [y];
  },

  attention_grad: (k, ins, ctx) => {
    const { attrs: a, inputs } = KERNEL_KINDS.attention_grad.read(over(k, ins));
    const [dy, q, key, v, step] = [throughView(inputs.dy, a.dyView), throughView(inputs.q, a.qView), throughView(inputs.k, a.kView), throughView(inputs.v, a.vView), inputs.step];
    // p again, by the same ops (the forward's values bit for bit), then the chain's gradients.
    const { p, kept, mask } = attentionWeights(a, q, key, step, ctx);
    const mm = (x: Tensor, y: Tensor, transA: boolean, transB: boolean) => runOp('matmul', { transA, transB }, [x, y], ctx);
    let dp = mm(dy, v, false, true);
    if (a.dropout) dp = runOp('dropout', { p: a.p!, stream: a.stream! }, [dp, step!], ctx);
    let ds = runOp('softmax_grad', { dim: p.shape.length - 1 }, [dp, p], ctx);
    if (mask) ds = runOp('where_grad2', {}, [ds, mask], ctx);
    ds = runOp(a.divide ? 'div' : 'mul', {}, [ds, scalar(a.scale)], ctx);
    const grads = [mm(ds, key, false, false), a.dkTransposed ? mm(q, ds, true, false) : mm(ds, q, true, false), mm(kept, dy, true, false)];
    if (!a.dqkv) return grads;
    const shape = k.outputs[0]!.shape;
    const dqkv = { data: new Float32Array(numel(shape)), shape };
    [a.dqView, a.dkView, a.dvView].forEach((view, i) => intoView(grads[i]!, shape, view, dqkv.data));
    return [dqkv];
  },

  conv_block: (k, ins, ctx) => {
    const { attrs: at, inputs: { x, w, b } } = KERNEL_KINDS.conv_block.read(over(k, ins));
    const a = activation(at, x, w, b, ctx);
    if (at.pool === 'none') return [a];
    const y = runOp(poolOp(at.pool), poolAttrs(k.attrs), [a], ctx);
    if (!at.argmax) return [y];
    const idx = new Float32Array(y.data.length);
    const win = poolWindow(k.attrs, 'pool');
    eachCell(a.shape, y.shape, (o, plane, oh, ow) => {
      idx[o] = argmax(a.data, plane, a.shape[2]!, a.shape[3]!, oh, ow, win) - plane;
    });
    return [y, { data: idx, shape: y.shape }];
  },

  conv_block_grad: (k, ins, ctx) => {
    const { attrs: at, inputs, outputs } = KERNEL_KINDS.conv_block_grad.read(over(k, ins));
    const { y, argmax: idx, x, w, b } = inputs;
    const wShape = outputs.dw.shape;
    const aShape = getOp('conv2d').shape([x.shape, wShape], k.attrs);
    const yShape = at.pool === 'none' ? aShape : getOp(poolOp(at.pool)).shape([aShape], poolAttrs(k.attrs));
    const gy = inputs.g2 ? view(runOp('matmul', { transA: false, transB: false }, [inputs.g2, inputs.w2!], ctx), yShape) : inputs.gy!;
    let gc: Tensor;
    if (at.saved === 'argmax') {
      // Routes each cell's gradient to its stored argmax (overlapping windows add, in f64 like
      // max_pool2d_grad), then applies the ReLU mask: the activation there is y, the maximum.
      const acc = new Float64Array(numel(aShape));
      const cells = yShape[2]! * yShape[3]!;
      const position = (o: number) => Math.floor(o / cells) * aShape[2]! * aShape[3]! + idx!.data[o]!;
      for (let o = 0; o < gy.data.length; o++) acc[position(o)]! += gy.data[o]!;
      const data = Float32Array.from(acc);
      if (at.act === 'relu') for (let o = 0; o < gy.data.length; o++) if (!(y!.data[o]! > 0)) data[position(o)] = 0;
      gc = { data, shape: aShape };
    } else if (at.saved === 'output') {
      gc = runOp('relu_grad', {}, [gy, y!], ctx);
    } else {
      const a = at.saved === 'recompute' ? activation(at, x, w!, b, ctx) : undefined;
      const ga = at.pool === 'max' ? runOp('max_pool2d_grad', poolAttrs(k.attrs), [gy, a!], ctx) : at.pool === 'avg' ? runOp('avg_pool2d_grad', { ...poolAttrs(k.attrs), shape: aShape }, [gy], ctx) : gy;
      gc = at.act === 'relu' ? runOp('relu_grad', {}, [ga, a!], ctx) : ga;
    }
    const conv = { stride: at.stride, padding: at.padding };
    return [
      runOp('conv2d_grad_weight', { ...conv, shape: wShape }, [gc, x], ctx),
      ...(at.bias ? [runOp('sum', { axes: [0, 2, 3], keepdim: false }, [gc], ctx)] : []),
      ...(at.dx ? [runOp('conv2d_grad_input', { ...conv, shape: x.shape }, [gc, w!], ctx)] : []),
    ];
  },
};

/**
 * Attention's weights by the ops of the unfused graph: scores q·kᵀ, scaled (or divided), the
 * causal mask's -inf (where, with the mask 1 above the diagonal), softmax along the last axis, and
 * dropout. Returns the masked scores (for the logsumexp), p, the kept weights and the mask.
 */
/** The [B, H, T, D] tensor an attention operand is read as, through its view (src/ir/kernels.ts: headView). */
function throughView(t: Tensor, view: readonly number[] | undefined): Tensor {
  if (!view) return t;
  const v = headView(t.shape, view);
  const [L, T, D] = [numel(v.shape) / (v.shape[2]! * v.shape[3]!), v.shape[2]!, v.shape[3]!];
  const data = new Float32Array(L * T * D);
  for (let l = 0; l < L; l++) for (let i = 0; i < T; i++) data.set(t.data.subarray(headRow(v, l, i), headRow(v, l, i) + D), (l * T + i) * D);
  return { data, shape: v.shape };
}

/** The output slice of shape `shape` that holds y [B, H, T, D] through its view (written into `data`, when given). */
function intoView(y: Tensor, shape: Shape, view: readonly number[] | undefined, data = new Float32Array(numel(shape))): Tensor {
  if (!view) return y;
  const v = headView(shape, view);
  const [T, D] = [v.shape[2]!, v.shape[3]!];
  for (let l = 0; l < y.data.length / (T * D); l++) for (let i = 0; i < T; i++) data.set(y.data.subarray((l * T + i) * D, (l * T + i + 1) * D), headRow(v, l, i));
  return { data, shape };
}

function attentionWeights(a: { causal: boolean; scale: number; divide: boolean; dropout: boolean; p?: number; stream?: number }, q: Tensor, k: Tensor, step: Tensor | undefined, ctx: KernelContext) {
  let s = runOp(a.divide ? 'div' : 'mul', {}, [runOp('matmul', { transA: false, transB: true }, [q, k], ctx), scalar(a.scale)], ctx);
  const [T, S] = s.shape.slice(-2) as [number, number];
  const mask = a.causal ? { data: Float32Array.from({ length: T * S }, (_, i) => Number(i % S > Math.floor(i / S))), shape: [T, S] } : undefined;
  if (mask) s = runOp('where', {}, [mask, scalar(-Infinity), s], ctx);
  const p = runOp('softmax', { dim: s.shape.length - 1 }, [s], ctx);
  const kept = a.dropout ? runOp('dropout', { p: a.p!, stream: a.stream! }, [p, step!], ctx) : p;
  return { masked: s, p, kept, mask };
}

/** Each row's logsumexp (max + log Σ exp(x - max), in f64) over the last axis: what the backends' backward recomputes p from. */
function logSumExp(x: Tensor): Tensor {
  const n = x.shape.at(-1)!;
  const out = new Float32Array(x.data.length / n);
  for (let r = 0; r < out.length; r++) {
    const row = x.data.subarray(r * n, (r + 1) * n);
    const max = row.reduce((m, v) => Math.max(m, v), -Infinity);
    out[r] = max + Math.log(row.reduce((t, v) => t + Math.exp(v - max), 0));
  }
  return { data: out, shape: x.shape.slice(0, -1) };
}

function crossEntropy(a: { readonly grad: boolean; readonly gradScale: number }, logits: Tensor, labels: Tensor, ctx: KernelContext): Tensor[] {
  const loss = runOp('cross_entropy', {}, [logits, labels], ctx);
  if (!a.grad) return [loss];
  return [loss, runOp('cross_entropy_grad', {}, [scalar(a.gradScale), logits, labels], ctx)];
}
