import { fmtShape } from '../ir/shape.ts';
import { badArg } from './nn/args.ts';
import { Tensor } from './tensor.ts';
import { currentTracer, type Tracer } from './tracer.ts';

// Tensors made from nothing but their shape, as torch.arange, ones, zeros, tril and triu make
// them, for use inside forward (a causal mask: `x.maskedFill(tril(ones(T, T)).eq(0), -Infinity)`).
// They are ops of the graph, not data: `iota` (an element's coordinate) and a broadcast scalar,
// which fuse into the kernel that reads them (src/ir/ops/iota.ts).

const HINT = 'arguments follow the PyTorch signature of the same function';

function sizeArgs(fn: string, size: readonly (number | readonly number[])[]): number[] {
  const dims = size.length === 1 && Array.isArray(size[0]) ? [...size[0]] : (size as number[]);
  for (const d of dims) if (typeof d !== 'number' || !Number.isInteger(d) || d < 1) badArg(fn, `sizes must be positive integers, got ${JSON.stringify(dims)}`, HINT);
  return dims;
}

function filled(fn: string, value: number, size: readonly (number | readonly number[])[]): Tensor {
  const t = currentTracer(fn);
  const shape = sizeArgs(fn, size);
  const c = t.constant(value);
  return shape.length === 0 ? c : t.op('expand', [c], { shape });
}

const iota = (t: Tracer, shape: readonly number[], dim: number): Tensor => t.op('iota', [], { shape: [...shape], dim });

/** torch.ones(*size). */
export function ones(...size: (number | number[])[]): Tensor {
  return filled('ones', 1, size);
}

/** torch.zeros(*size). */
export function zeros(...size: (number | number[])[]): Tensor {
  return filled('zeros', 0, size);
}

/** torch.arange(end) or torch.arange(start, end, step = 1): start, start + step, ... up to end (excluded), as f32. */
export function arange(startOrEnd: number, end?: number, step = 1): Tensor {
  const t = currentTracer('arange');
  const start = end === undefined ? 0 : startOrEnd;
  const stop = end ?? startOrEnd;
  for (const [name, v] of [['start', start], ['end', stop], ['step', step]] as const) if (typeof v !== 'number' || !Number.isFinite(v)) badArg('arange', `${name} must be a finite number, got ${String(v)}`, HINT);
  if (step === 0) badArg('arange', 'step must be non-zero', HINT);
  const n = Math.ceil((stop - start) / step);
  if (!(n >= 1)) badArg('arange', `the range from ${start} to ${stop} by ${step} is empty; kiln has no empty tensors`, HINT);
  const i = iota(t, [n], 0);
  const scaled = step === 1 ? i : t.op('mul', [i, t.constant(step)]);
  return start === 0 ? scaled : t.op('add', [scaled, t.constant(start)]);
}

/**
 * Where column - row of the last two dims meets `diagonal` (<= for the lower triangle, >= for the
 * upper) the input, elsewhere 0, as torch.tril / torch.triu.
 */
function triangle(fn: 'tril' | 'triu', x: Tensor, diagonal: number): Tensor {
  if (!(x instanceof Tensor)) badArg(fn, `expects a tensor, got ${typeof x}`, HINT);
  if (x.ndim < 2) badArg(fn, `expects a tensor of at least 2 dimensions, got shape ${fmtShape(x.shape)}`, HINT);
  if (typeof diagonal !== 'number' || !Number.isInteger(diagonal)) badArg(fn, `diagonal must be an integer, got ${String(diagonal)}`, HINT);
  const t = x.tracer;
  const matrix = x.shape.slice(-2);
  const offset = t.op('sub', [iota(t, matrix, 1), iota(t, matrix, 0)]);
  const keep = t.op(fn === 'tril' ? 'le' : 'ge', [offset, t.constant(diagonal)]);
  return t.op('where', [keep, x, t.constant(0)]);
}

/** torch.tril(x, diagonal = 0): the lower triangle of the last two dims, zeros above. */
export function tril(x: Tensor, diagonal = 0): Tensor {
  return triangle('tril', x, diagonal);
}

/** torch.triu(x, diagonal = 0): the upper triangle of the last two dims, zeros below. */
export function triu(x: Tensor, diagonal = 0): Tensor {
  return triangle('triu', x, diagonal);
}
