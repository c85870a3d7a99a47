import { u32, type Shader, type WgslDispatch } from './shader.ts';

/**
 * Nearly every kernel is "for each output o, sum `length` terms, then store": a map when the
 * length is 0, a dot product, a convolution, a reduction. A dispatch computes one or more such
 * parts side by side (a kernel's outputs of different shapes, e.g. dw and db), each over its own
 * range of workgroups; parts of one dispatch must not read each other's outputs.
 */
export type AnyPart = Part | GroupPart;

/**
 * A part written by hand: `groups` workgroups run `code` with `wg` (this workgroup's index within
 * the part, uniform) and `lid` (the thread's index in it), and may use the workgroup array `red`
 * of WG floats with barriers: the code runs in uniform control flow.
 */
export interface GroupPart {
  readonly groups: number;
  readonly code: string;
}

export interface Part {
  /** Outputs computed, indexed o = 0..count-1. */
  readonly count: number;
  /** Terms summed per output; 0 for a map (store gets acc = 0). */
  readonly length: number;
  /** Body of `fn(o: u32, r: u32) -> f32`, term r of output o; ends in `return`. */
  readonly term?: string;
  /** Body of `fn(o: u32, acc: f32)` that writes output o (or a whole row of outputs). */
  readonly store: string;
  /** Force a mode instead of the shape rule. */
  readonly mode?: 'thread' | 'workgroup';
}

/** Threads per workgroup. 256 fills an NVIDIA SM's warp scheduler four times over and is the largest size every adapter allows. */
export const WG = 256;

/**
 * The shape rule: one thread per output while there are enough outputs to fill a GPU (8192
 * threads is ~60 per SM on an H100) or the sums are short; otherwise one workgroup per output,
 * its threads striding over the terms and combining them in a tree, which is also more exact
 * than one long f32 running sum.
 */
export function modeOf(p: Part): 'thread' | 'workgroup' {
  if (p.mode) return p.mode;
  return p.length >= 64 && p.count < 8192 ? 'workgroup' : 'thread';
}

/** Most workgroups along one grid axis (WebGPU's maxComputeWorkgroupsPerDimension default). */
const MAX_DIM = 65535;

/** Emits the entry point computing `parts` into `sh`; returns the dispatch. */
export function partsDispatch(sh: Shader, label: string, parts: readonly AnyPart[]): WgslDispatch {
  const body: string[] = [];
  let first = 0;
  let anyWorkgroup = false;
  parts.forEach((p, k) => {
    if ('groups' in p) {
      if (p.groups === 0) return;
      anyWorkgroup = true;
      const end = first + p.groups;
      body.push(`if (g < ${u32(end)}) {`, `  let wg = g - ${u32(first)};`, indent(p.code, '  '), '  return;', '}');
      first = end;
      return;
    }
    const mode = modeOf(p);
    const groups = mode === 'thread' ? Math.ceil(p.count / WG) : p.count;
    if (groups === 0) return;
    const end = first + groups;
    if (p.length > 0) sh.helper(`term${k}`, `fn term${k}(o: u32, r: u32) -> f32 {\n${indent(p.term ?? '')}\n}\n`);
    sh.helper(`store${k}`, `fn store${k}(o: u32, acc: f32) {\n${indent(p.store)}\n}\n`);
    const lines: string[] = [];
    if (mode === 'thread') {
      lines.push(`let o = (g - ${u32(first)}) * ${u32(WG)} + lid;`, `if (o < ${u32(p.count)}) {`);
      if (p.length > 0) lines.push(`  var acc: f32 = 0.0;`, `  for (var r = 0u; r < ${u32(p.length)}; r++) { acc += term${k}(o, r); }`, `  store${k}(o, acc);`);
      else lines.push(`  store${k}(o, 0.0);`);
      lines.push('}');
    } else {
      anyWorkgroup = true;
      lines.push(
        `let o = g - ${u32(first)};`,
        `var acc: f32 = 0.0;`,
        `for (var r = lid; r < ${u32(p.length)}; r += ${u32(WG)}) { acc += term${k}(o, r); }`,
        `red[lid] = acc;`,
        `workgroupBarrier();`,
        `for (var s = ${u32(WG / 2)}; s > 0u; s >>= 1u) {`,
        `  if (lid < s) { red[lid] += red[lid + s]; }`,
        `  workgroupBarrier();`,
        `}`,
        `if (lid == 0u) { store${k}(o, red[0]); }`,
      );
    }
    body.push(`if (g < ${u32(end)}) {`, ...lines.map((l) => `  ${l}`), '  return;', '}');
    first = end;
  });
  if (anyWorkgroup) sh.helper('red', `var<workgroup> red: array<f32, ${WG}>;\n`);
  const gx = Math.max(1, Math.min(first, MAX_DIM));
  const gy = Math.max(1, Math.ceil(first / gx));
  if (gy > MAX_DIM) throw new Error(`${label}: ${first} workgroups exceed the grid`);
  // workgroup_id is uniform, so branching on g keeps the barriers in uniform control flow.
  const main = [
    `@compute @workgroup_size(${WG})`,
    `fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {`,
    `  let g = wid.y * ${u32(gx)} + wid.x;`,
    ...body.map((l) => `  ${l}`),
    '}',
  ].join('\n');
  return { label, ...sh.finish(main), workgroupSize: WG, workgroups: [gx, gy, 1] };
}

export function indent(s: string, by = '  '): string {
  return s
    .split('\n')
    .map((l) => (l.length ? by + l : l))
    .join('\n');
}

/**
 * Statements for a GroupPart: every thread contributes `value`, the sum over the workgroup
 * (a tree: log2(WG) barrier rounds) goes to `store` on thread 0; ends with a barrier so `red`
 * can be used again. Must run in uniform control flow.
 */
export function workgroupSum(value: string, store: (sum: string) => string): string {
  return [
    `red[lid] = ${value};`,
    'workgroupBarrier();',
    `for (var s = ${u32(WG / 2)}; s > 0u; s >>= 1u) {`,
    '  if (lid < s) { red[lid] += red[lid + s]; }',
    '  workgroupBarrier();',
    '}',
    `if (lid == 0u) { ${store('red[0]')} }`,
    'workgroupBarrier();',
  ].join('\n');
}
