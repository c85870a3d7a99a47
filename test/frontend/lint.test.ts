import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../../src/ir/errors.ts';
import { closest } from '../../src/frontend/closest.ts';
import { KNOWN, lintModelFile, lintModelSource, type LintOptions } from '../../src/frontend/lint.ts';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/models/${name}`, import.meta.url));
const STUB_API = fileURLToPath(new URL('../fixtures/kiln-api-stub.ts', import.meta.url));

/** The error lintModelFile throws, or undefined if the file passes. */
async function lintError(file: string, options?: LintOptions): Promise<KilnError | undefined> {
  try {
    await lintModelFile(file, options);
    return undefined;
  } catch (e) {
    if (!(e instanceof KilnError)) throw e;
    return e;
  }
}

// First in the file, so it sees a cold ts-morph: this is what `kiln ir` pays. Logged, not asserted:
// the machine is shared and timing asserts would flake.
it('logs the time to lint the sample model (cold, then warm)', async () => {
  let t = performance.now();
  await lintModelFile(fixture('good.ts'));
  const cold = performance.now() - t;
  t = performance.now();
  await lintModelFile(fixture('good.ts'));
  const warm = performance.now() - t;
  console.log(`lintModelFile(good.ts): cold ${cold.toFixed(0)} ms, warm ${warm.toFixed(0)} ms`);
});

interface Case {
  file: string;
  code: string;
  line: number;
  col: number;
  message: string[];
  hint: string[];
}

const CASES: Case[] = [
  { file: 'no-default.ts', code: 'no-default-module', line: 1, col: 1, message: ['no default export'], hint: ['export default class', 'extends Module'] },
  { file: 'not-a-module.ts', code: 'no-default-module', line: 5, col: 1, message: ['`Net`', 'does not extend Module'], hint: ['extends Module'] },
  { file: 'no-forward.ts', code: 'no-forward', line: 7, col: 22, message: ['`Net`', 'no forward method'], hint: ['forward(x: Tensor): Tensor'] },
  { file: 'if-on-tensor.ts', code: 'tensor-control-flow', line: 8, col: 9, message: ['`if` condition', '(`y`)', 'static graph'], hint: ['plain number', 'mask'] },
  { file: 'while-on-tensor.ts', code: 'tensor-control-flow', line: 8, col: 12, message: ['comparison `>`', '(`h.sum()`)', 'static graph'], hint: ['plain number'] },
  { file: 'ternary-on-tensor.ts', code: 'tensor-control-flow', line: 8, col: 12, message: ['`?:` condition', '(`h`)', 'static graph'], hint: ['plain number'] },
  { file: 'item-read.ts', code: 'tensor-control-flow', line: 7, col: 19, message: ['`forward` reads tensor values', '(`x.sum().item()`)', 'not known at compile time'], hint: ['tensor operations'] },
  { file: 'unknown-layer.ts', code: 'unknown-layer', line: 4, col: 17, message: ['`nn.Conv2D`', 'not a layer'], hint: ['did you mean nn.Conv2d?'] },
  { file: 'unknown-function.ts', code: 'unknown-layer', line: 7, col: 14, message: ['`F.logSoftMax`', 'not a function'], hint: ['did you mean F.logSoftmax?'] },
  { file: 'syntax-error.ts', code: 'syntax', line: 7, col: 29, message: ['syntax error', "')' expected"], hint: ['syntax'] },
];

// Every check must hold with the real API, with a stand-in API (the typed path, independent of
// api.ts as it evolves) and with no types at all (the syntactic fallback).
const MODES: [string, LintOptions][] = [
  ['real api.ts', {}],
  ['stub api', { api: STUB_API }],
  ['no types', { api: null }],
];

describe.each(MODES)('lint fixtures (%s)', (_mode, options) => {
  it('passes the sample model', async () => {
    expect(await lintError(fixture('good.ts'), options)).toBeUndefined();
  });

  it.each(CASES)('$file → $code at $line:$col', async (c) => {
    const err = await lintError(fixture(c.file), options);
    expect(err, 'expected a KilnError').toBeDefined();
    expect(err!.code).toBe(c.code);
    expect(err!.loc).toEqual({ file: fixture(c.file), line: c.line, col: c.col });
    for (const w of c.message) expect(err!.message).toContain(w);
    for (const w of c.hint) expect(err!.hint).toContain(w);
  });
});

const HEAD = "import { Module, nn, F, type Tensor } from 'kiln';\n";
/** Lints a model in a string: the problems as `code@line:col`. */
async function problems(src: string, options: LintOptions = {}): Promise<string[]> {
  const found = await lintModelSource('/virtual/model.ts', src, options);
  return found.map((e) => `${e.code}@${e.loc!.line}:${e.loc!.col}`);
}
const model = (forward: string, extra = ''): string =>
  `${HEAD}export default class Net extends Module {\n  fc = new nn.Linear(4, 4);\n${extra}  forward(x: Tensor): Tensor {\n${forward}\n  }\n}\n`;

describe.each(MODES)('lint details (%s)', (_mode, options) => {
  it('accepts the other default-export forms and in-file base classes', async () => {
    expect(await problems(`${HEAD}class Net extends Module { forward(x: Tensor): Tensor { return x; } }\nexport default Net;\n`, options)).toEqual([]);
    expect(await problems(`${HEAD}class Net extends Module { forward(x: Tensor): Tensor { return x; } }\nexport { Net as default };\n`, options)).toEqual([]);
    expect(await problems(`${HEAD}class A extends Module { forward(x: Tensor): Tensor { return x; } }\nclass B extends A {}\nexport default class C extends B {}\n`, options)).toEqual([]);
    expect(await problems(`import * as k from 'kiln';\nexport default class N extends k.Module { forward(x: k.Tensor): k.Tensor { return x; } }\n`, options)).toEqual([]);
  });

  it('follows base classes into local files, and trusts bases it cannot see', async () => {
    const beside = fixture('derived.ts'); // not on disk: only its directory matters, for './good.ts'
    const derived = await lintModelSource(beside, "import SimpleCNN from './good.ts';\nexport default class Bigger extends SimpleCNN {}\n", options);
    expect(derived).toEqual([]);
    // A file that re-exports its model class from another.
    expect(await lintModelSource(beside, "export { default } from './good.ts';\n", options)).toEqual([]);
    expect((await lintModelSource(beside, "export { default } from './not-a-module.ts';\n", options)).map((e) => e.code)).toEqual(['no-default-module']);
    expect(await problems("import { Thing } from 'some-package';\nexport default class N extends Thing {}\n", options)).toEqual([]);
  });

  it('rejects a default export that is not a Module class, at the export', async () => {
    expect(await problems(`${HEAD}export default function net() {}\n`, options)).toEqual(['no-default-module@2:1']);
    // A class of the same name is not kiln's Module.
    expect(await problems(`import { nn } from 'kiln';\nclass Module {}\nexport default class Net extends Module { forward() {} }\n`, options)).toEqual(['no-default-module@3:1']);
  });

  it('flags &&, ||, !, switch, do/for conditions on tensors, through aliases and assignments', async () => {
    const src = model(
      [
        '    let y;', // 5
        '    y = F.relu(x);', // 6
        '    const z = y && x;', // 7
        '    if (!z) return x;', // 8
        '    switch (this.fc.forward(x)) { default: }', // 9
        '    do { } while (x);', // 10
        '    for (; y; ) break;', // 11
        '    return z;',
      ].join('\n'),
    );
    expect(await problems(src, options)).toEqual([
      'tensor-control-flow@7:15',
      'tensor-control-flow@7:20',
      'tensor-control-flow@8:10',
      'tensor-control-flow@9:13',
      'tensor-control-flow@10:19',
      'tensor-control-flow@11:12',
    ]);
  });

  it('flags reading values: .data, .dataSync(), indexing', async () => {
    const src = model(['    const a = x.data;', '    const b = this.fc.forward(x).dataSync();', '    const c = x[0];', '    return x;'].join('\n'));
    expect(await problems(src, options)).toEqual(['tensor-control-flow@5:15', 'tensor-control-flow@6:15', 'tensor-control-flow@7:15']);
  });

  it('leaves presence checks, shapes, settings and plain numbers alone', async () => {
    const src = model(
      [
        '    if (this.training && this.bias) x = x.add(this.bias);',
        '    if (x.shape[1] > 4 || x.size(0) > 2) x = x.view(-1, 4);',
        '    const n = 3;',
        '    for (let i = 0; i < n; i++) x = x.relu();',
        '    return this.flag ? x : x.relu();',
      ].join('\n'),
      '  bias?: Tensor;\n  flag = true;\n',
    );
    expect(await problems(src, options)).toEqual([]);
  });

  it('lists every problem, the model-class one first, then in source order', async () => {
    const src = `${HEAD}export default class Net extends Module {\n  a = new nn.Lineer(1, 2);\n  b = new nn.Frobnicate();\n  run(x: Tensor) { return F.relu(x).item(); }\n}\n`;
    const found = await lintModelSource('m.ts', src, options);
    expect(found.map((e) => `${e.code}@${e.loc!.line}:${e.loc!.col}`)).toEqual(['no-forward@2:22', 'unknown-layer@3:14', 'unknown-layer@4:14', 'tensor-control-flow@5:27']);
    expect(found[1]!.hint).toBe('did you mean nn.Linear?');
    expect(found[2]!.hint).toContain('kiln knows nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.BatchNorm1d');
    expect(found[3]!.message).toContain('`run` reads tensor values (`F.relu(x).item()`)');
  });
});

describe('typed and syntactic modes', () => {
  // `this.h(x)` is a tensor only by inference (h has no return annotation): the checker sees it,
  // the syntactic fallback does not. This proves the typed path is the one running.
  const src = model('    if (this.h(x)) return x;\n    return x;', '  h(x: Tensor) {\n    return x.relu();\n  }\n');
  it.each(MODES)('%s', async (mode, options) => {
    expect(await problems(src, options)).toEqual(mode === 'no types' ? [] : ['tensor-control-flow@8:9']);
  });
});

describe('known names and suggestions', () => {
  it('reads the known layers and functions from api.ts', () => {
    for (const l of ['Conv2d', 'MaxPool2d', 'AvgPool2d', 'Linear', 'Dropout', 'BatchNorm2d', 'BatchNorm1d', 'ReLU', 'Flatten', 'Sequential']) expect(KNOWN.layers).toContain(l);
    for (const f of ['relu', 'maxPool2d', 'avgPool2d', 'dropout', 'logSoftmax', 'softmax', 'crossEntropy']) expect(KNOWN.functions).toContain(f);
  });

  it('suggests the nearest name only when it is near', () => {
    expect(closest('conv2d', KNOWN.layers)).toBe('Conv2d');
    expect(closest('MaxPool', KNOWN.layers)).toBe('MaxPool2d');
    expect(closest('Transformer', KNOWN.layers)).toBeUndefined();
  });

  it('reports a missing file as a KilnError', async () => {
    expect((await lintError('/nonexistent/model.ts'))?.code).toBe('no-file');
  });
});

describe('type errors from the TypeScript checker', () => {
  it('reports a type error at its line, after kiln’s own findings, and stops there', async () => {
    const src = model('    const n: number = x;\n    if (x) return x;\n    return x.relu(n);');
    const found = await lintModelSource('/virtual/model.ts', src);
    expect(found.map((e) => `${e.code}@${e.loc!.line}:${e.loc!.col}`)).toEqual(['tensor-control-flow@6:9', 'type-error@5:11', 'type-error@7:14']);
    expect(found[1]!.message).toBe("type error: Type 'Tensor' is not assignable to type 'number'.");
    expect(found[1]!.hint).toContain('@ts-expect-error');
  });

  it('accepts the standard library, console and untyped packages, and honours @ts-expect-error', async () => {
    const src = model(
      [
        '    const k = Math.sqrt(16);',
        '    const sizes = [1, 2].map((d) => x.size(d)).filter((s) => s > k);',
        '    console.log(`shape ${x.shape.join("x")}`, sizes);',
        '    // @ts-expect-error: deliberate',
        '    const s: string = 3;',
        '    return x;',
      ].join('\n'),
    );
    expect(await problems(`import { helper } from 'some-untyped-package';\n${src}`)).toEqual([]);
  });

  it('reports errors in local files the model imports, located in that file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-lint-'));
    try {
      writeFileSync(join(dir, 'blocks.ts'), "import { type Tensor } from 'kiln';\nexport function twice(x: Tensor): number {\n  return x.add(x);\n}\n");
      const found = await lintModelSource(join(dir, 'model.ts'), `import { twice } from './blocks.ts';\n${model('    twice(x);\n    return x;')}`);
      expect(found).toHaveLength(1);
      expect(found[0]!.loc).toEqual({ file: relative(process.cwd(), join(dir, 'blocks.ts')), line: 3, col: 3 });
      expect(found[0]!.message).toBe("type error: Type 'Tensor' is not assignable to type 'number'.");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('lint cache', () => {
  it('skips an unchanged file that passed, re-checks when it or a local import changes, never stores a failure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-lint-cache-'));
    const cache = join(dir, 'cache');
    const file = join(dir, 'model.ts');
    const entries = (): number => (existsSync(join(cache, 'lint')) ? readdirSync(join(cache, 'lint')).length : 0);
    try {
      writeFileSync(join(dir, 'blocks.ts'), "import { type Tensor } from 'kiln';\nexport function block(x: Tensor): Tensor {\n  return x.relu();\n}\n");
      writeFileSync(file, `import { block } from './blocks.ts';\n${model('    return block(x);')}`);
      await lintModelFile(file, { cache });
      expect(entries()).toBe(1);
      await lintModelFile(file, { cache });
      expect(entries()).toBe(1);
      // The model is unchanged but what it imports now has an error: the entry must not hide it.
      writeFileSync(join(dir, 'blocks.ts'), "import { type Tensor } from 'kiln';\nexport function block(x: Tensor): Tensor {\n  return 1;\n}\n");
      expect((await lintError(file, { cache }))?.code).toBe('type-error');
      writeFileSync(file, `${model('    const n: number = x;\n    return x;')}`);
      expect((await lintError(file, { cache }))?.code).toBe('type-error');
      expect((await lintError(file, { cache }))?.loc?.line).toBe(5);
      expect(entries()).toBe(1);
      // A cache that cannot be written (a file where its folder should be) only costs time.
      writeFileSync(join(dir, 'not-a-folder'), '');
      writeFileSync(file, model('    return x;'));
      expect(await lintError(file, { cache: join(dir, 'not-a-folder') })).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
