import { fileURLToPath } from 'node:url';
import { Project } from 'ts-morph';
import { describe, expect, it } from 'vitest';
import { F, nn, Tensor } from '../../src/frontend/api.ts';
import { apiEntries } from '../../src/frontend/table-api.ts';
import { Tracer, withTracer } from '../../src/frontend/tracer.ts';
import { KilnError } from '../../src/ir/errors.ts';
import type { Attrs } from '../../src/ir/graph.ts';
import { kilnAttrs, loadFixture } from '../fixtures/pytorch/elementwise.ts';

// The Tensor methods, F.* functions and nn.* layers that the op table's `api` entries make: every
// PyTorch fixture case called through each of them records its op with its attributes; the
// arguments are checked as the hand-written layers check theirs; and the types the entries give
// are what a model file is type-checked against.

type Call = (...args: unknown[]) => Tensor;

/** Runs fn on fresh [2, 3] tensors in an eval trace; returns the last node's op and attrs. */
function traced(names: readonly string[], fn: (...xs: Tensor[]) => Tensor): { op: string; attrs: Attrs; inputs: number } {
  const t = new Tracer('eval');
  const xs = names.map((name) => t.wrap(t.b.op('input', [], { name, shape: [2, 3] })));
  const y = withTracer(t, () => fn(...xs));
  const n = t.b.node(y.node);
  return { op: n.op, attrs: n.attrs, inputs: n.inputs.length };
}

function thrown(fn: () => unknown): KilnError {
  try {
    fn();
  } catch (e) {
    if (e instanceof KilnError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('every fixture case through every surface its entry has', () => {
  const byOp = new Map(apiEntries().map((d) => [d.name, d]));
  it.each(loadFixture().cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const def = byOp.get(c.op);
    expect(def, `${c.op} has an api entry`).toBeDefined();
    const api = def!.api;
    const attrs = kilnAttrs(c);
    const names = Object.keys(c.inputs);
    const positional = (api.params ?? []).filter((p) => !p.ignored).map((p) => attrs[p.name] ?? null);
    const named = Object.keys(attrs).length > 0 ? [attrs] : [];
    const surfaces: [string, (...xs: Tensor[]) => Tensor][] = [];
    const recv = api.receiver ?? 0;
    if (api.method) {
      const method = (xs: Tensor[], rest: unknown[]) => (xs[recv] as unknown as Record<string, Call>)[api.method!]!(...xs.filter((_, k) => k !== recv), ...rest);
      surfaces.push([`x.${api.method}(named)`, (...xs) => method(xs, named)], [`x.${api.method}(positional)`, (...xs) => method(xs, positional)]);
    }
    if (api.functional) {
      const fn = (F as unknown as Record<string, Call>)[api.functional]!;
      surfaces.push([`F.${api.functional}(named)`, (...xs) => fn(...xs, ...named)], [`F.${api.functional}(positional)`, (...xs) => fn(...xs, ...positional)]);
    }
    if (api.module) {
      const Layer = (nn as unknown as Record<string, new (...a: unknown[]) => { forward(x: Tensor): Tensor }>)[api.module]!;
      surfaces.push([`nn.${api.module}(named)`, (x) => new Layer(...named).forward(x!)], [`nn.${api.module}(positional)`, (x) => new Layer(...positional).forward(x!)]);
    }
    expect(surfaces.length).toBeGreaterThan(0);
    for (const [how, fn] of surfaces) expect(traced(names, fn), how).toEqual({ op: c.op, attrs, inputs: names.length });
  });
});

describe('arguments', () => {
  it('numbers are constants, on either side of a method', () => {
    expect(traced(['x'], (x) => x.add(2))).toMatchObject({ op: 'add', inputs: 2 });
    expect(traced(['x'], (x) => x.where(x.gt(0), 0.5))).toMatchObject({ op: 'where', inputs: 3 });
    expect(traced(['x'], (x) => x.clamp(null, 1))).toMatchObject({ op: 'clamp', attrs: { max: 1 } });
  });

  it('snake_case names, and inplace accepted but not recorded (kiln plans memory itself)', () => {
    expect(traced(['x'], (x) => F.leakyRelu(x, { negative_slope: 0.2 } as never)).attrs).toEqual({ negativeSlope: 0.2 });
    expect(traced(['x'], (x) => new nn.ReLU(true).forward(x))).toEqual({ op: 'relu', attrs: {}, inputs: 1 });
    expect(traced(['x'], (x) => new nn.ELU(0.5, true).forward(x)).attrs).toEqual({ alpha: 0.5 });
  });

  it('layers are named as PyTorch names them', () => {
    expect(new nn.GELU('tanh').constructor.name).toBe('GELU');
    expect(new nn.Softplus(2, 10).attrs).toEqual({ beta: 2, threshold: 10 });
  });

  const x = () => {
    const t = new Tracer('eval');
    return t.wrap(t.b.op('input', [], { name: 'x', shape: [2, 3] }));
  };
  it.each([
    ['a required argument', () => (x().pow as Call)(), 'Tensor.pow: exponent is required'],
    ['a string outside oneOf', () => F.gelu(x(), { approximate: 'fast' as never }), "F.gelu: approximate must be one of 'none', 'tanh', got \"fast\""],
    ['a string for a number', () => new nn.LeakyReLU('0.1' as never), 'LeakyReLU: negativeSlope must be a finite number, got "0.1"'],
    ['a non-finite number', () => x().pow(Infinity), 'Tensor.pow: exponent must be a finite number, got Infinity'],
    ['clamp with no bound', () => x().clamp(), 'Tensor.clamp: at least one of min and max must be given'],
    ['softplus beta 0', () => new nn.Softplus(0), 'Softplus: beta must not be 0'],
    ['a misspelt option', () => new nn.LeakyReLU({ negativeSlop: 0.1 } as never), "LeakyReLU: unknown option 'negativeSlop'; did you mean 'negativeSlope'?"],
    ['too many arguments', () => (F.elu as Call)(x(), 1, false, 3), 'F.elu: takes at most 2 optional arguments (alpha, inplace), got 3'],
    ['an operand that is not a tensor', () => x().minimum('1' as never), 'Tensor.minimum: operand 2 must be a tensor or a number, got string'],
    ['no tensor at all', () => (F.tanh as Call)(3), 'F.tanh: needs a tensor operand'],
    ['a missing operand', () => (x().maximum as Call)(), 'Tensor.maximum: takes 2 tensor operands, got 1'],
  ])('%s', (_, fn, message) => {
    const e = thrown(fn);
    expect(e.message).toContain(message);
    expect(e.hint).toBeTruthy();
  });
});

describe('types', () => {
  // A model file checked as `tsc` and an editor check it: 'kiln' resolves to src/frontend/api.ts.
  const diagnostics = (body: string): string[] => {
    const project = new Project({ tsConfigFilePath: fileURLToPath(new URL('../../tsconfig.json', import.meta.url)), skipAddingFilesFromTsConfig: true });
    const file = project.createSourceFile('samples/__table_api_check.ts', `import { F, nn, type Tensor } from 'kiln';\nexport function f(x: Tensor, y: Tensor): Tensor {\n${body}\n}\n`);
    return file.getPreEmitDiagnostics().filter((d) => d.getSourceFile() === file).map((d) => `${d.getLineNumber()}: ${String(typeof d.getMessageText() === 'string' ? d.getMessageText() : (d.getMessageText() as { getMessageText(): string }).getMessageText())}`);
  };

  it('the entries type methods, functions and layers, and reject what PyTorch would', () => {
    const good = [
      'let h = new nn.GELU({ approximate: "tanh" }).forward(x);',
      'h = new nn.LeakyReLU(0.2).forward(h).add(F.silu(y)).tanh().clamp(-1, 1).pow(2);',
      'h = F.softplus(h, 2, 10).minimum(y).where(h.gt(y), 0).exp().log().abs().sqrt();',
      'const layers: [nn.Conv2d, nn.Linear, nn.OpLayer] = [new nn.Conv2d(1, 2, 3), new nn.Linear(2, 3), new nn.GELU()];',
      'h = layers[2].forward(h);',
      'return F.elu(h, { alpha: 0.5 }).maximum(3).sub(new nn.Sigmoid().forward(h)).mul(F.gelu(h)).div(new nn.ReLU(true).forward(h)).neg();',
    ];
    expect(diagnostics(good.join('\n'))).toEqual([]);
    const bad = ['x.gelu();', 'F.gelu(x, { approximate: "fast" });', 'new nn.LeakyReLU("0.1");', 'x.where(y, "a");', 'F.tanh(x, 1);', 'return x;'];
    expect(diagnostics(bad.join('\n')).map((d) => d.split(':')[0])).toEqual(['3', '4', '5', '6', '7']);
  });
});
