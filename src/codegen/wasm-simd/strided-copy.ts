import { numel, type Shape } from '../../ir/shape.ts';
import type { Fn, Local, X } from './emitter.ts';
import { PARALLEL_MIN, onThread0, span, type KernelCtx } from './kernel.ts';
import { collapse, type Dim } from './map.ts';

/** dst[i] = src[i] for every coordinate i of `shape`, each side at its own element strides. */
export interface StridedCopy {
  shape: Shape;
  src: number;
  srcStrides: readonly number[];
  dst: number;
  dstStrides: readonly number[];
}

/** Edge of the square tiles a transposing copy walks: 8×8 floats are 4 cache lines read and 4 written. */
const TILE = 8;

/**
 * The statements of a strided copy (the permute, slice and pad kernels). Dimensions both sides
 * walk contiguously merge first (collapse), so a slice or a permute that keeps the last axis is
 * a copy of contiguous runs, 4 floats per vector. Otherwise the innermost destination axis and
 * the axis the source walks contiguously are tiled in 8×8 blocks, so each block reads and writes
 * whole cache lines whichever side is strided. Threads split the outermost axis.
 */
export function stridedCopy(c: KernelCtx, fn: Fn, tid: Local, s: StridedCopy): X[] {
  const { e } = c;
  const m = e.m;
  let dims = collapse(s.shape.map((n, d) => ({ n, strides: [s.srcStrides[d]!, s.dstStrides[d]!] })));
  if (dims.length === 0) dims = [{ n: 1, strides: [1, 1] }];
  const last = dims[dims.length - 1]!;
  const runs = last.strides[0] === 1 && last.strides[1] === 1;
  // The source's contiguous axis goes next to the innermost one, to be tiled with it.
  const p = runs ? -1 : dims.findIndex((d, k) => d.strides[0] === 1 && k < dims.length - 1);
  if (p >= 0) dims = [...dims.slice(0, p), ...dims.slice(p + 1, -1), dims[p]!, last];
  const outer: Dim[] = dims.slice(0, runs || p < 0 ? -1 : -2);
  const idx = outer.map(() => fn.i32());
  const [ps, pd] = [fn.i32(), fn.i32()];
  const parallel = e.T > 1 && numel(s.shape) >= PARALLEL_MIN && outer.length > 0 && outer[0]!.n >= e.T;
  const at = (base: number, side: 0 | 1) => outer.reduce<X>((a, d, k) => (d.strides[side] === 0 ? a : e.add(a, e.mulc(idx[k]!.get(), 4 * d.strides[side]!))), e.i32(base));

  let inner: X[];
  const i = fn.i32();
  if (runs) {
    const L = last.n;
    const L4 = L - (L % 4);
    const v = fn.v128();
    const step = (n: number): X[] => [v.set(e.vloadN(ps.get(), n)), e.vstoreN(pd.get(), v.get(), n)];
    inner = [ps.set(at(s.src, 0)), pd.set(at(s.dst, 1)), e.forc(i, 0, L4, 4, [...step(4), ps.set(e.addc(ps.get(), 16)), pd.set(e.addc(pd.get(), 16))]), ...(L % 4 ? step(L % 4) : [])];
  } else if (p < 0) {
    // No axis is contiguous in the source (it broadcasts or skips): element by element.
    inner = [
      ps.set(at(s.src, 0)),
      pd.set(at(s.dst, 1)),
      e.forc(i, 0, last.n, 1, [e.storef(e.add(pd.get(), e.mulc(i.get(), 4 * last.strides[1]!)), e.loadf(e.add(ps.get(), e.mulc(i.get(), 4 * last.strides[0]!))))]),
    ];
  } else {
    const tp = dims[dims.length - 2]!;
    const [pb, lb, pi, li, pEnd, lEnd] = [fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32()];
    const min = (a: X, n: number) => m.select(m.i32.lt_s(a, e.i32(n)), e.copyExpr(a), e.i32(n));
    const addr = (ptr: Local, side: 0 | 1) => e.add(ptr.get(), e.add(e.mulc(pi.get(), 4 * tp.strides[side]!), e.mulc(li.get(), 4 * last.strides[side]!)));
    inner = [
      ps.set(at(s.src, 0)),
      pd.set(at(s.dst, 1)),
      e.forc(pb, 0, tp.n, TILE, [
        pEnd.set(min(e.addc(pb.get(), TILE), tp.n)),
        e.forc(lb, 0, last.n, TILE, [
          lEnd.set(min(e.addc(lb.get(), TILE), last.n)),
          e.for(pi, pb.get(), pEnd.get(), 1, [e.for(li, lb.get(), lEnd.get(), 1, [e.storef(addr(pd, 1), e.loadf(addr(ps, 0)))])]),
        ]),
      ]),
    ];
  }
  let body = inner;
  for (let k = outer.length - 1; k >= 0; k--) {
    if (k === 0 && parallel) {
      const sp = span(e, fn, tid, outer[0]!.n);
      body = [...sp.init, e.for(idx[0]!, sp.lo.get(), sp.hi.get(), 1, body)];
    } else body = [e.forc(idx[k]!, 0, outer[k]!.n, 1, body)];
  }
  return parallel ? body : onThread0(e, tid, body);
}
