import { defineOp, num } from '../op.ts';
import { fmtShape, numel, sameShape, type Shape } from '../shape.ts';

// torch.nn.functional.embedding(input, weight): ids [...] pick rows of weight [num, dim]. Ids are
// token indices stored as f32 (exact up to 2^24), like cross-entropy's labels.
//
// An id that is not an integer in [0, num) (negative, too large, fractional, NaN) is where
// PyTorch raises "index out of range in self"; a compiled step cannot raise, so every backend
// gives such a position a row of zeros and sends its gradient nowhere. No kernel ever reads or
// writes outside weight.

function rows(name: string, w: Shape): [number, number] {
  if (w.length !== 2) throw new Error(`${name} expects a 2-d weight [num_embeddings, embedding_dim], got ${fmtShape(w)}`);
  return [w[0]!, w[1]!];
}

export const embedding = defineOp({
  name: 'embedding',
  doc: 'row ids[i] of weight [num, dim] for each id: [...] -> [..., dim]; zeros for an id outside [0, num)',
  arity: 2,
  shape: ([ids, w]) => [...ids!, rows('embedding', w!)[1]],
  flops: () => 0,
  grad: (b, n, g) => {
    const [ids, w] = n.inputs as [number, number];
    return [undefined, b.op('embedding_grad', [g, ids], { num: b.node(w).shape[0]! })];
  },
});

/**
 * The weight gradient, a scatter-add (index_add) made a gather: row v of dweight is the sum of
 * g's rows at the positions whose id is v, added in position order. Each output row is one sum
 * with one owner, so the result is the same bits whatever the thread count or the order threads
 * run in.
 */
export const embeddingGrad = defineOp({
  name: 'embedding_grad',
  doc: 'dweight[v] = Σ g[i] over positions i with ids[i] = v, in position order: [num, dim]',
  arity: 2,
  shape: ([g, ids], a) => {
    const count = num(a, 'num');
    if (!Number.isInteger(count) || count < 1) throw new Error(`embedding_grad: num ${count} is not a positive integer`);
    if (g!.length !== ids!.length + 1 || !sameShape(g!.slice(0, -1), ids!)) throw new Error(`embedding_grad: gradient ${fmtShape(g!)} does not match ids ${fmtShape(ids!)} plus a row`);
    return [count, g![g!.length - 1]!];
  },
  flops: ([g]) => numel(g!),
});
