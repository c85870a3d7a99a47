import { KilnError } from '../ir/errors.ts';
import type { ResolvedOptimizer, ResolvedSchedule } from '../frontend/training-options.ts';
import type { StepScalars } from './backend.ts';

/**
 * The per-step scalars of a scheduled optimizer, as torch.optim.lr_scheduler computes them when
 * stepped after every batch (PyTorch 1.13): step s trains with the values after s calls of
 * scheduler.step(). `lr` always, `momentum` where OneCycleLR cycles SGD's momentum; the update
 * graph reads them as inputs of those names (src/passes/optimizer.ts). Values are f64 here and
 * rounded to f32 where the step reads them, as PyTorch's kernels take a Python-float alpha.
 *
 * `runSteps` is the run's total number of steps (epochs × batches per epoch): T_max and
 * total_steps default to it. Every value is a function of the step alone (CosineAnnealingLR's
 * recurrence is replayed from step 0), so a resumed run continues the schedule bit for bit.
 */
export function scheduleScalars(opt: ResolvedOptimizer, runSteps: number): ((step: number) => StepScalars) | undefined {
  const s = opt.schedule;
  if (!s) return undefined;
  if (s.kind === 'cosine') {
    const lr = cosineAnnealing(opt.lr, s.tMax ?? runSteps, s.etaMin);
    return (step) => ({ lr: lr(step) });
  }
  const total = s.totalSteps ?? runSteps;
  if (total < runSteps) throw new KilnError('training-options', `training.schedule: totalSteps ${total} is fewer than the run's ${runSteps} steps (OneCycleLR cannot step past its total)`, undefined, 'leave totalSteps out to use the run\'s total, or train fewer epochs');
  const at = oneCycle(s, opt.lr, total);
  return (step): StepScalars => {
    const v = at(step);
    return s.cycleMomentum ? { lr: v.lr, momentum: v.momentum } : { lr: v.lr };
  };
}

/**
 * CosineAnnealingLR's get_lr, its recurrent ("chainable") form exactly as PyTorch evaluates it
 * (not the closed form, which differs in the last bits), memoised as it goes.
 */
export function cosineAnnealing(baseLr: number, tMax: number, etaMin: number): (step: number) => number {
  const lrs = [baseLr];
  return (step) => {
    for (let e = lrs.length; e <= step; e++) {
      const prev = lrs[e - 1]!;
      // Python's modulo: non-negative for a negative left operand.
      const phase = (((e - 1 - tMax) % (2 * tMax)) + 2 * tMax) % (2 * tMax);
      lrs.push(
        phase === 0
          ? prev + ((baseLr - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2
          : ((1 + Math.cos((Math.PI * e) / tMax)) / (1 + Math.cos((Math.PI * (e - 1)) / tMax))) * (prev - etaMin) + etaMin,
      );
    }
    return lrs[step]!;
  };
}

/** OneCycleLR's get_lr and its momentum, phase by phase as PyTorch lays them out. */
export function oneCycle(s: Extract<ResolvedSchedule, { kind: 'onecycle' }>, optimizerLr: number, total: number): (step: number) => { lr: number; momentum: number } {
  const maxLr = s.maxLr ?? optimizerLr;
  const initial = maxLr / s.divFactor;
  const min = initial / s.finalDivFactor;
  const [lo, hi] = [s.baseMomentum, s.maxMomentum];
  const phases: { end: number; lr: [number, number]; momentum: [number, number] }[] = s.threePhase
    ? [
        { end: s.pctStart * total - 1, lr: [initial, maxLr], momentum: [hi, lo] },
        { end: 2 * s.pctStart * total - 2, lr: [maxLr, initial], momentum: [lo, hi] },
        { end: total - 1, lr: [initial, min], momentum: [hi, hi] },
      ]
    : [
        { end: s.pctStart * total - 1, lr: [initial, maxLr], momentum: [hi, lo] },
        { end: total - 1, lr: [maxLr, min], momentum: [lo, hi] },
      ];
  const anneal = s.anneal === 'cos' ? (a: number, b: number, pct: number) => b + ((a - b) / 2) * (Math.cos(Math.PI * pct) + 1) : (a: number, b: number, pct: number) => (b - a) * pct + a;
  return (step) => {
    if (step > total) throw new KilnError('training-options', `training.schedule: OneCycleLR stepped to ${step}, past its total of ${total} steps`);
    let start = 0;
    for (const [i, p] of phases.entries()) {
      if (step <= p.end || i === phases.length - 1) {
        const pct = (step - start) / (p.end - start);
        return { lr: anneal(p.lr[0], p.lr[1], pct), momentum: anneal(p.momentum[0], p.momentum[1], pct) };
      }
      start = p.end;
    }
    throw new Error('unreachable: the last phase always matches');
  };
}
