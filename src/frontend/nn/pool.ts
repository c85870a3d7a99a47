import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';
import { badArg, inputMismatch, nonNegInt, pairArg } from './args.ts';

type Pair = number | [number, number];

/** Shared by max and average pooling: torch's kernel_size, stride (default kernel), padding. */
abstract class Pool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  protected abstract readonly op: string;

  constructor(layer: string, kernelSize: Pair, stride?: Pair | null, padding: Pair = 0) {
    super();
    this.kernelSize = pairArg(layer, 'kernel_size', kernelSize);
    this.stride = pairArg(layer, 'stride', stride ?? kernelSize);
    this.padding = pairArg(layer, 'padding', padding, nonNegInt);
    if (this.padding.some((p, i) => 2 * p > this.kernelSize[i]!)) badArg(layer, `padding ${this.padding} must be at most half the kernel size ${this.kernelSize}`);
  }

  override forward(x: Tensor): Tensor {
    return this.traced(() => {
      if (x.ndim !== 4) inputMismatch(this, this.constructor.name, 'a 4-d input [N, C, H, W]', `${x.ndim} dimensions`, x);
      return x.tracer.op(this.op, [x], { kernel: this.kernelSize, stride: this.stride, padding: this.padding });
    });
  }
}

export class MaxPool2d extends Pool2d {
  protected readonly op = 'max_pool2d';
  constructor(kernelSize: Pair, stride?: Pair | null, padding: Pair = 0) {
    super('MaxPool2d', kernelSize, stride, padding);
  }
}

export class AvgPool2d extends Pool2d {
  protected readonly op = 'avg_pool2d';
  constructor(kernelSize: Pair, stride?: Pair | null, padding: Pair = 0) {
    super('AvgPool2d', kernelSize, stride, padding);
  }
}
