import { erf } from './erf.ts';
import { f64Steps, isBoolean, type Expr, type Prim, type StepOf } from './expr.ts';
import { JS_U32, randomBits, streamKey } from './rng.ts';
import { broadcastStrides, numel, offsetOf, type Shape } from './shape.ts';

type Arr = Float32Array | Float64Array;

/**
 * The interpreter of elementwise expressions (src/ir/expr.ts), which defines what they mean and
 * is the reference backend's kernel for them: each primitive in f64
 * and, on f32 data, rounded to f32 after every step, as an f32 backend computes it (the
 * transcendental primitives are correctly rounded here, which makes them the oracle for the
 * backends' approximations). Uniform f64 steps stay f64 until an f32 step reads them.
 */

type Value = number | boolean;
type Get = (i: number) => Value;

export interface ExprOperand {
  readonly data: Arr;
  readonly shape: Shape;
}

interface Env {
  readonly domain: Shape;
  readonly operands: readonly ExprOperand[];
  readonly acc?: Arr;
  readonly seed: number;
}

const n = (v: Value) => v as number;
const b = (v: Value) => v as boolean;
type Impl<P extends Prim> = (s: StepOf<P>, a: readonly Get[], env: Env) => Get;
const f1 = (f: (x: number) => number) => (_: unknown, [x]: readonly Get[]): Get => (i) => f(n(x!(i)));
const f2 = (f: (x: number, y: number) => number | boolean) => (_: unknown, [x, y]: readonly Get[]): Get => (i) => f(n(x!(i)), n(y!(i)));

/** Channel (axis 1) of flat element i of a domain [N, C, ...]. */
function channelOf(domain: Shape): (i: number) => number {
  const C = domain[1]!;
  const inner = numel(domain.slice(2));
  return (i) => Math.floor(i / inner) % C;
}

const PRIM_IMPL: { readonly [P in Prim]: Impl<P> } = {
  input: (s, _, env) => {
    const { data, shape } = env.operands[s.input]!;
    if (data.length === 1) return () => data[0]!;
    if (s.channel) {
      const ch = channelOf(env.domain);
      return (i) => data[ch(i)]!;
    }
    const st = broadcastStrides(shape, env.domain);
    return (i) => data[offsetOf(i, env.domain, st)]!;
  },
  acc: (_, __, env) => (i) => env.acc![i]!,
  const: (s) => () => s.value,
  index: (s, _, env) => {
    const d = env.domain.length + s.dim;
    if (d < 0) return () => 0;
    const inner = numel(env.domain.slice(d + 1));
    const size = env.domain[d]!;
    return (i) => Math.floor(i / inner) % size;
  },
  add: f2((x, y) => x + y),
  sub: f2((x, y) => x - y),
  mul: f2((x, y) => x * y),
  div: f2((x, y) => x / y),
  max: f2(Math.max),
  min: f2(Math.min),
  neg: f1((x) => -x),
  abs: f1(Math.abs),
  sqrt: f1(Math.sqrt),
  exp: f1(Math.exp),
  log: f1(Math.log),
  tanh: f1(Math.tanh),
  erf: f1(erf),
  lt: f2((x, y) => x < y),
  le: f2((x, y) => x <= y),
  gt: f2((x, y) => x > y),
  ge: f2((x, y) => x >= y),
  eq: f2((x, y) => x === y),
  select: (_, [c, x, y]) => (i) => (b(c!(i)) ? x!(i) : y!(i)),
  rng: (s, [step], env) => {
    let key = 0;
    let keyStep = -1;
    return (i) => {
      const t = n(step!(i));
      if (!Number.isInteger(t) || t < 0) throw new Error(`rng: the step must be a non-negative integer, got ${t}`);
      if (t !== keyStep) [key, keyStep] = [streamKey(JS_U32, env.seed >>> 0, s.stream, t), t];
      return randomBits(JS_U32, key, i) >>> 8;
    };
  },
  pow1m: (s, [step]) => (i) => 1 - s.base ** (n(step!(i)) + 1),
};

/**
 * Evaluates `expr` at every element of `domain` into `outs` (one per expr output). `round`
 * (f32 data) rounds each step; without it (f64 data, for gradient checks) nothing is rounded.
 */
export function evalExpr(expr: Expr, env: Env, outs: readonly Arr[], round: boolean): void {
  const uniform = f64Steps(expr);
  const gets: Get[] = [];
  expr.steps.forEach((s, j) => {
    const args = ('args' in s ? s.args : []).map((k): Get => {
      const g = gets[k]!;
      // An f32 step reads uniform f64 values and literals rounded, as a backend holds them in f32.
      const lit = expr.steps[k]!.prim === 'const';
      return round && !uniform[j] && (uniform[k] || lit) ? (i) => Math.fround(n(g(i))) : g;
    });
    const raw = (PRIM_IMPL[s.prim] as Impl<Prim>)(s, args, env);
    const rounds = round && !uniform[j] && s.prim !== 'const' && s.prim !== 'select' && !isBoolean(s);
    gets[j] = rounds ? (i) => Math.fround(n(raw(i))) : raw;
  });
  const count = numel(env.domain);
  const results = expr.outputs.map((o) => gets[o]!);
  for (let i = 0; i < count; i++) for (let k = 0; k < outs.length; k++) outs[k]![i] = n(results[k]!(i));
}
