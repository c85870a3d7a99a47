import { Module, nn, F, type Tensor } from 'kiln';

/**
 * A basic residual block: two 3×3 convolutions with batch norm, added to the block's input. When
 * the block halves the image or widens the channels, the input goes through a 1×1 stride-2
 * convolution with batch norm first (the projection shortcut, He et al.'s option B).
 */
export class BasicBlock extends Module {
  conv1: nn.Conv2d;
  bn1: nn.BatchNorm2d;
  conv2: nn.Conv2d;
  bn2: nn.BatchNorm2d;
  shortcut: nn.Sequential;

  constructor(inChannels: number, outChannels: number, stride: number) {
    super();
    this.conv1 = new nn.Conv2d(inChannels, outChannels, 3, { stride, padding: 1, bias: false });
    this.bn1 = new nn.BatchNorm2d(outChannels);
    this.conv2 = new nn.Conv2d(outChannels, outChannels, 3, { padding: 1, bias: false });
    this.bn2 = new nn.BatchNorm2d(outChannels);
    this.shortcut =
      stride !== 1 || inChannels !== outChannels
        ? new nn.Sequential(new nn.Conv2d(inChannels, outChannels, 1, { stride, bias: false }), new nn.BatchNorm2d(outChannels))
        : new nn.Sequential();
  }

  forward(x: Tensor): Tensor {
    const out = F.relu(this.bn1.forward(this.conv1.forward(x)));
    return F.relu(this.bn2.forward(this.conv2.forward(out)).add(this.shortcut.forward(x)));
  }
}

/** The CIFAR ResNet-20 of He et al. (2016): 3 stages of 3 basic blocks, 16, 32 and 64 channels, ~0.27 M parameters. */
export default class ResNet20 extends Module {
  conv1 = new nn.Conv2d(3, 16, 3, { padding: 1, bias: false });
  bn1 = new nn.BatchNorm2d(16);
  layer1 = new nn.Sequential(new BasicBlock(16, 16, 1), new BasicBlock(16, 16, 1), new BasicBlock(16, 16, 1));
  layer2 = new nn.Sequential(new BasicBlock(16, 32, 2), new BasicBlock(32, 32, 1), new BasicBlock(32, 32, 1));
  layer3 = new nn.Sequential(new BasicBlock(32, 64, 2), new BasicBlock(64, 64, 1), new BasicBlock(64, 64, 1));
  pool = new nn.AdaptiveAvgPool2d(1);
  fc = new nn.Linear(64, 10);

  forward(x: Tensor): Tensor {
    x = F.relu(this.bn1.forward(this.conv1.forward(x)));
    x = this.layer3.forward(this.layer2.forward(this.layer1.forward(x)));
    return this.fc.forward(this.pool.forward(x).flatten(1));
  }
}

/**
 * He et al.'s CIFAR-10 recipe: SGD with Nesterov momentum and weight decay, batch 128, random crops
 * with 4 pixels of padding and horizontal flips, the learning rate annealed over the run as
 * CosineAnnealingLR steps it after every batch. The data is the binary CIFAR-10 as it extracts
 * (https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz), in the folder kiln runs in.
 */
export const training = {
  input: [3, 32, 32], dataset: 'cifar-10-batches-bin', batchSize: 128, epochs: 30,
  normalize: { mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616] },
  augment: { randomCrop: { size: 32, padding: 4 }, horizontalFlip: 0.5 },
  loss: 'crossEntropy', optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
  schedule: { kind: 'cosine' },
};
