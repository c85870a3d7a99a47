import type { Node } from '../../../ir/graph.ts';
import { num } from '../../../ir/op.ts';
import { layerNormRows } from '../../../ir/ops/layer-norm.ts';
import type { Shape } from '../../../ir/shape.ts';
import type { Arr, RefKernel } from './common.ts';

// Row statistics in f64, two passes (mean, then Σ(x - mean)²), as the other backends make them.

/** Calls f(base, D, mean, r) for each row of x, r = 1/sqrt(var + eps). */
function eachRow(x: Arr, xs: Shape, node: Node, f: (base: number, D: number, mean: number, r: number) => void): void {
  const [rows, D] = layerNormRows(xs, node.attrs);
  const eps = num(node.attrs, 'eps');
  for (let row = 0; row < rows; row++) {
    const base = row * D;
    let s = 0;
    for (let k = 0; k < D; k++) s += x[base + k]!;
    const mean = s / D;
    let v = 0;
    for (let k = 0; k < D; k++) v += (x[base + k]! - mean) ** 2;
    f(base, D, mean, 1 / Math.sqrt(v / D + eps));
  }
}

export const layerNormKernels: Record<string, RefKernel> = {
  layer_norm: (out, [x], node, [xs]) => {
    eachRow(x!, xs!, node, (base, D, mean, r) => {
      for (let k = 0; k < D; k++) out[base + k] = (x![base + k]! - mean) * r;
    });
  },

  layer_norm_grad: (out, [g, x], node, [, xs]) => {
    eachRow(x!, xs!, node, (base, D, mean, r) => {
      let sg = 0;
      let sgx = 0;
      for (let k = 0; k < D; k++) {
        sg += g![base + k]!;
        sgx += g![base + k]! * (x![base + k]! - mean) * r;
      }
      for (let k = 0; k < D; k++) out[base + k] = r * (g![base + k]! - sg / D - (x![base + k]! - mean) * r * (sgx / D));
    });
  },
};
