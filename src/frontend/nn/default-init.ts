import type { Init } from '../../ir/graph.ts';

/**
 * PyTorch's reset_parameters for Linear and Conv2d: kaiming_uniform_(weight, a=√5), which is
 * U(±√3·gain/√fan_in) with gain = √(2/(1+a²)), and bias U(±1/√fan_in). The bounds are computed in
 * the same f64 steps as torch.nn.init so that, cast to f32, they are PyTorch's to the last bit
 * (the initial weights are then bit-identical to PyTorch's for the same seed).
 */
export function defaultInit(fanIn: number): { weight: Init; bias: Init } {
  const a = Math.sqrt(5);
  const gain = Math.sqrt(2 / (1 + a * a));
  return {
    weight: { kind: 'uniform', bound: Math.sqrt(3) * (gain / Math.sqrt(fanIn)) },
    bias: { kind: 'uniform', bound: 1 / Math.sqrt(fanIn) },
  };
}
