import { describe, expect, it } from 'vitest';
import { F, Module, nn, type Tensor } from '../../../src/frontend/api.ts';
import { verifyProgram } from '../../../src/ir/verify-program.ts';
import { compileProgram } from '../../../src/passes/compile.ts';
import { REFERENCE_TARGET } from '../../../src/runtime/reference/target.ts';
import { modelGraphs, MODELS, randomFeeds, randomModel, runGraph, runProgram, sampleGraph } from '../../passes/helpers.ts';

// The planned Program and the unfused graph compute every value with the same op kernels,
// rounded to f32 at the same points, so they agree exactly (tighter than the 1e-5 asked for):
// any difference is a planning bug, such as a value overwritten while still live.
describe('executeProgram: the planned step computes what the graph computes', () => {
  it.each(MODELS.flatMap((s) => [[s, 'train'], [s, 'eval']] as const))('%s %s', async (name, stage) => {
    const g = await sampleGraph(name, stage, 8);
    const { feeds, state } = randomFeeds(g, 11);
    expect(runProgram(compileProgram(g, REFERENCE_TARGET), feeds, state)).toEqual(runGraph(g, feeds, state));
  });

  const optimizers = [
    { type: 'adam', lr: 1e-3 },
    { type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 },
    { type: 'adamw', lr: 1e-3, weightDecay: 0.1 },
    { type: 'sgd', lr: 0.1 },
  ] as const;

  it('random models, every optimizer: sound plans within 1.10 of the lower bound, exact results', () => {
    for (let seed = 0; seed < 80; seed++) {
      const m = randomModel(seed);
      const graphs = modelGraphs(m.make, m.input, 3, optimizers[seed % optimizers.length]);
      for (const g of [graphs.train, graphs.eval]) {
        const p = compileProgram(g, REFERENCE_TARGET);
        expect(p.memory.arenaBytes, m.describe).toBeLessThanOrEqual(1.1 * p.memory.lowerBoundBytes);
        const { feeds, state } = randomFeeds(g, seed);
        expect(runProgram(p, feeds, state), `${g.stage}: ${m.describe}`).toEqual(runGraph(g, feeds, state));
      }
    }
  });

  // Batch norm's plain kernels bind 6 buffers, so 6 is the tightest limit every model meets.
  it.each([6, 7])('random models under a limit of %i storage buffers: split to fit, still exact', (limit) => {
    for (let seed = 0; seed < 40; seed++) {
      const m = randomModel(seed);
      const g = modelGraphs(m.make, m.input, 3, optimizers[seed % optimizers.length]).train;
      const target = { ...REFERENCE_TARGET, name: `a ${limit}-buffer limit`, maxStorageBuffers: limit };
      const p = compileProgram(g, target);
      expect(verifyProgram(p, target), m.describe).toEqual([]);
      const { feeds, state } = randomFeeds(g, seed);
      expect(runProgram(p, feeds, state), m.describe).toEqual(runGraph(g, feeds, state));
    }
  });

  it('tensor arithmetic: broadcasting, constants, softmax and log-softmax between linear layers', () => {
    class Odd extends Module {
      fc = new nn.Linear(12, 6);
      fc2 = new nn.Linear(6, 4);
      override forward(x: Tensor): Tensor {
        let h = this.fc.forward(x.flatten(1));
        h = h.sub(h.mean(1, true)).mul(0.5).relu();
        h = F.softmax(h, 1).add(F.logSoftmax(h, 1).neg()).div(2).add(h.sum(1, true));
        return this.fc2.forward(h);
      }
    }
    for (const [i, opt] of optimizers.entries()) {
      const graphs = modelGraphs(() => new Odd(), [3, 2, 2], 5, opt);
      for (const g of [graphs.train, graphs.eval]) {
        const { feeds, state } = randomFeeds(g, i);
        expect(runProgram(compileProgram(g, REFERENCE_TARGET), feeds, state)).toEqual(runGraph(g, feeds, state));
      }
    }
  });
});
