import { KilnError } from '../ir/errors.ts';

// Flag parsing shared by the commands: a bad value names the flag and what it accepts.

export function choice<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new KilnError('usage', `${flag} must be one of ${allowed.join(', ')}; got '${value}'`);
  }
  return value as T;
}

export function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new KilnError('usage', `${flag} must be a positive integer; got '${value}'`);
  return n;
}

export function nonNegInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new KilnError('usage', `${flag} must be a non-negative integer; got '${value}'`);
  return n;
}

export function nonNegNumber(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new KilnError('usage', `${flag} must be a non-negative number; got '${value}'`);
  return n;
}

/** MEAN,STD with a positive STD (pixel normalisation). */
export function meanStd(flag: string, v: string): [number, number] {
  const parts = v.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 2 || parts.some((p) => !Number.isFinite(p)) || !(parts[1]! > 0)) {
    throw new KilnError('usage', `${flag} must be MEAN,STD with STD > 0; got '${v}'`, undefined, 'e.g. --normalize 0.2860,0.3530 for Fashion-MNIST');
  }
  return parts as [number, number];
}
