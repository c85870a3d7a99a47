import { lifetimes, stepBoundary } from './lifetimes.ts';
import { inPlaceAllowed, KERNEL_KINDS, storageBuffers } from './kernels.ts';
import { allOps } from './op.ts';
import { ARENA_ALIGN, type Kernel, type Program, type Slice } from './program.ts';
import { numel } from './shape.ts';
import type { Target } from './target.ts';

const overlap = (a: { offset: number; bytes: number }, b: { offset: number; bytes: number }) => a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
const span = (s: { offset: number; bytes: number }) => `[${s.offset}, ${s.offset + s.bytes})`;

/**
 * Proves a Program's memory plan sound, returning what is wrong (nothing, for a sound plan):
 * - every kernel is of a known kind, and one of a fused kind has the inputs, outputs and attrs
 *   its declaration (kernels.ts) gives it;
 * - every slice is aligned, inside the arena, as large as its shape, and names its value;
 * - every kernel binds at most the storage buffers its target allows;
 * - no two live values overlap: two values sharing bytes are never live at once, except an
 *   output written over an input at the kernel that reads it last, which must be the same slice
 *   and a kind that may write in place (kernels.ts);
 * - running the step symbolically, word by word of the arena, every kernel finds each input
 *   holding the value it names, and the step ends with every output, gradient and persistent
 *   tensor holding its value (the new one, where the step updates it). This is also what makes
 *   every in-place update legal: a later read of the old value would find the new one.
 */
export function verifyProgram(p: Program, target: Pick<Target, 'name' | 'maxStorageBuffers'>): string[] {
  const problems: string[] = [];
  const ops = new Set(allOps().map((o) => o.name));
  const fused: Readonly<Record<string, { read(k: Kernel): unknown }>> = KERNEL_KINDS;
  const check = (s: Slice, where: string) => {
    if (s.offset % ARENA_ALIGN !== 0) problems.push(`${where}: offset ${s.offset} is not a multiple of ${ARENA_ALIGN}`);
    if (s.offset < 0 || s.offset + s.bytes > p.memory.arenaBytes) problems.push(`${where}: ${span(s)} is outside the ${p.memory.arenaBytes}-byte arena`);
    if (s.bytes !== 4 * Math.max(1, numel(s.shape))) problems.push(`${where}: ${s.bytes} bytes for shape [${s.shape}]`);
    if (!s.value) problems.push(`${where}: the slice names no value`);
  };
  const { initial, finals } = stepBoundary(p);
  for (const [where, s] of [...initial, ...finals]) check(s, where);
  p.kernels.forEach((k) => {
    if (k.kind in fused) {
      try {
        fused[k.kind]!.read(k);
      } catch (e) {
        problems.push(`${k.name}: ${(e as Error).message}`);
      }
    } else if (!ops.has(k.kind)) problems.push(`${k.name}: unknown kind ${k.kind}`);
    k.inputs.forEach((s, i) => check(s, `${k.name} input ${i}`));
    k.outputs.forEach((s, i) => check(s, `${k.name} output ${i}`));
    const n = storageBuffers(k, p);
    if (n > target.maxStorageBuffers) problems.push(`${k.name}: binds ${n} storage buffers, more than ${target.name} allows`);
  });
  if (problems.length) return problems;

  // Symbolic execution: which value each 4-byte word holds.
  const ids = new Map<string, number>();
  const id = (name: string) => ids.get(name) ?? (ids.set(name, ids.size + 1), ids.size);
  const nameOf = (i: number) => (i === 0 ? 'nothing' : [...ids.keys()][i - 1]!);
  const words = new Int32Array(p.memory.arenaBytes / 4);
  const holds = (s: Slice) => {
    const want = id(s.value!);
    for (let w = s.offset / 4; w < (s.offset + s.bytes) / 4; w++) if (words[w] !== want) return nameOf(words[w]!);
    return undefined;
  };
  const write = (s: Slice) => words.fill(id(s.value!), s.offset / 4, (s.offset + s.bytes) / 4);
  for (const [, s] of initial) write(s);
  p.kernels.forEach((k) => {
    k.inputs.forEach((s) => {
      const found = holds(s);
      if (found !== undefined) problems.push(`${k.name} reads ${s.value} at ${span(s)}, which holds ${found}`);
    });
    k.outputs.forEach((o, oi) => {
      k.outputs.forEach((o2, oj) => {
        if (oj > oi && overlap(o, o2)) problems.push(`${k.name}: outputs ${oi} and ${oj} overlap`);
      });
      k.inputs.forEach((s, i) => {
        if (!overlap(o, s)) return;
        const same = o.offset === s.offset && o.bytes === s.bytes;
        if (!same || !inPlaceAllowed(k, i, oi)) problems.push(`${k.name}: output ${oi} (${o.value}) overlaps input ${i} (${s.value}) and ${k.kind} may not write it in place`);
      });
    });
    k.outputs.forEach(write);
  });
  for (const [where, s] of finals) {
    const found = holds(s);
    if (found !== undefined) problems.push(`${where} should end the step as ${s.value} at ${span(s)}, but that holds ${found}`);
  }

  // Liveness: values sharing bytes must live one after the other.
  const all = lifetimes(p).sort((a, b) => a.offset - b.offset);
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length && all[j]!.offset < all[i]!.offset + all[i]!.bytes; j++) {
      const [a, b] = [all[i]!, all[j]!];
      if (a.name === b.name) continue;
      if (!(a.lastRead <= b.write || b.lastRead <= a.write)) problems.push(`${a.name} ${span(a)} and ${b.name} ${span(b)} are live at once (kernels ${a.write}..${a.lastRead} and ${b.write}..${b.lastRead})`);
    }
  }
  return problems;
}
