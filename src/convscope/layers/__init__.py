"""Layers with hand-derived backward passes (notes §1.1-1.3).

Every layer follows one contract (see :class:`~convscope.layers.base.Module`):
``y = layer.forward(x)`` (or ``layer(x)``), ``dx = layer.backward(dy)``; ``layer.params``
and ``layer.grads`` are dicts with the same keys; ``layer.train()`` / ``layer.eval()``.
Tensors are NCHW; weights use PyTorch's layouts, so they move between the two as-is.
Initialisers live in :mod:`convscope.layers.init` and are passed in as ``init=``;
``layer.register_forward_hook(fn)`` observes or replaces a layer's output.
"""

from . import init
from .activations import Dropout, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import HookHandle, Module, shapes_only
from .blocks import (BasicBlock, Bottleneck, Inception, InceptionNaive, ZeroPadShortcut,
                     conv_bn_relu)
from .containers import AuxiliaryClassifier, Concat, Identity, Residual, Sequential
from .conv import Conv2d
from .linear import Flatten, Linear
from .loss import SoftmaxCrossEntropy, log_softmax, softmax
from .normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from .pooling import AvgPool2d, CrossChannelPool, GlobalAvgPool2d, MaxPool2d

__all__ = [
    "Module", "HookHandle", "init", "Conv2d", "Linear", "Flatten",
    "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "CrossChannelPool",
    "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Dropout",
    "BatchNorm1d", "BatchNorm2d", "LocalResponseNorm",
    "Sequential", "Residual", "Concat", "Identity", "AuxiliaryClassifier",
    "InceptionNaive", "Inception", "BasicBlock", "Bottleneck", "ZeroPadShortcut", "conv_bn_relu",
    "shapes_only",
    "SoftmaxCrossEntropy", "softmax", "log_softmax",
]
