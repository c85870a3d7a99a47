import { defineOp, flag } from '../op.ts';
import { unbroadcast } from '../elementwise.ts';
import { broadcastShapes, fmtShape, numel, type Shape } from '../shape.ts';

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

/** The batch dims of a matmul operand (all but the matrix's two). */
export const batchDims = (s: Shape): Shape => s.slice(0, -2);

/**
 * Matrix products over the last two axes, with optional transposes of those two (the linear
 * layer's gradients) and NumPy broadcasting of the leading batch axes (torch.matmul for operands
 * of rank >= 2): a [..., M, K] · b [..., K, N] -> [...broadcast, M, N].
 */
export const matmul = defineOp({
  name: 'matmul',
  doc: 'op(a) @ op(b) per batch, op = transpose of the last two axes when transA/transB; batch axes broadcast',
  arity: 2,
  shape: ([a, b2], at) => {
    if (a!.length < 2 || b2!.length < 2) throw new Error(`matmul expects operands of at least 2 dimensions, got ${fmtShape(a!)} and ${fmtShape(b2!)}`);
    const [r, c] = [a!.at(-2)!, a!.at(-1)!];
    const [r2, c2] = [b2!.at(-2)!, b2!.at(-1)!];
    const [m, k] = flag(at, 'transA') ? [c, r] : [r, c];
    const [k2, n] = flag(at, 'transB') ? [c2, r2] : [r2, c2];
    if (k !== k2) throw new Error(`matmul inner dimensions differ: ${k} vs ${k2} (shapes ${fmtShape(a!)} and ${fmtShape(b2!)})`);
    const batch = broadcastShapes(batchDims(a!), batchDims(b2!));
    if (!batch) throw new Error(`matmul batch dimensions ${fmtShape(batchDims(a!))} and ${fmtShape(batchDims(b2!))} do not broadcast`);
    return [...batch, m, n];
  },
  flops: ([a], out, at) => 2 * numel(out) * (flag(at, 'transA') ? a!.at(-2)! : a!.at(-1)!),
  // Each operand's gradient is a product over the output's batch, summed back over the batch
  // axes the operand was broadcast along.
  grad: (b, n, g) => {
    const [a, b2] = n.inputs as [number, number];
    const mm = (x: number, y: number, transA: boolean, transB: boolean) => b.op('matmul', [x, y], { transA, transB });
    const ta = flag(n.attrs, 'transA');
    const tb = flag(n.attrs, 'transB');
    let grads: [number, number];
    if (!ta && !tb) grads = [mm(g, b2, false, true), mm(a, g, true, false)]; // C = AB
    else if (ta && !tb) grads = [mm(b2, g, false, true), mm(a, g, false, false)]; // C = AᵀB
    else if (!ta && tb) grads = [mm(g, b2, false, false), mm(g, a, true, false)]; // C = ABᵀ
    else grads = [mm(b2, g, true, true), mm(g, a, true, true)]; // C = AᵀBᵀ
    return grads.map((v, k) => unbroadcast(b, v, b.node(n.inputs[k]!).shape));
  },
});
