export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function fmtShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Row-major strides of a contiguous tensor. */
export function strides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** NumPy/PyTorch broadcasting of two shapes, or undefined when they do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape): number[] | undefined {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Output size of a sliding window (conv, pool), PyTorch's floor rule. */
export function windowOut(size: number, kernel: number, stride: number, padding: number, dilation = 1): number {
  return Math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1;
}

/**
 * Strides for reading a tensor of shape `from` as if broadcast to `to` (NumPy rules: shapes are
 * aligned on the right, size-1 and missing dimensions repeat, i.e. stride 0).
 */
export function broadcastStrides(from: Shape, to: Shape): number[] {
  const s = strides(from);
  const lead = to.length - from.length;
  return to.map((_, d) => (d < lead || from[d - lead] === 1 ? 0 : s[d - lead]!));
}

/** Offset of row-major element `flat` of `shape` in a tensor laid out with `st` (from broadcastStrides). */
export function offsetOf(flat: number, shape: Shape, st: readonly number[]): number {
  let off = 0;
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    off += (flat % n) * st[d]!;
    flat = Math.floor(flat / n);
  }
  return off;
}
