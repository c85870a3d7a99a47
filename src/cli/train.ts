import { KilnError } from '../ir/errors.ts';
import { StepCache } from '../runtime/wasm/step-cache.ts';
import { isStandaloneDir, openStandaloneRun } from './standalone-run.ts';
import { checkRunFlags, runTraining, trainHeader, type RunFlags } from './train-run.ts';
import { evalBatchFor, openSession, type SessionFlags } from './session.ts';
import { whileChecking } from '../frontend/loader.ts';

export interface TrainFlags extends SessionFlags, RunFlags {
  checkNumerics?: boolean;
}

/** `kiln train MODEL.ts | BUNDLE.kiln | STANDALONE-DIR`. */
export async function trainCommand(modelPath: string, flags: TrainFlags): Promise<void> {
  checkRunFlags(flags);
  if (isStandaloneDir(modelPath)) {
    if (flags.checkNumerics) throw new KilnError('usage', '--check-numerics needs the model: a standalone folder holds only its compiled programs', undefined, `run it on the model file or .kiln bundle the folder was built from`);
    const { run, model } = await openStandaloneRun(modelPath, { ...flags }, `kiln train ${modelPath}`);
    try {
      return await runTraining(run, flags);
    } finally {
      model.dispose();
    }
  }
  // The header goes out once the model and data are known, before the backend starts.
  const s = await openSession(modelPath, flags, {
    onPlanned: (p) => process.stderr.write(trainHeader({ name: p.loaded.name, file: p.loaded.file, data: p.data, training: p.training, augment: p.training.augment }, p.backend)),
    // The TypeScript checker takes about a second on a model it has not seen pass: say so at once.
    onLint: (file) => process.stderr.write(`kiln: checking ${file} (types and tracing rules; not again until it changes)\n`),
    stepCache: StepCache.open(),
    // The checks finish on their worker while runTraining builds the steps.
    checkAside: true,
  });
  // runTraining awaits the checks before its first step; an error before that (--init, --resume)
  // waits for them too (whileChecking).
  const training = () =>
    runTraining(
      {
        name: s.loaded.name,
        file: s.loaded.file,
        backend: s.backend,
        data: s.data,
        training: s.training,
        normalize: s.normalize,
        augment: s.training.augment,
        initDraws: s.initDraws,
        evalBatchSize: evalBatchFor(s.training),
        modelState: s.modelState,
        prepared: 'compiled',
        command: `kiln train ${s.loaded.file}`,
        checkNumerics: flags.checkNumerics ? s.checkNumerics : undefined,
        headerWritten: true,
        checked: s.loaded.checked,
      },
      flags,
    );
  await whileChecking(s.loaded, training, { awaitChecks: false });
}
