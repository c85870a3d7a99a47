import { fmtShape, sameShape } from '../../ir/shape.ts';
import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';
import { badArg, badInput, boolArg, layerOptions, positiveInt } from './args.ts';

export interface LayerNormOptions {
  eps?: number;
  elementwiseAffine?: boolean;
}

/** normalized_shape as PyTorch takes it: an int or a list of them. */
export function shapeArg(layer: string, v: unknown): number[] {
  const dims = Array.isArray(v) ? (v as unknown[]) : [v];
  if (dims.length === 0) badArg(layer, 'normalized_shape must name at least one dimension');
  return dims.map((d) => positiveInt(layer, 'normalized_shape', d));
}

export function epsArg(layer: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0) || v === Infinity) badArg(layer, `eps must be a non-negative number, got ${String(v)}`);
  return v;
}

/**
 * (x - mean)/sqrt(var + eps)·weight + bias over the trailing dims `shape` of x, with the biased
 * variance, as torch.nn.functional.layer_norm: the `layer_norm` op (the row statistics and the
 * normalisation, one kernel forward and one backward) then the affine part as elementwise ops,
 * which the fusion pass folds into the normalising kernel's epilogue, and whose gradients are
 * the elementwise products and column sums autodiff makes of them.
 */
export function layerNormOn(layer: string, x: Tensor, shape: readonly number[], weight: Tensor | undefined, bias: Tensor | undefined, eps: number, module?: Module): Tensor {
  const k = shape.length;
  const tail = x.shape.slice(x.ndim - k);
  if (x.ndim < k || tail.some((d, i) => d !== shape[i])) badInput(layer, module, `an input ending in ${fmtShape(shape)}`, `${x.ndim < k ? `${x.ndim} dimensions` : fmtShape(tail)}`, x);
  for (const [what, t] of [['weight', weight], ['bias', bias]] as const) {
    if (t && !sameShape(t.shape, shape)) badInput(layer, module, `a ${what} of shape ${fmtShape(shape)}`, fmtShape(t.shape), x);
  }
  let y = x.tracer.op('layer_norm', [x], { eps, dims: k });
  if (weight) y = y.mul(weight);
  if (bias) y = y.add(bias);
  return y;
}

/** torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True): weight ones, bias zeros. */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;

  constructor(normalizedShape: number | number[], options?: LayerNormOptions);
  constructor(normalizedShape: number | number[], eps?: number, elementwiseAffine?: boolean);
  constructor(normalizedShape: number | number[], ...rest: unknown[]) {
    super();
    const options: LayerNormOptions = layerOptions('LayerNorm', rest, { positional: ['eps', 'elementwiseAffine'], supported: ['eps', 'elementwiseAffine'] });
    this.normalizedShape = shapeArg('LayerNorm', normalizedShape);
    this.eps = epsArg('LayerNorm', options.eps ?? 1e-5);
    this.elementwiseAffine = boolArg('LayerNorm', 'elementwise_affine', options.elementwiseAffine ?? true);
    if (this.elementwiseAffine) {
      this.declareState('weight', { shape: [...this.normalizedShape], init: { kind: 'constant', value: 1 }, kind: 'param' });
      this.declareState('bias', { shape: [...this.normalizedShape], init: { kind: 'constant', value: 0 }, kind: 'param' });
    }
  }

  override forward(x: Tensor): Tensor {
    return this.traced(() => {
      const affine = this.elementwiseAffine ? [this.state('weight'), this.state('bias')] : [undefined, undefined];
      return layerNormOn('LayerNorm', x, this.normalizedShape, affine[0], affine[1], this.eps, this);
    });
  }
}
