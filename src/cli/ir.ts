import { writeFileSync } from 'node:fs';
import { KilnError } from '../ir/errors.ts';
import type { Stage } from '../ir/graph.ts';
import { printDot } from '../ir/printer/dot.ts';
import { printJson } from '../ir/printer/json.ts';
import { printText } from '../ir/printer/text.ts';
import { loadModelFile } from '../frontend/loader.ts';
import { graphFor } from './graphs.ts';
import { choice, positiveInt } from './options.ts';

export interface IrFlags {
  stage: string;
  format: string;
  batchSize?: string;
  output?: string;
}

const printers = { text: printText, json: printJson, dot: printDot };
const stages: Stage[] = ['traced', 'train', 'eval'];

export async function irCommand(modelPath: string, flags: IrFlags): Promise<void> {
  const stage = choice('--stage', flags.stage, stages);
  const format = choice('--format', flags.format, Object.keys(printers) as (keyof typeof printers)[]);
  const loaded = await loadModelFile(modelPath);
  const batchSize = flags.batchSize === undefined ? loaded.training.batchSize : positiveInt('--batch-size', flags.batchSize);
  const graph = graphFor(loaded, stage, { batchSize, optimizer: loaded.training.optimizer });
  const text = printers[format](graph);
  if (!flags.output) {
    process.stdout.write(text);
    return;
  }
  try {
    writeFileSync(flags.output, text);
  } catch (e) {
    throw new KilnError('io', `cannot write ${flags.output}: ${(e as Error).message}`, undefined, 'choose a writable path for --output');
  }
}
