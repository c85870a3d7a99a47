import { valueKey } from './value-key.ts';

/**
 * Elementwise expressions: small programs over a closed set of primitives, evaluated at every
 * element of a kernel's domain. Every elementwise op of the op table is a template over these
 * primitives (src/ir/elementwise.ts), and every backend implements each primitive once, in a
 * table typed `{ [P in Prim]: ... }`, so an op needs no backend code and a backend cannot miss
 * a primitive.
 *
 * Values are f32 (booleans for the comparisons). Each step's result is rounded to f32, with one
 * exception: steps computed from the step counter alone (`pow1m` and arithmetic on it with
 * constants) are uniform over the domain and evaluated in f64 where the backend has it, as
 * PyTorch evaluates an optimizer's Python-float scalars, then rounded where they meet an f32
 * value.
 */

/** The primitives, with their operand counts and what they compute. */
export const PRIMS = {
  input: { arity: 0, doc: "kernel input `input` at the element: NumPy broadcasting against the domain, or with `channel` a [C] operand at the element's axis-1 index; a one-element input everywhere" },
  acc: { arity: 0, doc: "the value the kernel's own computation produced at the element (a fused kind's epilogue input)" },
  const: { arity: 0, doc: '`value`, rounded to f32 where it meets f32 values' },
  index: { arity: 0, doc: "the element's coordinate along axis `dim` of the domain, counted from the last (-1) as broadcasting aligns shapes, as f32; 0 where the domain has fewer axes" },
  add: { arity: 2, doc: 'a + b' },
  sub: { arity: 2, doc: 'a - b' },
  mul: { arity: 2, doc: 'a * b' },
  div: { arity: 2, doc: 'a / b' },
  max: { arity: 2, doc: 'the larger of a and b; NaN if either is NaN; +0 over -0' },
  min: { arity: 2, doc: 'the smaller of a and b; NaN if either is NaN; -0 under +0' },
  neg: { arity: 1, doc: '-a' },
  abs: { arity: 1, doc: '|a| (clears the sign bit)' },
  sqrt: { arity: 1, doc: 'square root' },
  exp: { arity: 1, doc: 'e^a' },
  log: { arity: 1, doc: 'natural logarithm' },
  tanh: { arity: 1, doc: 'hyperbolic tangent' },
  erf: { arity: 1, doc: 'the error function' },
  lt: { arity: 2, doc: 'a < b (boolean)' },
  le: { arity: 2, doc: 'a <= b (boolean)' },
  gt: { arity: 2, doc: 'a > b (boolean)' },
  ge: { arity: 2, doc: 'a >= b (boolean)' },
  eq: { arity: 2, doc: 'a == b (boolean)' },
  select: { arity: 3, doc: 'b where the boolean a holds, else c' },
  rng: { arity: 1, doc: "the 24 high bits (an integer in [0, 2^24), as f32) of the counter-based draw for the element's flat index in stream `stream` at step a (src/ir/rng.ts)" },
  pow1m: { arity: 1, doc: '1 - base^(a + 1) for the step counter a: a bias correction, uniform over the domain' },
} as const satisfies Record<string, { arity: number; doc: string }>;

export type Prim = keyof typeof PRIMS;
type Arity<N extends number> = { [P in Prim]: (typeof PRIMS)[P]['arity'] extends N ? P : never }[Prim];
export type UnaryPrim = Exclude<Arity<1>, 'rng' | 'pow1m'>;
export type BinaryPrim = Arity<2>;

/** One step: a primitive applied to earlier steps (`args`, by index). */
export type ExprStep =
  | { readonly prim: 'input'; readonly input: number; readonly channel?: true }
  | { readonly prim: 'acc' }
  | { readonly prim: 'const'; readonly value: number }
  | { readonly prim: 'index'; readonly dim: number }
  | { readonly prim: 'rng'; readonly stream: number; readonly args: readonly [number] }
  | { readonly prim: 'pow1m'; readonly base: number; readonly args: readonly [number] }
  | { readonly prim: UnaryPrim; readonly args: readonly [number] }
  | { readonly prim: BinaryPrim; readonly args: readonly [number, number] }
  | { readonly prim: 'select'; readonly args: readonly [number, number, number] };

export type StepOf<P extends Prim> = Extract<ExprStep, { prim: P }>;

export interface Expr {
  readonly steps: readonly ExprStep[];
  /** What the kernel writes, in output order after the kind's fixed outputs: a step index. */
  readonly outputs: readonly number[];
}

/** Arguments of a step (none for the leaves). */
export function argsOf(s: ExprStep): readonly number[] {
  return 'args' in s ? s.args : [];
}

/**
 * An expression whose output 0 a kernel reads as a value it computes itself (batch_norm_grad_stats
 * with gExpr): `first`, the steps that output needs and it alone; `rest`, the other outputs.
 * Steps only refer to earlier ones, so the prefix up to output 0 is closed.
 */
export function splitFirst(e: Expr): { first: Expr; rest: Expr } {
  const k = e.outputs[0];
  if (k === undefined) throw new Error('expr: no first output to split off');
  return { first: { steps: e.steps.slice(0, k + 1), outputs: [k] }, rest: { steps: e.steps, outputs: e.outputs.slice(1) } };
}

/**
 * The expression of some of `e`'s outputs alone (by position in e.outputs): the steps they need,
 * in order, renumbered. For a kernel whose outputs lie over two domains (batch_norm_stats), each
 * domain's part is evaluated without the other's steps, whose operands would not broadcast.
 */
export function pickOutputs(e: Expr, which: readonly number[]): Expr {
  const keep = new Set<number>();
  const visit = (k: number) => {
    if (keep.has(k)) return;
    keep.add(k);
    for (const a of argsOf(e.steps[k]!)) visit(a);
  };
  for (const o of which) visit(e.outputs[o]!);
  const at = new Map<number, number>();
  const steps: ExprStep[] = [];
  e.steps.forEach((s, k) => {
    if (!keep.has(k)) return;
    at.set(k, steps.length);
    steps.push('args' in s ? ({ ...s, args: s.args.map((a) => at.get(a)!) } as unknown as ExprStep) : s);
  });
  return { steps, outputs: which.map((o) => at.get(e.outputs[o]!)!) };
}

const COMPARISONS: ReadonlySet<Prim> = new Set(['lt', 'le', 'gt', 'ge', 'eq']);

/** Whether a step's value is boolean (a comparison). */
export const isBoolean = (s: ExprStep): boolean => COMPARISONS.has(s.prim);

/**
 * Which steps are uniform f64 values: `pow1m`, and arithmetic whose operands are such steps or
 * constants (at least one such step). Backends with f64 compute these once per launch in f64;
 * an f32 step reading one rounds it.
 */
export function f64Steps(e: Expr): boolean[] {
  const out: boolean[] = [];
  e.steps.forEach((s, i) => {
    const a = argsOf(s);
    out[i] = s.prim === 'pow1m' || (s.prim !== 'rng' && s.prim !== 'select' && !isBoolean(s) && a.some((j) => out[j]) && a.every((j) => out[j] || e.steps[j]!.prim === 'const'));
  });
  return out;
}

/**
 * A builder of expressions that merges equal steps (so a template's repeated subterm, or two
 * ops reading one operand, is computed once). Templates (src/ir/elementwise.ts) and the fusion
 * pass build through it.
 */
export class ExprBuilder {
  readonly steps: ExprStep[] = [];
  private readonly known = new Map<string, number>();

  add(s: ExprStep): number {
    const key = valueKey(s);
    let i = this.known.get(key);
    if (i === undefined) {
      i = this.steps.push(s) - 1;
      this.known.set(key, i);
    }
    return i;
  }

  input(input: number, channel = false): number {
    return this.add(channel ? { prim: 'input', input, channel: true } : { prim: 'input', input });
  }
  acc(): number {
    return this.add({ prim: 'acc' });
  }
  c(value: number): number {
    return this.add({ prim: 'const', value });
  }
  index(dim: number): number {
    return this.add({ prim: 'index', dim });
  }
  un(prim: UnaryPrim, a: number): number {
    return this.add({ prim, args: [a] });
  }
  bin(prim: BinaryPrim, a: number, b: number): number {
    return this.add({ prim, args: [a, b] });
  }
  select(cond: number, a: number, b: number): number {
    return this.add({ prim: 'select', args: [cond, a, b] });
  }
  rng(step: number, stream: number): number {
    return this.add({ prim: 'rng', stream, args: [step] });
  }
  pow1m(step: number, base: number): number {
    return this.add({ prim: 'pow1m', base, args: [step] });
  }
}
