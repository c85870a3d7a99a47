import type { Attrs } from '../graph.ts';
import { defineOp, num } from '../op.ts';
import { fmtShape, numel, sameShape, type Shape } from '../shape.ts';

// Layer norm's statistics are per row: a row is the `dims` trailing dimensions of x, D elements,
// and every other dimension indexes rows. The affine weight and bias are elementwise ops after
// `layer_norm` (they fuse into its kernel as an epilogue), so these two ops are the whole of what
// needs a row at a time: normalising, and the normalisation's input gradient.

/** [rows, D] of x for a layer norm over its `dims` trailing dimensions. */
export function layerNormRows(x: Shape, attrs: Attrs): [number, number] {
  const dims = num(attrs, 'dims');
  const D = numel(x.slice(x.length - dims));
  return [numel(x) / D, D];
}

function rowsShape(name: string, x: Shape, attrs: Attrs): Shape {
  const dims = num(attrs, 'dims');
  num(attrs, 'eps');
  if (!Number.isInteger(dims) || dims < 1 || dims > x.length) throw new Error(`${name}: dims ${dims} out of range for ${fmtShape(x)}`);
  return x;
}

/** (x - mean)/sqrt(var + eps) over each row, var biased: torch.nn.functional.layer_norm without weight and bias. */
export const layerNorm = defineOp({
  name: 'layer_norm',
  doc: 'x̂ = (x - mean)/sqrt(var + eps) over the `dims` trailing dimensions (biased var)',
  arity: 1,
  shape: ([x], a) => rowsShape('layer_norm', x!, a),
  flops: ([x]) => 5 * numel(x!),
  grad: (b, n, g) => [b.op('layer_norm_grad', [g, n.inputs[0]!], n.attrs)],
});

/**
 * The input gradient of layer_norm from g = dL/dx̂, the row's statistics recomputed from x
 * (r = 1/sqrt(var + eps)): dx = r·(g - mean(g) - x̂·mean(g·x̂)).
 */
export const layerNormGrad = defineOp({
  name: 'layer_norm_grad',
  doc: 'r·(g - mean(g) - x̂·mean(g·x̂)) per row, x̂ and r = 1/sqrt(var + eps) from x',
  arity: 2,
  shape: ([g, x], a) => {
    if (!sameShape(g!, x!)) throw new Error(`layer_norm_grad: g ${fmtShape(g!)} vs x ${fmtShape(x!)}`);
    return rowsShape('layer_norm_grad', x!, a);
  },
  flops: ([x]) => 10 * numel(x!),
});
