import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveOptimizer, type OptimizerOptions } from '../../src/frontend/training-options.ts';
import { scheduleScalars } from '../../src/runtime/schedule.ts';

// kiln's schedules against torch.optim.lr_scheduler (PyTorch 1.13) stepped once per batch:
// test/fixtures/pytorch/make_schedule_fixture.py wrote the lr and momentum each step trains with.
// Both sides compute in f64 by the same formulas in the same order, so they agree to rounding:
// 1e-7 relative is far above that and far below any wrong phase boundary or formula.

interface Case {
  name: string;
  schedule: Record<string, unknown>;
  optimizer: 'sgd' | 'adam';
  lr: number;
  steps: number;
  lrs: number[];
  momenta: number[];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/pytorch/schedules.json', import.meta.url), 'utf8')) as { cases: Case[] };
const fail = (m: string): never => {
  throw new Error(m);
};
const REL = 1e-7;

describe('schedules match torch.optim.lr_scheduler step for step', () => {
  it.each(fixture.cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const opt: OptimizerOptions = c.optimizer === 'sgd' ? { type: 'sgd', lr: c.lr, momentum: 0.9, nesterov: true } : { type: 'adam', lr: c.lr };
    const at = scheduleScalars(resolveOptimizer(opt, fail, c.schedule), c.steps)!;
    const cycled = c.schedule.kind === 'onecycle' && c.optimizer === 'sgd';
    for (let s = 0; s < c.steps; s++) {
      const v = at(s);
      expect(Math.abs(v.lr! - c.lrs[s]!), `lr at step ${s}: ${v.lr} vs ${c.lrs[s]}`).toBeLessThanOrEqual(REL * Math.abs(c.lrs[s]!));
      // Without cycling the momentum is the optimizer's own, a constant of the compiled update.
      if (cycled) expect(Math.abs(v.momentum! - c.momenta[s]!), `momentum at step ${s}`).toBeLessThanOrEqual(REL * c.momenta[s]!);
      else expect(v.momentum).toBeUndefined();
    }
  });

  it('is a function of the step alone: asked out of order (a resumed run), the same bits', () => {
    const c = fixture.cases[1]!;
    const opt = resolveOptimizer({ type: 'sgd', lr: c.lr }, fail, c.schedule);
    const forward = scheduleScalars(opt, c.steps)!;
    const inOrder = Array.from({ length: c.steps }, (_, s) => forward(s).lr);
    const resumed = scheduleScalars(opt, c.steps)!;
    expect(resumed(c.steps - 1).lr).toBe(inOrder.at(-1));
    expect(resumed(31).lr).toBe(inOrder[31]);
  });

  it('refuses a OneCycleLR total shorter than the run', () => {
    const opt = resolveOptimizer({ type: 'sgd', lr: 0.1 }, fail, { kind: 'onecycle', totalSteps: 10 });
    expect(() => scheduleScalars(opt, 11)).toThrow(/totalSteps 10 is fewer than the run's 11 steps/);
  });
});
