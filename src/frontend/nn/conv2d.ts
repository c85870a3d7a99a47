import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';
import { badArg, inputMismatch, nonNegInt, pairArg, positiveInt } from './args.ts';

export interface Conv2dOptions {
  stride?: number | [number, number];
  /** Zero padding per side, or 'valid' (none) or 'same' (stride 1, output size = input size). */
  padding?: number | [number, number] | 'valid' | 'same';
  bias?: boolean;
}

/** torch.nn.Conv2d: weight [out, in, kh, kw], bias [out], kaiming-uniform(a=√5) init. */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly bias: boolean;

  constructor(inChannels: number, outChannels: number, kernelSize: number | [number, number], options: Conv2dOptions = {}) {
    super();
    this.inChannels = positiveInt('Conv2d', 'in_channels', inChannels);
    this.outChannels = positiveInt('Conv2d', 'out_channels', outChannels);
    this.kernelSize = pairArg('Conv2d', 'kernel_size', kernelSize);
    this.stride = pairArg('Conv2d', 'stride', options.stride ?? 1);
    this.padding = this.resolvePadding(options.padding ?? 0);
    this.bias = options.bias ?? true;
    const fanIn = this.inChannels * this.kernelSize[0] * this.kernelSize[1];
    const bound = 1 / Math.sqrt(fanIn);
    this.declareState('weight', { shape: [this.outChannels, this.inChannels, ...this.kernelSize], init: { kind: 'uniform', bound }, kind: 'param' });
    if (this.bias) this.declareState('bias', { shape: [this.outChannels], init: { kind: 'uniform', bound }, kind: 'param' });
  }

  private resolvePadding(p: Conv2dOptions['padding']): [number, number] {
    if (p === 'valid') return [0, 0];
    if (p === 'same') {
      if (this.stride[0] !== 1 || this.stride[1] !== 1) badArg('Conv2d', "padding='same' needs stride 1", 'use an explicit padding with strided convolutions');
      const [kh, kw] = this.kernelSize;
      if (kh % 2 === 0 || kw % 2 === 0) badArg('Conv2d', "padding='same' needs an odd kernel size in kiln", 'use an explicit padding');
      return [(kh - 1) / 2, (kw - 1) / 2];
    }
    return pairArg('Conv2d', 'padding', p, nonNegInt);
  }

  override forward(x: Tensor): Tensor {
    return this.traced(() => {
      if (x.ndim !== 4) inputMismatch(this, 'Conv2d', 'a 4-d input [N, C, H, W]', `${x.ndim} dimensions`, x);
      if (x.shape[1] !== this.inChannels) inputMismatch(this, 'Conv2d', `${this.inChannels} input channels`, `${x.shape[1]}`, x);
      const inputs = [x, this.state('weight'), ...(this.bias ? [this.state('bias')] : [])];
      return x.tracer.op('conv2d', inputs, { stride: this.stride, padding: this.padding });
    });
  }
}
