import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';
import { boolArg, inputMismatch, layerOptions, positiveInt } from './args.ts';
import { defaultInit } from './default-init.ts';

/** torch.nn.Linear: weight [out, in], bias [out], kaiming-uniform(a=√5) init. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias: boolean;

  constructor(inFeatures: number, outFeatures: number, options?: { bias?: boolean });
  constructor(inFeatures: number, outFeatures: number, bias?: boolean);
  constructor(inFeatures: number, outFeatures: number, ...rest: unknown[]) {
    super();
    const options: { bias?: boolean } = layerOptions('Linear', rest, { positional: ['bias'], supported: ['bias'] });
    this.inFeatures = positiveInt('Linear', 'in_features', inFeatures);
    this.outFeatures = positiveInt('Linear', 'out_features', outFeatures);
    this.bias = boolArg('Linear', 'bias', options.bias ?? true);
    const init = defaultInit(this.inFeatures);
    this.declareState('weight', { shape: [this.outFeatures, this.inFeatures], init: init.weight, kind: 'param' });
    if (this.bias) this.declareState('bias', { shape: [this.outFeatures], init: init.bias, kind: 'param' });
  }

  override forward(x: Tensor): Tensor {
    return this.traced(() => {
      if (x.ndim !== 2) inputMismatch(this, 'Linear', 'a 2-d input [N, features]', `${x.ndim} dimensions`, x);
      if (x.shape[1] !== this.inFeatures) inputMismatch(this, 'Linear', `${this.inFeatures} input features`, `${x.shape[1]}`, x);
      return x.tracer.op('linear', [x, this.state('weight'), ...(this.bias ? [this.state('bias')] : [])]);
    });
  }
}
