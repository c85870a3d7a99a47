import type { Backend, StepResult } from './backend.ts';
import type { Feed } from './data/feed.ts';

export interface Evaluation {
  /** Mean cross-entropy over every label (every position, for text). */
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
 * Mean loss and accuracy over a whole evaluation feed (the test images in file order, or the
 * held-out text's windows) with the eval step. A queued backend (webgpu) runs up to `depth`
 * batches per read-back.
 */
export async function evaluate(backend: Backend, feed: Feed, classes: number): Promise<Evaluation> {
  const room = Math.max(0, ...feed.sizes);
  const x = new Float32Array(room * feed.exampleSize);
  const labels = new Float32Array(room * feed.labelsPerExample);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let lossSum = 0;
  let correct = 0;
  let total = 0;
  // A step's loss is the mean over its labels: weighted by their count, the sum is the mean over all.
  const count = (r: StepResult, lab: Float32Array) => {
    lossSum += r.loss * lab.length;
    total += lab.length;
    for (let i = 0; i < lab.length; i++) {
      const p = argmax(r.logits, i, classes);
      confusion[lab[i]!]![p]!++;
      if (p === lab[i]) correct++;
    }
  };
  const fill = feed.epoch(0);
  const q = backend.queued;
  let pending: Float32Array[] = [];
  for (let b = 0; b < feed.batches; b++) {
    const n = feed.size(b);
    fill(b, x, labels);
    const xs = x.subarray(0, n * feed.exampleSize);
    const ls = labels.subarray(0, n * feed.labelsPerExample);
    if (!q) {
      count(backend.evalStep(xs, ls), ls);
      continue;
    }
    q.queueEvalStep(xs, ls);
    pending.push(ls.slice());
    if (pending.length >= q.depth || b === feed.batches - 1) {
      (await q.flush()).forEach((r, i) => count(r, pending[i]!));
      pending = [];
    }
  }
  return { loss: lossSum / total, accuracy: correct / total, confusion };
}
