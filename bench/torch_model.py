"""The tutorial's autoencoder in PyTorch, layer for layer as Keras builds it, for the benchmarks."""
import torch.nn as nn


def block(cin, cout):
    # Keras order: Conv2D 3x3 'same' + ReLU, then BatchNormalization (eps 1e-3, momentum 0.99).
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)]


def autoencoder():
    layers = block(1, 32) + block(32, 32) + [nn.MaxPool2d(2)]
    layers += block(32, 64) + block(64, 64) + [nn.MaxPool2d(2)]
    layers += block(64, 128) + block(128, 128)
    layers += block(128, 64) + block(64, 64) + [nn.Upsample(scale_factor=2, mode="nearest")]
    layers += block(64, 32) + block(32, 32) + [nn.Upsample(scale_factor=2, mode="nearest")]
    layers += [nn.Conv2d(32, 1, 3, padding=1), nn.Sigmoid()]
    return nn.Sequential(*layers)
