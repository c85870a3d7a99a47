import { Module, nn, type Tensor } from 'kiln';

/** A multilayer perceptron over the flattened image. */
export default class MLP extends Module {
  layers = new nn.Sequential(
    new nn.Flatten(),
    new nn.Linear(28 * 28, 256),
    new nn.ReLU(),
    new nn.Dropout(0.2),
    new nn.Linear(256, 128),
    new nn.ReLU(),
    new nn.Linear(128, 10),
  );

  forward(x: Tensor): Tensor {
    return this.layers.forward(x);
  }
}

export const training = {
  input: [1, 28, 28], dataset: 'mnist', batchSize: 64, epochs: 1,
  loss: 'crossEntropy', optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
};
