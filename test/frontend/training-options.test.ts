import { describe, expect, it } from 'vitest';
import { resolveTraining } from '../../src/frontend/training-options.ts';

const loc = { file: 'model.ts', line: 3, col: 1 };

describe('training.seed', () => {
  it('is any non-negative integer, as torch.manual_seed takes (the generator keeps the low 32 bits)', () => {
    expect(resolveTraining({}, loc).seed).toBe(0);
    expect(resolveTraining({ seed: 2 ** 40 + 7 }, loc).seed).toBe(2 ** 40 + 7);
  });

  it.each([-1, 1.5, '3', 2 ** 53])('rejects %j at the export', (seed) => {
    expect(() => resolveTraining({ seed }, loc)).toThrow(/^training: seed must be a non-negative integer, got /);
  });
});
