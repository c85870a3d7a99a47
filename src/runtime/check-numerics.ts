// --check-numerics: after every training step the loss and every persistent tensor are checked;
// at the first non-finite one the step is run again from the state before it, on the reference
// backend, twice: the backend's own Program kernel by kernel (which kernel produced it) and the
// unfused graph node by node (which op, hence which line of the model). As PyTorch's
// detect_anomaly, it costs a copy of the state per step: a debugging mode, not a default.
import { KilnError } from '../ir/errors.ts';
import type { Graph, Node } from '../ir/graph.ts';
import type { Kernel, Program } from '../ir/program.ts';
import { executeGraph } from './reference/execute.ts';
import { executeProgram, newArena, sliceOf } from './reference/program.ts';
import { scalarFeeds, type StepScalars } from './backend.ts';

/** What one training step ran on, to run it again. */
export interface StepReplay {
  graph: Graph;
  /** The Program the backend ran for this step, when it ran one. */
  program?: Program;
  seed: number;
  /** Every persistent tensor before the step. */
  before: ReadonlyMap<string, Float32Array>;
  feeds: { x: Float32Array; labels: Float32Array; step: number; scalars?: StepScalars };
}

export interface StepPlace {
  step: number;
  epoch: number;
  /** 0-based within the epoch. */
  batch: number;
}

/** The first value of a tensor that is not finite, or undefined. */
function firstNonFinite(a: ArrayLike<number>): number | undefined {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return a[i];
  return undefined;
}

/**
 * The error for a step after which `seen` (trainer.ts: nonFiniteAfterStep): where the first non-finite value
 * came from, found by replaying the step on the reference backend.
 */
export function diagnoseNonFinite(replay: StepReplay, place: StepPlace, seen: string): KilnError {
  const at = `step ${place.step} (epoch ${place.epoch + 1}, batch ${place.batch + 1})`;
  const node = producingNode(replay);
  if (!node) {
    return new KilnError(
      'non-finite',
      `--check-numerics: after ${at} ${seen}, but the reference backend runs the same step from the same state without a non-finite value`,
      undefined,
      'the backend and the reference disagree: this is likely a bug in kiln; please report it with the model file and the command',
    );
  }
  const { node: n, value } = node;
  if (n.op === 'input') {
    return new KilnError('non-finite', `--check-numerics: ${at}: the batch's ${String(n.attrs.name)} holds ${value}`, undefined, 'the data holds a value that is not a number: check the data files and --normalize (a standard deviation of 0 divides by zero)');
  }
  const kernel = replay.program && producingKernel(replay);
  const what = `${value} first appears in %${n.id} = ${n.op}${n.scope ? ` of ${n.scope}` : ''} (${n.phase === 'forward' ? 'forward pass' : n.phase === 'backward' ? 'backward pass: a gradient' : 'parameter update'})`;
  const by = kernel ? `, computed by kernel ${kernel.name}` : '';
  const hint = n.phase === 'forward' && place.step > 0 ? `${HINTS.forward}; or the weights grew too large in the steps before: lower the learning rate (--lr)` : HINTS[n.phase];
  return new KilnError('non-finite', `--check-numerics: ${at}: ${what}${by}; after the step ${seen}`, n.loc, hint);
}

const HINTS: Record<Node['phase'], string> = {
  forward: 'an activation overflowed or an op got an input outside its domain (log or sqrt of a negative, division by zero): check that op\'s inputs, the data and its normalisation, and the initial weights (--init)',
  backward: 'a gradient overflowed: lower the learning rate (--lr), or add normalisation (batch norm) so activations stay in range',
  update: 'the update overflowed: lower the learning rate (--lr) or the weight decay',
};

/** The step's inputs by name, as the backend was given them. */
function feedsOf(r: StepReplay, inputs: readonly string[]): Record<string, Float32Array> {
  const scalars = scalarFeeds(inputs, r.feeds.step, r.feeds.scalars).map(([n, v]) => [n, Float32Array.of(v)]);
  return { x: r.feeds.x, labels: r.feeds.labels, ...Object.fromEntries(scalars) };
}

/** The first node, in graph order, whose inputs are finite and whose value is not. */
function producingNode(r: StepReplay): { node: Node; value: number } | undefined {
  const values = executeGraph(r.graph, feedsOf(r, Object.keys(r.graph.inputs)), r.before, { seed: r.seed });
  const finite = values.map((v) => firstNonFinite(v) === undefined);
  for (const n of r.graph.nodes) {
    if (!finite[n.id] && n.inputs.every((i) => finite[i])) return { node: n, value: firstNonFinite(values[n.id]!)! };
  }
  return undefined;
}

/** The first kernel of the Program whose inputs are finite and one of whose outputs is not. */
function producingKernel(r: StepReplay): Kernel | undefined {
  const p = r.program!;
  const arena = newArena(p);
  for (const s of p.state) sliceOf(arena, s.slice).set(r.before.get(s.name)!);
  const feeds = feedsOf(r, Object.keys(p.inputs));
  for (const [name, s] of Object.entries(p.inputs)) sliceOf(arena, s).set(feeds[name]!);
  let found: Kernel | undefined;
  executeProgram(p, arena, { seed: r.seed }, (k, phase) => {
    const slices = phase === 'before' ? k.inputs : k.outputs;
    const ok = slices.every((s) => firstNonFinite(sliceOf(arena, s)) === undefined);
    if (phase === 'before' && !ok) return false; // a non-finite input came from an earlier kernel that was missed: stop
    if (phase === 'after' && !ok) {
      found = k;
      return false;
    }
    return true;
  });
  return found;
}
