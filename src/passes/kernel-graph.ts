import type { Attrs, Graph, Init, Stage } from '../ir/graph.ts';
import type { Expr } from '../ir/program.ts';
import type { Shape } from '../ir/shape.ts';

/**
 * What the passes between fusion and memory planning work on: kernels over values, in an order
 * (topological), before any value has a place. Values are the graph's nodes (same ids) plus the
 * few the compiler adds (pool argmax).
 */
export interface KValue {
  readonly id: number;
  /** `conv1.weight`, `x`, `%12`, `%7.argmax`: what dumps and Slice.value show. */
  readonly name: string;
  readonly shape: Shape;
  /** A reshape: the same bytes as this value, read with another shape. */
  readonly viewOf?: number;
  /** A scalar constant, written once at load. */
  readonly constant?: number;
}

export interface FusedKernel {
  readonly kind: string;
  /** The graph ops it computes, in graph order. */
  readonly ops: readonly string[];
  readonly attrs: Attrs;
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
  readonly expr?: Expr;
}

export interface KernelGraph {
  readonly stage: Stage;
  readonly batchSize: number;
  readonly values: readonly KValue[];
  /** In an order that runs: every value is written before it is read. */
  readonly kernels: readonly FusedKernel[];
  readonly state: readonly { readonly name: string; readonly kind: 'param' | 'buffer' | 'optim'; readonly init: Init; readonly value: number }[];
  readonly inputs: Readonly<Record<string, number>>;
  readonly outputs: Readonly<Record<string, number>>;
  /** State name -> the value the step leaves in it. */
  readonly updates: Readonly<Record<string, number>>;
  /** Parameter name -> its gradient's value. */
  readonly grads: Readonly<Record<string, number>>;
}

/** One value per graph node, named for dumps. */
export function graphValues(g: Graph): KValue[] {
  return g.nodes.map((n) => {
    const name = n.op === 'input' || n.op === 'param' ? String(n.attrs.name) : `%${n.id}`;
    if (n.op === 'reshape') return { id: n.id, name, shape: n.shape, viewOf: n.inputs[0]! };
    if (n.op === 'const') return { id: n.id, name, shape: n.shape, constant: n.attrs.value as number };
    return { id: n.id, name, shape: n.shape };
  });
}

/** The value whose bytes a value is: itself, or the base of its chain of views. */
export function baseOf(values: readonly KValue[], v: number): number {
  let b = v;
  while (values[b]!.viewOf !== undefined) b = values[b]!.viewOf!;
  return b;
}

/** Index of the kernel that writes each value's base (undefined for leaves). */
export function producers(kg: Pick<KernelGraph, 'values' | 'kernels'>): Map<number, number> {
  const p = new Map<number, number>();
  kg.kernels.forEach((k, i) => k.outputs.forEach((v) => p.set(baseOf(kg.values, v), i)));
  return p;
}

/** Values a step must end with: outputs, updates and gradients. */
export function rootValues(kg: Pick<KernelGraph, 'outputs' | 'updates' | 'grads'>): Set<number> {
  return new Set([...Object.values(kg.outputs), ...Object.values(kg.updates), ...Object.values(kg.grads)]);
}
