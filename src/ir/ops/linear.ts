import { defineOp, flag } from '../op.ts';
import { fmtShape, numel } from '../shape.ts';

/** y = x·wᵀ + b with w [out, in] as in PyTorch; x is [N, in]. */
export const linear = defineOp({
  name: 'linear',
  doc: 'x @ w.T + b',
  arity: [2, 3],
  shape: ([x, w, bias]) => {
    if (x!.length !== 2) throw new Error(`linear expects a 2-d input [N, features], got ${fmtShape(x!)}`);
    if (x![1] !== w![1]) throw new Error(`linear expects ${w![1]} input features, got ${x![1]} (input shape ${fmtShape(x!)})`);
    if (bias && (bias.length !== 1 || bias[0] !== w![0])) throw new Error(`linear bias ${fmtShape(bias)} does not match ${w![0]} outputs`);
    return [x![0]!, w![0]!];
  },
  flops: ([x, , bias], out) => numel(out) * (2 * x![1]! + (bias ? 1 : 0)),
  grad: (b, n, g) => {
    const [x, w, bias] = n.inputs;
    return [
      b.op('matmul', [g, w!], { transA: false, transB: false }),
      b.op('matmul', [g, x!], { transA: true, transB: false }),
      bias === undefined ? undefined : b.op('sum', [g], { axes: [0], keepdim: false }),
    ];
  },
});

/** 2-d matrix product with optional transposes; the linear layer's gradients. */
export const matmul = defineOp({
  name: 'matmul',
  doc: 'op(a) @ op(b), op = transpose when transA/transB',
  arity: 2,
  shape: ([a, b2], at) => {
    if (a!.length !== 2 || b2!.length !== 2) throw new Error(`matmul expects 2-d operands, got ${fmtShape(a!)} and ${fmtShape(b2!)}`);
    const [m, k] = flag(at, 'transA') ? [a![1]!, a![0]!] : [a![0]!, a![1]!];
    const [k2, n] = flag(at, 'transB') ? [b2![1]!, b2![0]!] : [b2![0]!, b2![1]!];
    if (k !== k2) throw new Error(`matmul inner dimensions differ: ${k} vs ${k2}`);
    return [m, n];
  },
  flops: ([a], out, at) => 2 * numel(out) * (flag(at, 'transA') ? a![0]! : a![1]!),
  grad: (b, n, g) => {
    const [a, b2] = n.inputs as [number, number];
    const mm = (x: number, y: number, transA: boolean, transB: boolean) => b.op('matmul', [x, y], { transA, transB });
    const ta = flag(n.attrs, 'transA');
    const tb = flag(n.attrs, 'transB');
    if (!ta && !tb) return [mm(g, b2, false, true), mm(a, g, true, false)]; // C = AB
    if (ta && !tb) return [mm(b2, g, false, true), mm(a, g, false, false)]; // C = AᵀB
    if (!ta && tb) return [mm(g, b2, false, false), mm(g, a, true, false)]; // C = ABᵀ
    return [mm(b2, g, true, true), mm(g, a, true, true)]; // C = AᵀBᵀ
  },
});
