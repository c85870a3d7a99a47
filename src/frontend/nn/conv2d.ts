import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';
import { badArg, boolArg, inputMismatch, layerOptions, nonNegInt, pairArg, positiveInt } from './args.ts';
import { defaultInit } from './default-init.ts';

type Pair = number | [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  /** Zero padding per side, or 'valid' (none) or 'same' (stride 1, output size = input size). */
  padding?: Pair | 'valid' | 'same';
  bias?: boolean;
  /** PyTorch's; kiln implements only 1. */
  dilation?: Pair;
  /** PyTorch's; kiln implements only 1. */
  groups?: number;
  /** PyTorch's; kiln implements only 'zeros'. */
  paddingMode?: 'zeros';
}

/**
 * torch.nn.Conv2d: weight [out, in, kh, kw], bias [out], kaiming-uniform(a=√5) init. Options
 * named (`{ stride: 2, padding: 1 }`) or positional in PyTorch's order.
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly bias: boolean;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options?: Conv2dOptions);
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, stride?: Pair, padding?: Conv2dOptions['padding'], dilation?: Pair, groups?: number, bias?: boolean, paddingMode?: 'zeros');
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, ...rest: unknown[]) {
    super();
    const options: Conv2dOptions = layerOptions('Conv2d', rest, {
      positional: ['stride', 'padding', 'dilation', 'groups', 'bias', 'paddingMode'],
      supported: ['stride', 'padding', 'bias'],
      fixed: { dilation: 1, groups: 1, paddingMode: 'zeros' },
    });
    this.inChannels = positiveInt('Conv2d', 'in_channels', inChannels);
    this.outChannels = positiveInt('Conv2d', 'out_channels', outChannels);
    this.kernelSize = pairArg('Conv2d', 'kernel_size', kernelSize);
    this.stride = pairArg('Conv2d', 'stride', options.stride ?? 1);
    this.padding = this.resolvePadding(options.padding ?? 0);
    this.bias = boolArg('Conv2d', 'bias', options.bias ?? true);
    const fanIn = this.inChannels * this.kernelSize[0] * this.kernelSize[1];
    const init = defaultInit(fanIn);
    this.declareState('weight', { shape: [this.outChannels, this.inChannels, ...this.kernelSize], init: init.weight, kind: 'param' });
    if (this.bias) this.declareState('bias', { shape: [this.outChannels], init: init.bias, kind: 'param' });
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
