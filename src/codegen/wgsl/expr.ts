import { elementwiseOf } from '../../ir/elementwise.ts';
import { f64Steps, isBoolean, type Expr, type Prim, type StepOf } from '../../ir/expr.ts';
import type { Attrs } from '../../ir/graph.ts';
import type { Slice } from '../../ir/program.ts';
import { fmix32, randomBits, streamKey, type U32Ops } from '../../ir/rng.ts';
import { numel, type Shape } from '../../ir/shape.ts';
import { MATH_WGSL } from './math.ts';
import { broadcastIndex, coord, f32, u32, type Shader } from './shader.ts';

/**
 * Elementwise expressions (src/ir/expr.ts) as WGSL statements evaluated at flat element `i` of
 * the domain: each step one `let`, so every value is rounded to f32 where the reference rounds
 * it. Each primitive is one entry of PRIMS below. WGSL has no f64: the uniform steps (Adam's
 * bias corrections) are f32 here, with 1 - b^t computed without cancellation.
 */

export interface ExprEnv {
  readonly sh: Shader;
  readonly domain: Shape;
  /** The slice of input step `{ input: k }`. */
  input(k: number): Slice;
  /** WGSL name of the flat element index (u32). */
  readonly i: string;
  /** WGSL expression of the kind's own value at the element, for `acc`. */
  readonly acc?: string;
  /** Prefix for the step variables, so several expressions can share a function. */
  readonly prefix?: string;
  /** For an input the kind computes at the element instead of reading it: its WGSL value there. */
  readonly computed?: Computed;
}

/** A kind's input computed at element env.i (batch_norm_grad_stats' gPooled), or undefined: read as usual. */
export type Computed = (input: number, env: ExprEnv) => string | undefined;

/**
 * 1 - b^t for Adam's bias corrections, given ln b. Computed as -expm1(t·ln b): the plain
 * 1 - pow(b, t) loses to cancellation exactly where it matters (t small, b = 0.999: 1 - b^t =
 * 0.001, so pow's own rounding, large on llvmpipe, is multiplied by 1000). The Taylor series of
 * expm1 in Horner form is exact to f32 rounding for |y| <= 1, where the loss would be; beyond,
 * b^t <= 1/e and 1 - exp(y) is already well conditioned.
 */
const ONE_MINUS_POW = `fn one_minus_pow(lnb: f32, t: f32) -> f32 {
  let y = t * lnb;
  if (y < -1.0) { return 1.0 - exp(y); }
  var s: f32 = 1.0;
  for (var k = 14; k >= 2; k--) { s = 1.0 + s * y / f32(k); }
  return -(y * s);
}
`;

/** The 24 high bits (as f32) of the draw at flat index `index` (u32) of `stream` at the step `step` (f32). */
export function rngBits24(sh: Shader, stream: number, step: string, index: string): string {
  sh.helper('rng', rngHelpers());
  return `f32(random_bits(stream_key(${u32(sh.ctx.seed >>> 0)}, ${u32(stream)}, u32(${step})), ${index}) >> 8u)`;
}

/** WGSL source of the counter-based RNG, generated from src/ir/rng.ts's one definition. */
function rngHelpers(): string {
  const lines: string[] = [];
  let n = 0;
  const o: U32Ops<string> = {
    lit: (v) => `${v >>> 0}u`,
    xor: (a, b) => `(${a} ^ ${b})`,
    mul: (a, b) => `(${a} * ${b})`,
    add: (a, b) => `(${a} + ${b})`,
    shr: (a, bits) => `(${a} >> ${bits}u)`,
    share: (a) => {
      lines.push(`  let t${n} = ${a};`);
      return `t${n++}`;
    },
  };
  const fn = (sig: string, body: () => string) => {
    lines.length = 0;
    n = 0;
    const r = body();
    return `fn ${sig} -> u32 {\n${lines.join('\n')}\n  return ${r};\n}\n`;
  };
  return [
    fn('fmix32(h: u32)', () => fmix32(o, 'h')),
    fn('stream_key(seed: u32, stream: u32, counter: u32)', () => streamKey(o, 'seed', 'stream', 'counter')),
    fn('random_bits(key: u32, index: u32)', () => randomBits(o, 'key', 'index')),
  ].join('\n');
}

type Code<P extends Prim> = (s: StepOf<P>, a: readonly string[], env: ExprEnv) => string;
const un = (f: (a: string) => string) => (_: unknown, [a]: readonly string[]) => f(a!);
/** exp, log, tanh, erf: the same algorithms as the wasm backend's (src/codegen/math-f32.ts), not WGSL's loosely specified builtins. */
const math = (name: string) => (_: unknown, [a]: readonly string[], env: ExprEnv) => {
  env.sh.helper('math', MATH_WGSL);
  return `${name}_f32(${a})`;
};
const bin = (op: string) => (_: unknown, [a, b]: readonly string[]) => `${a} ${op} ${b}`;

const PRIMS: { readonly [P in Prim]: Code<P> } = {
  input: (s, _, env) => {
    const made = env.computed?.(s.input, env);
    if (made !== undefined) return made;
    const t = env.input(s.input);
    if (numel(t.shape) === 1) return env.sh.scalar(t);
    if (s.channel) {
      if (env.domain.length < 2) throw new Error(`wgsl: a per-channel operand needs a domain [N, C, ...], got [${env.domain.join(', ')}]`);
      return env.sh.read(t, coord(env.i, env.domain, 1));
    }
    return env.sh.read(t, broadcastIndex(env.i, t.shape, env.domain));
  },
  acc: (_, __, env) => {
    if (env.acc === undefined) throw new Error('wgsl: expression reads acc in a kind without one');
    return env.acc;
  },
  const: (s, _, env) => env.sh.float(s.value),
  index: (s, _, env) => (env.domain.length + s.dim < 0 ? '0.0' : `f32(${coord(env.i, env.domain, env.domain.length + s.dim)})`),
  add: bin('+'),
  sub: bin('-'),
  mul: bin('*'),
  div: bin('/'),
  max: (_, [a, b]) => `max(${a}, ${b})`,
  min: (_, [a, b]) => `min(${a}, ${b})`,
  neg: un((a) => `-(${a})`),
  abs: un((a) => `abs(${a})`),
  sqrt: un((a) => `sqrt(${a})`),
  exp: math('exp'),
  log: math('log'),
  tanh: math('tanh'),
  erf: math('erf'),
  lt: bin('<'),
  le: bin('<='),
  gt: bin('>'),
  ge: bin('>='),
  eq: bin('=='),
  select: (_, [c, a, b]) => `select(${b}, ${a}, ${c})`,
  rng: (s, [step], env) => rngBits24(env.sh, s.stream, step!, env.i),
  pow1m: (s, [step], env) => {
    env.sh.helper('one_minus_pow', ONE_MINUS_POW);
    return `one_minus_pow(${f32(Math.log(s.base))}, ${step} + 1.0)`;
  },
};

/**
 * Statements computing every step at element `env.i`; returns them and the WGSL value of each
 * of the expression's outputs.
 */
export function exprCode(env: ExprEnv, e: Expr): { lines: string[]; outputs: string[] } {
  const p = env.prefix ?? 'v';
  const uniform = f64Steps(e);
  const lines = e.steps.map((s, j) => {
    const code = (PRIMS[s.prim] as Code<Prim>)(s, ('args' in s ? s.args : []).map((k) => `${p}${k}`), env);
    return `let ${p}${j}: ${isBoolean(s) ? 'bool' : 'f32'} = ${code};`;
  });
  const outputs = e.outputs.map((o) => {
    if (uniform[o] || isBoolean(e.steps[o]!)) throw new Error('wgsl: an output must be an f32 value of the domain');
    return `${p}${o}`;
  });
  return { lines, outputs };
}

/**
 * The statements writing element `env.i` of an anchored kind's results: the value `env.acc`
 * itself without an epilogue, else each of the epilogue's outputs.
 */
export function epilogueStores(env: ExprEnv & { acc: string }, expr: Expr | undefined, results: readonly Slice[]): string[] {
  if (!expr) return [`${env.sh.write(results[0]!, env.i)} = ${env.acc};`];
  const { lines, outputs } = exprCode(env, expr);
  return [...lines, ...outputs.map((o, j) => `${env.sh.write(results[j]!, env.i)} = ${o};`)];
}

/** Whether a kernel kind is an elementwise op of the table (its kernel is its template). */
export const isElementwiseKind = (kind: string, attrs: Attrs): boolean => elementwiseOf(kind, attrs) !== undefined;
