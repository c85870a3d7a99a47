import { loadWeights } from '../runtime/checkpoint-file.ts';
import { evaluate } from '../runtime/evaluate.ts';
import { openSession, type SessionFlags } from './session.ts';

export interface EvalFlags extends SessionFlags {
  weights: string;
}

/** Test loss, accuracy and the confusion matrix of saved weights. */
export async function evalCommand(modelPath: string, flags: EvalFlags): Promise<void> {
  const s = await openSession(modelPath, flags);
  loadWeights(flags.weights, s.backend, s.modelState);
  const ev = await evaluate(s.backend, s.data.test, s.data.numClasses, 1000, s.normalize);
  const out = process.stdout;
  out.write(`${s.loaded.name} with ${flags.weights} on ${s.data.name} (${s.data.test.count.toLocaleString('en-US')} test images)\n`);
  out.write(`test loss ${ev.loss.toFixed(4)}, accuracy ${(100 * ev.accuracy).toFixed(2)}%\n\nconfusion matrix (rows: true class, columns: predicted)\n`);
  const w = Math.max(5, String(s.data.test.count).length + 1);
  out.write(' '.repeat(6) + ev.confusion.map((_, k) => String(k).padStart(w)).join('') + '\n');
  ev.confusion.forEach((row, k) => out.write(String(k).padStart(5) + ' ' + row.map((c) => String(c).padStart(w)).join('') + '\n'));
}
