import { flag } from '../../../ir/op.ts';
import type { RefKernel } from './common.ts';

// Dot products accumulate in a JS number (f64) and are rounded once on store.

export const linearKernels: Record<string, RefKernel> = {
  // y[n, o] = b[o] + Σ_i x[n, i]·w[o, i], w is [out, in] as in PyTorch.
  linear: (out, [x, w, bias], node) => {
    const [N, O] = node.shape;
    const I = w!.length / O!;
    for (let n = 0; n < N!; n++)
      for (let o = 0; o < O!; o++) {
        let acc = bias ? bias[o]! : 0;
        for (let i = 0; i < I; i++) acc += x![n * I + i]! * w![o * I + i]!;
        out[n * O! + o] = acc;
      }
  },

  // C[m, n] = Σ_k op(A)[m, k]·op(B)[k, n]; op(A)[m, k] is A[k, m] when transA (A stored [K, M]).
  matmul: (out, [a, b], node, [as]) => {
    const transA = flag(node.attrs, 'transA');
    const transB = flag(node.attrs, 'transB');
    const [M, N] = node.shape;
    const K = transA ? as![0]! : as![1]!;
    const A = (m: number, k: number) => (transA ? a![k * M! + m]! : a![m * K + k]!);
    const B = (k: number, n: number) => (transB ? b![n * K + k]! : b![k * N! + n]!);
    for (let m = 0; m < M!; m++)
      for (let n = 0; n < N!; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += A(m, k) * B(k, n);
        out[m * N! + n] = acc;
      }
  },
};
