import type { Attrs, AttrValue, Node } from './graph.ts';
import type { Shape } from './shape.ts';

/**
 * What a gradient rule may do: read nodes and add new ones. The autodiff pass provides it; a rule
 * returns, for each input of the node, the node holding dL/d(input), or undefined when none flows.
 */
export interface GradBuilder {
  node(id: number): Node;
  op(op: string, inputs: readonly number[], attrs?: Attrs): number;
}

export interface OpDef {
  readonly name: string;
  /** One line for the IR reference. */
  readonly doc: string;
  /** Number of inputs, or [min, max]. */
  readonly arity: number | readonly [number, number];
  /** Output shape, or throws Error(message) naming what is wrong. */
  shape(inputs: readonly Shape[], attrs: Attrs): Shape;
  /** Floating-point operations to compute the output (a multiply-add counts 2). */
  flops(inputs: readonly Shape[], out: Shape, attrs: Attrs): number;
  /** Reverse-mode rule; absent for ops nothing is differentiated through. */
  grad?(b: GradBuilder, node: Node, g: number): (number | undefined)[];
}

const table = new Map<string, OpDef>();

export function defineOp(def: OpDef): OpDef {
  if (table.has(def.name)) throw new Error(`op ${def.name} defined twice`);
  table.set(def.name, def);
  return def;
}

export function getOp(name: string): OpDef {
  const def = table.get(name);
  if (!def) throw new Error(`unknown op '${name}'`);
  return def;
}

export function allOps(): OpDef[] {
  return [...table.values()];
}

// Typed readers for attributes: ops are defined once, so a wrong attr is a compiler bug.
export function num(attrs: Attrs, key: string): number {
  const v = attrs[key];
  if (typeof v !== 'number') throw new Error(`attr ${key} must be a number, got ${String(v)}`);
  return v;
}

export function pair(attrs: Attrs, key: string): readonly [number, number] {
  const v = attrs[key];
  if (!Array.isArray(v) || v.length !== 2) throw new Error(`attr ${key} must be a pair, got ${String(v)}`);
  return v as unknown as [number, number];
}

export function ints(attrs: Attrs, key: string): readonly number[] {
  const v: AttrValue | undefined = attrs[key];
  if (!Array.isArray(v)) throw new Error(`attr ${key} must be a list, got ${String(v)}`);
  return v as readonly number[];
}

export function flag(attrs: Attrs, key: string): boolean {
  return attrs[key] === true;
}
