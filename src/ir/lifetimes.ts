import type { Program, Slice } from './program.ts';

/** One value in one place over a step: kernel index of its write (-1: before the step) and of its last read (kernels.length: after it). */
export interface Lifetime {
  readonly name: string;
  readonly offset: number;
  readonly bytes: number;
  readonly write: number;
  readonly lastRead: number;
  /** What it is: persistent (state, gradients, constants), a per-step input, or made by a kernel. */
  readonly role: 'persistent' | 'input' | 'temporary';
}

/** Slices whose values the step starts with, and those it must end with. */
export function stepBoundary(p: Program): { initial: [string, Slice][]; finals: [string, Slice][] } {
  return {
    initial: [
      ...p.state.map((s): [string, Slice] => [`state ${s.name}`, s.slice]),
      ...Object.entries(p.inputs).map(([n, s]): [string, Slice] => [`input ${n}`, s]),
      ...p.constants.map((c, i): [string, Slice] => [`constant ${i}`, c.slice]),
    ],
    finals: [
      ...p.state.map((s): [string, Slice] => [`state ${s.name}`, { ...s.slice, value: s.update ?? s.slice.value }]),
      ...Object.entries(p.outputs).map(([n, s]): [string, Slice] => [`output ${n}`, s]),
      ...Object.entries(p.grads ?? {}).map(([n, s]): [string, Slice] => [`gradient of ${n}`, s]),
    ],
  };
}

/** When each value of a Program is written and last read, by the names its slices carry. */
export function lifetimes(p: Program): Lifetime[] {
  const K = p.kernels.length;
  const all = new Map<string, { name: string; offset: number; bytes: number; write: number; lastRead: number; role: Lifetime['role'] }>();
  const persistent = new Set([...p.state.map((s) => s.slice.offset), ...Object.values(p.grads ?? {}).map((s) => s.offset), ...p.constants.map((c) => c.slice.offset)]);
  const key = (s: Slice) => `${s.value}@${s.offset}`;
  const born = (s: Slice, at: number, role: Lifetime['role']) => {
    if (!all.has(key(s))) all.set(key(s), { name: s.value ?? '?', offset: s.offset, bytes: s.bytes, write: at, lastRead: at, role: persistent.has(s.offset) ? 'persistent' : role });
  };
  const read = (s: Slice, at: number) => {
    const l = all.get(key(s));
    if (l) l.lastRead = Math.max(l.lastRead, at);
  };
  const { initial, finals } = stepBoundary(p);
  for (const [what, s] of initial) born(s, -1, what.startsWith('input') ? 'input' : 'persistent');
  p.kernels.forEach((k, t) => {
    for (const s of k.inputs) read(s, t);
    for (const s of k.outputs) born(s, t, 'temporary');
  });
  for (const [, s] of finals) read(s, K);
  return [...all.values()];
}
