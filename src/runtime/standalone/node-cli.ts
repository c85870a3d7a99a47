import { Command, CommanderError } from 'commander';
import { dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reportError } from '../../cli/errors.ts';
import { openStandaloneRun, type StandaloneRunFlags } from '../../cli/standalone-run.ts';
import { runOptions } from '../../cli/flags.ts';
import { runTraining, type RunFlags } from '../../cli/train-run.ts';
import { usageErrors } from '../../cli/usage-errors.ts';

/**
 * train.mjs of a standalone bundle: `kiln train` for the model compiled into this folder, with
 * nothing installed but Node 20+ (this file and kiln-runtime.mjs beside it are all it needs).
 */
async function main(argv: string[]): Promise<void> {
  const dir = dirname(fileURLToPath(import.meta.url));
  const shown = relative(process.cwd(), dir) || '.';
  const program = runOptions(usageErrors(new Command(`node ${shown}/train.mjs`)))
    .description('train the model compiled into this folder, then evaluate it on the test set')
    .option('--epochs <n>', 'passes over the training set')
    .option('--data <DIR>', "a folder of IDX files (raw or .gz) or CIFAR binary files instead of the bundle's dataset")
    .option('--normalize <mean,std>', "pixel normalisation for --data: MEAN,STD or MEANS/STDS per channel (default: the bundle's)")
    .option('--labels <fine|coarse>', "CIFAR-100's classes for --data: fine (100, default) or coarse (20)")
    .option('--backend <name>', 'wasm | webgpu (webgpu in Node needs the webgpu npm package)', 'wasm')
    .option('--threads <n>', 'wasm threads (one of the counts the bundle was compiled for; default: the most that fit the cores)')
    .option('--debug', 'show stack traces for errors')
    .exitOverride();
  program.parse(argv);
  const flags = program.opts<StandaloneRunFlags & RunFlags>();
  const { run, model } = await openStandaloneRun(dir, { ...flags }, `node ${shown}/train.mjs`);
  try {
    await runTraining(run, flags);
  } finally {
    model.dispose();
  }
}

try {
  await main(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode;
  else process.exitCode = reportError(e, process.argv.includes('--debug'));
}
