import { num } from '../../../ir/op.ts';
import type { Fn, Local } from '../emitter.ts';
import type { KernelCtx } from '../kernel.ts';
import { emitMap } from '../map.ts';

/**
 * torch.optim.Adam's bias-corrected update (1.13, single-tensor path), m and v already updated:
 *   t = step + 1; denom = sqrt(v)/sqrt(1 - β2^t) + eps; p - lr/(1 - β1^t) · m/denom
 * The step scalars are computed once per call in f64 (β^t by repeated squaring), then the update
 * runs in f32 lanes. Inputs (p, m, v, step).
 */
export function adamStep(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const a = c.k.attrs;
  const [lr, beta1, beta2, eps] = ['lr', 'beta1', 'beta2', 'eps'].map((k) => num(a, k)) as [number, number, number, number];
  const shape = c.outShape(0);
  const stepAddr = c.inAddr(3);
  let stepSize: Local;
  let bc2: Local;
  emitMap(c, {
    out: { addr: c.outAddr(0), shape },
    ins: [0, 1, 2].map((i) => ({ addr: c.inAddr(i), shape })),
    prologue: (fn) => {
      const t = fn.i32();
      const p1 = fn.f64();
      const p2 = fn.f64();
      stepSize = fn.v128();
      bc2 = fn.v128();
      return [
        t.set(e.addc(m.i32.trunc_s_sat.f32(e.loadf(e.i32(stepAddr))), 1)),
        ...powi(c, fn, beta1, t, p1),
        ...powi(c, fn, beta2, t, p2),
        stepSize.set(e.splat(m.f32.demote(m.f64.div(e.f64(lr), m.f64.sub(e.f64(1), p1.get()))))),
        bc2.set(e.splat(m.f32.demote(m.f64.sqrt(m.f64.sub(e.f64(1), p2.get()))))),
      ];
    },
    f: ([p, mm, v]) => e.vsub(p!, e.vmul(stepSize.get(), e.vdiv(mm!, e.vadd(e.vdiv(m.f32x4.sqrt(v!), bc2.get()), e.vconst(eps))))),
  });
}

/** out = base^n (f64) for an i32 n >= 0, by repeated squaring. */
function powi(c: KernelCtx, fn: Fn, base: number, n: Local, out: Local) {
  const { e } = c;
  const m = e.m;
  const b = fn.f64();
  const k = fn.i32();
  const top = e.label('pow');
  const done = e.label('powd');
  return [
    out.set(e.f64(1)),
    b.set(e.f64(base)),
    k.set(n.get()),
    m.block(done, [
      m.loop(
        top,
        e.block([
          m.br(done, m.i32.le_s(k.get(), e.i32(0))),
          e.if(m.i32.and(k.get(), e.i32(1)), [out.set(m.f64.mul(out.get(), b.get()))]),
          b.set(m.f64.mul(b.get(), b.get())),
          k.set(m.i32.shr_u(k.get(), e.i32(1))),
          m.br(top),
        ]),
      ),
    ]),
  ];
}
