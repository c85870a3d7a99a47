import { KilnError } from '../ir/errors.ts';
import { fmtShape, numel, type Shape } from '../ir/shape.ts';
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

function normDim(shape: Shape, dim: number, what: string): number {
  const d = dim < 0 ? dim + shape.length : dim;
  if (!Number.isInteger(d) || d < 0 || d >= shape.length) fail(`${what}: dim ${dim} out of range for a tensor of shape ${fmtShape(shape)}`);
  return d;
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
