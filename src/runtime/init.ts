import type { StateTensor } from '../ir/graph.ts';
import { numel } from '../ir/shape.ts';
import { TorchGenerator } from './torch-generator.ts';

/**
 * Initial values of every persistent tensor, as PyTorch makes them after `torch.manual_seed(seed)`:
 * the uniform inits draw from one PyTorch generator in state_dict order, which is the order the
 * modules' constructors run in, so the weights are PyTorch's bit for bit. Constant inits
 * (batch-norm affine, buffers, optimizer state) draw nothing, as in PyTorch.
 */
export function initialState(state: readonly StateTensor[], seed: number): Map<string, Float32Array> {
  const g = new TorchGenerator(seed);
  const out = new Map<string, Float32Array>();
  for (const t of state) {
    const data = new Float32Array(numel(t.shape));
    if (t.init.kind === 'constant') data.fill(t.init.value);
    else for (let i = 0; i < data.length; i++) data[i] = g.uniform(-t.init.bound, t.init.bound);
    out.set(t.name, data);
  }
  return out;
}

/** How many 32-bit draws initialisation takes from the generator: the data order draws after them. */
export function initDraws(state: readonly StateTensor[]): number {
  return state.reduce((n, t) => n + (t.init.kind === 'uniform' ? numel(t.shape) : 0), 0);
}
