import type { StateTensor } from '../ir/graph.ts';
import { numel } from '../ir/shape.ts';
import { Stream, streamKey, uniform } from './rng.ts';

/**
 * Initial values of every persistent tensor, PyTorch's schemes drawn from the counter-based RNG:
 * tensor k of the state list (state_dict order) uses stream INIT, counter k, so adding optimizer
 * state never changes a parameter's initial value.
 */
export function initialState(state: readonly StateTensor[], seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  state.forEach((t, k) => {
    const data = new Float32Array(numel(t.shape));
    if (t.init.kind === 'constant') {
      data.fill(t.init.value);
    } else {
      const { bound } = t.init;
      const key = streamKey(seed, Stream.INIT, k);
      // torch.nn.init.uniform_(-b, b) = -b + 2b·u
      for (let i = 0; i < data.length; i++) data[i] = -bound + 2 * bound * uniform(key, i);
    }
    out.set(t.name, data);
  });
  return out;
}
