import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';
import { badInput, boolArg, layerOptions, positiveInt } from './args.ts';
import { defaultInit } from './default-init.ts';

/**
 * x·wᵀ + b over the last dimension of x [..., in] (torch.nn.functional.linear). The linear op is
 * 2-d, so any other rank is viewed as [prod(...), in] around it: the views compile to nothing,
 * and the fused linear kernels (linear_ew, linear_grad, linear_cross_entropy) see the op they know.
 * A 2-d input records exactly the one op it always did. `module` is the layer calling it, which
 * errors name; `layer` is what they call it.
 */
export function linearOn(layer: string, x: Tensor, weight: Tensor, bias: Tensor | undefined, module?: Module): Tensor {
  const [out, features] = weight.shape;
  if (weight.ndim !== 2) badInput(layer, module, 'a 2-d weight [out_features, in_features]', `one of shape [${weight.shape}]`, x);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== out)) badInput(layer, module, `a bias of shape [${out}]`, `[${bias.shape}]`, x);
  if (x.ndim < 1) badInput(layer, module, 'an input [..., features]', 'a scalar', x);
  if (x.shape[x.ndim - 1] !== features) badInput(layer, module, `${features} input features`, `${x.shape[x.ndim - 1]}`, x);
  const ins = [weight, ...(bias ? [bias] : [])];
  if (x.ndim === 2) return x.tracer.op('linear', [x, ...ins]);
  const y = x.tracer.op('linear', [x.view(-1, features!), ...ins]);
  return y.view(...x.shape.slice(0, -1), out!);
}

/** torch.nn.Linear: weight [out, in], bias [out], kaiming-uniform(a=√5) init; input [..., in]. */
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
    return this.traced(() => linearOn('Linear', x, this.state('weight'), this.bias ? this.state('bias') : undefined, this));
  }
}
