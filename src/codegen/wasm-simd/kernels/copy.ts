import type { KernelCtx } from '../kernel.ts';
import { PARALLEL_MIN, span, onThread0 } from '../kernel.ts';

/** Copies a slice (memory.copy, memmove semantics); nothing when source and target coincide. */
export function copy(c: KernelCtx): void {
  const src = c.inAddr(0);
  const dst = c.outAddr(0);
  const bytes = c.k.outputs[0]!.bytes;
  if (src === dst) return;
  const { e } = c;
  c.phase((fn, tid) => {
    if (e.T === 1 || bytes < 4 * PARALLEL_MIN) return onThread0(e, tid, [e.m.memory.copy(e.i32(dst), e.i32(src), e.i32(bytes))]);
    const s = span(e, fn, tid, bytes, 64);
    return [...s.init, e.m.memory.copy(e.add(e.i32(dst), s.lo.get()), e.add(e.i32(src), s.lo.get()), e.sub(s.hi.get(), s.lo.get()))];
  });
}
