import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';

/** torch.nn.Flatten: merges dims startDim..endDim, by default all but the batch. */
export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return this.traced(() => x.flatten(this.startDim, this.endDim));
  }
}
