import { flag } from '../../../ir/op.ts';
import { batchDims } from '../../../ir/ops/linear.ts';
import { broadcastStrides, numel, offsetOf } from '../../../ir/shape.ts';
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

  // C[m, n] = Σ_k op(A)[m, k]·op(B)[k, n] per batch; op(A)[m, k] is A[k, m] when transA (A stored
  // [K, M]); an operand's batch element is found through its broadcast strides.
  matmul: (out, [a, b], node, [as, bs]) => {
    const transA = flag(node.attrs, 'transA');
    const transB = flag(node.attrs, 'transB');
    const [M, N] = node.shape.slice(-2) as [number, number];
    const K = transA ? as!.at(-2)! : as!.at(-1)!;
    const batch = node.shape.slice(0, -2);
    const [aSt, bSt] = [as!, bs!].map((s) => broadcastStrides(batchDims(s), batch));
    for (let t = 0; t < numel(batch); t++) {
      const ao = offsetOf(t, batch, aSt!) * M * K;
      const bo = offsetOf(t, batch, bSt!) * K * N;
      const A = (m: number, k: number) => (transA ? a![ao + k * M + m]! : a![ao + m * K + k]!);
      const B = (k: number, n: number) => (transB ? b![bo + n * K + k]! : b![bo + k * N + n]!);
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += A(m, k) * B(k, n);
          out[t * M * N + m * N + n] = acc;
        }
    }
  },
};
