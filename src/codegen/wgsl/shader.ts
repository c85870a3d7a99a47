import { isStepSlice, type Kernel, type Program, type Slice } from '../../ir/program.ts';
import { numel, strides, type Shape } from '../../ir/shape.ts';

/**
 * What a WGSL shader binds. Every arena slice is a read_write storage binding of the one arena
 * buffer at the slice's offset: Dawn rejects a buffer bound both read-only and read-write in one
 * dispatch ("includes writable usage and another usage in the same synchronization scope"), so
 * inputs are read_write too, and a slice that is both read and written (an in-place update) binds
 * once. The step counter is a uniform in its own buffer, at a dynamic offset (one slot per queued
 * step), so it never counts against the storage-buffer limit.
 */
export type WgslBinding = { readonly binding: number; readonly kind: 'arena'; readonly slice: Slice } | { readonly binding: number; readonly kind: 'step' };

/** One compute dispatch: a shader, what it binds, and its grid. */
export interface WgslDispatch {
  readonly label: string;
  readonly code: string;
  readonly bindings: readonly WgslBinding[];
  readonly workgroupSize: number;
  readonly workgroups: readonly [number, number, number];
}

/** Bytes between step-uniform slots: WebGPU's minUniformBufferOffsetAlignment is at most 256. */
export const STEP_SLOT_BYTES = 256;

/** What every kernel generator sees. */
export interface KernelCtx {
  readonly program: Program;
  readonly kernel: Kernel;
  /** The run's seed: keys dropout masks. */
  readonly seed: number;
}

export const sliceKey = (s: Slice) => `${s.offset}:${s.bytes}`;

/** A WGSL float literal holding exactly the f32 nearest to v (finite: see Shader.float). */
export function f32(v: number): string {
  const x = Math.fround(v);
  if (!Number.isFinite(x)) throw new Error(`wgsl: ${x} has no f32 literal (Shader.float writes it)`);
  // The shortest decimal that round-trips the double x; x is an f32, so it parses back exactly.
  let s = Object.is(x, -0) ? '-0' : String(x);
  if (!/[.e]/.test(s)) s += '.0';
  return s.startsWith('-') ? `(${s})` : s;
}

export const u32 = (n: number) => {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`wgsl: ${n} is not a u32`);
  return `${n}u`;
};

export const i32 = (n: number) => {
  if (!Number.isInteger(n) || Math.abs(n) > 0x7fffffff) throw new Error(`wgsl: ${n} is not an i32`);
  return n < 0 ? `(${n}i)` : `${n}i`;
};

/**
 * Coordinate d of row-major flat index `i` (a WGSL u32 expression) of `shape`, simplified for
 * the constant shape: no division for the last axis, no modulo for the first.
 */
export function coord(i: string, shape: Shape, d: number): string {
  let inner = 1;
  for (let k = d + 1; k < shape.length; k++) inner *= shape[k]!;
  let e = inner === 1 ? i : `(${i} / ${u32(inner)})`;
  const outerIsOne = shape.slice(0, d).every((n) => n === 1);
  if (!outerIsOne) e = `(${e} % ${u32(shape[d]!)})`;
  return e;
}

/**
 * Flat index into a tensor of shape `from` for element `i` of `to`, NumPy broadcasting (shapes
 * aligned on the right; size-1 and missing axes repeat).
 */
export function broadcastIndex(i: string, from: Shape, to: Shape): string {
  if (from.length === to.length && from.every((n, d) => n === to[d])) return i;
  if (numel(from) === 1) return '0u';
  const st = strides(from);
  const lead = to.length - from.length;
  const terms: string[] = [];
  for (let d = 0; d < to.length; d++) {
    if (d < lead || from[d - lead] === 1) continue;
    const s = st[d - lead]!;
    const c = coord(i, to, d);
    terms.push(s === 1 ? c : `${c} * ${u32(s)}`);
  }
  return terms.length ? terms.join(' + ') : '0u';
}

/**
 * One shader under construction: declares a binding for each arena slice on first use, the step
 * uniform when read, and helper functions once each.
 */
export class Shader {
  private readonly slots = new Map<string, { name: string; binding: WgslBinding }>();
  private readonly helpers = new Map<string, string>();
  private readonly decls = new Map<string, string>();
  private stepBinding?: WgslBinding;
  private readonly constants: Map<string, number>;

  constructor(readonly ctx: KernelCtx) {
    this.constants = new Map(ctx.program.constants.map((c) => [sliceKey(c.slice), c.value]));
  }

  private nextBinding(): number {
    return this.slots.size + (this.stepBinding ? 1 : 0);
  }

  /** The WGSL array viewing `slice` (declared on first use). */
  buf(slice: Slice): string {
    const key = sliceKey(slice);
    let s = this.slots.get(key);
    if (!s) {
      const binding = this.nextBinding();
      const name = `b${binding}`;
      s = { name, binding: { binding, kind: 'arena', slice } };
      this.slots.set(key, s);
      this.decls.set(name, `@group(0) @binding(${binding}) var<storage, read_write> ${name}: array<f32>;`);
    }
    return s.name;
  }

  /** The step counter as f32 (read from the step uniform). */
  step(): string {
    if (!this.stepBinding) {
      const binding = this.nextBinding();
      this.stepBinding = { binding, kind: 'step' };
      this.decls.set('stepv', `@group(0) @binding(${binding}) var<uniform> stepv: vec4<f32>;`);
    }
    return 'stepv.x';
  }

  /**
   * The value of a one-element slice: a literal for a Program constant (no binding), the step
   * uniform for the step input, else element 0 of its binding.
   */
  scalar(slice: Slice): string {
    const key = sliceKey(slice);
    const c = this.constants.get(key);
    if (c !== undefined) return this.float(c);
    if (isStepSlice(this.ctx.program, slice)) return this.step();
    return `${this.buf(slice)}[0]`;
  }

  /** Element `idx` (a WGSL u32 expression) of `slice`; scalars ignore the index. */
  read(slice: Slice, idx: string): string {
    return numel(slice.shape) === 1 ? this.scalar(slice) : `${this.buf(slice)}[${idx}]`;
  }

  /** Element `idx` of `slice` for writing. */
  write(slice: Slice, idx: string): string {
    return `${this.buf(slice)}[${numel(slice.shape) === 1 ? '0' : idx}]`;
  }

  /**
   * The f32 nearest v as an expression. An infinity or NaN comes from a function call: WGSL makes
   * a constant expression that evaluates to one a shader-creation error (Tint rejects
   * `bitcast<f32>(0x7f800000u)`), and a user function's result is never a constant expression.
   */
  float(v: number): string {
    const x = Math.fround(v);
    if (Number.isFinite(x)) return f32(x);
    this.helper('f32_bits', 'fn f32_bits(b: u32) -> f32 { return bitcast<f32>(b); }');
    return `f32_bits(${Number.isNaN(x) ? '0x7fc00000u' : x > 0 ? '0x7f800000u' : '0xff800000u'})`;
  }

  /** Adds a helper function (or module-scope declaration) once. */
  helper(key: string, code: string): void {
    if (!this.helpers.has(key)) this.helpers.set(key, code);
  }

  /**
   * The whole shader (bindings, helpers, then the entry point) and what it binds: only the
   * bindings the code uses, since an operand a formula does not need may have been declared.
   */
  finish(main: string): { code: string; bindings: WgslBinding[] } {
    const body = [...this.helpers.values(), main].join('\n');
    const used = (name: string) => new RegExp(`\\b${name}\\b`).test(body);
    const bindings: WgslBinding[] = [];
    const decls: string[] = [];
    for (const s of this.slots.values()) {
      if (!used(s.name)) continue;
      bindings.push(s.binding);
      decls.push(this.decls.get(s.name)!);
    }
    if (this.stepBinding && used('stepv')) {
      bindings.push(this.stepBinding);
      decls.push(this.decls.get('stepv')!);
    }
    const k = this.ctx.kernel;
    return { code: [`// ${k.name}: ${k.kind} (${k.ops.join(', ') || 'copy'})`, ...decls, '', body, ''].join('\n'), bindings };
  }

}

/** Row-major flat index (u32) of coordinates `c` (WGSL u32 expressions) in `shape`. */
export function at(shape: Shape, c: readonly string[]): string {
  let e = c[0]!;
  for (let d = 1; d < shape.length; d++) e = `(${e}) * ${u32(shape[d]!)} + ${c[d]!}`;
  return e;
}

/** `let` statements naming the coordinates of flat index `i` in `shape`. */
export function unflatten(i: string, shape: Shape, names: readonly string[]): string {
  return names.map((n, d) => `let ${n} = ${coord(i, shape, d)};`).join('\n');
}
