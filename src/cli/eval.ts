import { loadWeights } from '../runtime/checkpoint-file.ts';
import { evaluate } from '../runtime/evaluate.ts';
import type { Backend } from '../runtime/backend.ts';
import type { Normalize } from '../runtime/data/dataset.ts';
import { evalFeed, type TrainData } from '../runtime/data/feed.ts';
import { bitsPerByte, consecutiveWindows, isText } from '../runtime/data/text.ts';
import { classesOf } from '../runtime/trainer.ts';
import { evalBatchFor, openSession, type SessionFlags } from './session.ts';
import { isStandaloneDir, openStandaloneRun } from './standalone-run.ts';
import { checkSafetensorsFile } from './train-run.ts';

export interface EvalFlags extends SessionFlags {
  weights: string;
}

/**
 * Test loss, accuracy and the confusion matrix of saved weights (model file, bundle or standalone
 * folder); for text, the held-out loss in bits per byte.
 */
export async function evalCommand(modelPath: string, flags: EvalFlags): Promise<void> {
  checkSafetensorsFile(flags.weights, 'weights file');
  const opened = isStandaloneDir(modelPath) ? await openStandaloneRun(modelPath, { ...flags }, `kiln eval ${modelPath}`) : undefined;
  let s: { name: string; backend: Backend; data: TrainData; modelState: string[]; normalize: Normalize; evalBatchSize: number };
  if (opened) s = opened.run;
  else {
    const x = await openSession(modelPath, flags);
    s = { ...x, name: x.loaded.name, evalBatchSize: evalBatchFor(x.training) };
  }
  try {
    loadWeights(flags.weights, s.backend, s.modelState);
    const { data } = s;
    const ev = await evaluate(s.backend, evalFeed(data, s.evalBatchSize, s.normalize), classesOf(data));
    const out = process.stdout;
    if (isText(data)) {
      const windows = consecutiveWindows(data.val.length, data.context);
      out.write(`${s.name} with ${flags.weights} on ${data.name} (the last ${data.val.length.toLocaleString('en-US')} bytes: ${windows.toLocaleString('en-US')} windows of ${data.context})\n`);
      out.write(`val loss ${ev.loss.toFixed(4)}, ${bitsPerByte(ev.loss).toFixed(4)} bits per byte, next-byte accuracy ${(100 * ev.accuracy).toFixed(2)}%\n`);
      return;
    }
    out.write(`${s.name} with ${flags.weights} on ${data.name} (${data.test.count.toLocaleString('en-US')} test images)\n`);
    out.write(`test loss ${ev.loss.toFixed(4)}, accuracy ${(100 * ev.accuracy).toFixed(2)}%\n\nconfusion matrix (rows: true class, columns: predicted)\n`);
    const w = Math.max(5, String(data.test.count).length + 1);
    out.write(' '.repeat(6) + ev.confusion.map((_, k) => String(k).padStart(w)).join('') + '\n');
    ev.confusion.forEach((row, k) => out.write(String(k).padStart(5) + ' ' + row.map((c) => String(c).padStart(w)).join('') + '\n'));
  } finally {
    opened?.model.dispose();
  }
}
