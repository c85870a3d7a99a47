import { numel } from '../../../../ir/shape.ts';
import type { Slice } from '../../../../ir/program.ts';
import { partsDispatch } from '../../grid.ts';
import { f32, Shader, u32, type KernelCtx, type WgslDispatch } from '../../shader.ts';

/**
 * `valid` and `row` for the id at position `i`: valid when the id is an integer in [0, V)
 * (src/ir/ops/embedding.ts; NaN fails every comparison), row 0 otherwise, so a read of the row
 * stays inside the weight whatever the id.
 */
function idRow(sh: Shader, ids: Slice, i: string, V: number): string[] {
  return [`let id = ${sh.read(ids, i)};`, `let valid = id >= 0.0 && id < ${f32(V)} && id == floor(id);`, 'let row = select(0u, u32(id), valid);'];
}

/** out[i, d] = weight[ids[i], d], 0 for an invalid id: one thread per element. */
export function embedding(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [ids, w] = ctx.kernel.inputs as [Slice, Slice];
  const out = ctx.kernel.outputs[0]!;
  const [V, D] = w.shape as [number, number];
  const store = [...idRow(sh, ids, `o / ${u32(D)}`, V), `${sh.write(out, 'o')} = select(0.0, ${sh.read(w, `row * ${u32(D)} + o % ${u32(D)}`)}, valid);`];
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(out.shape), length: 0, store: store.join('\n') }])];
}

/**
 * dweight[v, d] = Σ_i g[i, d] where ids[i] = v: each output element sums over every position (a
 * gather, not an atomic scatter, which WGSL has only for integers and whose order would vary), in
 * the fixed order of its mode (grid.ts), so every run gives the same bits. It reads all n ids per
 * element, num·dim·n reads in all: fine for the models kiln trains here, the first thing to
 * replace (sort the ids, then segment sums) for a large vocabulary on a GPU.
 */
export function embeddingGrad(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [g, ids] = ctx.kernel.inputs as [Slice, Slice];
  const out = ctx.kernel.outputs[0]!;
  const [V, D] = out.shape as [number, number];
  const term = [...idRow(sh, ids, 'r', V), `return select(0.0, ${sh.read(g, `r * ${u32(D)} + o % ${u32(D)}`)}, valid && row == o / ${u32(D)});`];
  return [partsDispatch(sh, ctx.kernel.name, [{ count: V * D, length: numel(ids.shape), term: term.join('\n'), store: `${sh.write(out, 'o')} = acc;` }])];
}
