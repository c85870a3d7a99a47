import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';
import { badArg, inputMismatch, layerOptions, nonNegInt, pairArg, type OptionSpec } from './args.ts';

type Pair = number | [number, number];

export interface Pool2dOptions {
  /** Default: the kernel size. */
  stride?: Pair | null;
  padding?: Pair;
}

/** Shared by max and average pooling: torch's kernel_size, stride (default kernel), padding. */
abstract class Pool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  protected abstract readonly op: string;

  constructor(layer: string, spec: OptionSpec, kernelSize: Pair, rest: readonly unknown[]) {
    super();
    const { stride, padding } = layerOptions(layer, rest, spec) as Pool2dOptions;
    this.kernelSize = pairArg(layer, 'kernel_size', kernelSize);
    this.stride = pairArg(layer, 'stride', stride ?? kernelSize);
    this.padding = pairArg(layer, 'padding', padding ?? 0, nonNegInt);
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
  constructor(kernelSize: Pair, options?: Pool2dOptions & { dilation?: 1; returnIndices?: false; ceilMode?: false });
  constructor(kernelSize: Pair, stride?: Pair | null, padding?: Pair, dilation?: 1, returnIndices?: false, ceilMode?: false);
  constructor(kernelSize: Pair, ...rest: unknown[]) {
    super('MaxPool2d', { positional: ['stride', 'padding', 'dilation', 'returnIndices', 'ceilMode'], supported: ['stride', 'padding'], fixed: { dilation: 1, returnIndices: false, ceilMode: false } }, kernelSize, rest);
  }
}

export class AvgPool2d extends Pool2d {
  protected readonly op = 'avg_pool2d';
  constructor(kernelSize: Pair, options?: Pool2dOptions & { ceilMode?: false; countIncludePad?: true; divisorOverride?: null });
  constructor(kernelSize: Pair, stride?: Pair | null, padding?: Pair, ceilMode?: false, countIncludePad?: true, divisorOverride?: null);
  constructor(kernelSize: Pair, ...rest: unknown[]) {
    super('AvgPool2d', { positional: ['stride', 'padding', 'ceilMode', 'countIncludePad', 'divisorOverride'], supported: ['stride', 'padding'], fixed: { ceilMode: false, countIncludePad: true, divisorOverride: null } }, kernelSize, rest);
  }
}

/**
 * The adaptive average pooling of x to `size` bins per plane, torch's rule (src/ir/ops/pool.ts),
 * shared by nn.AdaptiveAvgPool2d and F.adaptiveAvgPool2d; size 1 is global average pooling.
 */
export function adaptiveAvgPool(layer: string, x: Tensor, size: [number, number], module?: Module): Tensor {
  if (x.ndim !== 4) {
    if (module) inputMismatch(module, layer, 'a 4-d input [N, C, H, W]', `${x.ndim} dimensions`, x);
    badArg(layer, `expects a 4-d input [N, C, H, W], got ${x.ndim} dimensions`);
  }
  return x.tracer.op('adaptive_avg_pool2d', [x], { size });
}

/** torch.nn.AdaptiveAvgPool2d(output_size): an int or [h, w]. */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: [number, number];

  constructor(outputSize: Pair) {
    super();
    this.outputSize = pairArg('AdaptiveAvgPool2d', 'output_size', outputSize);
  }

  override forward(x: Tensor): Tensor {
    return this.traced(() => adaptiveAvgPool('AdaptiveAvgPool2d', x, this.outputSize, this));
  }
}
