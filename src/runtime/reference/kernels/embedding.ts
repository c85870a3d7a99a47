import { num } from '../../../ir/op.ts';
import { storeFrom, type RefKernel } from './common.ts';

/** The row an id picks, or -1 for an id that is not an integer in [0, num) (src/ir/ops/embedding.ts). */
function rowOf(id: number, count: number): number {
  return Number.isInteger(id) && id >= 0 && id < count ? id : -1;
}

export const embeddingKernels: Record<string, RefKernel> = {
  embedding: (out, [ids, w], _, [, ws]) => {
    const [count, D] = ws as [number, number];
    for (let i = 0; i < ids!.length; i++) {
      const r = rowOf(ids![i]!, count);
      for (let d = 0; d < D; d++) out[i * D + d] = r < 0 ? 0 : w![r * D + d]!;
    }
  },

  // Positions in order, each added into its id's row in f64, stored once.
  embedding_grad: (out, [g, ids], node, [gs]) => {
    const count = num(node.attrs, 'num');
    const D = gs![gs!.length - 1]!;
    const acc = new Float64Array(count * D);
    for (let i = 0; i < ids!.length; i++) {
      const r = rowOf(ids![i]!, count);
      if (r >= 0) for (let d = 0; d < D; d++) acc[r * D + d]! += g![i * D + d]!;
    }
    storeFrom(out, acc);
  },
};
