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

describe('training.schedule', () => {
  it('fills in PyTorch\'s defaults', () => {
    expect(resolveTraining({ schedule: { kind: 'cosine' } }, loc).optimizer.schedule).toEqual({ kind: 'cosine', tMax: undefined, etaMin: 0 });
    expect(resolveTraining({ optimizer: { type: 'sgd', lr: 0.1 }, schedule: { kind: 'onecycle' } }, loc).optimizer.schedule).toEqual({
      kind: 'onecycle',
      maxLr: undefined,
      totalSteps: undefined,
      pctStart: 0.3,
      anneal: 'cos',
      cycleMomentum: true,
      baseMomentum: 0.85,
      maxMomentum: 0.95,
      divFactor: 25,
      finalDivFactor: 1e4,
      threePhase: false,
    });
    expect(resolveTraining({}, loc).optimizer.schedule).toBeUndefined();
  });

  it.each([
    [{ kind: 'step' }, "schedule.kind must be 'cosine' or 'onecycle', got \"step\""],
    [{ kind: 'cosine', T_max: 5 }, "schedule has an unknown option 'T_max' for kind 'cosine' (known: kind, tMax, etaMin)"],
    [{ kind: 'cosine', tMax: 0 }, 'schedule.tMax must be a positive integer, got 0'],
    [{ kind: 'onecycle', pctStart: 1.5, cycleMomentum: false }, 'schedule.pctStart must be a number in [0, 1], got 1.5'],
    [{ kind: 'onecycle', anneal: 'exp' }, "schedule.anneal must be 'cos' or 'linear', got \"exp\""],
    [{ kind: 'onecycle' }, "schedule.cycleMomentum (cycling adam's beta1) is not supported by kiln; set cycleMomentum: false"],
    ['cosine', "schedule must be an object like { kind: 'cosine' }, got \"cosine\""],
  ])('rejects %j at the export', (schedule, message) => {
    expect(() => resolveTraining({ schedule }, loc)).toThrow(`training: ${message}`);
  });
});
