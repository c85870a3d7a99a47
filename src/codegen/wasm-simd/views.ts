import type { Program, Slice } from '../../ir/program.ts';

const overlaps = (a: Slice, b: Slice) => a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
const same = (a: Slice, b: Slice) => a.offset === b.offset && a.bytes === b.bytes;

/**
 * A reshape only renames its input, so where it is safe the reshape's output is read straight
 * from its input's place and the copy disappears: the output's place is written by no other
 * kernel, the input's place by no kernel after the reshape, the output is not a step output, and
 * every read of the output's place reads exactly that slice. Returns the slice each slice is
 * really read from (itself for most).
 */
export function viewAliases(p: Program): (s: Slice) => Slice {
  const moved = new Map<number, Slice>();
  const resolve = (s: Slice): Slice => {
    const to = moved.get(s.offset);
    return to && s.bytes === to.bytes ? { ...to, shape: s.shape } : s;
  };
  const pinned = [...Object.values(p.outputs), ...Object.values(p.inputs), ...p.state.map((s) => s.slice), ...p.constants.map((c) => c.slice)];
  p.kernels.forEach((k, i) => {
    if (k.kind !== 'reshape' && k.kind !== 'copy') return;
    if (k.kind === 'copy' && p.state.some((s) => overlaps(s.slice, k.outputs[0]!))) return;
    const out = k.outputs[0]!;
    const src = resolve(k.inputs[0]!);
    if (out.bytes !== src.bytes || same(out, src) || pinned.some((s) => overlaps(s, out))) return;
    const writtenElsewhere = p.kernels.some((k2, j) => j !== i && k2.outputs.some((o) => overlaps(o, out)));
    const srcWrittenLater = p.kernels.some((k2, j) => j > i && k2.outputs.some((o) => overlaps(o, src)));
    const partialRead = p.kernels.some((k2) => k2.inputs.some((s) => overlaps(s, out) && !same(s, out)));
    if (writtenElsewhere || srcWrittenLater || partialRead) return;
    moved.set(out.offset, src);
  });
  return resolve;
}
