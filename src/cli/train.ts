import { basename } from 'node:path';
import { KilnError } from '../ir/errors.ts';
import { loadCheckpoint, loadWeights, saveCheckpoint, saveWeights, type RunIdentity, type TrainPosition } from '../runtime/checkpoint.ts';
import { syncState } from '../runtime/backend.ts';
import { checkWritable, writeFileAtomic } from '../runtime/output-file.ts';
import { runSteps, train } from '../runtime/trainer.ts';
import { nonNegInt, positiveInt } from './options.ts';
import { progressHooks } from './progress.ts';
import { openSession, type SessionFlags } from './session.ts';

export interface TrainFlags extends SessionFlags {
  maxSteps?: string;
  shuffle: boolean;
  init?: string;
  save?: string;
  checkpoint?: string;
  checkpointEvery?: string;
  resume?: string;
  log?: string;
  metricsJson?: string;
}

/** The textbook's test loader batch. */
const EVAL_BATCH = 1000;

export async function trainCommand(modelPath: string, flags: TrainFlags): Promise<void> {
  if (flags.init && flags.resume) throw new KilnError('usage', '--init and --resume cannot be combined', undefined, '--resume restores the weights too');
  if (flags.checkpointEvery && !flags.checkpoint) throw new KilnError('usage', '--checkpoint-every needs --checkpoint FILE');
  const maxSteps = flags.maxSteps === undefined ? undefined : nonNegInt('--max-steps', flags.maxSteps);
  const every = flags.checkpointEvery === undefined ? undefined : positiveInt('--checkpoint-every', flags.checkpointEvery);
  for (const [flag, path] of [['--save', flags.save], ['--checkpoint', flags.checkpoint], ['--log', flags.log], ['--metrics-json', flags.metricsJson]] as const) if (path) checkWritable(flag, path);

  const s = await openSession(modelPath, flags);
  const { training: t, backend, data } = s;
  const identity: RunIdentity = { model: s.loaded.name, seed: t.seed, shuffle: flags.shuffle, batchSize: t.batchSize, trainCount: data.train.count, optimizer: JSON.stringify(t.optimizer) };
  let start: TrainPosition = { step: 0, epoch: 0, batch: 0 };
  if (flags.init) loadWeights(flags.init, backend, s.modelState);
  if (flags.resume) start = loadCheckpoint(flags.resume, backend, identity);
  const checkpointPath = flags.checkpoint ?? `${basename(s.loaded.file).replace(/\.[^.]+$/, '')}.checkpoint.safetensors`;
  const save = (p: TrainPosition) => saveCheckpoint(checkpointPath, backend, p, identity);

  const err = process.stderr;
  err.write(`kiln: training ${s.loaded.name} (${s.loaded.file}) on ${data.name}: ${data.train.count.toLocaleString('en-US')} images, batch ${t.batchSize}, ${t.epochs} epoch${t.epochs > 1 ? 's' : ''}, ${t.optimizer.type} lr ${t.optimizer.lr}, seed ${t.seed}, backend ${backend.name}\n`);
  if (flags.resume) err.write(`kiln: resuming from ${flags.resume} at step ${start.step} (epoch ${start.epoch + 1}, batch ${start.batch})\n`);
  const compileStart = performance.now();
  const shapes = runSteps(data.train.count, data.test.count, t.batchSize, EVAL_BATCH);
  for (const [kind, batch] of shapes) backend.prepare(kind, batch);
  const batches = (kind: string) => shapes.filter(([k]) => k === kind).map(([, b]) => b).join(' and ');
  err.write(`kiln: compiled the train step (batch ${batches('train')}) and the eval step (batch ${batches('eval')}) in ${((performance.now() - compileStart) / 1000).toFixed(2)} s\n`);

  let stopping = false;
  const onSigint = () => {
    if (stopping) process.exit(130);
    stopping = true;
    err.write('\nkiln: interrupted; finishing the current step (Ctrl-C again to quit at once)\n');
  };
  process.on('SIGINT', onSigint);
  const progress = progressHooks(t.epochs);
  let result;
  try {
    result = await train(
      backend,
      data,
      {
        epochs: t.epochs,
        batchSize: t.batchSize,
        seed: t.seed,
        shuffle: flags.shuffle,
        initDraws: s.initDraws,
        normalize: s.normalize,
        maxSteps,
        evalBatchSize: EVAL_BATCH,
        logFile: flags.log,
        checkpoint: every && flags.checkpoint ? { every, save } : undefined,
      },
      { ...progress, stopRequested: () => stopping },
      start,
    );
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
  }

  await syncState(backend);
  if (result.interrupted) {
    save(result.position);
    err.write(`kiln: stopped at step ${result.position.step}; checkpoint written to ${checkpointPath}\n  resume with: kiln train ${s.loaded.file} --resume ${checkpointPath}\n`);
    process.exitCode = 130;
  } else if (!Number.isNaN(result.testAccuracy)) {
    err.write(`kiln: ${result.steps} step${result.steps === 1 ? '' : 's'} in ${result.seconds.toFixed(1)} s (${Math.round(result.imagesPerSec).toLocaleString('en-US')} images/s training); test accuracy ${(100 * result.testAccuracy).toFixed(2)}%, test loss ${result.testLoss.toFixed(4)}\n`);
  }
  if (flags.save) {
    saveWeights(flags.save, backend, s.modelState);
    err.write(`kiln: weights written to ${flags.save}\n`);
  }
  if (flags.metricsJson) {
    const { trainLoss, testLoss, testAccuracy, imagesPerSec, seconds, steps, epochs } = result;
    writeFileAtomic(flags.metricsJson, JSON.stringify({ backend: backend.name, epochs, steps, trainLoss, testLoss, testAccuracy, imagesPerSec, seconds }, null, 2) + '\n');
  }
}
