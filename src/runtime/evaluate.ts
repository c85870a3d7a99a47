import type { Backend } from './backend.ts';
import { fillBatch, type Split } from './data/dataset.ts';

export interface Evaluation {
  loss: number;
  accuracy: number;
  /** confusion[true][predicted] */
  confusion: number[][];
}

/** Index of the largest logit of row `r` (first one on ties, as torch.argmax). */
export function argmax(logits: Float32Array, r: number, classes: number): number {
  let best = 0;
  for (let k = 1; k < classes; k++) if (logits[r * classes + k]! > logits[r * classes + best]!) best = k;
  return best;
}

/** Mean loss and accuracy over a whole split with the eval step, in file order. */
export function evaluate(backend: Backend, split: Split, classes: number, batchSize: number, normalize: readonly [number, number]): Evaluation {
  const pixels = split.images.length / split.count;
  const order = Uint32Array.from({ length: split.count }, (_, i) => i);
  const x = new Float32Array(batchSize * pixels);
  const labels = new Float32Array(batchSize);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < split.count; start += batchSize) {
    const n = Math.min(batchSize, split.count - start);
    fillBatch(split, order, start, n, x, labels, normalize[0], normalize[1]);
    const r = backend.evalStep(x.subarray(0, n * pixels), labels.subarray(0, n));
    lossSum += r.loss * n;
    for (let i = 0; i < n; i++) {
      const p = argmax(r.logits, i, classes);
      confusion[labels[i]!]![p]!++;
      if (p === labels[i]) correct++;
    }
  }
  return { loss: lossSum / split.count, accuracy: correct / split.count, confusion };
}
