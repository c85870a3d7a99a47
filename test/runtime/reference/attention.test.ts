import { expect, it } from 'vitest';
import { numel } from '../../../src/ir/shape.ts';
import { attentionGradValues, attentionValues } from './attention-math.ts';
import { rng } from './helpers.ts';

// The attention kinds' gradient (src/runtime/reference/attention.ts, which every backend's
// attention_grad kernel is held to) against central finite differences of the attention forward,
// both in f64 (no rounding): loss = Σ y·W with fixed random W, so dy = W. Tolerances as in
// gradcheck.test.ts: truncation ~1e-13 at ε = 1e-6, rounding ~1e-9; a wrong term is O(1).
const EPS = 1e-6;
const id = (x: number) => x;

const CASES = [
  { name: 'causal, T = S = 5, D = 3, E = 2, two heads', lead: [1, 2], T: 5, S: 5, D: 3, E: 2, causal: true },
  { name: 'full, T = 3, S = 6, D = 4, E = 5', lead: [2], T: 3, S: 6, D: 4, E: 5, causal: false },
  { name: 'causal, T = 4 < S = 7', lead: [1], T: 4, S: 7, D: 2, E: 3, causal: true },
  { name: 'causal, dropout 0.4 (a fixed mask)', lead: [2], T: 5, S: 5, D: 3, E: 4, causal: true, dropout: 0.4 },
];

it.each(CASES)('attention_grad matches finite differences of attention in f64: $name', ({ lead, T, S, D, E, causal, dropout }: (typeof CASES)[number] & { dropout?: number }) => {
  const r = rng(20261206);
  const shapes = [
    [...lead, T, D],
    [...lead, S, D],
    [...lead, S, E],
  ];
  const [q, k, v] = shapes.map((s) => r.uniform(numel(s), -1.5, 1.5)) as [number[], number[], number[]];
  const w = r.uniform(numel([...lead, T, E]));
  const scale = 1 / Math.sqrt(D) + 0.1;
  // A fixed mask: the draws depend on the element's index alone, as the kernels' do.
  const drop = dropout === undefined ? undefined : { p: dropout, bits: (i: number) => (Math.imul(i + 1, 0x9e3779b1) >>> 8) & 0xffffff };
  const loss = (qq: number[], kk: number[], vv: number[]) => attentionValues(id, qq, kk, vv, shapes, causal, scale, drop).y.reduce((a, y, i) => a + y * w[i]!, 0);
  const { y, lse } = attentionValues(id, q, k, v, shapes, causal, scale, drop);
  const grads = attentionGradValues(id, w, q, k, v, y, lse, shapes, causal, scale, drop);
  const inputs = [q, k, v];
  inputs.forEach((x, which) => {
    x.forEach((_, i) => {
      const at = (delta: number) => {
        const moved = inputs.map((t, j) => (j === which ? t.map((u, n) => (n === i ? u + delta : u)) : t)) as [number[], number[], number[]];
        return loss(...moved);
      };
      const fd = (at(EPS) - at(-EPS)) / (2 * EPS);
      const analytic = grads[which]![i]!;
      expect(Math.abs(analytic - fd), `${'qkv'[which]}[${i}]: ${analytic} vs ${fd}`).toBeLessThanOrEqual(1e-8 + 1e-6 * Math.abs(fd));
    });
  });
  // Causal rows never see later columns: their gradient there is exactly zero.
  if (causal && S > T) expect(grads[2]!.slice((S - 1) * E, S * E).every((g) => g === 0)).toBe(true);
});
