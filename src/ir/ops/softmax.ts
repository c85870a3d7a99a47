import { defineOp, num } from '../op.ts';
import { fmtShape, numel, sameShape, type Shape } from '../shape.ts';
import type { Attrs } from '../graph.ts';

function alongDim(name: string, [x]: readonly Shape[], a: Attrs): Shape {
  const dim = num(a, 'dim');
  if (!Number.isInteger(dim) || dim < 0 || dim >= x!.length) throw new Error(`${name}: dim ${dim} out of range for ${fmtShape(x!)}`);
  return x!;
}

const gradShape = (name: string) => ([g, y]: readonly Shape[]) => {
  if (!sameShape(g!, y!)) throw new Error(`${name}: ${fmtShape(g!)} vs ${fmtShape(y!)}`);
  return g!;
};

export const logSoftmax = defineOp({
  name: 'log_softmax',
  doc: 'x - logsumexp(x) along dim',
  arity: 1,
  shape: (s, a) => alongDim('log_softmax', s, a),
  flops: ([x]) => 4 * numel(x!),
  grad: (b, n, g) => [b.op('log_softmax_grad', [g, n.id], n.attrs)],
});

export const logSoftmaxGrad = defineOp({
  name: 'log_softmax_grad',
  doc: 'g - exp(y)·Σg along dim, y = log_softmax output',
  arity: 2,
  shape: gradShape('log_softmax_grad'),
  flops: ([g]) => 4 * numel(g!),
});

export const softmax = defineOp({
  name: 'softmax',
  doc: 'exp(x - max) / Σ exp(x - max) along dim',
  arity: 1,
  shape: (s, a) => alongDim('softmax', s, a),
  flops: ([x]) => 4 * numel(x!),
  grad: (b, n, g) => [b.op('softmax_grad', [g, n.id], n.attrs)],
});

export const softmaxGrad = defineOp({
  name: 'softmax_grad',
  doc: 'y·(g - Σ g·y) along dim, y = softmax output',
  arity: 2,
  shape: gradShape('softmax_grad'),
  flops: ([g]) => 4 * numel(g!),
});

function crossEntropyShape([logits, labels]: readonly Shape[]): Shape {
  if (logits!.length !== 2) throw new Error(`cross_entropy expects logits [N, classes], got ${fmtShape(logits!)}`);
  if (labels!.length !== 1 || labels![0] !== logits![0]) throw new Error(`cross_entropy labels ${fmtShape(labels!)} do not match logits ${fmtShape(logits!)}`);
  return [];
}

/** Mean over the batch of -log softmax(logits)[label]: torch.nn.CrossEntropyLoss(). */
export const crossEntropy = defineOp({
  name: 'cross_entropy',
  doc: 'mean negative log-likelihood of the labels under softmax(logits)',
  arity: 2,
  shape: crossEntropyShape,
  flops: ([x]) => 5 * numel(x!),
  grad: (b, n, g) => [b.op('cross_entropy_grad', [g, n.inputs[0]!, n.inputs[1]!]), undefined],
});

export const crossEntropyGrad = defineOp({
  name: 'cross_entropy_grad',
  doc: 'g·(softmax(logits) - onehot(labels))/N',
  arity: 3,
  shape: ([g, logits, labels]) => {
    if (g!.length !== 0) throw new Error(`cross_entropy_grad expects a scalar gradient, got ${fmtShape(g!)}`);
    crossEntropyShape([logits!, labels!]);
    return logits!;
  },
  flops: ([, x]) => 5 * numel(x!),
});
