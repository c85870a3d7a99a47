import { KilnError } from '../../ir/errors.ts';
import { runEvalStep, runTrainStep, syncState, type Backend, type StepResult, type StepScalars } from '../backend.ts';
import { augmentIdentity, restoreCheckpoint, checkpointBytes, restoreWeights, weightsBytes, type RunIdentity, type TrainPosition } from '../checkpoint.ts';
import type { Dataset, Split } from '../data/dataset.ts';
import { imageFeed } from '../data/feed.ts';
import { evaluate, type Evaluation } from '../evaluate.ts';
import { train, type TrainHooks, type TrainResult } from '../trainer.ts';
import type { StandaloneBundle } from './bundle.ts';
import type { Manifest } from './manifest.ts';
import { openBackend, type OpenOptions } from './open.ts';

export interface TrainOptions extends TrainHooks {
  epochs?: number;
  /** Stop after this many steps in total. */
  maxSteps?: number;
  /** Shuffle each epoch from the seed, as PyTorch's DataLoader(shuffle=True) (default true). */
  shuffle?: boolean;
  /** Called with one `{"epoch","step","loss"}` line per step (the CLI's --log). */
  log?: (line: string) => void;
  /** Where to start (a checkpoint's position); default: after the steps this model has run. */
  start?: TrainPosition;
  checkpoint?: { every: number; save: (p: TrainPosition) => void };
}

/**
 * A compiled model ready to train: a standalone bundle's steps on a backend, its weights set to
 * the bundle's initial ones. What `train.mjs` and the page use, and what an application embeds.
 */
export class KilnModel {
  /** Steps run so far (the step counter that keys dropout masks and Adam's bias correction). */
  position: TrainPosition = { step: 0, epoch: 0, batch: 0 };

  private constructor(
    readonly bundle: StandaloneBundle,
    readonly backend: Backend,
    /** What runs it, in words. */
    readonly description: string,
    readonly threads: number,
  ) {}

  static async open(bundle: StandaloneBundle, opts: OpenOptions = {}): Promise<KilnModel> {
    const params = await bundle.file(bundle.manifest.params);
    const o = await openBackend(bundle, opts);
    const model = new KilnModel(bundle, o.backend, o.description, o.threads);
    try {
      for (const s of bundle.manifest.state) if (s.init !== undefined) o.backend.setState(s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(s.init));
      restoreWeights(params, bundle.where(bundle.manifest.params), o.backend, model.modelState);
    } catch (e) {
      o.backend.dispose();
      throw e;
    }
    return model;
  }

  get manifest(): Manifest {
    return this.bundle.manifest;
  }

  /** Parameters and buffers: what a state_dict holds. */
  get modelState(): string[] {
    return this.manifest.state.filter((s) => s.kind !== 'optim').map((s) => s.name);
  }

  /** What a checkpoint must agree on to resume this run exactly. */
  identity(data: Dataset, shuffle: boolean): RunIdentity {
    const t = this.manifest.training;
    return { model: this.manifest.name, seed: t.seed, shuffle, batchSize: t.batchSize, trainCount: data.train.count, optimizer: JSON.stringify(t.optimizer), augment: augmentIdentity(t.augment) };
  }

  /**
   * One training step on a batch (x normalised, [n, ...input]; labels as class indices). A model
   * with a learning-rate schedule needs this step's values (scheduleScalars of
   * src/runtime/schedule.ts over the run's length, which only the caller knows); `train` computes
   * them itself.
   */
  async trainStep(x: Float32Array, labels: Float32Array, scalars?: StepScalars): Promise<StepResult> {
    const r = await runTrainStep(this.backend, x, labels, this.position.step, scalars);
    this.position = { ...this.position, step: this.position.step + 1 };
    return r;
  }

  /** Class probabilities (softmax of the logits) of `n` normalised examples, `[n, classes]`. */
  async predict(x: Float32Array): Promise<Float32Array> {
    const m = this.manifest;
    const per = m.input.reduce((a, b) => a * b, 1);
    const n = x.length / per;
    if (!Number.isInteger(n) || n < 1) throw new KilnError('usage', `predict: ${x.length} values are not a whole number of examples of ${per}`);
    // The largest eval step the bundle holds: the eval batch size, or the whole test set where
    // that is smaller (a bundle compiled with --data of fewer than 1000 test images).
    const batch = Math.max(...m.steps.filter((s) => s.stage === 'eval').map((s) => s.batchSize));
    const probs = new Float32Array(n * m.classes);
    const xb = new Float32Array(batch * per);
    // Evaluation steps exist at the eval batch size: examples go in its first rows, zeros after
    // (each row's logits depend on that row alone in evaluation).
    for (let at = 0; at < n; at += batch) {
      const k = Math.min(batch, n - at);
      xb.fill(0).set(x.subarray(at * per, (at + k) * per));
      const { logits } = await runEvalStep(this.backend, xb, new Float32Array(batch));
      for (let r = 0; r < k; r++) {
        const row = logits.subarray(r * m.classes, (r + 1) * m.classes);
        const max = Math.max(...row);
        let sum = 0;
        for (let c = 0; c < m.classes; c++) sum += Math.exp(row[c]! - max);
        for (let c = 0; c < m.classes; c++) probs[(at + r) * m.classes + c] = Math.exp(row[c]! - max) / sum;
      }
    }
    return probs;
  }

  /** Test loss and accuracy on a split, at the eval batch size. */
  async evaluate(split: Split): Promise<Evaluation> {
    const t = this.manifest.training;
    return evaluate(this.backend, imageFeed(split, t.evalBatchSize, t.normalize), this.manifest.classes);
  }

  /** The training loop of `kiln train` (epochs, shuffles, short last batch, evaluation after each epoch). */
  async train(data: Dataset, opts: TrainOptions = {}): Promise<TrainResult> {
    const t = this.manifest.training;
    const r = await train(
      this.backend,
      data,
      { epochs: opts.epochs ?? t.epochs, batchSize: t.batchSize, seed: t.seed, shuffle: opts.shuffle ?? true, initDraws: this.manifest.initDraws, normalize: t.normalize, augment: t.augment, maxSteps: opts.maxSteps, optimizer: t.optimizer, evalBatchSize: t.evalBatchSize, log: opts.log, checkpoint: opts.checkpoint },
      opts,
      opts.start ?? this.position,
    );
    this.position = r.position;
    return r;
  }

  /** The model's weights as a safetensors state_dict (PyTorch names; loads with safetensors.torch.load_file). */
  async saveWeights(): Promise<Uint8Array> {
    await syncState(this.backend);
    return weightsBytes(this.backend, this.modelState);
  }

  /** Sets the weights from a safetensors state_dict (kiln's or PyTorch's); `file` names it in messages. */
  loadWeights(bytes: Uint8Array, file = 'weights'): void {
    restoreWeights(bytes, file, this.backend, this.modelState);
  }

  /** Everything a resume needs: every persistent tensor and the position, as safetensors. */
  async saveCheckpoint(identity: RunIdentity, position = this.position): Promise<Uint8Array> {
    await syncState(this.backend);
    return checkpointBytes(this.backend, position, identity);
  }

  /** Restores a checkpoint written for the same run; returns (and keeps) its position. */
  resume(bytes: Uint8Array, file: string, identity: RunIdentity): TrainPosition {
    this.position = restoreCheckpoint(bytes, file, this.backend, identity);
    return this.position;
  }

  dispose(): void {
    this.backend.dispose();
  }
}

