import { describe, expect, it } from 'vitest';
import { nn } from '../../src/frontend/api.ts';
import { fuse } from '../../src/passes/fuse.ts';
import type { KernelGraph } from '../../src/passes/kernel-graph.ts';
import { recomputeOrStore } from '../../src/passes/recompute.ts';
import { simplify } from '../../src/passes/simplify.ts';
import { WASM_TARGET } from '../../src/codegen/wasm-simd/target.ts';
import type { Graph } from '../../src/ir/graph.ts';
import type { Target } from '../../src/ir/target.ts';
import { modelGraphs, sampleGraph } from './helpers.ts';

const run = (g: Graph, target: Target = WASM_TARGET) => recomputeOrStore(fuse(simplify(g), target), target);
const kernel = (kg: KernelGraph, kind: string) => kg.kernels.find((k) => k.kind === kind)!;
const names = (kg: KernelGraph, vs: readonly number[]) => vs.map((v) => kg.values[v]!.name);

/** conv (cin -> 8, k x k) + ReLU + 2x2 max pool, then linear layers of the given widths. */
function convNet(cin: number, k: number, widths: number[]) {
  const side = 12 - k + 1;
  const features = 8 * Math.floor(side / 2) ** 2;
  const layers = () => {
    const fc = [features, ...widths].slice(0, -1).flatMap((f, i) => [new nn.Linear(f, widths[i]!), ...(i < widths.length - 1 ? [new nn.ReLU()] : [])]);
    return new nn.Sequential(new nn.Conv2d(cin, 8, k), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Flatten(), ...fc);
  };
  return modelGraphs(layers, [cin, 12, 12], 16).train;
}

describe('recompute or store', () => {
  // Recomputing conv1 over the 64·32·26·26 pre-pool cells costs 21 flops each (9 multiply-adds,
  // bias, ReLU, compare): 29.1 M; storing the argmax costs writing and reading it plus reading y:
  // 3 · 1.38 MB · 2 = 8.3 M. Folding fc1's input gradient costs 2 · 10 flops an element against
  // 2 · 4 · 2 = 16 to store it.
  it('SimpleCNN: stores conv1\'s argmax rather than recomputing the convolution, and stores fc1\'s input gradient', async () => {
    const kg = run(await sampleGraph('simple-cnn', 'train', 64));
    const conv = kernel(kg, 'conv_block');
    const grad = kernel(kg, 'conv_block_grad');
    expect(conv.attrs.argmax).toBe(true);
    expect(names(kg, conv.outputs)).toEqual(['%7', '%7.argmax']);
    expect(grad.attrs).toMatchObject({ saved: 'argmax', fold: false });
    expect(names(kg, grad.inputs).slice(1)).toEqual(['%7', '%7.argmax', 'x']);
    expect(grad.ops).toEqual(['max_pool2d_grad', 'relu_grad', 'conv2d_grad_weight', 'sum']);
    // The last layer's gradients in its linear_cross_entropy kernel, dx among them.
    expect(kernel(kg, 'linear_cross_entropy').attrs).toMatchObject({ backward: true, dx: true });
  });

  it("weighs bytes by the target's balance: at 8 flops a byte (a core's DRAM balance) SimpleCNN recomputes conv1", async () => {
    const kg = run(await sampleGraph('simple-cnn', 'train', 64), { ...WASM_TARGET, flopsPerByte: 8 });
    expect(kernel(kg, 'conv_block').attrs.argmax).toBe(false);
    expect(kernel(kg, 'conv_block_grad').attrs.saved).toBe('recompute');
  });

  it('recomputes a cheap convolution instead of storing the argmax', () => {
    const kg = run(convNet(1, 1, [10]));
    expect(kernel(kg, 'conv_block').attrs.argmax).toBe(false);
    expect(kernel(kg, 'conv_block').outputs).toHaveLength(1);
    const grad = kernel(kg, 'conv_block_grad');
    expect(grad.attrs.saved).toBe('recompute');
    expect(names(kg, grad.inputs).slice(-3)).toEqual(['x', '0.weight', '0.bias']);
  });

  it('stores the argmax of an expensive convolution, and folds a narrow linear layer into it (4 outputs: 8 flops an element < 16 to store it)', () => {
    const kg = run(convNet(3, 5, [4]));
    expect(kernel(kg, 'conv_block').attrs.argmax).toBe(true);
    const grad = kernel(kg, 'conv_block_grad');
    expect(grad.attrs).toMatchObject({ saved: 'argmax', fold: true });
    expect(names(kg, grad.inputs).slice(1)).toEqual(['4.weight', '%7', '%7.argmax', 'x']);
  });

  it('stores the input gradient of a wide linear layer (64 outputs: 128 flops an element > 16 to store it)', () => {
    const kg = run(convNet(3, 3, [64, 10]));
    expect(kernel(kg, 'conv_block_grad').attrs.fold).toBe(false);
    expect(kg.kernels.filter((k) => k.kind === 'linear_grad' || k.kind === 'linear_cross_entropy').map((k) => [k.kind, k.attrs.dx])).toEqual([
      ['linear_cross_entropy', true],
      ['linear_grad', true],
    ]);
  });

  it('does not fold when the kernel would bind more storage buffers than allowed', () => {
    // Folded, the backward would bind g, 4.weight, y, its argmax, x, dw and db: 7.
    expect(kernel(run(convNet(3, 5, [4])), 'conv_block_grad').attrs.fold).toBe(true);
    const kg = run(convNet(3, 5, [4]), { ...WASM_TARGET, maxStorageBuffers: 6 });
    expect(kernel(kg, 'conv_block_grad').attrs).toMatchObject({ saved: 'argmax', fold: false });
    expect(kernel(kg, 'linear_grad').attrs.dx).toBe(true);
  });
});
