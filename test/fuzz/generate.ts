import { rng, type Rng } from '../runtime/reference/helpers.ts';

/**
 * A random valid model as the text of a model file: a Module subclass with its layers as fields
 * and a forward over them, and a `training` export (input shape, batch size, optimizer, seed).
 * Text rather than a Module built in memory, so that a failing case is its own reproducer: the
 * file loads through kiln's frontend like any user's, with nothing of the generator needed.
 *
 * What it draws from (every layer and function kiln supports, src/frontend/nn and the op table's
 * `api` entries): Conv2d (square and rectangular kernels, stride, padding including 'same', with
 * or without bias), BatchNorm2d/1d (default and other eps and momentum), MaxPool2d/AvgPool2d as
 * layers or F functions (kernel, stride, padding), Dropout/F.dropout, the activations of the op
 * table as nn layers, F functions or Tensor methods (with their parameters), residual adds (and
 * sub, mul) over shape-preserving blocks, Sequential, flatten/view/Flatten, global average
 * pooling (mean over H, W) or nn.AdaptiveAvgPool2d/F.adaptiveAvgPool2d (global or to bins) then
 * a flatten, Linear with or without bias, features viewed as a sequence [N, t, f] through
 * LayerNorm/F.layerNorm and a per-position Linear, scaling by constants, a final logSoftmax; SGD
 * (momentum, Nesterov, weight decay), Adam and AdamW, sometimes under a cosine or one-cycle
 * schedule. Shapes stay small: the WebGPU backend runs on a software rasterizer here.
 */
export interface GeneratedModel {
  readonly seed: number;
  /** The model file's text. */
  readonly source: string;
  /** One line: the layers in order, for progress output. */
  readonly describe: string;
}

/** An activation: its field (when it is an nn layer) and how forward applies it to `x`. */
interface Activation {
  field?: string;
  apply: (x: string) => string;
  word: string;
}

class Writer {
  readonly fields: string[];
  readonly forward: string[];
  readonly words: string[];
  private readonly counts: Map<string, number>;

  constructor(
    readonly r: Rng,
    same?: Writer,
  ) {
    this.fields = same?.fields ?? [];
    this.forward = same?.forward ?? [];
    this.words = same?.words ?? [];
    this.counts = same?.counts ?? new Map();
  }

  /**
   * The same model file, drawing from another stream: a stage added to the generator later draws
   * from its own, so every case that does not take it stays the model it was.
   */
  drawingFrom(r: Rng): Writer {
    return new Writer(r, this);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.r.int(0, xs.length - 1)]!;
  }

  chance(p: number): boolean {
    return this.r.next() < p;
  }

  /** A fresh field name: conv1, conv2, bn1, ... */
  name(prefix: string): string {
    const n = (this.counts.get(prefix) ?? 0) + 1;
    this.counts.set(prefix, n);
    return `${prefix}${n}`;
  }

  field(prefix: string, init: string): string {
    const name = this.name(prefix);
    this.fields.push(`  ${name} = ${init};`);
    return name;
  }

  line(code: string): void {
    this.forward.push(`    ${code}`);
  }
}

const num = (v: number) => String(v);


/** An activation of the op table, as an nn layer, an F function or a Tensor method (`layer`: as a layer constructor). */
function activation(w: Writer, layer = false): Activation & { init?: string } {
  const kind = w.pick(['relu', 'relu', 'gelu', 'tanh', 'sigmoid', 'silu', 'leaky_relu', 'elu', 'softplus', 'mish', 'clamp'] as const);
  const p = (xs: readonly number[]) => w.pick(xs);
  // Each form it has: the nn layer's constructor, the F call and the Tensor method (X: the operand).
  const spec: Record<typeof kind, { layer?: string; fn?: string; method?: string }> = {
    relu: { layer: 'nn.ReLU()', fn: 'F.relu(X)', method: 'X.relu()' },
    gelu: w.chance(0.5) ? { layer: "nn.GELU('tanh')", fn: "F.gelu(X, 'tanh')" } : { layer: 'nn.GELU()', fn: 'F.gelu(X)' },
    tanh: { layer: 'nn.Tanh()', fn: 'F.tanh(X)', method: 'X.tanh()' },
    sigmoid: { layer: 'nn.Sigmoid()', fn: 'F.sigmoid(X)', method: 'X.sigmoid()' },
    silu: { layer: 'nn.SiLU()', fn: 'F.silu(X)' },
    leaky_relu: ((s) => ({ layer: `nn.LeakyReLU(${s})`, fn: `F.leakyRelu(X, ${s})` }))(p([0.01, 0.1, 0.2])),
    elu: ((a) => ({ layer: `nn.ELU(${a})`, fn: `F.elu(X, ${a})` }))(p([1, 0.5, 1.5])),
    softplus: ((b) => ({ layer: `nn.Softplus(${b})`, fn: `F.softplus(X, ${b})` }))(p([1, 2])),
    mish: { layer: 'nn.Mish()', fn: 'F.mish(X)' },
    clamp: ((lo, hi) => ({ method: `X.clamp(${lo}, ${hi})` }))(p([-1, -0.5]), p([0.5, 1, 2])),
  };
  const s = spec[kind];
  if (layer) return { init: `new ${s.layer ?? 'nn.ReLU()'}`, apply: (x) => x, word: s.layer ? kind : 'relu' };
  const forms = [s.layer, s.fn, s.method].filter((f): f is string => f !== undefined);
  const form = w.pick(forms);
  if (form === s.layer) {
    const f = w.field('act', `new ${form}`);
    return { field: f, apply: (x) => `this.${f}.forward(${x})`, word: kind };
  }
  return { apply: (x) => form.replaceAll('X', x), word: kind };
}

function batchNormInit(w: Writer, layer: 'BatchNorm2d' | 'BatchNorm1d', features: number): string {
  const opts = w.chance(0.25) ? `, { eps: ${w.pick([1e-3, 1e-4])}, momentum: ${w.pick([0.2, 0.05])} }` : '';
  return `new nn.${layer}(${features}${opts})`;
}

const batchNorm = (w: Writer, layer: 'BatchNorm2d' | 'BatchNorm1d', features: number): string => w.field('bn', batchNormInit(w, layer, features));

const outSize = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;

/** The spatial stage's state: channels and size. */
interface Image {
  c: number;
  h: number;
  w: number;
}

/** A convolution's constructor from `im` to `out` channels, and the image it makes. `keepSize`: stride 1, padding that keeps H and W. */
function conv(w: Writer, im: Image, out: number, keepSize: boolean): { init: string; next: Image } {
  const bias = w.chance(0.7);
  let kh: number, kw: number, stride: number, pad: [number, number] | 'same';
  if (keepSize) {
    kh = w.pick([1, 3, 3, 5]);
    kw = w.chance(0.8) ? kh : w.pick([1, 3]);
    stride = 1;
    pad = w.chance(0.5) ? 'same' : [(kh - 1) / 2, (kw - 1) / 2];
  } else {
    kh = Math.min(w.pick([1, 2, 3, 3, 5]), im.h);
    kw = w.chance(0.8) ? Math.min(kh, im.w) : Math.min(w.pick([1, 2, 3]), im.w);
    stride = w.pick([1, 1, 2]);
    pad = [w.r.int(0, Math.floor(kh / 2)), w.r.int(0, Math.floor(kw / 2))];
  }
  const k = kh === kw ? num(kh) : `[${kh}, ${kw}]`;
  const padding = pad === 'same' ? `'same'` : pad[0] === pad[1] ? num(pad[0]) : `[${pad[0]}, ${pad[1]}]`;
  const opts = [stride !== 1 && `stride: ${stride}`, padding !== '0' && `padding: ${padding}`, !bias && 'bias: false'].filter(Boolean);
  const [ph, pw] = pad === 'same' ? [(kh - 1) / 2, (kw - 1) / 2] : pad;
  w.words.push(`conv${kh}x${kw}/${stride}p${ph === pw ? ph : `${ph},${pw}`}${bias ? '' : 'nb'}→${out}`);
  return {
    init: `new nn.Conv2d(${im.c}, ${out}, ${k}${opts.length ? `, { ${opts.join(', ')} }` : ''})`,
    next: { c: out, h: outSize(im.h, kh, stride, ph), w: outSize(im.w, kw, stride, pw) },
  };
}

function convStage(w: Writer, im: Image): Image {
  for (let blocks = w.r.int(1, 3); blocks > 0; blocks--) {
    if (w.chance(0.3)) {
      // A residual block: a convolution that keeps the shape, its output combined with its input.
      let expr = `this.${w.field('conv', conv(w, im, im.c, true).init)}.forward(x)`;
      if (w.chance(0.4)) {
        expr = `this.${batchNorm(w, 'BatchNorm2d', im.c)}.forward(${expr})`;
        w.words.push('bn');
      }
      if (w.chance(0.7)) {
        const a = activation(w);
        expr = a.apply(expr);
        w.words.push(a.word);
      }
      const [op, word] = w.pick([['add', '+'], ['add', '+'], ['sub', '-'], ['mul', '*']] as const);
      w.line(w.chance(0.5) ? `x = x.${op}(${expr});` : `x = ${expr}.${op}(x);`);
      w.words.push(`(residual ${word})`);
    } else {
      const out = w.r.int(1, 6);
      const c = conv(w, im, out, false);
      im = c.next;
      const bn = w.chance(0.35) ? batchNormInit(w, 'BatchNorm2d', out) : undefined;
      if (bn) w.words.push('bn');
      if (w.chance(0.2)) {
        // The block as one nn.Sequential field.
        const layers = [c.init, ...(bn ? [bn] : [])];
        if (w.chance(0.75)) {
          const a = activation(w, true);
          layers.push(a.init!);
          w.words.push(a.word);
        }
        w.line(`x = this.${w.field('block', `new nn.Sequential(${layers.join(', ')})`)}.forward(x);`);
        w.words.push('(sequential)');
      } else {
        let expr = `this.${w.field('conv', c.init)}.forward(x)`;
        if (bn) expr = `this.${w.field('bn', bn)}.forward(${expr})`;
        if (w.chance(0.75)) {
          const a = activation(w);
          expr = a.apply(expr);
          w.words.push(a.word);
        }
        w.line(`x = ${expr};`);
      }
    }
    if (im.h >= 2 && im.w >= 2 && w.chance(0.5)) {
      const max = w.chance(0.6);
      const k = Math.min(w.pick([2, 2, 3]), im.h, im.w);
      const stride = w.pick([k, 1, 2]);
      const pad = w.r.int(0, Math.floor(k / 2));
      const [layer, fn] = max ? ['MaxPool2d', 'maxPool2d'] : ['AvgPool2d', 'avgPool2d'];
      const args = pad ? `${k}, ${stride}, ${pad}` : stride === k ? `${k}` : `${k}, ${stride}`;
      if (w.chance(0.5)) w.line(`x = this.${w.field('pool', `new nn.${layer}(${args})`)}.forward(x);`);
      else w.line(`x = F.${fn}(x, ${args});`);
      im = { c: im.c, h: outSize(im.h, k, stride, pad), w: outSize(im.w, k, stride, pad) };
      w.words.push(`${max ? 'max' : 'avg'}${k}/${stride}p${pad}`);
    }
    if (w.chance(0.2)) dropout(w);
  }
  return im;
}

function dropout(w: Writer): void {
  const p = w.pick([0.1, 0.25, 0.5]);
  if (w.chance(0.5)) w.line(`x = this.${w.field('drop', `new nn.Dropout(${p})`)}.forward(x);`);
  else w.line(`x = F.dropout(x, ${p});`);
  w.words.push(`drop${p}`);
}

/**
 * Features viewed as a sequence [N, t, f] (when they factor), then what a transformer block does
 * to one: layer norm over the last dim or two (nn or F, with or without affine weights), a Linear
 * applied per position (3-d input), an activation; flattened back.
 */
function sequenceStage(w: Writer, features: number): number {
  const ts = Array.from({ length: features }, (_, t) => t).filter((t) => t >= 2 && features % t === 0 && features / t >= 2);
  if (ts.length === 0) return features;
  const t = w.pick(ts);
  let f = features / t;
  w.line(`x = x.view(-1, ${t}, ${f});`);
  w.words.push(`seq[${t},${f}]`);
  if (w.chance(0.7)) {
    const eps = w.chance(0.3) ? ', 1e-6' : '';
    const form = w.pick(['last', 'two', 'noaffine', 'F'] as const);
    if (form === 'F') w.line(`x = F.layerNorm(x, ${f}${w.chance(0.5) ? `, null, null${eps}` : ''});`);
    else {
      const shape = form === 'two' ? `[${t}, ${f}]` : num(f);
      w.line(`x = this.${w.field('ln', `new nn.LayerNorm(${shape}${form === 'noaffine' ? `, { eps: 1e-5, elementwiseAffine: false }` : eps})`)}.forward(x);`);
    }
    w.words.push(`layerNorm(${form})`);
  }
  if (w.chance(0.8)) {
    const out = w.r.int(2, 8);
    const a = activation(w);
    w.line(`x = ${a.apply(`this.${w.field('fc', `new nn.Linear(${f}, ${out}${w.chance(0.2) ? ', false' : ''})`)}.forward(x)`)};`);
    w.words.push(`linear3d→${out} ${a.word}`);
    f = out;
  }
  w.line('x = x.flatten(1);');
  return t * f;
}

function denseStage(w: Writer, features: number, seq: Writer): number {
  if (seq.chance(0.25)) features = sequenceStage(seq, features);
  for (let layers = w.r.int(0, 2); layers > 0; layers--) {
    if (w.chance(0.25)) {
      // A residual linear layer: features in = features out.
      const f = w.field('fc', `new nn.Linear(${features}, ${features})`);
      const a = activation(w);
      w.line(`x = x.add(${a.apply(`this.${f}.forward(x)`)});`);
      w.words.push(`(residual linear→${features} ${a.word})`);
      continue;
    }
    const out = w.r.int(2, 12);
    const bias = w.chance(0.8);
    const f = w.field('fc', `new nn.Linear(${features}, ${out}${bias ? '' : ', { bias: false }'})`);
    let expr = `this.${f}.forward(x)`;
    w.words.push(`linear→${out}${bias ? '' : 'nb'}`);
    if (w.chance(0.3)) {
      expr = `this.${batchNorm(w, 'BatchNorm1d', out)}.forward(${expr})`;
      w.words.push('bn');
    }
    if (w.chance(0.8)) {
      const a = activation(w);
      expr = a.apply(expr);
      w.words.push(a.word);
    }
    w.line(`x = ${expr};`);
    if (w.chance(0.25)) dropout(w);
    features = out;
  }
  return features;
}

function optimizer(w: Writer): string {
  switch (w.pick(['sgd', 'momentum', 'adam', 'adamw'] as const)) {
    case 'sgd':
      return `{ type: 'sgd', lr: ${w.pick([0.1, 0.01])}${w.chance(0.3) ? ', weightDecay: 0.001' : ''} }`;
    case 'momentum':
      return `{ type: 'sgd', lr: 0.05, momentum: 0.9${w.chance(0.5) ? ', nesterov: true' : ''}${w.chance(0.3) ? ', weightDecay: 0.0001' : ''} }`;
    case 'adam':
      return `{ type: 'adam', lr: ${w.pick([0.001, 0.01])}${w.chance(0.3) ? ', betas: [0.8, 0.99]' : ''}${w.chance(0.3) ? ', weightDecay: 0.001' : ''} }`;
    case 'adamw':
      return `{ type: 'adamw', lr: 0.001${w.chance(0.5) ? ', weightDecay: 0.05' : ''} }`;
  }
}

/** A learning-rate schedule for `optimizer`'s text (SGD or Adam), or none. */
function schedule(w: Writer, optimizer: string): string {
  if (!w.chance(0.3)) return '';
  if (w.chance(0.5)) return `, schedule: { kind: 'cosine'${w.chance(0.5) ? `, tMax: ${w.pick([2, 3])}, etaMin: 0.001` : ''} }`;
  // OneCycleLR cycles only SGD's momentum in kiln (src/frontend/training-options.ts).
  const cycle = optimizer.includes("'sgd'") ? (w.chance(0.7) ? '' : ', cycleMomentum: false') : ', cycleMomentum: false';
  return `, schedule: { kind: 'onecycle'${w.chance(0.5) ? `, maxLr: ${w.pick([0.05, 0.005])}` : ''}${w.chance(0.3) ? ", anneal: 'linear'" : ''}${w.chance(0.3) ? ', threePhase: true' : ''}${cycle} }`;
}

/** The model file of case `seed`: the same text for the same seed, always. */
export function generateModel(seed: number): GeneratedModel {
  const w = new Writer(rng(seed));
  let input: number[];
  let features: number;
  if (w.chance(0.8)) {
    let im: Image = { c: w.r.int(1, 3), h: w.r.int(4, 10), w: w.r.int(4, 10) };
    input = [im.c, im.h, im.w];
    w.words.push(`[${input}]`);
    if (w.chance(0.85)) im = convStage(w, im);
    features = im.c * im.h * im.w;
    const flatten = im.h * im.w > 1 && w.chance(0.3) ? w.pick(['mean', 'adaptive'] as const) : w.pick(['flatten', 'view', 'layer'] as const);
    if (flatten === 'mean') {
      // Global average pooling.
      w.line('x = x.mean([2, 3]);');
      features = im.c;
      w.words.push('mean(h,w)');
    } else if (flatten === 'adaptive') {
      // Adaptive average pooling: global, or to bins that may overlap, differ in size or
      // outnumber the rows (up to one more than the input has).
      const [oh, ow] = w.chance(0.5) ? [1, 1] : [w.r.int(1, im.h + 1), w.r.int(1, im.w + 1)];
      const size = oh === ow ? num(oh) : `[${oh}, ${ow}]`;
      const pooled = w.chance(0.5) ? `this.${w.field('pool', `new nn.AdaptiveAvgPool2d(${size})`)}.forward(x)` : `F.adaptiveAvgPool2d(x, ${size})`;
      w.line(`x = ${pooled}.flatten(1);`);
      features = im.c * oh * ow;
      w.words.push(`adaptive${oh}x${ow}`);
    } else if (flatten === 'view') w.line(`x = x.view(-1, ${features});`);
    else if (flatten === 'layer') w.line(`x = this.${w.field('flatten', 'new nn.Flatten()')}.forward(x);`);
    else w.line('x = x.flatten(1);');
  } else {
    features = w.r.int(3, 24);
    input = [features];
    w.words.push(`[${features}]`);
  }
  if (w.chance(0.15)) {
    const s = w.pick([0.5, 2]);
    w.line(`x = x.mul(${s});`);
    w.words.push(`×${s}`);
  }
  features = denseStage(w, features, w.drawingFrom(rng(seed + 0x40000000)));
  const classes = w.r.int(2, 6);
  w.line(`x = this.${w.field('head', `new nn.Linear(${features}, ${classes})`)}.forward(x);`);
  w.words.push(`linear→${classes}`);
  if (w.chance(0.1)) {
    w.line('x = F.logSoftmax(x, 1);');
    w.words.push('logSoftmax');
  }
  const opt = optimizer(w);
  const source = [
    `// kiln fuzz case ${seed}: ${w.words.join(' ')}`,
    `// Re-check it: npm run fuzz -- --model THIS_FILE (or: npm run fuzz -- --seed ${seed} --cases 1)`,
    `import { Module, nn, F, type Tensor, type TrainingOptions } from 'kiln';`,
    '',
    `export default class FuzzModel${seed} extends Module {`,
    ...w.fields,
    '',
    '  forward(x: Tensor): Tensor {',
    ...w.forward,
    '    return x;',
    '  }',
    '}',
    '',
    `export const training: TrainingOptions = { input: [${input.join(', ')}], batchSize: 4, epochs: 1, optimizer: ${opt}${schedule(w, opt)}, seed: ${seed} };`,
    '',
  ].join('\n');
  return { seed, source, describe: w.words.join(' ') };
}
