import { KilnError } from '../ir/errors.ts';
import { broadcastShapes, fmtShape, numel, sameShape, type Shape } from '../ir/shape.ts';
import { callerLoc } from './source-loc.ts';
import { tableMethods, type TableMethods } from './table-api.ts';
import type { Tracer } from './tracer.ts';

function fail(message: string, hint = 'compare with the shapes `kiln ir` prints for each line of the model'): never {
  throw new KilnError('shape', message, callerLoc(), hint);
}

/** Resolves a view shape with at most one -1, as torch.view does. */
export function resolveView(from: Shape, dims: readonly number[]): number[] {
  const total = numel(from);
  const free = dims.filter((d) => d === -1).length;
  if (free > 1) fail(`view: only one dimension can be -1, got ${fmtShape(dims)}`);
  if (dims.some((d) => !Number.isInteger(d) || d < -1 || d === 0)) fail(`view: invalid shape ${fmtShape(dims)}`);
  const known = dims.reduce((p, d) => (d === -1 ? p : p * d), 1);
  if (free === 1) {
    if (total % known !== 0) fail(`cannot view ${fmtShape(from)} (${total} elements) as ${fmtShape(dims)}: ${total} is not divisible by ${known}`);
    return dims.map((d) => (d === -1 ? total / known : d));
  }
  if (known !== total) fail(`cannot view ${fmtShape(from)} (${total} elements) as ${fmtShape(dims)} (${known} elements)`);
  return [...dims];
}

/** A dimension of `shape` (negative counts from the end), as PyTorch wraps it; `extra` allows one past the end (unsqueeze). */
function normDim(shape: Shape, dim: number, what: string, extra = 0): number {
  const rank = shape.length + extra;
  const d = dim < 0 ? dim + rank : dim;
  if (typeof dim !== 'number' || !Number.isInteger(d) || d < 0 || d >= rank) fail(`${what}: dim ${String(dim)} out of range for a tensor of shape ${fmtShape(shape)} (expected one in [${-rank}, ${rank - 1}])`);
  return d;
}

/** Dims given as PyTorch accepts them: `f(0, 2, 1)` or `f([0, 2, 1])`. */
const dimList = (dims: readonly (number | readonly number[])[]): number[] => (dims.length === 1 && Array.isArray(dims[0]) ? [...dims[0]] : (dims as number[]));

function positiveInt(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new KilnError('args', `${what} must be a positive integer, got ${String(v)}`, callerLoc(), 'arguments follow the PyTorch signature of the same method');
  return v;
}

// The elementwise methods (add, relu, tanh, clamp, where, ...) come from the op table's `api`
// entries (table-api.ts): declared here by merging, installed on the prototype below.
export interface Tensor extends TableMethods {}

/**
 * A symbolic tensor: a node of the graph being traced, with its shape known. Methods follow
 * torch.Tensor's names and semantics.
 */
export class Tensor {
  constructor(
    readonly tracer: Tracer,
    readonly node: number,
  ) {}

  get shape(): number[] {
    return [...this.tracer.shape(this.node)];
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** PyTorch's `size()`: the shape, or with a dimension (negative counts from the end) its extent. */
  size(): number[];
  size(dim: number): number;
  size(dim?: number): number | number[] {
    return dim === undefined ? [...this.shape] : this.shape[normDim(this.shape, dim, 'size')]!;
  }

  numel(): number {
    return numel(this.shape);
  }

  view(...shape: number[]): Tensor {
    const dims = shape.length === 1 && Array.isArray(shape[0]) ? (shape[0] as unknown as number[]) : shape;
    return this.tracer.op('reshape', [this], { shape: resolveView(this.shape, dims) });
  }

  reshape(...shape: number[]): Tensor {
    return this.view(...shape);
  }

  /** torch.flatten: dims start..end merged into one (default: all). */
  flatten(startDim = 0, endDim = -1): Tensor {
    const s = this.shape;
    const a = normDim(s, startDim, 'flatten');
    const b = normDim(s, endDim, 'flatten');
    if (a > b) fail(`flatten: start dim ${startDim} is after end dim ${endDim}`);
    return this.view(...s.slice(0, a), numel(s.slice(a, b + 1)), ...s.slice(b + 1));
  }

  /** torch.unsqueeze: a size-1 dimension inserted at dim (in [-ndim-1, ndim]). */
  unsqueeze(dim: number): Tensor {
    const s = this.shape;
    const d = normDim(s, dim, 'unsqueeze', 1);
    return this.view(...s.slice(0, d), 1, ...s.slice(d));
  }

  /** torch.squeeze: every size-1 dimension removed, or only those of `dim` (a dim of another size stays, as in PyTorch). */
  squeeze(dim?: number | number[]): Tensor {
    const s = this.shape;
    const drop = dim === undefined ? s.map((_, i) => i) : (Array.isArray(dim) ? dim : [dim]).map((d) => normDim(s, d, 'squeeze'));
    const kept = s.filter((n, i) => n !== 1 || !drop.includes(i));
    return kept.length === s.length ? this : this.view(...kept);
  }

  /** Every tensor kiln traces is contiguous: the same tensor. */
  contiguous(): Tensor {
    return this;
  }

  /** torch.permute: output dim k is dim dims[k] of this tensor (a copy). */
  permute(...dims: (number | number[])[]): Tensor {
    const s = this.shape;
    const list = dimList(dims);
    if (list.length !== s.length) fail(`permute: ${list.length} dims given for a tensor of ${s.length} dimensions (shape ${fmtShape(s)})`);
    const d = list.map((x) => normDim(s, x, 'permute'));
    if (new Set(d).size !== d.length) fail(`permute: dims [${list.join(', ')}] repeat a dimension`);
    return d.every((x, i) => x === i) ? this : this.tracer.op('permute', [this], { dims: d });
  }

  /** torch.transpose: dims d0 and d1 swapped. */
  transpose(dim0: number, dim1: number): Tensor {
    const s = this.shape;
    const [a, b] = [normDim(s, dim0, 'transpose'), normDim(s, dim1, 'transpose')];
    return this.permute(s.map((_, i) => (i === a ? b : i === b ? a : i)));
  }

  /**
   * torch.matmul. Operands of rank >= 2 multiply their last two dims, batch dims broadcasting; a
   * 1-d operand is a row (first) or column (second) vector whose dim is removed from the result.
   * A batch against a matrix runs as one 2-d product over the batch's rows, as PyTorch folds it.
   */
  matmul(other: Tensor): Tensor {
    if (!(other instanceof Tensor)) fail(`matmul: the other operand must be a tensor, got ${typeof other}`);
    const [a, b] = [this.shape, other.shape];
    if (a.length === 0 || b.length === 0) fail(`matmul: both operands need at least one dimension, got ${fmtShape(a)} and ${fmtShape(b)}`);
    const k = a.at(-1)!;
    const k2 = b.length === 1 ? b[0]! : b.at(-2)!;
    if (k !== k2) fail(`matmul: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be multiplied (${k} vs ${k2})`);
    if (a.length === 1) return this.unsqueeze(0).matmul(other).squeeze(-2);
    if (b.length === 1) return this.matmul(other.unsqueeze(1)).squeeze(-1);
    if (b.length === 2 && a.length > 2) return this.view(-1, k).matmul(other).view(...a.slice(0, -1), b[1]!);
    if (!broadcastShapes(a.slice(0, -2), b.slice(0, -2))) fail(`matmul batch dimensions ${fmtShape(a.slice(0, -2))} and ${fmtShape(b.slice(0, -2))} do not broadcast (shapes ${fmtShape(a)} and ${fmtShape(b)})`);
    return this.tracer.op('matmul', [this, other], { transA: false, transB: false });
  }

  /**
   * torch.split: pieces of `size` along dim (the last one shorter if it does not divide), or of
   * the listed sizes, which must add up to the dim. Each piece is a copy here, not a view.
   */
  split(size: number | number[], dim = 0): Tensor[] {
    const s = this.shape;
    const d = normDim(s, dim, 'split');
    const n = s[d]!;
    let sizes: number[];
    if (Array.isArray(size)) {
      sizes = size.map((x) => positiveInt('split: each size', x));
      const total = sizes.reduce((p, x) => p + x, 0);
      if (total !== n) fail(`split: sizes [${sizes.join(', ')}] add up to ${total}, but dim ${dim} of ${fmtShape(s)} has ${n}`);
    } else {
      const step = positiveInt('split: split_size', size);
      sizes = Array.from({ length: Math.max(1, Math.ceil(n / step)) }, (_, i) => Math.min(step, n - i * step));
    }
    let start = 0;
    return sizes.map((len) => {
      const piece = len === n ? this : this.tracer.op('slice', [this], { dim: d, start, end: start + len });
      start += len;
      return piece;
    });
  }

  /** torch.chunk: split into pieces of ceil(size / chunks) along dim (so possibly fewer than `chunks`). */
  chunk(chunks: number, dim = 0): Tensor[] {
    const d = normDim(this.shape, dim, 'chunk');
    return this.split(Math.max(1, Math.ceil(this.shape[d]! / positiveInt('chunk: chunks', chunks))), d);
  }

  /** torch.Tensor.softmax(dim), as F.softmax. */
  softmax(dim: number): Tensor {
    return this.tracer.op('softmax', [this], { dim: normDim(this.shape, dim, 'softmax') });
  }

  /** torch.Tensor.log_softmax(dim), as F.logSoftmax. */
  logSoftmax(dim: number): Tensor {
    return this.tracer.op('log_softmax', [this], { dim: normDim(this.shape, dim, 'logSoftmax') });
  }

  /** torch.Tensor.masked_fill: `value` where mask (broadcast to this shape) is non-zero, this elsewhere. */
  maskedFill(mask: Tensor, value: number): Tensor {
    if (!(mask instanceof Tensor)) fail(`maskedFill: the mask must be a tensor (a comparison's result), got ${typeof mask}`);
    if (typeof value !== 'number') fail(`maskedFill: value must be a number, got ${typeof value}`);
    const out = broadcastShapes(mask.shape, this.shape);
    if (!out || !sameShape(out, this.shape)) fail(`maskedFill: mask of shape ${fmtShape(mask.shape)} does not broadcast to ${fmtShape(this.shape)}`);
    return this.tracer.op('where', [mask, this.tracer.constant(value), this]);
  }

  /** Sum over `dim` (a number or list; all dims when omitted). */
  sum(dim?: number | number[], keepdim = false): Tensor {
    return this.tracer.op('sum', [this], { axes: this.axes(dim, 'sum'), keepdim });
  }

  mean(dim?: number | number[], keepdim = false): Tensor {
    const axes = this.axes(dim, 'mean');
    const count = axes.reduce((p, a) => p * this.shape[a]!, 1);
    return this.sum(axes, keepdim).mul(1 / count);
  }

  private axes(dim: number | number[] | undefined, what: string): number[] {
    if (dim === undefined) return this.shape.map((_, i) => i);
    const list = Array.isArray(dim) ? dim : [dim];
    return [...new Set(list.map((d) => normDim(this.shape, d, what)))].sort((x, y) => x - y);
  }

  /** Tensor values are not known while tracing; reading them is a model error. */
  item(): never {
    return readsValue('item()');
  }

  // Every way JavaScript turns an object into a number, string or JSON: `Number(x)`, `+x`,
  // `x > 0`, `${x}`, `'' + x`, `JSON.stringify(x)`. Each would give NaN or a fixed string, and the
  // branch it decides would be baked into the graph without a word; the linter cannot see them
  // all (an `any` in between hides the tensor), so the tensor refuses at run time.
  [Symbol.toPrimitive](hint: string): never {
    return readsValue(hint === 'string' ? 'converting it to a string (a template string or String(x))' : 'converting it to a number (Number(x), +x, or a comparison such as x > 0)');
  }

  valueOf(): never {
    return readsValue('valueOf()');
  }

  toString(): never {
    return readsValue('toString()');
  }

  toJSON(): never {
    return readsValue('JSON.stringify');
  }

  /** What console.log shows: the shape, which is known while tracing. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Tensor(${fmtShape(this.shape)})`;
  }
}

function readsValue(how: string): never {
  throw new KilnError('tensor-value', `${how} reads a tensor's value, which is unknown while kiln traces a static graph`, callerLoc(), 'compute with tensor ops instead of reading values in forward() (x.shape and x.size() are known)');
}

Object.assign(Tensor.prototype, tableMethods());
