import { KilnError } from '../ir/errors.ts';
import type { Augment } from '../runtime/data/augment.ts';
import type { Normalize } from '../runtime/data/dataset.ts';

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

/**
 * --normalize: MEAN,STD (one of each, for every channel) or MEANS/STDS with one value per channel
 * on each side (0.4914,0.4822,0.4465/0.2470,0.2435,0.2616), every STD > 0.
 */
export function normalizeFlag(flag: string, v: string): Normalize {
  const list = (s: string) => s.split(',').map((p) => (p.trim() === '' ? NaN : Number(p)));
  const halves = v.split('/');
  // Without a slash, MEAN,STD: the form this flag had before it took one per channel.
  const pair = halves.length === 1 ? list(v) : [];
  const [mean, std] = halves.length === 2 ? [list(halves[0]!), list(halves[1]!)] : pair.length === 2 ? [[pair[0]!], [pair[1]!]] : [[], []];
  if (mean.length === 0 || mean.length !== std.length || mean.some((m) => !Number.isFinite(m)) || std.some((s) => !(s > 0 && Number.isFinite(s)))) {
    throw new KilnError('usage', `${flag} must be MEAN,STD or, one per channel, MEANS/STDS, with every STD > 0; got '${v}'`, undefined, 'e.g. --normalize 0.2860,0.3530 for Fashion-MNIST, --normalize 0.4914,0.4822,0.4465/0.2470,0.2435,0.2616 for CIFAR-10');
  }
  return { mean, std };
}

/** --random-crop SIZE[,PADDING]: torchvision's RandomCrop(size, padding). */
export function randomCropFlag(flag: string, v: string): NonNullable<Augment['randomCrop']> {
  const m = /^\s*(\d+)\s*(?:,\s*(\d+)\s*)?$/.exec(v);
  const size = Number(m?.[1]);
  const padding = Number(m?.[2] ?? 0);
  if (!m || !Number.isSafeInteger(size) || size < 1 || !Number.isSafeInteger(padding)) {
    throw new KilnError('usage', `${flag} must be SIZE or SIZE,PADDING (positive size, padding 0 or more); got '${v}'`, undefined, "e.g. --random-crop 32,4: torchvision's RandomCrop(32, padding=4), CIFAR's usual");
  }
  return { size, padding };
}

/** --horizontal-flip [P]: torchvision's RandomHorizontalFlip(p), p = 0.5 when the flag has no value. */
export function flipFlag(flag: string, v: string | true): number {
  if (v === true) return 0.5;
  const p = Number(v);
  if (v.trim() === '' || !(p >= 0 && p <= 1)) throw new KilnError('usage', `${flag} must be a probability from 0 to 1; got '${v}'`, undefined, 'e.g. --horizontal-flip 0.5, or --horizontal-flip alone (RandomHorizontalFlip()\'s default)');
  return p;
}
