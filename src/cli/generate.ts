import { KilnError } from '../ir/errors.ts';
import { loadModelFile, type LoadedModel } from '../frontend/loader.ts';
import { memoizeSteps, runEvalStep, type Backend } from '../runtime/backend.ts';
import { loadWeights } from '../runtime/checkpoint-file.ts';
import { TEXT_VOCAB } from '../runtime/data/text.ts';
import { initialState } from '../runtime/init.ts';
import { TorchGenerator } from '../runtime/torch-generator.ts';
import { BACKENDS } from './flags.ts';
import { graphFor } from './graphs.ts';
import { lastPositionGraph } from '../passes/last-position.ts';
import { choice, nonNegInt, nonNegNumber, positiveInt } from './options.ts';
import { lowerFor, openBackend, threadCount } from './session.ts';
import { checkSafetensorsFile } from './train-run.ts';

export interface GenerateFlags {
  weights: string;
  prompt?: string;
  tokens: string;
  temperature: string;
  topK?: string;
  seed: string;
  backend?: string;
  threads?: string;
}

/** How the next byte is drawn from a row of logits. */
interface Sampling {
  temperature: number;
  topK?: number;
  rng: TorchGenerator;
}

/**
 * The next byte from one row of logits: the most likely at temperature 0, else a draw from
 * softmax(logits / temperature) over the top k (all 256 without --top-k), by inverting the
 * cumulative distribution at a uniform from PyTorch's generator seeded with --seed.
 */
export function sampleByte(logits: Float32Array, s: Sampling): number {
  const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (s.temperature === 0) return order[0]!;
  const kept = order.slice(0, s.topK ?? order.length);
  const max = logits[kept[0]!]!;
  const weights = kept.map((t) => Math.exp((logits[t]! - max) / s.temperature));
  const total = weights.reduce((a, w) => a + w, 0);
  let u = s.rng.uniform01f() * total;
  for (let i = 0; i < kept.length; i++) {
    u -= weights[i]!;
    if (u < 0) return kept[i]!;
  }
  return kept.at(-1)!;
}

/**
 * The step that predicts from a context: the model's evaluation step at batch 1 over its context
 * of T bytes. A context shorter than T sits at the start of the window, the rest zeros, and its
 * next byte is read from the logits of its last position: exact for a causal model (no position
 * sees a later one), which `checkCausal` makes sure of. A full window runs `last`, the same step
 * cut down to its last position's logits (lastPositionGraph), when there is one.
 */
class Predictor {
  private readonly x: Float32Array;
  private readonly labels: Float32Array;

  constructor(
    private readonly backend: Backend,
    readonly context: number,
    private readonly last?: Backend,
  ) {
    this.x = new Float32Array(context);
    this.labels = new Float32Array(context);
  }

  /** Logits of the byte after `tokens` (the last T of them). */
  async next(tokens: readonly number[], filler = 0): Promise<Float32Array> {
    const window = tokens.slice(-this.context);
    this.x.fill(filler);
    this.x.set(window);
    if (this.last && window.length === this.context) return (await runEvalStep(this.last, this.x, this.labels.subarray(0, 1))).logits;
    const { logits } = await runEvalStep(this.backend, this.x, this.labels);
    const row = window.length - 1;
    return logits.slice(row * TEXT_VOCAB, (row + 1) * TEXT_VOCAB);
  }
}

/** Refuses a model whose last position's prediction depends on what follows it in the window: generation would be wrong. */
async function checkCausal(p: Predictor, file: string): Promise<void> {
  const probe = [10];
  const [a, b] = [await p.next(probe, 0), await p.next(probe, 101)];
  const off = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!) / Math.max(1, Math.abs(v))), 0);
  if (off > 1e-4) {
    throw new KilnError('usage', `${file}: the model is not causal: its prediction at a position changes with the bytes after it (${off.toExponential(1)} apart)`, undefined, 'kiln generate samples from language models whose positions see only earlier ones (causal attention, isCausal: true)');
  }
}

/** The model's context T and its check: training.input is [T] and the logits are [T, 256]. */
function contextOf(loaded: LoadedModel): number {
  const input = loaded.training.input;
  if (input.length !== 1) throw new KilnError('usage', `${loaded.file}: kiln generate samples from language models over bytes; this model's input is [${input.join(', ')}], not a context [T]`, undefined, "a language model's training export has input: [T] and dataset: 'text'");
  return input[0]!;
}

/** `kiln generate`: samples text from a trained byte-level language model, printing each byte as it comes. */
export async function generateCommand(modelPath: string, flags: GenerateFlags): Promise<void> {
  checkSafetensorsFile(flags.weights, 'weights file');
  const backendName = choice('--backend', flags.backend ?? BACKENDS[0], BACKENDS);
  const threads = threadCount(flags.threads, backendName);
  const tokens = nonNegInt('--tokens', flags.tokens);
  const temperature = nonNegNumber('--temperature', flags.temperature);
  const topK = flags.topK === undefined ? undefined : positiveInt('--top-k', flags.topK);
  if (topK !== undefined && topK > TEXT_VOCAB) throw new KilnError('usage', `--top-k ${topK} is more than the ${TEXT_VOCAB} bytes there are`, undefined, `pass --top-k between 1 and ${TEXT_VOCAB}`);
  const seed = nonNegInt('--seed', flags.seed);
  const loaded = await loadModelFile(modelPath);
  const T = contextOf(loaded);
  const training = loaded.training;
  const steps = memoizeSteps({
    train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer: training.optimizer }),
    eval: (b) => graphFor(loaded, 'eval', { batchSize: b, optimizer: training.optimizer }),
  });
  const evalGraph = steps.eval(1);
  const logits = evalGraph.nodes[evalGraph.outputs.logits!]!.shape;
  if (logits.length !== 2 || logits[0] !== T || logits[1] !== TEXT_VOCAB) {
    throw new KilnError('usage', `${loaded.file}: a language model over bytes returns logits [T, ${TEXT_VOCAB}] for a window of T = ${T}; this one returns [${logits.join(', ')}]`, undefined, 'return logits.view(-1, 256), as samples/gpt.ts does');
  }
  const open = (source: typeof steps) => openBackend(backendName, source, initialState(evalGraph.state, training.seed), 1, training.seed, { threads, lower: lowerFor(loaded, training) });
  const backend = await open(steps);
  // Once the text fills the window, each step needs only its last position: a second backend
  // runs that cut-down step (about a fifth less work on the 4-block GPT).
  let last: Backend | undefined;
  try {
    last = tokens + (flags.prompt?.length ?? 1) > T ? await open(memoizeSteps({ train: steps.train, eval: (b) => lastPositionGraph(steps.eval(b)) })) : undefined;
    for (const b of [backend, last]) {
      if (!b) continue;
      await b.prepare('eval', 1);
      loadWeights(flags.weights, b, evalGraph.state.map((s) => s.name));
    }
    const predictor = new Predictor(backend, T, last);
    await checkCausal(predictor, loaded.file);
    const prompt = [...new TextEncoder().encode(flags.prompt ?? '\n')];
    if (prompt.length === 0) throw new KilnError('usage', '--prompt is empty', undefined, 'give at least one character, or leave --prompt out to start from a newline');
    const sampling: Sampling = { temperature, topK, rng: new TorchGenerator(seed) };
    const text = [...prompt];
    process.stdout.write(Buffer.from(prompt));
    const start = performance.now();
    for (let i = 0; i < tokens; i++) {
      const next = sampleByte(await predictor.next(text), sampling);
      text.push(next);
      process.stdout.write(Buffer.of(next));
    }
    const seconds = (performance.now() - start) / 1000;
    process.stdout.write('\n');
    process.stderr.write(`kiln: ${tokens} bytes in ${seconds.toFixed(2)} s (${(tokens / Math.max(seconds, 1e-9)).toFixed(1)} bytes/s, ${backend.name})\n`);
  } finally {
    backend.dispose();
    last?.dispose();
  }
}
