import { defineOp, ints } from '../op.ts';
import { fmtShape } from '../shape.ts';

/** The permutation undoing `dims`: permuting by one then the other is the identity. */
export function inversePermutation(dims: readonly number[]): number[] {
  const inv = new Array<number>(dims.length);
  dims.forEach((d, i) => (inv[d] = i));
  return inv;
}

/**
 * torch.permute as a copy: out[i_0, ..., i_n] = x at coordinate i_k along axis dims[k]. kiln has
 * no strided views, so the copy is made here (PyTorch makes it at the next .contiguous() or view).
 */
export const permute = defineOp({
  name: 'permute',
  doc: 'reorders axes: out axis k is x axis dims[k] (a strided copy)',
  arity: 1,
  shape: ([x], a) => {
    const dims = ints(a, 'dims');
    const ok = dims.length === x!.length && [...dims].sort((p, q) => p - q).every((d, i) => d === i);
    if (!ok) throw new Error(`permute: dims ${fmtShape(dims)} are not a permutation of the ${x!.length} axes of ${fmtShape(x!)}`);
    return dims.map((d) => x![d]!);
  },
  flops: () => 0,
  grad: (b, n, g) => [b.op('permute', [g], { dims: inversePermutation(ints(n.attrs, 'dims')) })],
});
