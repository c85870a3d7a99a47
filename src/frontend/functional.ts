import { KilnError } from '../ir/errors.ts';
import { fmtShape } from '../ir/shape.ts';
import { badArg, boolArg, layerOptions, nonNegInt, pairArg, probability, type OptionSpec } from './nn/args.ts';
import { ones, tril } from './constants.ts';
import { adaptiveAvgPool, type Pool2dOptions } from './nn/pool.ts';
import { dropout as dropoutOp } from './nn/dropout.ts';
import { EMBEDDING_OPTIONS, embeddingOf } from './nn/embedding.ts';
import { epsArg, layerNormOn, shapeArg } from './nn/layer-norm.ts';
import { linearOn } from './nn/linear.ts';
import { callerLoc } from './source-loc.ts';
import { tableFunctions, type TableFunctions } from './table-api.ts';
import type { Tensor } from './tensor.ts';
import { currentTracer } from './tracer.ts';

type Pair = number | [number, number];

function dimOf(x: Tensor, dim: number | undefined, fn: string): number {
  if (dim === undefined) {
    throw new KilnError('args', `F.${fn} needs a dim`, callerLoc(), `pass the dimension to normalise, e.g. F.${fn}(x, 1)`);
  }
  const d = dim < 0 ? dim + x.ndim : dim;
  if (!Number.isInteger(d) || d < 0 || d >= x.ndim) badArg(`F.${fn}`, `dim ${dim} out of range for shape ${fmtShape(x.shape)}`);
  return d;
}

// torch.nn.functional's orders, which for max pooling differ from nn.MaxPool2d's.
const MAX_POOL: OptionSpec = { positional: ['stride', 'padding', 'dilation', 'ceilMode', 'returnIndices'], supported: ['stride', 'padding'], fixed: { dilation: 1, ceilMode: false, returnIndices: false } };
const AVG_POOL: OptionSpec = { positional: ['stride', 'padding', 'ceilMode', 'countIncludePad', 'divisorOverride'], supported: ['stride', 'padding'], fixed: { ceilMode: false, countIncludePad: true, divisorOverride: null } };

function pool(op: string, fn: string, spec: OptionSpec, x: Tensor, kernel: Pair, rest: readonly unknown[]): Tensor {
  const layer = `F.${fn}`;
  const { stride, padding } = layerOptions(layer, rest, spec) as Pool2dOptions;
  const k = pairArg(layer, 'kernel_size', kernel);
  return x.tracer.op(op, [x], { kernel: k, stride: pairArg(layer, 'stride', stride ?? kernel), padding: pairArg(layer, 'padding', padding ?? 0, nonNegInt) });
}

/** The arguments actually passed: trailing undefined ones dropped (so one options object reads as named). */
function trimmed(args: unknown[]): unknown[] {
  let n = args.length;
  while (n > 0 && args[n - 1] === undefined) n--;
  return args.slice(0, n);
}

const SDPA: OptionSpec = { positional: ['attnMask', 'dropoutP', 'isCausal', 'scale'], supported: ['dropoutP', 'isCausal', 'scale'], fixed: { attnMask: null } };

function attention(q: Tensor, k: Tensor, v: Tensor, rest: readonly unknown[]): Tensor {
  const fn = 'F.scaledDotProductAttention';
  const o = layerOptions(fn, rest, SDPA);
  const [qs, ks, vs] = [q.shape, k.shape, v.shape];
  const lead = (s: readonly number[]) => fmtShape(s.slice(0, -2));
  if (qs.length < 2 || ks.length !== qs.length || vs.length !== qs.length) badArg(fn, `query, key and value must have the same rank, at least 2 ([..., L, E]), got ${fmtShape(qs)}, ${fmtShape(ks)} and ${fmtShape(vs)}`);
  if (qs.at(-1) !== ks.at(-1) || ks.at(-2) !== vs.at(-2) || lead(qs) !== lead(ks) || lead(ks) !== lead(vs))
    badArg(fn, `query [..., L, E], key [..., S, E] and value [..., S, Ev] do not fit: ${fmtShape(qs)}, ${fmtShape(ks)}, ${fmtShape(vs)}`);
  const dropoutP = probability(fn, (o.dropoutP as number | undefined) ?? 0);
  const isCausal = boolArg(fn, 'isCausal', o.isCausal ?? false);
  const scale = o.scale ?? 1 / Math.sqrt(qs.at(-1)!);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) badArg(fn, `scale must be a finite number, got ${JSON.stringify(scale)}`);
  let s = q.matmul(k.transpose(-2, -1)).mul(scale);
  if (isCausal) s = s.maskedFill(tril(ones(qs.at(-2)!, ks.at(-2)!)).eq(0), -Infinity);
  const p = s.softmax(-1);
  return (dropoutP > 0 ? dropoutOp(p, dropoutP, true) : p).matmul(v);
}

/** torch.nn.functional, the subset kiln compiles: these, and the activations of the op table. */
const functions = {
  maxPool2d: (x: Tensor, kernelSize: Pair, stride?: Pair | null | Pool2dOptions, padding?: Pair, dilation?: 1, ceilMode?: false, returnIndices?: false): Tensor =>
    pool('max_pool2d', 'maxPool2d', MAX_POOL, x, kernelSize, trimmed([stride, padding, dilation, ceilMode, returnIndices])),
  avgPool2d: (x: Tensor, kernelSize: Pair, stride?: Pair | null | Pool2dOptions, padding?: Pair, ceilMode?: false, countIncludePad?: true, divisorOverride?: null): Tensor =>
    pool('avg_pool2d', 'avgPool2d', AVG_POOL, x, kernelSize, trimmed([stride, padding, ceilMode, countIncludePad, divisorOverride])),
  adaptiveAvgPool2d: (x: Tensor, outputSize: Pair): Tensor => adaptiveAvgPool('F.adaptiveAvgPool2d', x, pairArg('F.adaptiveAvgPool2d', 'output_size', outputSize)),
  /**
   * Unlike torch's F.dropout, whose `training` defaults to true even in eval, the default here
   * follows the mode being traced: the eval graph never drops.
   */
  dropout: (x: Tensor, p = 0.5, training?: boolean): Tensor => dropoutOp(x, probability('F.dropout', p), training ?? currentTracer('F.dropout').mode === 'train'),
  logSoftmax: (x: Tensor, dim?: number): Tensor => x.tracer.op('log_softmax', [x], { dim: dimOf(x, dim, 'logSoftmax') }),
  softmax: (x: Tensor, dim?: number): Tensor => x.tracer.op('softmax', [x], { dim: dimOf(x, dim, 'softmax') }),
  /** torch.nn.functional.linear(input, weight, bias=None): input [..., in], weight [out, in]. */
  linear: (input: Tensor, weight: Tensor, bias?: Tensor | null): Tensor => linearOn('F.linear', input, weight, bias ?? undefined),
  /** torch.nn.functional.embedding(input, weight): rows of weight [num, dim] at the ids of input [...]. */
  embedding: (input: Tensor, weight: Tensor, paddingIdx?: null, maxNorm?: null, normType?: 2, scaleGradByFreq?: false, sparse?: false): Tensor => {
    layerOptions('F.embedding', trimmed([paddingIdx, maxNorm, normType, scaleGradByFreq, sparse]), EMBEDDING_OPTIONS);
    return embeddingOf('F.embedding', input, weight);
  },
  /** torch.nn.functional.layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5). */
  layerNorm: (input: Tensor, normalized: number | number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor =>
    layerNormOn('F.layerNorm', input, shapeArg('F.layerNorm', normalized), weight ?? undefined, bias ?? undefined, epsArg('F.layerNorm', eps)),
  /**
   * torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=None,
   * dropout_p=0.0, is_causal=False, scale=None) as PyTorch 2 defines it, written out in the ops
   * the fusion pass reads back as one attention kernel: softmax(q·kᵀ·scale, -inf above the
   * diagonal when causal)·v, with dropout on the weights when dropoutP > 0 (in training and in
   * evaluation alike, as in PyTorch: pass 0 when not training).
   */
  scaledDotProductAttention: (query: Tensor, key: Tensor, value: Tensor, ...rest: unknown[]): Tensor => attention(query, key, value, trimmed(rest)),
  /** Mean cross-entropy of logits [N, classes] against class-index labels [N]. */
  crossEntropy: (logits: Tensor, labels: Tensor): Tensor => logits.tracer.op('cross_entropy', [logits, labels]),
};

export const F: typeof functions & TableFunctions = { ...functions, ...tableFunctions() };
