import type { StateTensor } from '../ir/graph.ts';
import { numel } from '../ir/shape.ts';
import { TorchGenerator } from './torch-generator.ts';
import { normalFill } from './torch-normal.ts';

/**
 * Initial values of every persistent tensor, as PyTorch makes them after `torch.manual_seed(seed)`:
 * the uniform and normal inits draw from one PyTorch generator in state_dict order, which is the
 * order the modules' constructors run in, so the weights are PyTorch's bit for bit. Constant inits
 * (batch-norm and layer-norm affine, buffers, optimizer state) draw nothing, as in PyTorch.
 */
export function initialState(state: readonly StateTensor[], seed: number): Map<string, Float32Array> {
  const g = new TorchGenerator(seed);
  const out = new Map<string, Float32Array>();
  for (const t of state) {
    const n = numel(t.shape);
    const init = t.init;
    let data: Float32Array;
    if (init.kind === 'normal') data = normalFill(g, n, init.mean, init.std);
    else {
      data = new Float32Array(n);
      if (init.kind === 'constant') data.fill(init.value);
      else for (let i = 0; i < n; i++) data[i] = g.uniform(-init.bound, init.bound);
    }
    out.set(t.name, data);
  }
  return out;
}

/**
 * How many 32-bit draws initialisation takes from the generator: the data order draws after them.
 * A uniform takes one per element; a normal of 16 elements or more one per element and 16 more
 * for a ragged tail, a smaller one four per pair begun (torch-normal.ts), the pair's second half
 * possibly serving the next small normal tensor.
 */
export function initDraws(state: readonly StateTensor[]): number {
  let draws = 0;
  let kept = false;
  for (const t of state) {
    const n = numel(t.shape);
    if (t.init.kind === 'uniform') draws += n;
    else if (t.init.kind === 'normal' && n >= 16) draws += n + (n % 16 ? 16 : 0);
    else if (t.init.kind === 'normal') {
      for (let i = 0; i < n; i++) {
        if (!kept) draws += 4;
        kept = !kept;
      }
    }
  }
  return draws;
}
