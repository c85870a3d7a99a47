import { Command, CommanderError } from 'commander';
import { reportError } from './errors.ts';
import { irCommand } from './ir.ts';

const debug = process.argv.includes('--debug');

const program = new Command('kiln')
  .description('Compile a neural network written in TypeScript into a fast training program.')
  .option('--debug', 'show stack traces for errors')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

program
  .command('ir')
  .description('print the IR of a model: nodes, shapes, source lines, FLOPs')
  .argument('<model>', 'model file (.ts)')
  .option('--stage <stage>', 'traced | train | eval', 'traced')
  .option('--format <format>', 'text | json | dot', 'text')
  .option('--batch-size <n>', "batch size (default: the model's training.batchSize)")
  .option('-o, --output <file>', 'write to a file instead of stdout')
  .action(irCommand);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode;
  else process.exitCode = reportError(e, debug);
}
