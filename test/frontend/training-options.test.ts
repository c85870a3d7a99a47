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

describe('training.normalize', () => {
  it('takes a mean and std per channel, or one of each, and is absent unless given', () => {
    expect(resolveTraining({}, loc)).not.toHaveProperty('normalize');
    expect(resolveTraining({ normalize: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] } }, loc).normalize).toEqual({ mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] });
    expect(resolveTraining({ normalize: { mean: 0.1307, std: 0.3081 } }, loc).normalize).toEqual({ mean: [0.1307], std: [0.3081] });
  });

  it.each([
    [[0.5, 0.5], 'normalize must be { mean, std } (numbers, or lists of one per channel), got [0.5,0.5]'],
    [{ mean: [0.5, 0.5], std: [0.2] }, 'normalize has 2 means but 1 stds'],
    [{ mean: 0.5, std: 0 }, 'normalize.std must be a positive number, or a list of one per channel, got 0'],
    [{ mean: [], std: [] }, 'normalize.mean must be a finite number, or a list of one per channel, got []'],
    [{ mean: 0.5, std: 0.2, inplace: true }, "normalize has an unknown option 'inplace' (known: mean, std)"],
  ])('rejects %j, saying why', (normalize, msg) => {
    expect(() => resolveTraining({ normalize }, loc)).toThrow(`training: ${msg}`);
  });
});

describe('text: training.data, valFraction, stepsPerEpoch', () => {
  it('are taken with dataset \'text\' and absent unless given', () => {
    const t = resolveTraining({ input: [64], dataset: 'text', data: 'shakespeare.txt', valFraction: 0.05, stepsPerEpoch: 500 }, loc);
    expect([t.dataset, t.data, t.valFraction, t.stepsPerEpoch]).toEqual(['text', 'shakespeare.txt', 0.05, 500]);
    const bare = resolveTraining({ input: [64], dataset: 'text' }, loc);
    for (const k of ['data', 'valFraction', 'stepsPerEpoch']) expect(bare).not.toHaveProperty(k);
  });

  it.each([
    [{ dataset: 'mnist', data: 'a.txt' }, 'data applies to dataset \'text\', not "mnist"'],
    [{ valFraction: 0.1 }, 'valFraction applies to dataset \'text\', not "mnist"'],
    [{ dataset: 'text', data: '' }, 'data must be the path of a text file, got ""'],
    [{ dataset: 'text', valFraction: 1 }, 'valFraction must be a number between 0 and 1 (exclusive), got 1'],
    [{ dataset: 'text', valFraction: 0 }, 'valFraction must be a number between 0 and 1 (exclusive), got 0'],
    [{ dataset: 'text', stepsPerEpoch: 0 }, 'stepsPerEpoch must be a positive integer, got 0'],
  ])('rejects %j, saying why', (raw, msg) => {
    expect(() => resolveTraining(raw, loc)).toThrow(`training: ${msg}`);
  });
});

describe('training.augment', () => {
  it("takes torchvision's RandomCrop(size, padding) and RandomHorizontalFlip(p); padding defaults to 0", () => {
    expect(resolveTraining({}, loc)).not.toHaveProperty('augment');
    expect(resolveTraining({ augment: { randomCrop: { size: 32, padding: 4 }, horizontalFlip: 0.5 } }, loc).augment).toEqual({ randomCrop: { size: 32, padding: 4 }, horizontalFlip: 0.5 });
    const resolved = resolveTraining({ augment: { randomCrop: { size: 28 } } }, loc);
    expect(resolved.augment).toEqual({ randomCrop: { size: 28, padding: 0 } });
    // A bundle re-resolves its resolved options and expects no change.
    expect(resolveTraining(resolved, loc)).toEqual(resolved);
  });

  it.each([
    [{ randomCrop: 32 }, 'augment.randomCrop must be { size, padding }, got 32'],
    [{ randomCrop: { size: 0, padding: 4 } }, 'augment.randomCrop.size must be a positive integer, got 0'],
    [{ randomCrop: { size: 32, padding: -1 } }, 'augment.randomCrop.padding must be a non-negative integer, got -1'],
    [{ randomCrop: { size: 32, fill: 1 } }, "augment.randomCrop has an unknown option 'fill' (known: size, padding)"],
    [{ horizontalFlip: 1.5 }, 'augment.horizontalFlip must be a probability from 0 to 1, got 1.5'],
    [{ verticalFlip: 0.5 }, "augment has an unknown option 'verticalFlip' (known: randomCrop, horizontalFlip)"],
  ])('rejects %j, saying why', (augment, msg) => {
    expect(() => resolveTraining({ augment }, loc)).toThrow(`training: ${msg}`);
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
