import type { Program, Slice } from '../../ir/program.ts';
import { numel, type Shape } from '../../ir/shape.ts';
import { CTRL_BYTES, LINE } from './abi.ts';
import { roundUp } from './emitter.ts';

/**
 * Where a backend keeps things in its one shared memory: every persistent tensor at a fixed
 * address (the same for the train and eval modules of every batch size, so switching between
 * them copies nothing), and where the modules' arenas start.
 */
export interface MemoryLayout {
  readonly state: ReadonlyMap<string, { readonly addr: number; readonly shape: Shape }>;
  readonly arenaBase: number;
}

/** Lays out the persistent tensors (by name, in the order given) after the control block. */
export function layoutState(tensors: readonly { name: string; shape: Shape }[]): MemoryLayout {
  const state = new Map<string, { addr: number; shape: Shape }>();
  let at = CTRL_BYTES;
  for (const t of tensors) {
    const prev = state.get(t.name);
    if (prev) {
      if (numel(prev.shape) !== numel(t.shape)) throw new Error(`persistent tensor ${t.name} has two shapes: [${prev.shape}] and [${t.shape}]`);
      continue;
    }
    state.set(t.name, { addr: at, shape: [...t.shape] });
    at += roundUp(4 * Math.max(1, numel(t.shape)), LINE);
  }
  return { state, arenaBase: roundUp(at, LINE) };
}

/**
 * Absolute address of a Program slice: slices inside a persistent tensor's slice move with it to
 * the tensor's fixed place; everything else sits at arenaBase + offset. A slice that straddles a
 * persistent tensor's bounds cannot be moved and is refused.
 */
export function addressOf(program: Program, layout: MemoryLayout): (s: Slice) => number {
  const states = program.state.map((st) => {
    const at = layout.state.get(st.name);
    if (!at) throw new Error(`persistent tensor ${st.name} is missing from the memory layout`);
    if (4 * numel(at.shape) < st.slice.bytes) throw new Error(`persistent tensor ${st.name}: ${st.slice.bytes} bytes do not fit its place`);
    return { lo: st.slice.offset, hi: st.slice.offset + st.slice.bytes, addr: at.addr };
  });
  return (s) => {
    const lo = s.offset;
    const hi = s.offset + s.bytes;
    for (const st of states) {
      if (lo >= st.lo && hi <= st.hi) return st.addr + (lo - st.lo);
      if (lo < st.hi && hi > st.lo) throw new Error(`arena slice [${lo}, ${hi}) straddles a persistent tensor at [${st.lo}, ${st.hi})`);
    }
    return layout.arenaBase + lo;
  };
}
