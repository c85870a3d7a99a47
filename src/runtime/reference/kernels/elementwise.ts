import { num } from '../../../ir/op.ts';
import { broadcastStrides, offsetOf, type RefKernel } from './common.ts';

function binary(f: (a: number, b: number) => number): RefKernel {
  return (out, [a, b], node, [sa, sb]) => {
    const shape = node.shape;
    const stA = broadcastStrides(sa!, shape);
    const stB = broadcastStrides(sb!, shape);
    for (let i = 0; i < out.length; i++) out[i] = f(a![offsetOf(i, shape, stA)]!, b![offsetOf(i, shape, stB)]!);
  };
}

function unary(f: (x: number) => number): RefKernel {
  return (out, [x]) => {
    for (let i = 0; i < out.length; i++) out[i] = f(x![i]!);
  };
}

export const elementwiseKernels: Record<string, RefKernel> = {
  add: binary((a, b) => a + b),
  sub: binary((a, b) => a - b),
  mul: binary((a, b) => a * b),
  div: binary((a, b) => a / b),
  neg: unary((x) => -x),
  sqrt: unary(Math.sqrt),
  // Math.max propagates NaN, as torch.relu does.
  relu: unary((x) => Math.max(x, 0)),
  relu_grad: (out, [g, y]) => {
    for (let i = 0; i < out.length; i++) out[i] = y![i]! > 0 ? g![i]! : 0;
  },
  axpby: (out, [a, b], node) => {
    const alpha = num(node.attrs, 'alpha');
    const beta = num(node.attrs, 'beta');
    for (let i = 0; i < out.length; i++) out[i] = alpha * a![i]! + beta * b![i]!;
  },
};
