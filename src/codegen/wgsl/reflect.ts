import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { Kernel, Program } from '../../ir/program.ts';
import { sliceKey, type WgslDispatch } from './shader.ts';

/** What a shader declares it binds, read back from its text: the runtime's bind group layouts are built from this. */
export interface ReflectedBinding {
  readonly binding: number;
  readonly type: 'storage' | 'uniform';
  /** Bytes the shader needs at least (WebGPU's minBindingSize); 0 for runtime-sized arrays. */
  readonly minBytes: number;
}

export interface Reflected {
  readonly entryPoint: string;
  readonly workgroupSize: readonly [number, number, number];
  readonly bindings: readonly ReflectedBinding[];
}

/** Parses a compute shader with wgsl_reflect: its one entry point, workgroup size and bindings (group 0 only). */
export function reflectShader(code: string, label = 'shader'): Reflected {
  const r = new WgslReflect(code);
  const entries = r.entry.compute;
  if (entries.length !== 1) throw new Error(`wgsl: ${label} has ${entries.length} compute entry points, expected 1`);
  const entry = entries[0]!;
  const bindings: ReflectedBinding[] = [];
  for (const v of entry.resources) {
    if (v.group !== 0) throw new Error(`wgsl: ${label}: ${v.name} is in group ${v.group}; kernels bind group 0 only`);
    if (r.storage.includes(v)) {
      if (v.access !== 'read_write') throw new Error(`wgsl: ${label}: ${v.name} is ${v.access}; arena slices bind read_write (one buffer cannot be both read-only and writable in a dispatch)`);
      bindings.push({ binding: v.binding, type: 'storage', minBytes: 0 });
    } else if (r.uniforms.includes(v)) {
      bindings.push({ binding: v.binding, type: 'uniform', minBytes: v.size });
    } else {
      throw new Error(`wgsl: ${label}: ${v.name} is neither a storage buffer nor a uniform`);
    }
  }
  bindings.sort((a, b) => a.binding - b.binding);
  const ws = entry.workgroupSize ?? [1, 1, 1];
  return { entryPoint: entry.name, workgroupSize: [ws[0] ?? 1, ws[1] ?? 1, ws[2] ?? 1], bindings };
}

/**
 * The contract between a kernel and its shaders: each shader binds exactly what its dispatch
 * says (arena slices as storage, the step as a uniform), each arena binding is one of the
 * kernel's slices, every output is bound by some dispatch, and the workgroup size is the
 * dispatch's. Inputs may go unbound: constants become literals, the step a uniform, and some
 * partial derivatives do not read every operand.
 */
export function checkBindings(program: Program, kernel: Kernel, dispatches: readonly WgslDispatch[]): void {
  const own = new Set([...kernel.inputs, ...kernel.outputs].map(sliceKey));
  const bound = new Set<string>();
  for (const d of dispatches) {
    const where = `${kernel.name} (${kernel.kind})`;
    const r = reflectShader(d.code, where);
    if (r.workgroupSize[0] * r.workgroupSize[1] * r.workgroupSize[2] !== d.workgroupSize) throw new Error(`wgsl: ${where}: workgroup size ${r.workgroupSize.join('x')} but the dispatch assumes ${d.workgroupSize}`);
    const declared = new Map(d.bindings.map((b) => [b.binding, b]));
    if (declared.size !== r.bindings.length) throw new Error(`wgsl: ${where}: the shader binds ${r.bindings.length} resources, the dispatch ${declared.size}`);
    for (const rb of r.bindings) {
      const b = declared.get(rb.binding);
      if (!b) throw new Error(`wgsl: ${where}: binding ${rb.binding} is not in the dispatch`);
      if ((b.kind === 'step') !== (rb.type === 'uniform')) throw new Error(`wgsl: ${where}: binding ${rb.binding} is a ${rb.type} but the dispatch binds ${b.kind === 'step' ? 'the step uniform' : 'an arena slice'}`);
      if (b.kind === 'step') {
        if (!program.inputs.step) throw new Error(`wgsl: ${where} reads the step, which the program has no input for`);
        continue;
      }
      const key = sliceKey(b.slice);
      if (!own.has(key)) throw new Error(`wgsl: ${where}: binding ${rb.binding} views [${b.slice.offset}, +${b.slice.bytes}), which is none of the kernel's slices`);
      bound.add(key);
    }
  }
  for (const [j, s] of kernel.outputs.entries()) {
    if (!bound.has(sliceKey(s)) && !(dispatches.length === 0 && kernel.inputs.some((i) => sliceKey(i) === sliceKey(s)))) {
      throw new Error(`wgsl: ${kernel.name} (${kernel.kind}): output ${j} is written by no shader`);
    }
  }
}
