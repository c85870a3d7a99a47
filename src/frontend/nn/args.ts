import { KilnError } from '../../ir/errors.ts';
import { fmtShape } from '../../ir/shape.ts';
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
