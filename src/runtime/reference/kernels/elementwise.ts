import { allElementwise, opExpr } from '../../../ir/elementwise.ts';
import '../../../ir/ops/index.ts';
import { evalExpr } from '../../../ir/eval-expr.ts';
import type { RefKernel } from './common.ts';

/** An elementwise op's kernel: its template, interpreted (rounding each step on f32 data). */
export const elementwiseKernel: RefKernel = (out, ins, node, shapes, ctx) => {
  const expr = opExpr(node.op, node.attrs, shapes, node.shape);
  const operands = ins.map((data, k) => ({ data, shape: shapes[k]! }));
  evalExpr(expr, { domain: node.shape, operands, seed: ctx.seed }, [out], out instanceof Float32Array);
};

/** Every op of the elementwise table (src/ir/elementwise.ts), derived from its template. */
export const elementwiseKernels: Record<string, RefKernel> = Object.fromEntries(allElementwise().map((d) => [d.name, elementwiseKernel]));
