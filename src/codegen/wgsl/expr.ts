import { num } from '../../ir/op.ts';
import type { Expr, ExprArg, Slice } from '../../ir/program.ts';
import { numel, type Shape } from '../../ir/shape.ts';
import { Stream } from '../../runtime/rng.ts';
import { broadcastIndex, coord, f32, u32, type Shader } from './shader.ts';

/**
 * Elementwise expressions (src/ir/kernels.ts, `Kernel.expr`) as WGSL statements evaluated at flat
 * element `i` of the domain. Each step becomes one f32 `let`, so every value is rounded to f32
 * where the op-by-op graph stores it. Plain elementwise op kernels are one-step expressions.
 */

/** Operand positions that are per-channel ([C], read at the element's channel) for each op. */
const PER_CHANNEL: Readonly<Record<string, readonly number[]>> = {
  batch_norm: [1, 2, 3, 4],
  batch_norm_grad: [2, 3, 4],
  batch_var_grad: [0, 2],
};

/** The counter-based RNG of src/runtime/rng.ts, bit for bit: u32 multiply wraps in WGSL as Math.imul does. */
const RNG = `fn fmix32(h0: u32) -> u32 {
  var h = h0;
  h ^= h >> 16u;
  h *= 0x85ebca6bu;
  h ^= h >> 13u;
  h *= 0xc2b2ae35u;
  h ^= h >> 16u;
  return h;
}

fn stream_key(seed: u32, stream: u32, counter: u32) -> u32 {
  var h = fmix32(seed ^ 0x9e3779b9u);
  h = fmix32(h ^ ((stream + 1u) * 0x27d4eb2fu));
  return fmix32(h ^ ((counter + 1u) * 0x165667b1u));
}

fn random_bits(key: u32, index: u32) -> u32 {
  return fmix32(key ^ fmix32(index + 0x6a09e667u));
}
`;

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

export interface ExprEnv {
  readonly sh: Shader;
  readonly domain: Shape;
  /** The slice of operand `{ input: k }`. */
  input(k: number): Slice;
  /** WGSL name of the flat element index (u32). */
  readonly i: string;
  /** WGSL expression of the kind's own value at the element, for `{ acc }`. */
  readonly acc?: string;
  /** Prefix for the step variables, so several expressions can share a function. */
  readonly prefix?: string;
}

/** The channel (axis 1) of element i of the domain. */
function channel(env: ExprEnv): string {
  if (env.domain.length < 2) throw new Error(`wgsl: a per-channel operand needs a domain [N, C, ...], got [${env.domain.join(', ')}]`);
  return coord(env.i, env.domain, 1);
}

function operand(env: ExprEnv, op: string, pos: number, a: ExprArg): string {
  const p = env.prefix ?? 'v';
  if ('step' in a) return `${p}${a.step}`;
  if ('acc' in a) {
    if (env.acc === undefined) throw new Error('wgsl: expression reads acc in a kind without one');
    return env.acc;
  }
  if ('value' in a) return f32(a.value);
  const s = env.input(a.input);
  if (numel(s.shape) === 1) return env.sh.scalar(s);
  if (PER_CHANNEL[op]?.includes(pos)) return env.sh.read(s, channel(env));
  return env.sh.read(s, broadcastIndex(env.i, s.shape, env.domain));
}

/** Elements per channel of the domain, for batch_var_grad's count. */
const perChannel = (d: Shape) => numel(d) / d[1]!;

/** The WGSL value of one step. */
function stepValue(env: ExprEnv, op: string, attrs: Readonly<Record<string, unknown>>, args: string[]): string {
  const [a, b, c, d, e] = args;
  const A = attrs as Parameters<typeof num>[0];
  switch (op) {
    case 'add':
      return `${a} + ${b}`;
    case 'sub':
      return `${a} - ${b}`;
    case 'mul':
      return `${a} * ${b}`;
    case 'div':
      return `${a} / ${b}`;
    case 'neg':
      return `-(${a})`;
    case 'sqrt':
      return `sqrt(${a})`;
    case 'expand':
      return `${a}`;
    // select(a, 0, a < 0) keeps a NaN, as Math.max and torch.relu do.
    case 'relu':
      return `select(${a}, 0.0, ${a} < 0.0)`;
    case 'relu_grad':
      return `select(0.0, ${a}, ${b} > 0.0)`;
    case 'axpby':
      return `${f32(num(A, 'alpha'))} * ${a} + ${f32(num(A, 'beta'))} * ${b}`;
    case 'dropout': {
      // keep iff uniform = (bits >> 8)·2^-24 >= p, i.e. bits >> 8 >= ceil(p·2^24): exact in integers.
      const p = num(A, 'p');
      env.sh.helper('rng', RNG);
      const key = `stream_key(${u32(env.sh.ctx.seed >>> 0)}, ${u32(Stream.DROPOUT + num(A, 'stream'))}, u32(${b}))`;
      return `select(0.0, ${a} * ${f32(1 / (1 - p))}, (random_bits(${key}, ${env.i}) >> 8u) >= ${u32(Math.ceil(p * 2 ** 24))})`;
    }
    case 'adam_step': {
      // torch.optim.Adam (1.13): t = step + 1; denom = sqrt(v)/sqrt(1 - β2^t) + eps; p -= lr/(1 - β1^t)·m/denom.
      env.sh.helper('one_minus_pow', ONE_MINUS_POW);
      const t = `(${d} + 1.0)`;
      const bc1 = `one_minus_pow(${f32(Math.log(num(A, 'beta1')))}, ${t})`;
      const bc2 = `sqrt(one_minus_pow(${f32(Math.log(num(A, 'beta2')))}, ${t}))`;
      return `${a} - (${f32(num(A, 'lr'))} / ${bc1}) * (${b} / (sqrt(${c}) / ${bc2} + ${f32(num(A, 'eps'))}))`;
    }
    case 'batch_norm':
      return `(${a} - ${b}) * (1.0 / sqrt(${c} + ${f32(num(A, 'eps'))})) * ${d} + ${e}`;
    case 'batch_norm_grad':
      if (attrs.wrt !== 'x') throw new Error(`wgsl: batch_norm_grad wrt ${String(attrs.wrt)} is a reduction, not an expression step`);
      return `${a} * ${e} * (1.0 / sqrt(${d} + ${f32(num(A, 'eps'))}))`;
    case 'batch_var_grad':
      return `${a} * 2.0 * (${b} - ${c}) / ${f32(perChannel(env.domain))}`;
    default:
      throw new Error(`wgsl: '${op}' is not an expression op`);
  }
}

/**
 * Statements computing every step at element `env.i`; returns them and the WGSL value of each
 * of the expression's outputs.
 */
export function exprCode(env: ExprEnv, e: Expr): { lines: string[]; outputs: string[] } {
  const p = env.prefix ?? 'v';
  const lines = e.steps.map((s, j) => `let ${p}${j}: f32 = ${stepValue(env, s.op, s.attrs, s.args.map((a, pos) => operand(env, s.op, pos, a)))};`);
  const outputs = e.outputs.map((o) => {
    if (o === -1) {
      if (env.acc === undefined) throw new Error('wgsl: expression outputs acc in a kind without one');
      return env.acc;
    }
    return `${p}${o}`;
  });
  return { lines, outputs };
}
