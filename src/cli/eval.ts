import { loadWeights } from '../runtime/checkpoint-file.ts';
import { evaluate } from '../runtime/evaluate.ts';
import type { Backend } from '../runtime/backend.ts';
import type { Dataset, Normalize } from '../runtime/data/dataset.ts';
import { EVAL_BATCH, openSession, type SessionFlags } from './session.ts';
import { isStandaloneDir, openStandaloneRun } from './standalone-run.ts';
import { checkSafetensorsFile } from './train-run.ts';

export interface EvalFlags extends SessionFlags {
  weights: string;
}

/** Test loss, accuracy and the confusion matrix of saved weights (model file, bundle or standalone folder). */
export async function evalCommand(modelPath: string, flags: EvalFlags): Promise<void> {
  checkSafetensorsFile(flags.weights, 'weights file');
  const opened = isStandaloneDir(modelPath) ? await openStandaloneRun(modelPath, { ...flags }, `kiln eval ${modelPath}`) : undefined;
  let s: { name: string; backend: Backend; data: Dataset; modelState: string[]; normalize: Normalize; evalBatchSize: number };
  if (opened) s = opened.run;
  else {
    const x = await openSession(modelPath, flags);
    s = { ...x, name: x.loaded.name, evalBatchSize: EVAL_BATCH };
  }
  try {
    loadWeights(flags.weights, s.backend, s.modelState);
    const ev = await evaluate(s.backend, s.data.test, s.data.numClasses, s.evalBatchSize, s.normalize);
    const out = process.stdout;
    out.write(`${s.name} with ${flags.weights} on ${s.data.name} (${s.data.test.count.toLocaleString('en-US')} test images)\n`);
    out.write(`test loss ${ev.loss.toFixed(4)}, accuracy ${(100 * ev.accuracy).toFixed(2)}%\n\nconfusion matrix (rows: true class, columns: predicted)\n`);
    const w = Math.max(5, String(s.data.test.count).length + 1);
    out.write(' '.repeat(6) + ev.confusion.map((_, k) => String(k).padStart(w)).join('') + '\n');
    ev.confusion.forEach((row, k) => out.write(String(k).padStart(5) + ' ' + row.map((c) => String(c).padStart(w)).join('') + '\n'));
  } finally {
    opened?.model.dispose();
  }
}
