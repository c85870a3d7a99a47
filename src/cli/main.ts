import { Command, CommanderError } from 'commander';
import { reportError } from './errors.ts';
import { KilnError } from '../ir/errors.ts';
import { BACKENDS, runOptions } from './flags.ts';
import { usageErrors } from './usage-errors.ts';

// Only what --help and commander's checks need is imported here; each command's module, and with
// it the compiler and the backends, loads when that command runs (a chunk of its own in dist/):
// `kiln --help` parsed and ran the whole 600 KB bundle before.

/** An action that imports its command's module on first use. */
function lazy<A extends unknown[]>(load: () => Promise<(...args: A) => Promise<void>>): (...args: A) => Promise<void> {
  return async (...args) => (await load())(...args);
}

const debug = process.argv.includes('--debug');

// Run behind bin/quiet-dawn.js's filter, stderr is a pipe to it: still a terminal of this width
// for the progress bar when the filter's own stderr is one.
const filteredColumns = Number(process.env.KILN_STDERR_FILTERED);
if (filteredColumns > 0) Object.assign(process.stderr, { isTTY: true, columns: filteredColumns });

const program = usageErrors(new Command('kiln'))
  .description('Compile a neural network written in TypeScript into a fast training program.')
  .option('--debug', 'show stack traces for errors')
  .exitOverride();

program
  .command('compile')
  .description('compile a model file into a bundle (.kiln) of planned training and evaluation steps')
  .argument('<model>', 'model file (.ts)')
  .option('-o, --output <path>', 'bundle file, or folder with --standalone (default: <model>.kiln in the working directory)')
  .option('--standalone', 'write a folder that trains with plain node or in a browser page, with no kiln install')
  .option('--backend <name>', 'standalone: wasm | webgpu | all (default all)')
  .option('--data <mnist|DIR|none>', 'standalone: the dataset to carry (default: the model\'s); none leaves it out')
  .option('--labels <fine|coarse>', "standalone: CIFAR-100's classes to carry: fine (100, default) or coarse (20)")
  .option('--threads <list>', 'standalone: wasm thread counts to compile, comma-separated (default 1,2,4,8)')
  .option('--seed <n>', 'standalone: seed of the initial weights and data order (as torch.manual_seed)')
  .option('--normalize <mean,std>', 'standalone: pixel normalisation, MEAN,STD or MEANS/STDS per channel (default: CIFAR\'s own statistics on CIFAR, else 0.1307,0.3081)')
  .option('--batch-size <n>', 'training batch size')
  .option('--lr <x>', 'learning rate')
  .option('--optimizer <name>', 'adam | adamw | sgd')
  .option('--momentum <x>', 'SGD momentum')
  .option('--weight-decay <x>', 'weight decay')
  .option('--random-crop <size[,padding]>', "augment the training images as torchvision's RandomCrop(size, padding), e.g. 32,4")
  .option('--horizontal-flip [p]', "augment the training images as torchvision's RandomHorizontalFlip(p) (default p 0.5)")
  .option('--schedule <kind>', 'lr schedule stepped per batch: cosine | onecycle | none')
  .action(lazy(async () => (await import('./compile.ts')).compileCommand));

program
  .command('ir')
  .description('print the IR of a model: nodes, shapes, source lines, FLOPs; kernels and memory plan')
  .argument('<model>', 'model file (.ts) or bundle (.kiln)')
  .option('--stage <stage>', 'traced | train | eval | simplified | fused | scheduled | planned | wasm | wgsl', 'traced')
  .option('--step <step>', 'train | eval: the step the simplified, fused, scheduled, planned and wasm stages show', 'train')
  .option('--format <format>', 'text | json | dot (graph stages) | svg (planned: buffer lifetimes)', 'text')
  .option('--backend <backend>', 'wasm | webgpu | reference: whose limits the fused, scheduled and planned stages are compiled for (default wasm; webgpu: the portable 8 storage buffers)')
  .option('--batch-size <n>', "batch size (default: the model's training.batchSize)")
  .option('-o, --output <file>', 'write to a file instead of stdout')
  .action(lazy(async () => (await import('./ir.ts')).irCommand));

/** Flags shared by train and eval; each overrides the model file's `training` export. */
function sessionOptions(cmd: Command): Command {
  return cmd
    .option('--data <mnist|DIR|FILE.txt>', "dataset: 'mnist' (bundled), a folder of IDX files (raw or .gz), or of CIFAR-10's or CIFAR-100's binary files, or a text file (its bytes are the tokens)")
    .option('--val-fraction <f>', 'text: the share of the file, from its end, held out for evaluation (default 0.1)')
    .option('--labels <fine|coarse>', "CIFAR-100's classes: fine (100, the default) or coarse (20)")
    .option('--normalize <mean,std>', 'pixel normalisation after scaling to [0, 1]: MEAN,STD, or MEANS/STDS with one per channel (default: CIFAR\'s own statistics on CIFAR, else 0.1307,0.3081)')
    .option('--batch-size <n>', 'training batch size')
    .option('--seed <n>', "seed for initialisation, shuffling and dropout (as torch.manual_seed: PyTorch's weights and batch order)")
    .option('--backend <name>', BACKENDS.join(' | '), BACKENDS[0])
    .option('--threads <n>', 'threads for the wasm backend (default: the number of cores)');
}

sessionOptions(
  runOptions(program.command('train'))
    .description('train a model on MNIST, any IDX dataset, CIFAR-10/100 or text, then evaluate it on the test set (or held-out text)')
    .argument('<model>', 'model file (.ts), bundle (.kiln) or standalone folder')
    .option('--epochs <n>', 'passes over the training set')
    .option('--lr <x>', 'learning rate')
    .option('--optimizer <name>', 'adam | adamw | sgd')
    .option('--momentum <x>', 'SGD momentum')
    .option('--weight-decay <x>', 'weight decay (L2 for sgd and adam, decoupled for adamw)')
    .option('--random-crop <size[,padding]>', "augment the training images as torchvision's RandomCrop(size, padding), e.g. 32,4")
    .option('--horizontal-flip [p]', "augment the training images as torchvision's RandomHorizontalFlip(p) (default p 0.5)")
    .option('--schedule <kind>', 'lr schedule stepped per batch: cosine | onecycle | none (default: the model\'s training.schedule)')
    .option('--check-numerics', 'stop at the first NaN or infinity in a loss, gradient or parameter, naming the step, kernel and model line (slower)'),
).action(lazy(async () => (await import('./train.ts')).trainCommand));

sessionOptions(
  program
    .command('eval')
    .description('test loss, accuracy and confusion matrix of saved weights')
    .argument('<model>', 'model file (.ts), bundle (.kiln) or standalone folder')
    .requiredOption('--weights <file>', 'safetensors state_dict to evaluate'),
).action(lazy(async () => (await import('./eval.ts')).evalCommand));

program
  .command('generate')
  .description('sample text from a trained language model over bytes (samples/gpt.ts)')
  .argument('<model>', 'model file (.ts) or bundle (.kiln)')
  .requiredOption('--weights <file>', 'safetensors state_dict of the trained model (kiln train --save)')
  .option('--prompt <text>', 'the text to continue (default: a newline)')
  .option('--tokens <n>', 'bytes to generate', '200')
  .option('--temperature <t>', 'divides the logits before sampling; 0 picks the most likely byte', '1')
  .option('--top-k <k>', 'sample among the k most likely bytes only')
  .option('--seed <n>', "seed of the sampling (PyTorch's generator): the same seed gives the same text", '0')
  .option('--backend <name>', BACKENDS.join(' | '), BACKENDS[0])
  .option('--threads <n>', 'threads for the wasm backend (default: the number of cores)')
  .action(lazy(async () => (await import('./generate.ts')).generateCommand));

program
  .command('bench')
  .description('training and inference speed of every backend, and of TensorFlow.js, jax-js and PyTorch with --peers')
  .option('--model <file>', 'model file (repeatable; default: the three MNIST samples; samples/gpt.ts is measured in tokens/s)', (v: string, prev: string[] = []) => [...prev, v])
  .option('--backends <list>', `comma-separated backends (default: all registered: ${BACKENDS.join(', ')})`)
  .option('--threads <list>', 'thread counts for backends that use threads, comma-separated', '1,2')
  .option('--peers', 'also train the same models with TensorFlow.js, jax-js and PyTorch')
  .option('--json <file>', 'write { machine, results } as JSON')
  .option('--markdown <file>', 'rewrite the figures section of this Markdown file (BENCHMARKS.md)')
  .option('--svg <file>', 'draw training images/s per configuration as a bar chart')
  .option('--steps <n>', 'measured training steps per configuration, at most', '30')
  .option('--warmup <n>', 'warm-up steps before measuring', '2')
  .option('--seconds <s>', 'stop measuring a configuration after this long', '8')
  .option('--data <mnist|DIR>', "dataset the batches come from (default: the model's)")
  .action(lazy(async () => (await import('./bench.ts')).benchCommand));

program
  .command('serve')
  .description('serve a standalone bundle folder on localhost for a browser (with the headers shared memory needs)')
  .argument('<dir>', 'folder written by `kiln compile MODEL.ts --standalone`')
  .option('--port <n>', 'port to listen on; 0 picks a free one (default 8080)')
  .option('--host <host>', 'address to listen on (default 127.0.0.1)')
  .option('--no-isolation', 'leave out the COOP/COEP headers: no SharedArrayBuffer, the page runs wasm on one thread')
  .action(lazy(async () => (await import('./serve.ts')).serveCommand));

/**
 * Commander takes the token after an option that needs a value as that value, even when it is
 * the next flag: `--epochs --lr 0.1` ran with epochs '--lr' and failed on 0.1 as "too many
 * arguments". A flag where a value belongs is said as such.
 */
function checkFlagValues(argv: readonly string[]): void {
  const cmd = program.commands.find((c) => c.name() === argv[0]);
  if (!cmd) return;
  const options = [...cmd.options, ...program.options];
  const named = (token: string) => options.find((o) => o.long === token || o.short === token);
  for (let i = 1; i + 1 < argv.length && argv[i] !== '--'; i++) {
    const o = named(argv[i]!);
    const next = argv[i + 1]!;
    if (o?.required && named(next)) throw new KilnError('usage', `${argv[i]} needs a value, but ${next} follows it`, undefined, `give ${argv[i]} its value first: ${o.flags}`);
  }
}

try {
  checkFlagValues(process.argv.slice(2));
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode;
  else process.exitCode = reportError(e, debug);
}
