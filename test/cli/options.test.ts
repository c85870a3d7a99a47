import { describe, expect, it } from 'vitest';
import { flipFlag, normalizeFlag, randomCropFlag } from '../../src/cli/options.ts';

describe('data flags', () => {
  it('--normalize takes MEAN,STD or MEANS/STDS, one per channel', () => {
    expect(normalizeFlag('--normalize', '0.1307,0.3081')).toEqual({ mean: [0.1307], std: [0.3081] });
    expect(normalizeFlag('--normalize', '0.4914,0.4822,0.4465/0.2470,0.2435,0.2616')).toEqual({ mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] });
    expect(normalizeFlag('--normalize', '0.5/0.5')).toEqual({ mean: [0.5], std: [0.5] });
    for (const bad of ['0.5', '0.5,0.5,0.5', '0.5,0.5/0.2', '0.5/0', '0.5,/0.2,0.2', 'a,b', '0.5/0.2/0.1']) {
      expect(() => normalizeFlag('--normalize', bad), bad).toThrow(/^--normalize must be MEAN,STD or, one per channel, MEANS\/STDS/);
    }
  });

  it('--random-crop takes SIZE[,PADDING]; --horizontal-flip a probability, 0.5 without one', () => {
    expect(randomCropFlag('--random-crop', '32,4')).toEqual({ size: 32, padding: 4 });
    expect(randomCropFlag('--random-crop', '28')).toEqual({ size: 28, padding: 0 });
    for (const bad of ['0,4', '32,-1', '32,4,1', '32.5', '']) expect(() => randomCropFlag('--random-crop', bad), bad).toThrow(/^--random-crop must be SIZE or SIZE,PADDING/);
    expect(flipFlag('--horizontal-flip', true)).toBe(0.5);
    expect(flipFlag('--horizontal-flip', '0.25')).toBe(0.25);
    for (const bad of ['2', '-0.1', 'x', '']) expect(() => flipFlag('--horizontal-flip', bad), bad).toThrow(/^--horizontal-flip must be a probability from 0 to 1/);
  });
});
