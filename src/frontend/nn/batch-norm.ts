import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';
import { badArg, inputMismatch, layerOptions, positiveInt, type OptionSpec } from './args.ts';

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  /** PyTorch's; kiln implements only true. */
  affine?: boolean;
  /** PyTorch's; kiln implements only true. */
  trackRunningStats?: boolean;
}

const OPTIONS: OptionSpec = {
  positional: ['eps', 'momentum', 'affine', 'trackRunningStats'],
  supported: ['eps', 'momentum'],
  fixed: { affine: true, trackRunningStats: true },
};

/**
 * torch.nn.BatchNorm{1,2}d with affine weights and running statistics. Training normalises with
 * the biased batch variance and folds the unbiased one into running_var with `momentum`;
 * evaluation normalises with the running statistics.
 */
abstract class BatchNorm extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;

  constructor(
    private readonly layer: string,
    private readonly rank: number,
    numFeatures: number,
    rest: readonly unknown[],
  ) {
    super();
    const options: BatchNormOptions = layerOptions(layer, rest, OPTIONS);
    if (options.momentum === null) badArg(layer, 'momentum=null (a cumulative average) is not supported by kiln', 'pass a momentum in [0, 1]; PyTorch\'s default is 0.1');
    this.numFeatures = positiveInt(layer, 'num_features', numFeatures);
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    if (!(this.eps > 0)) badArg(layer, `eps must be positive, got ${this.eps}`);
    if (!(this.momentum >= 0 && this.momentum <= 1)) badArg(layer, `momentum must be in [0, 1], got ${this.momentum}`);
    const c = [this.numFeatures];
    this.declareState('weight', { shape: c, init: { kind: 'constant', value: 1 }, kind: 'param' });
    this.declareState('bias', { shape: c, init: { kind: 'constant', value: 0 }, kind: 'param' });
    this.declareState('running_mean', { shape: c, init: { kind: 'constant', value: 0 }, kind: 'buffer' });
    this.declareState('running_var', { shape: c, init: { kind: 'constant', value: 1 }, kind: 'buffer' });
    this.declareState('num_batches_tracked', { shape: [], init: { kind: 'constant', value: 0 }, kind: 'buffer' });
  }

  override forward(x: Tensor): Tensor {
    return this.traced(() => {
      const dims = this.rank === 4 ? '[N, C, H, W]' : '[N, C]';
      if (x.ndim !== this.rank) inputMismatch(this, this.layer, `a ${this.rank}-d input ${dims}`, `${x.ndim} dimensions`, x);
      if (x.shape[1] !== this.numFeatures) inputMismatch(this, this.layer, `${this.numFeatures} channels`, `${x.shape[1]}`, x);
      const t = x.tracer;
      const affine = [this.state('weight'), this.state('bias')];
      if (!this.training) {
        return t.op('batch_norm', [x, this.state('running_mean'), this.state('running_var'), ...affine], { eps: this.eps });
      }
      const count = x.numel() / this.numFeatures;
      if (count < 2) inputMismatch(this, this.layer, 'more than 1 value per channel in training', `${count}`, x);
      const mean = t.op('batch_mean', [x]);
      const variance = t.op('batch_var', [x, mean]);
      this.updateRunningStats(mean, variance, count);
      return t.op('batch_norm', [x, mean, variance, ...affine], { eps: this.eps });
    });
  }

  private updateRunningStats(mean: Tensor, variance: Tensor, count: number): void {
    const t = mean.tracer;
    const m = this.momentum;
    const ema = (name: string, value: Tensor) => {
      const old = this.state(name);
      t.updates[this.qualified(name)] = t.op('axpby', [old, value], { alpha: 1 - m, beta: m }).node;
    };
    ema('running_mean', mean);
    // The running estimate is unbiased, as in PyTorch; the forward used the biased variance.
    ema('running_var', variance.mul(count / (count - 1)));
    t.updates[this.qualified('num_batches_tracked')] = this.state('num_batches_tracked').add(1).node;
  }
}

export class BatchNorm2d extends BatchNorm {
  constructor(numFeatures: number, options?: BatchNormOptions);
  constructor(numFeatures: number, eps?: number, momentum?: number, affine?: boolean, trackRunningStats?: boolean);
  constructor(numFeatures: number, ...rest: unknown[]) {
    super('BatchNorm2d', 4, numFeatures, rest);
  }
}

export class BatchNorm1d extends BatchNorm {
  constructor(numFeatures: number, options?: BatchNormOptions);
  constructor(numFeatures: number, eps?: number, momentum?: number, affine?: boolean, trackRunningStats?: boolean);
  constructor(numFeatures: number, ...rest: unknown[]) {
    super('BatchNorm1d', 2, numFeatures, rest);
  }
}
