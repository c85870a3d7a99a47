import { Module, nn, F, type Tensor } from 'kiln';

/**
 * LeNet-5 in its modern form: two padded convolutions with batch norm, max and average pooling,
 * and dropout between the fully connected layers.
 */
export default class LeNet extends Module {
  conv1 = new nn.Conv2d(1, 6, 5, { padding: 2 });
  bn1 = new nn.BatchNorm2d(6);
  pool1 = new nn.MaxPool2d(2);
  conv2 = new nn.Conv2d(6, 16, 5);
  bn2 = new nn.BatchNorm2d(16);
  pool2 = new nn.AvgPool2d(2);
  fc1 = new nn.Linear(16 * 5 * 5, 120);
  bn3 = new nn.BatchNorm1d(120);
  dropout = new nn.Dropout(0.25);
  fc2 = new nn.Linear(120, 84);
  fc3 = new nn.Linear(84, 10);

  forward(x: Tensor): Tensor {
    x = this.pool1.forward(F.relu(this.bn1.forward(this.conv1.forward(x))));
    x = this.pool2.forward(F.relu(this.bn2.forward(this.conv2.forward(x))));
    x = x.flatten(1);
    x = this.dropout.forward(F.relu(this.bn3.forward(this.fc1.forward(x))));
    x = F.relu(this.fc2.forward(x));
    return this.fc3.forward(x);
  }
}

export const training = {
  input: [1, 28, 28], dataset: 'mnist', batchSize: 64, epochs: 1,
  loss: 'crossEntropy', optimizer: { type: 'adam', lr: 0.001 },
};
