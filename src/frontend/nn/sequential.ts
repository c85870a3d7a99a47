import { Module } from '../module.ts';
import type { Tensor } from '../tensor.ts';
import { badArg } from './args.ts';

/** torch.nn.Sequential: children named 0, 1, ... applied in order. */
export class Sequential extends Module {
  [index: number]: Module;

  constructor(...layers: Module[]) {
    super();
    layers.forEach((layer, i) => {
      if (!(layer instanceof Module)) badArg('Sequential', `argument ${i} is not a layer (got ${typeof layer})`, 'pass nn layers, e.g. new nn.Sequential(new nn.Linear(784, 10), new nn.ReLU())');
      this[i] = layer;
    });
  }

  get length(): number {
    return this.namedChildren().length;
  }

  override forward(x: Tensor): Tensor {
    return this.namedChildren().reduce((h, [, layer]) => layer.forward(h), x);
  }
}
