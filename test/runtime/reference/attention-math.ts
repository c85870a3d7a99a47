import { attentionDims, dropoutThreshold, headView, type AttentionDims } from '../../../src/ir/kernels.ts';
import type { Shape } from '../../../src/ir/shape.ts';

/**
 * The attention kinds' mathematics (src/ir/kernels.ts) as the wasm and WGSL kernels formulate it:
 * the backward recomputes p from each row's logsumexp and takes softmax_grad's Σ_j p·dp as
 * Σ_e dy·y. In f64 with no rounding, for the finite-difference check of that formulation
 * (attention.test.ts); the reference backend itself composes the op kernels (fused.ts).
 */

/** Rounding where a kernel stores a value: the identity for finite differences in f64. */
export type Round = (x: number) => number;
type Data = ArrayLike<number>;

/** Attention's dropout: the 24 random bits of p's flat element index, and the probability. */
export interface Drop {
  readonly p: number;
  readonly bits: (index: number) => number;
}

/** p' = dropout(p) at (l, i, j), as the dropout op's template: kept values times 1/(1-p), rounded. */
function dropped(f: Round, drop: Drop | undefined, d: AttentionDims, l: number, i: number, p: Float64Array): Float64Array {
  if (!drop) return p;
  const { T, S } = d;
  const threshold = dropoutThreshold(drop.p);
  const factor = f(1 / (1 - drop.p));
  return p.map((v, j) => (drop.bits((l * T + i) * S + j) >= threshold ? f(v * factor) : 0));
}

/** Row i of batch l of p (rounded as softmax stores it) and its logsumexp, from q and k. */
function probabilities(f: Round, q: Data, k: Data, d: AttentionDims, l: number, i: number, causal: boolean, scale: number, lse?: number): { p: Float64Array; lse: number } {
  const { T, S, D } = d;
  const s = new Float64Array(S).fill(-Infinity);
  const limit = causal ? Math.min(i + 1, S) : S;
  for (let j = 0; j < limit; j++) {
    let dot = 0;
    for (let c = 0; c < D; c++) dot += q[(l * T + i) * D + c]! * k[(l * S + j) * D + c]!;
    s[j] = f(f(dot) * scale);
  }
  let max = -Infinity;
  for (let j = 0; j < limit; j++) max = Math.max(max, s[j]!);
  let sum = 0;
  for (let j = 0; j < limit; j++) sum += Math.exp(s[j]! - max);
  const rowLse = lse ?? max + Math.log(sum);
  const p = new Float64Array(S);
  for (let j = 0; j < limit; j++) p[j] = f(lse === undefined ? Math.exp(s[j]! - max) / sum : Math.exp(s[j]! - lse));
  return { p, lse: rowLse };
}

/** y and lse of the attention kind over q [..., T, D], k [..., S, D], v [..., S, E] (shapes given). */
export function attentionValues(f: Round, q: Data, k: Data, v: Data, shapes: readonly Shape[], causal: boolean, scale: number, drop?: Drop): { y: Float64Array; lse: Float64Array } {
  const d = attentionDims(headView(shapes[0]!, undefined), headView(shapes[1]!, undefined), headView(shapes[2]!, undefined));
  const { L, T, S, E } = d;
  const y = new Float64Array(L * T * E);
  const lse = new Float64Array(L * T);
  for (let l = 0; l < L; l++)
    for (let i = 0; i < T; i++) {
      const r = probabilities(f, q, k, d, l, i, causal, scale);
      lse[l * T + i] = f(r.lse);
      const p = dropped(f, drop, d, l, i, r.p);
      for (let c = 0; c < E; c++) {
        let acc = 0;
        for (let j = 0; j < S; j++) acc += p[j]! * v[(l * S + j) * E + c]!;
        y[(l * T + i) * E + c] = f(acc);
      }
    }
  return { y, lse };
}

/** dq, dk, dv of the attention_grad kind. */
export function attentionGradValues(f: Round, dy: Data, q: Data, k: Data, v: Data, y: Data, lse: Data, shapes: readonly Shape[], causal: boolean, scale: number, drop?: Drop): Float64Array[] {
  const d = attentionDims(headView(shapes[0]!, undefined), headView(shapes[1]!, undefined), headView(shapes[2]!, undefined));
  const { L, T, S, D, E } = d;
  const dq = new Float64Array(L * T * D);
  const dk = new Float64Array(L * S * D);
  const dv = new Float64Array(L * S * E);
  for (let l = 0; l < L; l++)
    for (let i = 0; i < T; i++) {
      const { p } = probabilities(f, q, k, d, l, i, causal, scale, lse[l * T + i]!);
      const kept = dropped(f, drop, d, l, i, p);
      const dp = new Float64Array(S);
      // softmax_grad's Σ_j p·dp, as Σ_e dy·y: the same sum regrouped, which a kernel can form
      // before it visits the row's columns.
      let dot = 0;
      for (let c = 0; c < E; c++) dot += dy[(l * T + i) * E + c]! * y[(l * T + i) * E + c]!;
      for (let j = 0; j < S; j++) {
        let acc = 0;
        for (let c = 0; c < E; c++) acc += dy[(l * T + i) * E + c]! * v[(l * S + j) * E + c]!;
        dp[j] = f(acc);
      }
      // dropout's gradient: the same mask and factor on dp.
      const dpKept = drop ? dropped(f, drop, d, l, i, dp) : dp;
      for (let j = 0; j < S; j++) {
        const ds = f(f(p[j]! * (dpKept[j]! - dot)) * scale);
        for (let c = 0; c < D; c++) {
          dq[(l * T + i) * D + c] += ds * k[(l * S + j) * D + c]!;
          dk[(l * S + j) * D + c] += ds * q[(l * T + i) * D + c]!;
        }
        for (let c = 0; c < E; c++) dv[(l * S + j) * E + c] += kept[j]! * dy[(l * T + i) * E + c]!;
      }
    }
  return [dq, dk, dv];
}
