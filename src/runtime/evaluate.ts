import type { Backend, StepResult } from './backend.ts';
import { fillBatch, type Normalize, type Split } from './data/dataset.ts';

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

/**
 * Mean loss and accuracy over a whole split with the eval step, in file order. A queued backend
 * (webgpu) runs up to `depth` batches per read-back.
 */
export async function evaluate(backend: Backend, split: Split, classes: number, batchSize: number, normalize: Normalize): Promise<Evaluation> {
  const pixels = split.images.length / split.count;
  const order = Uint32Array.from({ length: split.count }, (_, i) => i);
  const room = Math.min(batchSize, split.count);
  const x = new Float32Array(room * pixels);
  const labels = new Float32Array(room);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let lossSum = 0;
  let correct = 0;
  const count = (r: StepResult, lab: Float32Array) => {
    lossSum += r.loss * lab.length;
    for (let i = 0; i < lab.length; i++) {
      const p = argmax(r.logits, i, classes);
      confusion[lab[i]!]![p]!++;
      if (p === lab[i]) correct++;
    }
  };
  const q = backend.queued;
  let pending: Float32Array[] = [];
  for (let start = 0; start < split.count; start += batchSize) {
    const n = Math.min(batchSize, split.count - start);
    fillBatch(split, order, start, n, x, labels, normalize);
    if (!q) {
      count(backend.evalStep(x.subarray(0, n * pixels), labels.subarray(0, n)), labels.subarray(0, n));
      continue;
    }
    q.queueEvalStep(x.subarray(0, n * pixels), labels.subarray(0, n));
    pending.push(labels.slice(0, n));
    if (pending.length >= q.depth || start + n >= split.count) {
      (await q.flush()).forEach((r, i) => count(r, pending[i]!));
      pending = [];
    }
  }
  return { loss: lossSum / split.count, accuracy: correct / split.count, confusion };
}
