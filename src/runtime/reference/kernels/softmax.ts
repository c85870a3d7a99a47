import { num } from '../../../ir/op.ts';
import type { Shape } from '../../../ir/shape.ts';
import type { Arr, RefKernel } from './common.ts';

/**
 * Calls f(base, n, inner) for every line along `dim`: its elements are at base + k·inner,
 * k = 0..n-1.
 */
function eachLine(shape: Shape, dim: number, f: (base: number, n: number, inner: number) => void): void {
  let outer = 1;
  for (let d = 0; d < dim; d++) outer *= shape[d]!;
  let inner = 1;
  for (let d = dim + 1; d < shape.length; d++) inner *= shape[d]!;
  const n = shape[dim]!;
  for (let o = 0; o < outer; o++) for (let j = 0; j < inner; j++) f(o * n * inner + j, n, inner);
}

/** max and log Σ exp(x - max) of one line: the max is subtracted so no exp overflows. */
function logSumExp(x: Arr, base: number, n: number, inner: number): number {
  let max = -Infinity;
  for (let k = 0; k < n; k++) max = Math.max(max, x[base + k * inner]!);
  let s = 0;
  for (let k = 0; k < n; k++) s += Math.exp(x[base + k * inner]! - max);
  return max + Math.log(s);
}

export const softmaxKernels: Record<string, RefKernel> = {
  log_softmax: (out, [x], node, [xs]) => {
    eachLine(xs!, num(node.attrs, 'dim'), (base, n, inner) => {
      const lse = logSumExp(x!, base, n, inner);
      for (let k = 0; k < n; k++) out[base + k * inner] = x![base + k * inner]! - lse;
    });
  },

  // g - exp(y)·Σ g along dim, y = log_softmax output.
  log_softmax_grad: (out, [g, y], node, [gs]) => {
    eachLine(gs!, num(node.attrs, 'dim'), (base, n, inner) => {
      let s = 0;
      for (let k = 0; k < n; k++) s += g![base + k * inner]!;
      for (let k = 0; k < n; k++) out[base + k * inner] = g![base + k * inner]! - Math.exp(y![base + k * inner]!) * s;
    });
  },

  softmax: (out, [x], node, [xs]) => {
    eachLine(xs!, num(node.attrs, 'dim'), (base, n, inner) => {
      let max = -Infinity;
      for (let k = 0; k < n; k++) max = Math.max(max, x![base + k * inner]!);
      let s = 0;
      for (let k = 0; k < n; k++) s += Math.exp(x![base + k * inner]! - max);
      for (let k = 0; k < n; k++) out[base + k * inner] = Math.exp(x![base + k * inner]! - max) / s;
    });
  },

  // y·(g - Σ g·y) along dim, y = softmax output.
  softmax_grad: (out, [g, y], node, [gs]) => {
    eachLine(gs!, num(node.attrs, 'dim'), (base, n, inner) => {
      let s = 0;
      for (let k = 0; k < n; k++) s += g![base + k * inner]! * y![base + k * inner]!;
      for (let k = 0; k < n; k++) out[base + k * inner] = y![base + k * inner]! * (g![base + k * inner]! - s);
    });
  },

  // torch.nn.CrossEntropyLoss(): mean over the batch of logsumexp(row) - row[label]. The batch
  // sum accumulates in f64. Labels are class indices stored as floats.
  cross_entropy: (out, [logits, labels], _, [ls]) => {
    const [N, K] = ls!;
    let total = 0;
    for (let n = 0; n < N!; n++) {
      const label = classIndex(labels!, n, K!);
      total += logSumExp(logits!, n * K!, K!, 1) - logits![n * K! + label]!;
    }
    out[0] = total / N!;
  },

  // g·(softmax(row) - onehot(label))/N.
  cross_entropy_grad: (out, [g, logits, labels], _, [, ls]) => {
    const [N, K] = ls!;
    const scale = g![0]! / N!;
    for (let n = 0; n < N!; n++) {
      const label = classIndex(labels!, n, K!);
      const lse = logSumExp(logits!, n * K!, K!, 1);
      for (let k = 0; k < K!; k++) {
        const p = Math.exp(logits![n * K! + k]! - lse);
        out[n * K! + k] = scale * (p - (k === label ? 1 : 0));
      }
    }
  },
};

function classIndex(labels: Arr, n: number, classes: number): number {
  const l = labels[n]!;
  if (!Number.isInteger(l) || l < 0 || l >= classes) throw new Error(`cross_entropy: label ${l} of sample ${n} is not a class index in [0, ${classes})`);
  return l;
}
