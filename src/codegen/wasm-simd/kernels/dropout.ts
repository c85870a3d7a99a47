import { num } from '../../../ir/op.ts';
import { numel } from '../../../ir/shape.ts';
import { Stream } from '../../../runtime/rng.ts';
import { CTRL } from '../abi.ts';
import type { Emitter, X } from '../emitter.ts';
import { PARALLEL_MIN, span, onThread0, type KernelCtx } from '../kernel.ts';

/** MurmurHash3's fmix32, on a scalar i32 or (vec) 4 lanes of i32. */
function fmix32(e: Emitter, h: X, vec: boolean, tmp: { tee(v: X): X; get(): X }): X {
  const m = e.m;
  if (!vec) {
    const step = (x: X, sh: number, mul?: number) => {
      const y = m.i32.xor(tmp.tee(x), m.i32.shr_u(tmp.get(), e.i32(sh)));
      return mul === undefined ? y : m.i32.mul(y, e.i32(mul));
    };
    return step(step(step(h, 16, 0x85ebca6b), 13, 0xc2b2ae35), 16);
  }
  const step = (x: X, sh: number, mul?: number) => {
    const y = m.v128.xor(tmp.tee(x), m.i32x4.shr_u(tmp.get(), e.i32(sh)));
    return mul === undefined ? y : m.i32x4.mul(y, m.i32x4.splat(e.i32(mul)));
  };
  return step(step(step(h, 16, 0x85ebca6b), 13, 0xc2b2ae35), 16);
}

/**
 * Inverted dropout with the reference's counter-based mask: element i is kept iff
 * uniform(key, i) >= p, key = streamKey(seed, DROPOUT + stream, step). uniform is (bits >>> 8)·2^-24,
 * so the test is the integer comparison (bits >>> 8) >= ceil(p·2^24), 4 lanes at a time with
 * i32x4 multiplies (the same low 32 bits as Math.imul). Kept values are x·fround(1/(1-p)).
 * Inputs (x, step).
 */
export function dropout(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const p = num(c.k.attrs, 'p');
  const stream = num(c.k.attrs, 'stream');
  const n = numel(c.outShape(0));
  const threshold = Math.ceil(p * 2 ** 24);
  const scale = Math.fround(1 / (1 - p));
  const x = c.inAddr(0);
  const out = c.outAddr(0);
  const stepAddr = c.inAddr(1);
  c.phase((fn, tid) => {
    const key = fn.i32();
    const t = fn.i32();
    const tv = fn.v128();
    const i = fn.i32();
    const mask = fn.v128();
    const res = fn.v128();
    const parallel = e.T > 1 && n >= PARALLEL_MIN;
    // streamKey(seed, DROPOUT + stream, step)
    const seed = m.i32.load(0, 4, e.i32(CTRL.SEED));
    const step = m.i32.trunc_u_sat.f32(e.loadf(e.i32(stepAddr)));
    let h = fmix32(e, m.i32.xor(seed, e.i32(0x9e3779b9)), false, t);
    h = fmix32(e, m.i32.xor(h, e.i32(Math.imul(Stream.DROPOUT + stream + 1, 0x27d4eb2f))), false, t);
    h = fmix32(e, m.i32.xor(h, m.i32.mul(e.addc(step, 1), e.i32(0x165667b1))), false, t);
    const lanes = (lo: X, count: number): X[] => {
      const idx = m.i32x4.add(m.i32x4.splat(lo), m.v128.const(new Uint8Array(new Int32Array([0x6a09e667, 0x6a09e668, 0x6a09e669, 0x6a09e66a]).buffer)));
      const bits = fmix32(e, m.v128.xor(m.i32x4.splat(key.get()), fmix32(e, idx, true, tv)), true, tv);
      const keep = m.i32x4.ge_s(m.i32x4.shr_u(bits, e.i32(8)), m.i32x4.splat(e.i32(threshold)));
      const ptr = (base: number) => e.add(e.i32(base), e.mulc(e.copyExpr(lo), 4));
      return [mask.set(keep), res.set(m.v128.and(e.vmul(e.vloadN(ptr(x), count), e.vconst(scale)), mask.get())), e.vstoreN(ptr(out), res.get(), count)];
    };
    const n4 = n - (n % 4);
    const body = (lo: X, hi: X, last: X | null): X[] => {
      const end = fn.i32();
      return [
        end.set(m.select(m.i32.lt_s(hi, e.i32(n4)), e.copyExpr(hi), e.i32(n4))),
        e.for(i, lo, end.get(), 4, lanes(i.get(), 4)),
        ...(n % 4 ? [e.if(last ?? e.i32(1), lanes(e.i32(n4), n % 4))] : []),
      ];
    };
    const init = [key.set(h)];
    if (!parallel) return onThread0(e, tid, [...init, ...body(e.i32(0), e.i32(n), null)]);
    const s = span(e, fn, tid, n, 4);
    return [...init, ...s.init, ...body(s.lo.get(), s.hi.get(), m.i32.eq(s.hi.get(), e.i32(n)))];
  });
}
