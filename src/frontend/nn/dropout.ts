import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';
import { probability } from './args.ts';

/**
 * Inverted dropout in training, identity in evaluation. Its mask comes from the counter-based
 * RNG keyed by (seed, step, site, element), so every backend draws the same one.
 */
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (!training || p === 0) return x;
  const t = x.tracer;
  return t.op('dropout', [x, t.step()], { p, stream: t.nextDropoutStream() });
}

export class Dropout extends Module {
  readonly p: number;

  constructor(p = 0.5) {
    super();
    this.p = probability('Dropout', p);
  }

  override forward(x: Tensor): Tensor {
    return this.traced(() => dropout(x, this.p, this.training));
  }
}
