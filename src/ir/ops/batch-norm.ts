import { defineElementwise, P, type V } from '../elementwise.ts';
import type { Attrs } from '../graph.ts';
import { defineOp, num } from '../op.ts';
import { fmtShape, numel, type Shape } from '../shape.ts';

// Batch norm is split into statistics and normalisation so that training (batch statistics) and
// evaluation (running statistics) share one normalisation op, and autodiff composes the full
// gradient from simple rules. Channels are axis 1 of [N, C] or [N, C, H, W].

function channels(name: string, x: Shape): number {
  if (x.length !== 2 && x.length !== 4) throw new Error(`${name} expects [N, C] or [N, C, H, W], got ${fmtShape(x)}`);
  return x[1]!;
}

/** Reshape a per-channel [C] tensor so it broadcasts against x. */
export function channelView(x: Shape): number[] {
  return x.map((d, i) => (i === 1 ? d : 1));
}

export function reduceAxes(x: Shape): number[] {
  return x.length === 4 ? [0, 2, 3] : [0];
}

export const batchMean = defineOp({
  name: 'batch_mean',
  doc: 'per-channel mean over N (and H, W)',
  arity: 1,
  shape: ([x]) => [channels('batch_mean', x!)],
  flops: ([x]) => numel(x!),
  grad: (b, n, g) => {
    const x = b.node(n.inputs[0]!).shape;
    const spread = b.op('expand', [b.op('reshape', [g], { shape: channelView(x) })], { shape: x });
    return [b.op('mul', [spread, b.op('const', [], { value: x[1]! / numel(x) })])];
  },
});

/** Biased variance, as the batch-norm forward uses; `mean` must be batch_mean(x). */
export const batchVar = defineOp({
  name: 'batch_var',
  doc: 'per-channel biased variance given the mean',
  arity: 2,
  shape: ([x, mean]) => {
    const c = channels('batch_var', x!);
    if (mean!.length !== 1 || mean![0] !== c) throw new Error(`batch_var mean ${fmtShape(mean!)} does not match ${c} channels`);
    return [c];
  },
  flops: ([x]) => 3 * numel(x!),
  // d var/d mean = -2·mean(x - mean) is exactly zero because mean is the batch mean.
  grad: (b, n, g) => [b.op('batch_var_grad', [g, n.inputs[0]!, n.inputs[1]!]), undefined],
});

export const batchVarGrad = defineElementwise({
  name: 'batch_var_grad',
  doc: 'g[c]·2(x - mean[c])/count',
  arity: 3,
  channel: [0, 2],
  shape: ([, x]) => x!,
  template: ([g, x, mean], _, { out }) => P.div(P.mul(P.mul(g!, 2), P.sub(x!, mean!)), numel(out) / out[1]!),
});

/** 1/sqrt(var + eps), per channel. */
const invStd = (v: V, attrs: Attrs) => P.div(1, P.sqrt(P.add(v, num(attrs, 'eps'))));

/** (x - mean)/sqrt(var + eps)·gamma + beta, per channel. */
export const batchNorm = defineElementwise({
  name: 'batch_norm',
  doc: 'normalise x per channel with (mean, var), then scale by gamma and shift by beta',
  arity: 5,
  channel: [1, 2, 3, 4],
  shape: ([x, ...perChannel], a) => {
    const c = channels('batch_norm', x!);
    num(a, 'eps');
    for (const s of perChannel) if (s!.length !== 1 || s![0] !== c) throw new Error(`batch_norm expects ${c} channels, got a per-channel tensor of shape ${fmtShape(s!)}`);
    return x!;
  },
  template: ([x, mean, v, gamma, beta], a) => P.add(P.mul(P.mul(P.sub(x!, mean!), invStd(v!, a)), gamma!), beta!),
  grad: (b, n, g) => {
    const [x, mean, v, gamma] = n.inputs;
    const ins = [g, x!, mean!, v!, gamma!];
    const wrt = (w: string) => b.op('batch_norm_grad', ins, { eps: n.attrs.eps!, wrt: w });
    return [wrt('x'), wrt('mean'), wrt('var'), wrt('gamma'), b.op('sum', [g], { axes: reduceAxes(b.node(x!).shape), keepdim: false })];
  },
});

/**
 * Partial derivatives of batch_norm, one input at a time (`wrt`), holding the others fixed:
 * x: g·γ·r; mean: -Σ g·γ·r; var: -½ Σ g·γ·(x-μ)·r³; gamma: Σ g·(x-μ)·r, with r = 1/sqrt(var+eps).
 */
export const batchNormGrad = defineElementwise({
  name: 'batch_norm_grad',
  doc: 'partial derivative of batch_norm with respect to one input',
  arity: 5,
  channel: [2, 3, 4],
  // Only the x partial is elementwise; the others are per-channel sums (a reduction kernel).
  when: (a) => a.wrt === 'x',
  template: ([g, , , v, gamma], a) => (a.wrt === 'x' ? P.mul(P.mul(g!, gamma!), invStd(v!, a)) : undefined),
  flops: ([, x]) => 4 * numel(x!),
  shape: ([, x], a) => {
    const wrt = a.wrt;
    if (wrt === 'x') return x!;
    if (wrt === 'mean' || wrt === 'var' || wrt === 'gamma') return [x![1]!];
    throw new Error(`batch_norm_grad: unknown wrt ${String(wrt)}`);
  },
});
