import { Module, nn, F, type Tensor } from 'kiln';

export default class SimpleCNN extends Module {
  conv1 = new nn.Conv2d(1, 32, 3);
  pool = new nn.MaxPool2d(2, 2);
  dropout = new nn.Dropout(0.25);
  fc1 = new nn.Linear(32 * 13 * 13, 10);

  forward(x: Tensor): Tensor {
    x = this.pool.forward(F.relu(this.conv1.forward(x)));
    x = x.view(-1, 32 * 13 * 13);
    return this.fc1.forward(x);
  }
}

export const training = {
  input: [1, 28, 28], dataset: 'mnist', batchSize: 64, epochs: 1,
  loss: 'crossEntropy', optimizer: { type: 'adam', lr: 0.001 },
};
