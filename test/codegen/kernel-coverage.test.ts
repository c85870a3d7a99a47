import { expect, it } from 'vitest';
import { supportedKinds as wasmKinds } from '../../src/codegen/wasm-simd/module.ts';
import { supportedKinds as wgslKinds } from '../../src/codegen/wgsl/kernels/index.ts';
import { KERNEL_KINDS } from '../../src/ir/kernels.ts';
import { allOps } from '../../src/ir/op.ts';
import '../../src/ir/ops/index.ts';
import { fusedKernels } from '../../src/runtime/reference/fused.ts';
import { referenceKernels } from '../../src/runtime/reference/kernels/index.ts';

// Every op of the op table (but the leaves, which the runtimes fill themselves) and every fused
// kind of src/ir/kernels.ts has a kernel on every backend. Elementwise ops share one generator
// per backend, compiled from their templates; that every primitive a template may use has an
// implementation there is the type checker's to enforce (each backend's table is a mapped type
// over the primitives), and that the result computes the right thing is the parity suites'.

const LEAVES = new Set(['input', 'param', 'const']);
const wanted = [...allOps().map((o) => o.name).filter((n) => !LEAVES.has(n)), ...Object.keys(KERNEL_KINDS)];

const backends: [string, () => Iterable<string>][] = [
  ['reference', () => [...Object.keys(referenceKernels), ...Object.keys(fusedKernels)]],
  ['wasm', wasmKinds],
  ['webgpu (WGSL)', wgslKinds],
];

it.each(backends)('%s has a kernel for every op and fused kind', (_, kinds) => {
  const have = new Set(kinds());
  expect(wanted.length).toBeGreaterThan(60);
  expect(wanted.filter((k) => !have.has(k))).toEqual([]);
});
