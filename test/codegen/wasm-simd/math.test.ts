import { beforeAll, describe, expect, it } from 'vitest';
import { Emitter, Fn, loadBinaryen, type Local } from '../../../src/codegen/wasm-simd/emitter.ts';
import { VMATH } from '../../../src/codegen/wasm-simd/math.ts';
import { erf } from '../../../src/ir/erf.ts';

// The f32x4 exp, log, tanh and erf of src/codegen/wasm-simd/math.ts against f64 truth (Math.exp,
// Math.log, Math.tanh, src/ir/erf.ts) rounded to f32, in ulps: the distance between the two
// results' bit patterns in the monotone order of f32 (-0 and +0 are one point; NaN matches NaN
// only). The sweep takes every 97th of the 2^32 bit patterns (44 million per function, every
// exponent, both signs, subnormals, Inf and NaN patterns included), ~5 s.
//
// Bounds asserted are what the issue asks (exp, log ≤ 2; tanh ≤ 3; erf ≤ 4). Measured, over all
// 2^32 inputs (KILN_MATH_EXHAUSTIVE=1, ~10 min): every function within 1 ulp; results off by one
// ulp: exp 0.42%, log 0.32%, tanh 0.17%, erf 8.4% (mostly tiny and subnormal x, where x + x·S
// rounds twice).

type Name = keyof typeof VMATH;
const NAMES = Object.keys(VMATH) as Name[];
const TRUTH: Record<Name, (x: number) => number> = { exp: Math.exp, log: Math.log, tanh: Math.tanh, erf };
const BOUND: Record<Name, number> = { exp: 2, log: 2, tanh: 3, erf: 4 };

const CHUNK = 1 << 20;
let run: (name: Name, x: Float32Array) => Float32Array;

beforeAll(async () => {
  const b = await loadBinaryen();
  const e = new Emitter(b, { relaxed: false, threads: 1 });
  const m = e.m;
  m.setFeatures(b.Features.SIMD128 | b.Features.NontrappingFPToInt);
  const pages = (CHUNK * 4) / 65536;
  m.setMemory(pages, pages, 'mem');
  // One function per math op: f(ptr, bytes) maps the floats at [ptr, ptr + bytes) in place.
  for (const name of NAMES) {
    const fn = new Fn(e, [b.i32, b.i32]);
    const [ptr, bytes] = fn.params as [Local, Local];
    const i = fn.i32();
    const at = () => e.add(ptr.get(), i.get());
    const body = e.for(i, e.i32(0), bytes.get(), 16, [e.vstore(at(), VMATH[name](e, fn, e.vload(at())))]);
    m.addFunction(name, b.createType([b.i32, b.i32]), b.none, fn.vars, body);
    m.addFunctionExport(name, name);
  }
  expect(m.validate()).toBeTruthy();
  // The kernels' pipeline optimizes (constant folding, instruction rewrites): test what it makes.
  b.setOptimizeLevel(2);
  m.optimize();
  const bin = m.emitBinary();
  m.dispose();
  const { instance } = await WebAssembly.instantiate(bin as Uint8Array<ArrayBuffer>);
  const ex = instance.exports as Record<Name, (p: number, n: number) => void> & { mem: WebAssembly.Memory };
  const mem = new Float32Array(ex.mem.buffer);
  run = (name, x) => {
    const out = new Float32Array(x.length);
    for (let s = 0; s < x.length; s += CHUNK) {
      const part = x.subarray(s, s + CHUNK);
      mem.set(part);
      const n4 = Math.ceil(part.length / 4) * 4;
      mem.fill(0, part.length, n4);
      ex[name](0, 4 * n4);
      out.set(mem.subarray(0, part.length), s);
    }
    return out;
  };
});

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);
/** The position of f32 x in the monotone order of f32 (±0 both 0). */
function ordinal(x: number): number {
  f32[0] = x;
  const i = i32[0]!;
  return i < 0 ? -(i & 0x7fffffff) : i;
}
function ulps(got: number, want: number): number {
  if (Number.isNaN(got) || Number.isNaN(want)) return Number.isNaN(got) && Number.isNaN(want) ? 0 : Infinity;
  return Math.abs(ordinal(got) - ordinal(want));
}

/** Max ulp error of each function over every `stride`th bit pattern, printed and checked against BOUND. */
function sweep(stride: number): void {
  const x = new Float32Array(CHUNK);
  const xb = new Uint32Array(x.buffer);
  const worst = Object.fromEntries(NAMES.map((n) => [n, { ulps: 0, x: 0, off: 0 }])) as Record<Name, { ulps: number; x: number; off: number }>;
  const t0 = performance.now();
  for (let start = 0; start < 2 ** 32; start += CHUNK * stride) {
    const n = Math.min(CHUNK, Math.ceil((2 ** 32 - start) / stride));
    for (let k = 0; k < n; k++) xb[k] = start + k * stride;
    const xs = x.subarray(0, n);
    for (const name of NAMES) {
      const got = run(name, xs);
      const truth = TRUTH[name];
      const w = worst[name];
      for (let k = 0; k < n; k++) {
        const d = ulps(got[k]!, Math.fround(truth(xs[k]!)));
        if (d > 0) w.off++;
        if (d > w.ulps) {
          w.ulps = d;
          w.x = xs[k]!;
        }
      }
    }
  }
  const ms = performance.now() - t0;
  const count = Math.ceil(2 ** 32 / stride);
  const each = NAMES.map((n) => `${n} ${worst[n].ulps} (at ${worst[n].x}; ${((100 * worst[n].off) / count).toFixed(2)}% off)`);
  console.log(`max ulp over every ${stride === 1 ? '' : `${stride}th `}f32 (${count} inputs each, ${(ms / 1000).toFixed(1)} s): ${each.join(', ')}`);
  for (const name of NAMES) expect(worst[name].ulps, name).toBeLessThanOrEqual(BOUND[name]);
}

describe('f32x4 exp, log, tanh, erf in the wasm module', () => {
  it('are within their ulp bounds on every 97th f32 bit pattern', () => sweep(97));

  it.runIf(process.env.KILN_MATH_EXHAUSTIVE)('are within their ulp bounds on all 2^32 f32 bit patterns', () => sweep(1), 3_600_000);

  it('give the IEEE results at special values', () => {
    const at = (name: Name, xs: number[]) => Array.from(run(name, Float32Array.from(xs)));
    const MAX = 3.4028234663852886e38;
    const TINY = 1.401298464324817e-45; // smallest subnormal
    expect(at('exp', [NaN, -Infinity, Infinity, 0, -0, 1e-30, -1e-30, 89, 88.8, -104, -110])).toEqual([NaN, 0, Infinity, 1, 1, 1, 1, Infinity, Infinity, 0, 0]);
    // The overflow edge: 88.72283 is the largest x with e^x finite in f32; -103.972… the last
    // with e^x rounding up to the smallest subnormal.
    expect(at('exp', [88.72283172607422, 88.72283935546875])).toEqual([Math.fround(Math.exp(88.72283172607422)), Infinity]);
    expect(at('exp', [-103.97207641601562, -103.97208404541016])).toEqual([TINY, 0]);
    // Subnormal results, rounded once: within 1 of the truth in the last subnormal place.
    for (const x of [-88, -95.5, -100, -103]) expect(ulps(at('exp', [x])[0]!, Math.fround(Math.exp(x))), `exp(${x})`).toBeLessThanOrEqual(1);

    expect(at('log', [NaN, -1, -0, 0, Infinity, -Infinity, 1, MAX, -TINY])).toEqual([NaN, NaN, -Infinity, -Infinity, Infinity, NaN, 0, Math.fround(Math.log(MAX)), NaN]);
    // Subnormal inputs take the 2^23 scaling.
    for (const x of [TINY, 2 * TINY, 1e-40, 1.1754942e-38, 1.1754944e-38]) expect(ulps(at('log', [x])[0]!, Math.fround(Math.log(x))), `log(${x})`).toBeLessThanOrEqual(1);

    const th = at('tanh', [NaN, Infinity, -Infinity, 0, -0, 9.1, -9.1, 1e30, -1e30, TINY, -TINY, 0.625, -0.625]);
    expect(th.slice(0, 4)).toEqual([NaN, 1, -1, 0]);
    expect(Object.is(th[4], -0)).toBe(true);
    expect(th.slice(5, 11)).toEqual([1, -1, 1, -1, TINY, -TINY]);
    expect(ulps(th[11]!, Math.fround(Math.tanh(0.625)))).toBeLessThanOrEqual(1);
    expect(th[12]).toBe(-th[11]!);

    const ef = at('erf', [NaN, Infinity, -Infinity, 0, -0, 4, -4, 1e30, -1e30]);
    expect(ef.slice(0, 4)).toEqual([NaN, 1, -1, 0]);
    expect(Object.is(ef[4], -0)).toBe(true);
    expect(ef.slice(5)).toEqual([1, -1, 1, -1]);
    // erf rounds to 1 in f32 from 3.9192059 on, where 1 - erf crosses half an ulp of 1 (2^-25):
    // there the result may be 1 or its neighbour below.
    for (const x of [3.919205665588379, 3.919205904006958, 3.92, 3.95]) expect(ulps(at('erf', [x])[0]!, Math.fround(erf(x))), `erf(${x})`).toBeLessThanOrEqual(1);
    // Near 0 erf is 2x/√π: tiny and subnormal inputs keep it to the last place.
    for (const x of [TINY, 5 * TINY, 1e-40, 1e-38, 1e-20, 1e-7, 0.921875, -0.921875, Math.fround(0.921875 - 2 ** -24)])
      expect(ulps(at('erf', [x])[0]!, Math.fround(erf(x))), `erf(${x})`).toBeLessThanOrEqual(1);
  });

  it('are odd where the function is: f(-x) = -f(x) bit for bit for tanh and erf', () => {
    const x = Float32Array.from({ length: 4096 }, (_, i) => 2 ** ((i / 4096) * 10 - 8));
    const neg = x.map((v) => -v);
    for (const name of ['tanh', 'erf'] as const) expect(Array.from(run(name, neg))).toEqual(Array.from(run(name, x)).map((v) => -v));
  });
});
