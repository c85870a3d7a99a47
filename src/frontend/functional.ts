import { KilnError } from '../ir/errors.ts';
import { fmtShape } from '../ir/shape.ts';
import { badArg, nonNegInt, pairArg, probability } from './nn/args.ts';
import { dropout as dropoutOp } from './nn/dropout.ts';
import { callerLoc } from './source-loc.ts';
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

function pool(op: string, fn: string, x: Tensor, kernel: Pair, stride?: Pair | null, padding: Pair = 0): Tensor {
  const k = pairArg(`F.${fn}`, 'kernel_size', kernel);
  return x.tracer.op(op, [x], { kernel: k, stride: pairArg(`F.${fn}`, 'stride', stride ?? kernel), padding: pairArg(`F.${fn}`, 'padding', padding, nonNegInt) });
}

/** torch.nn.functional, the subset kiln compiles. */
export const F = {
  relu: (x: Tensor): Tensor => x.relu(),
  maxPool2d: (x: Tensor, kernelSize: Pair, stride?: Pair | null, padding: Pair = 0): Tensor => pool('max_pool2d', 'maxPool2d', x, kernelSize, stride, padding),
  avgPool2d: (x: Tensor, kernelSize: Pair, stride?: Pair | null, padding: Pair = 0): Tensor => pool('avg_pool2d', 'avgPool2d', x, kernelSize, stride, padding),
  /**
   * Unlike torch's F.dropout, whose `training` defaults to true even in eval, the default here
   * follows the mode being traced: the eval graph never drops.
   */
  dropout: (x: Tensor, p = 0.5, training?: boolean): Tensor => dropoutOp(x, probability('F.dropout', p), training ?? currentTracer('F.dropout').mode === 'train'),
  logSoftmax: (x: Tensor, dim?: number): Tensor => x.tracer.op('log_softmax', [x], { dim: dimOf(x, dim, 'logSoftmax') }),
  softmax: (x: Tensor, dim?: number): Tensor => x.tracer.op('softmax', [x], { dim: dimOf(x, dim, 'softmax') }),
  /** Mean cross-entropy of logits [N, classes] against class-index labels [N]. */
  crossEntropy: (logits: Tensor, labels: Tensor): Tensor => logits.tracer.op('cross_entropy', [logits, labels]),
};
