import { describe, expect, it } from 'vitest';
import { F, nn } from '../../src/frontend/api.ts';
import { KilnError } from '../../src/ir/errors.ts';

// Layer constructors take their options as PyTorch code writes them, positional or named (and
// snake_case), and never ignore one silently: what kiln does not implement is an error at the
// `new`, unless it is PyTorch's default.

describe('layer options, positional or named', () => {
  it('Conv2d', () => {
    const a = new nn.Conv2d(1, 8, 3, 2, 1);
    const b = new nn.Conv2d(1, 8, 3, { stride: 2, padding: 1 });
    for (const c of [a, b]) expect([c.stride, c.padding, c.bias]).toEqual([[2, 2], [1, 1], true]);
    expect(new nn.Conv2d(1, 8, 3, 1, 0, 1, 1, false).bias).toBe(false);
    expect(new nn.Conv2d(1, 8, [3, 5], { padding: 'same', dilation: [1, 1], groups: 1, padding_mode: 'zeros' } as never).padding).toEqual([1, 2]);
  });

  it('Linear, BatchNorm, pooling', () => {
    expect(new nn.Linear(4, 2, false).bias).toBe(false);
    expect(new nn.Linear(4, 2, { bias: false }).bias).toBe(false);
    const bn = new nn.BatchNorm2d(8, 1e-3, 0.2, true, true);
    expect([bn.eps, bn.momentum]).toEqual([1e-3, 0.2]);
    expect(new nn.BatchNorm1d(8, { momentum: 0.3 }).momentum).toBe(0.3);
    const mp = new nn.MaxPool2d(3, 2, 1, 1, false, false);
    expect([mp.kernelSize, mp.stride, mp.padding]).toEqual([[3, 3], [2, 2], [1, 1]]);
    expect(new nn.MaxPool2d(2, { stride: 1 }).stride).toEqual([1, 1]);
    expect(new nn.AvgPool2d(2, null, 0, false, true, null).stride).toEqual([2, 2]);
    expect(new nn.AdaptiveAvgPool2d(1).outputSize).toEqual([1, 1]);
    expect(new nn.AdaptiveAvgPool2d([2, 3]).outputSize).toEqual([2, 3]);
  });
});

describe('options kiln does not implement are errors at the new', () => {
  const thrown = (make: () => unknown): KilnError => {
    try {
      make();
    } catch (e) {
      return e as KilnError;
    }
    throw new Error('no error');
  };
  it.each([
    ['dilation', () => new nn.Conv2d(1, 8, 3, { dilation: 2 } as never), "Conv2d: dilation=2 is not supported by kiln (only 1, PyTorch's default)"],
    ['groups, positional', () => new nn.Conv2d(2, 8, 3, 1, 0, 1, 2), "Conv2d: groups=2 is not supported by kiln (only 1, PyTorch's default)"],
    ['padding_mode', () => new nn.Conv2d(1, 8, 3, { padding_mode: 'reflect' } as never), 'Conv2d: padding_mode="reflect" is not supported by kiln'],
    ['a misspelt option', () => new nn.Conv2d(1, 8, 3, { paddding: 1 } as never), "Conv2d: unknown option 'paddding'; did you mean 'padding'?"],
    ['too many arguments', () => new (nn.Linear as unknown as new (...a: unknown[]) => unknown)(4, 2, true, 1), 'Linear: takes at most 1 optional arguments (bias), got 2'],
    ['a bias that is not a boolean', () => new nn.Linear(4, 2, 'no' as never), 'Linear: bias must be true or false, got "no"'],
    ['ceil_mode', () => new nn.MaxPool2d(2, { ceil_mode: true } as never), 'MaxPool2d: ceil_mode=true is not supported by kiln (only false'],
    ['return_indices', () => new nn.MaxPool2d(2, 2, 0, 1, true as never), 'MaxPool2d: returnIndices=true is not supported by kiln'],
    ['count_include_pad', () => new nn.AvgPool2d(2, 2, 0, false, false as never), 'AvgPool2d: countIncludePad=false is not supported by kiln (only true'],
    ['divisor_override', () => new nn.AvgPool2d(2, { divisorOverride: 3 } as never), 'AvgPool2d: divisorOverride=3 is not supported by kiln'],
    ['affine', () => new nn.BatchNorm2d(8, { affine: false } as never), 'BatchNorm2d: affine=false is not supported by kiln (only true'],
    ['track_running_stats', () => new nn.BatchNorm1d(8, 1e-5, 0.1, true, false as never), 'BatchNorm1d: trackRunningStats=false is not supported by kiln'],
    ['F.maxPool2d ceil_mode (functional order)', () => F.maxPool2d({} as never, 2, 2, 0, 1, true as never), 'F.maxPool2d: ceilMode=true is not supported by kiln'],
    ['F.avgPool2d count_include_pad', () => F.avgPool2d({} as never, 2, { count_include_pad: false } as never), 'F.avgPool2d: count_include_pad=false is not supported by kiln'],
    ['an adaptive pool size of 0', () => new nn.AdaptiveAvgPool2d(0), 'AdaptiveAvgPool2d: output_size must be a positive integer, got 0'],
    ['F.adaptiveAvgPool2d on a 2-d input', () => F.adaptiveAvgPool2d({ ndim: 2 } as never, 1), 'F.adaptiveAvgPool2d: expects a 4-d input [N, C, H, W], got 2 dimensions'],
    ['momentum None', () => new nn.BatchNorm1d(8, { momentum: null } as never), 'BatchNorm1d: momentum=null (a cumulative average) is not supported by kiln'],
  ])('%s', (_, make, message) => {
    const e = thrown(make);
    expect(e).toBeInstanceOf(KilnError);
    expect(e.message).toContain(message);
    expect(e.hint).toBeTruthy();
  });
});
