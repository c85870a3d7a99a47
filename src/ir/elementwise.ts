import type { Attrs, Node } from './graph.ts';
import { ExprBuilder, argsOf, f64Steps, type BinaryPrim, type Expr, type UnaryPrim } from './expr.ts';
import { defineOp, type GradBuilder, type OpDef } from './op.ts';
import type { OpApi } from './op-api.ts';
import { broadcastShapes, fmtShape, numel, sameShape, type Shape } from './shape.ts';

/**
 * Elementwise ops: each is one table entry holding its shape rule, its template (an expression
 * over the primitives of src/ir/expr.ts) and its gradient. Everything else derives from the
 * entry: the fusion pass inlines the template into kernels, constant folding evaluates it, the
 * reference backend interprets it, and the wasm and WGSL backends compile it — none of them
 * lists elementwise ops.
 */

/** A value inside a template: a step of the expression being built. */
export class V {
  constructor(
    readonly b: ExprBuilder,
    readonly i: number,
  ) {}
}

type Arg = V | number;

function builderOf(args: readonly Arg[]): ExprBuilder {
  const v = args.find((a): a is V => a instanceof V);
  if (!v) throw new Error('template: a primitive needs at least one non-constant operand');
  return v.b;
}
const ref = (b: ExprBuilder, a: Arg) => (a instanceof V ? a.i : b.c(a));
const un = (prim: UnaryPrim) => (a: V) => new V(a.b, a.b.un(prim, a.i));
const bin = (prim: BinaryPrim) => (a: Arg, c: Arg) => {
  const b = builderOf([a, c]);
  return new V(b, b.bin(prim, ref(b, a), ref(b, c)));
};

/** The primitives for templates; numbers are constants. */
export const P = {
  add: bin('add'),
  sub: bin('sub'),
  mul: bin('mul'),
  div: bin('div'),
  max: bin('max'),
  min: bin('min'),
  lt: bin('lt'),
  le: bin('le'),
  gt: bin('gt'),
  ge: bin('ge'),
  eq: bin('eq'),
  neg: un('neg'),
  abs: un('abs'),
  sqrt: un('sqrt'),
  exp: un('exp'),
  log: un('log'),
  tanh: un('tanh'),
  erf: un('erf'),
  select(cond: V, a: Arg, c: Arg): V {
    const b = cond.b;
    return new V(b, b.select(cond.i, ref(b, a), ref(b, c)));
  },
  /** A constant where a template must return one (pow(x, 0)). */
  c: (like: V, value: number) => new V(like.b, like.b.c(value)),
  rng: (step: V, stream: number) => new V(step.b, step.b.rng(step.i, stream)),
  pow1m: (step: V, base: number) => new V(step.b, step.b.pow1m(step.i, base)),
};

/** The shapes of an op, which its template may read. */
export interface ShapeCtx {
  readonly shapes: readonly Shape[];
  readonly out: Shape;
}

/** What a template may know besides its operands: the shapes, and the element's coordinates. */
export interface TemplateCtx extends ShapeCtx {
  /** The element's coordinate along axis `dim` of the output, counted from the last (-1). */
  index(dim: number): V;
}

const withIndex = (b: ExprBuilder, ctx: ShapeCtx): TemplateCtx => ({ ...ctx, index: (dim) => new V(b, b.index(dim)) });

/** The op's value at an element, or undefined when these attrs make it something else (a reduction). */
export type Template = (x: readonly V[], attrs: Attrs, ctx: TemplateCtx) => V | undefined;

/** dL/d(operand) at an element from the upstream gradient g, the operands and the op's output y. */
export type Derivative = (g: V, x: readonly V[], y: V, attrs: Attrs) => V;

export interface ElementwiseSpec {
  readonly name: string;
  readonly doc: string;
  readonly arity: number;
  readonly template: Template;
  /** Operand positions read per channel: [C] at the element's axis-1 index ([N, C] or [N, C, H, W]). */
  readonly channel?: readonly number[];
  /** Shape rule; default: the operands broadcast (NumPy rules). */
  readonly shape?: OpDef['shape'];
  /** Gradient as graph ops (when it composes from other ops), or: */
  readonly grad?: OpDef['grad'];
  /**
   * Gradient as templates, one per operand (undefined: nothing flows). Each becomes its own
   * elementwise op, `<name>_grad` for a unary op and `<name>_grad<k>` otherwise, reading g and
   * only the operands and output its template uses; broadcast operands get the gradient summed
   * back to their shape.
   */
  readonly derivatives?: readonly (Derivative | undefined)[];
  /** Attrs to try the derivative templates with at definition time (to learn what they read). */
  readonly sampleAttrs?: Attrs;
  /** FLOPs, when not the template's arithmetic steps per element (an op that is not always elementwise). */
  readonly flops?: OpDef['flops'];
  /** Ops with a meaning only for some attrs (batch_norm_grad): whether these attrs are elementwise. */
  readonly when?: (attrs: Attrs) => boolean;
  /** Its Tensor method, `F.*` function and `nn.*` layer, if the model API has them. */
  readonly api?: OpApi;
}

/** An op defined by defineElementwise, typed with its arity and API (the frontend's types read them). */
export type ElementwiseOp<S extends ElementwiseSpec> = OpDef & { readonly arity: S['arity']; readonly api: S['api'] };

export interface ElementwiseDef extends ElementwiseSpec {
  readonly op: OpDef;
}

const table = new Map<string, ElementwiseDef>();

/** The elementwise entry for an op with these attrs, if it is one. */
export function elementwiseOf(op: string, attrs: Attrs = {}): ElementwiseDef | undefined {
  const d = table.get(op);
  return d && (!d.when || d.when(attrs)) ? d : undefined;
}

export function allElementwise(): ElementwiseDef[] {
  return [...table.values()];
}

function broadcastAll(name: string) {
  return (shapes: readonly Shape[]): Shape =>
    shapes.reduce((acc, s) => {
      const r = broadcastShapes(acc, s);
      if (!r) throw new Error(`${name}: shapes ${shapes.map(fmtShape).join(' and ')} do not broadcast`);
      return r;
    });
}

/** Reduces a broadcast gradient back to the shape of the operand it flowed from. */
export function unbroadcast(b: GradBuilder, g: number, to: Shape): number {
  return sameShape(b.node(g).shape, to) ? g : b.op('sum_to', [g], { shape: to });
}

/**
 * Expands an op's template into `b`: `operand(k, channel)` gives the step reading operand k.
 * Returns the step of the op's value, or undefined when these attrs are not elementwise.
 */
export function expandOp(b: ExprBuilder, def: ElementwiseDef, attrs: Attrs, operand: (k: number, channel: boolean) => number, ctx: ShapeCtx): number | undefined {
  const x = Array.from({ length: def.arity }, (_, k) => new V(b, operand(k, def.channel?.includes(k) ?? false)));
  return def.template(x, attrs, withIndex(b, ctx))?.i;
}

/** The expression of an op on its kernel inputs in order (a plain elementwise kernel). */
export function opExpr(op: string, attrs: Attrs, shapes: readonly Shape[], out: Shape): Expr {
  const def = elementwiseOf(op, attrs);
  if (!def) throw new Error(`'${op}' is not an elementwise op`);
  const b = new ExprBuilder();
  const r = expandOp(b, def, attrs, (k, channel) => b.input(k, channel), { shapes, out });
  if (r === undefined) throw new Error(`'${op}' with these attrs is not elementwise`);
  return { steps: b.steps, outputs: [r] };
}

/** Arithmetic steps of a template: its flops per element. */
function flopsPerElement(def: ElementwiseSpec, attrs: Attrs, shapes: readonly Shape[], out: Shape): number {
  const b = new ExprBuilder();
  const x = Array.from({ length: def.arity }, (_, k) => new V(b, b.input(k)));
  const r = def.template(x, attrs, withIndex(b, { shapes, out }));
  if (r === undefined) return 0;
  const uniform = f64Steps({ steps: b.steps, outputs: [r.i] });
  return b.steps.filter((s, i) => argsOf(s).length > 0 && !uniform[i]).length;
}

/** Defines an elementwise op (and the ops of its template derivatives) in the op table. */
export function defineElementwise<const S extends ElementwiseSpec>(spec: S): ElementwiseOp<S> {
  const grads = spec.derivatives?.map((d, k) => (d ? defineDerivative(spec, d, k) : undefined));
  const grad: OpDef['grad'] = spec.grad ?? (grads && ((b, n, g) => grads.map((d) => d?.(b, n, g))));
  const op = defineOp(<OpDef & Pick<ElementwiseSpec, 'api'>>{
    api: spec.api,
    name: spec.name,
    doc: spec.doc,
    arity: spec.arity,
    shape: spec.shape ?? ((shapes) => (spec.arity === 1 ? shapes[0]! : broadcastAll(spec.name)(shapes))),
    flops: spec.flops ?? ((shapes, out, attrs) => flopsPerElement(spec, attrs, shapes, out) * numel(out)),
    grad: grad && ((b, n, g) => grad(b, n, g).map((v, k) => (v === undefined ? undefined : unbroadcast(b, v, b.node(n.inputs[k]!).shape)))),
  });
  table.set(spec.name, { ...spec, op });
  return op as ElementwiseOp<S>;
}

/**
 * The op computing operand k's gradient from a derivative template. Its operands are g and then
 * what the template reads, in order: the forward operands it uses, then y if it uses it.
 */
function defineDerivative(spec: ElementwiseSpec, d: Derivative, k: number): (b: GradBuilder, n: Node, g: number) => number {
  const name = spec.arity === 1 ? `${spec.name}_grad` : `${spec.name}_grad${k}`;
  // A dry run learns which of x_0..x_{n-1}, y the template reads.
  const probe = new ExprBuilder();
  const px = Array.from({ length: spec.arity }, (_, j) => new V(probe, probe.input(1 + j)));
  const r = d(new V(probe, probe.input(0)), px, new V(probe, probe.input(1 + spec.arity)), spec.sampleAttrs ?? {});
  const read = new Set<number>();
  const visit = (i: number): void => {
    const s = probe.steps[i]!;
    if (s.prim === 'input') read.add(s.input);
    argsOf(s).forEach(visit);
  };
  visit(r.i);
  const uses = Array.from({ length: spec.arity + 1 }, (_, j) => j).filter((j) => read.has(1 + j));
  const channel = spec.channel?.flatMap((c) => (uses.includes(c) ? [1 + uses.indexOf(c)] : []));
  defineElementwise({
    name,
    doc: `gradient of ${spec.name} with respect to operand ${k}`,
    arity: 1 + uses.length,
    channel,
    // The gradient has the output's shape (g's); operands broadcast into it.
    shape: (shapes) => shapes[0]!,
    template: ([g, ...rest], attrs) => {
      const all: V[] = [];
      uses.forEach((j, i) => (all[j] = rest[i]!));
      const y = all[spec.arity];
      return d(g!, all.slice(0, spec.arity), y!, attrs);
    },
  });
  return (b, n, g) => b.op(name, [g, ...uses.map((j) => (j === spec.arity ? n.id : n.inputs[j]!))], n.attrs);
}
