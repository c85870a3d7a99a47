import { KilnError } from '../ir/errors.ts';
import { fmtShape } from '../ir/shape.ts';
import { badArg, layerOptions, nonNegInt, pairArg, probability, type OptionSpec } from './nn/args.ts';
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
  /** Mean cross-entropy of logits [N, classes] against class-index labels [N]. */
  crossEntropy: (logits: Tensor, labels: Tensor): Tensor => logits.tracer.op('cross_entropy', [logits, labels]),
};

export const F: typeof functions & TableFunctions = { ...functions, ...tableFunctions() };
