import type { Node } from '../graph.ts';
import { defineOp, type GradBuilder } from '../op.ts';
import { broadcastShapes, fmtShape, numel, sameShape, type Shape } from '../shape.ts';

/** Reduces a broadcast gradient back to the shape of the operand it flowed from. */
function unbroadcast(b: GradBuilder, g: number, to: Shape): number {
  return sameShape(b.node(g).shape, to) ? g : b.op('sum_to', [g], { shape: to });
}

function broadcastRule(name: string) {
  return ([x, y]: readonly Shape[]): Shape => {
    const s = broadcastShapes(x!, y!);
    if (!s) throw new Error(`${name}: shapes ${fmtShape(x!)} and ${fmtShape(y!)} do not broadcast`);
    return s;
  };
}

const perElement = (_: readonly Shape[], out: Shape) => numel(out);

function binary(name: string, doc: string, grad: (b: GradBuilder, n: Node, g: number) => [number, number]) {
  return defineOp({
    name,
    doc,
    arity: 2,
    shape: broadcastRule(name),
    flops: perElement,
    grad: (b, n, g) => {
      const [ga, gb] = grad(b, n, g);
      return [unbroadcast(b, ga, b.node(n.inputs[0]!).shape), unbroadcast(b, gb, b.node(n.inputs[1]!).shape)];
    },
  });
}

export const add = binary('add', 'a + b, broadcasting', (_, __, g) => [g, g]);
export const sub = binary('sub', 'a - b, broadcasting', (b, _, g) => [g, b.op('neg', [g])]);
export const mul = binary('mul', 'a * b, broadcasting', (b, n, g) => [
  b.op('mul', [g, n.inputs[1]!]),
  b.op('mul', [g, n.inputs[0]!]),
]);
export const div = binary('div', 'a / b, broadcasting', (b, n, g) => {
  const ga = b.op('div', [g, n.inputs[1]!]);
  // d(a/b)/db = -(a/b)/b, so the b-gradient is -(g/b)·out: reuses ga and the output.
  return [ga, b.op('neg', [b.op('mul', [ga, n.id])])];
});

function unary(name: string, doc: string, grad: (b: GradBuilder, n: Node, g: number) => [number]) {
  return defineOp({ name, doc, arity: 1, shape: ([x]) => x!, flops: perElement, grad });
}

export const neg = unary('neg', '-x', (b, _, g) => [b.op('neg', [g])]);
// d sqrt(x) = 1/(2·sqrt(x)): reads the output, as torch's sqrt backward does.
export const sqrt = unary('sqrt', 'sqrt(x)', (b, n, g) => [b.op('div', [g, b.op('mul', [n.id, b.op('const', [], { value: 2 })])])]);
// The mask is read from the output, as PyTorch's threshold_backward does: no extra buffer.
export const relu = unary('relu', 'max(x, 0)', (b, n, g) => [b.op('relu_grad', [g, n.id])]);

export const reluGrad = defineOp({
  name: 'relu_grad',
  doc: 'g where relu output y > 0, else 0',
  arity: 2,
  shape: ([g, y]) => {
    if (!sameShape(g!, y!)) throw new Error(`relu_grad: ${fmtShape(g!)} vs ${fmtShape(y!)}`);
    return g!;
  },
  flops: perElement,
});

/** alpha·a + beta·b on equal shapes: momentum buffers, moment estimates, running statistics. */
export const axpby = defineOp({
  name: 'axpby',
  doc: 'alpha*a + beta*b',
  arity: 2,
  shape: ([a, b2]) => {
    if (!sameShape(a!, b2!)) throw new Error(`axpby: ${fmtShape(a!)} vs ${fmtShape(b2!)}`);
    return a!;
  },
  flops: (_, out) => 3 * numel(out),
});
