import { KilnError } from '../../ir/errors.ts';
import { fmtShape } from '../../ir/shape.ts';
import { closest } from '../closest.ts';
import { callerLoc } from '../source-loc.ts';
import type { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';

// Argument checks shared by the layers: a bad constructor argument is reported at the `new`.

export function badArg(layer: string, message: string, hint = 'arguments follow the PyTorch signature of the same layer'): never {
  throw new KilnError('layer-args', `${layer}: ${message}`, callerLoc(), hint);
}

export function positiveInt(layer: string, what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) badArg(layer, `${what} must be a positive integer, got ${String(v)}`);
  return v;
}

export function nonNegInt(layer: string, what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) badArg(layer, `${what} must be a non-negative integer, got ${String(v)}`);
  return v;
}

/** An int or an [h, w] pair, as PyTorch's _pair. */
export function pairArg(layer: string, what: string, v: unknown, check = positiveInt): [number, number] {
  if (Array.isArray(v)) {
    if (v.length !== 2) badArg(layer, `${what} must be a number or a pair [h, w], got ${JSON.stringify(v)}`);
    return [check(layer, what, v[0]), check(layer, what, v[1])];
  }
  const n = check(layer, what, v);
  return [n, n];
}

export function probability(layer: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) badArg(layer, `dropout probability must be in [0, 1), got ${String(v)}`);
  return v;
}

/** `Linear 'fc1' expects 5408 input features, got 6272 (input shape [64, 6272])` */
export function inputMismatch(m: Module, kind: string, expected: string, got: string, x: Tensor): never {
  throw new KilnError('shape', `${kind} '${m.path || '(model)'}' expects ${expected}, got ${got} (input shape ${fmtShape(x.shape)})`, callerLoc(), 'check the layer sizes against the shapes flowing into them (`kiln ir` shows every shape)');
}

/** An input a layer (`module` given) or an `F.*` function (`layer` is its label) cannot take. */
export function badInput(layer: string, module: Module | undefined, expected: string, got: string, x: Tensor): never {
  if (module) inputMismatch(module, layer, expected, got, x);
  throw new KilnError('shape', `${layer} expects ${expected}, got ${got} (input shape ${fmtShape(x.shape)})`, callerLoc(), 'check the shapes of the tensors passed to it (`kiln ir` shows every shape)');
}

/** The options of a layer's signature beyond its required arguments. */
export interface OptionSpec {
  /** PyTorch's order of the optional arguments, for calls written positionally. */
  positional: readonly string[];
  /** The options kiln implements. */
  supported: readonly string[];
  /** PyTorch options kiln does not implement, with the default value it accepts for each. */
  fixed?: Readonly<Record<string, unknown>>;
}

/**
 * A layer's options from either way PyTorch code is written, `Conv2d(1, 8, 3, 2, 1)` or
 * `Conv2d(1, 8, 3, { stride: 2, padding: 1 })` (snake_case names as well), checked so that
 * nothing is silently ignored: an unknown name is an error naming the closest known one, and an
 * option kiln does not implement (dilation, groups, ceil_mode, ...) is accepted only at PyTorch's
 * default.
 */
export function layerOptions(layer: string, rest: readonly unknown[], spec: OptionSpec): Record<string, unknown> {
  const named = rest.length === 1 && typeof rest[0] === 'object' && rest[0] !== null && !Array.isArray(rest[0]);
  if (!named && rest.length > spec.positional.length) badArg(layer, `takes at most ${spec.positional.length} optional arguments (${spec.positional.join(', ')}), got ${rest.length}`);
  const given: [string, unknown][] = named ? Object.entries(rest[0] as object) : rest.map((v, i) => [spec.positional[i]!, v]);
  const fixed = spec.fixed ?? {};
  const out: Record<string, unknown> = {};
  for (const [raw, value] of given) {
    const key = raw.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    if (value === undefined) continue;
    if (spec.supported.includes(key)) {
      out[key] = value;
    } else if (key in fixed) {
      const want = fixed[key];
      const isDefault = Array.isArray(value) ? value.every((v) => v === want) : value === want;
      if (!isDefault) badArg(layer, `${raw}=${JSON.stringify(value)} is not supported by kiln (only ${JSON.stringify(want)}, PyTorch's default)`, `kiln's ${layer} implements ${spec.supported.join(', ')}`);
    } else {
      const near = closest(key, [...spec.supported, ...Object.keys(fixed)]);
      badArg(layer, `unknown option '${raw}'${near ? `; did you mean '${near}'?` : ''}`, `${layer} takes ${spec.supported.join(', ')}`);
    }
  }
  return out;
}

export function boolArg(layer: string, what: string, v: unknown): boolean {
  if (typeof v !== 'boolean') badArg(layer, `${what} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

