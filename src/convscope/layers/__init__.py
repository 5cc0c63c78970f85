"""Layers with hand-derived backward passes (notes §1.1-1.3).

Every layer follows one contract (see :class:`~convscope.layers.base.Module`):
``y = layer.forward(x)`` (or ``layer(x)``), ``dx = layer.backward(dy)``; ``layer.params``
and ``layer.grads`` are dicts with the same keys; ``layer.train()`` / ``layer.eval()``.
Tensors are NCHW; weights use PyTorch's layouts, so they move between the two as-is.
Initialisers live in :mod:`convscope.layers.init` and are passed in as ``init=``;
``layer.register_forward_hook(fn)`` observes or replaces a layer's output.
:class:`Graph` holds any DAG of layers (an imported ONNX network); its JSON spec
(:mod:`convscope.layers.graph_spec`) is what a checkpoint stores to rebuild it.
"""

from . import init
from .activations import Dropout, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import HookHandle, Module, shapes_only
from .blocks import (BasicBlock, Bottleneck, Inception, InceptionNaive, ZeroPadShortcut,
                     conv_bn_relu)
from .containers import AuxiliaryClassifier, Concat, Identity, Residual, Sequential
from .conv import Conv2d
from .elementwise import Add, Constant, Div, Mul, Sub
from .graph import Graph, MultiInput
from .graph_spec import LAYER_TYPES, check_graph_spec, graph_from_spec, graph_to_spec
from .linear import Flatten, Linear
from .linear_nd import LinearND
from .loss import SoftmaxCrossEntropy, log_softmax, softmax
from .norm_extra import LayerNorm, OnnxLocalResponseNorm
from .normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from .pointwise import Clip, Erf, Exp, Gelu, HardSigmoid, HardSwish, Neg, Pow, Reciprocal, Sqrt
from .pooling import AvgPool2d, CrossChannelPool, GlobalAvgPool2d, MaxPool2d
from .reduce import LogSoftmax, ReduceMax, ReduceMean, ReduceSum, Softmax
from .shape_ops import Cat, Pad, Reshape, Slice, Transpose

__all__ = [
    "Module", "HookHandle", "init", "Conv2d", "Linear", "Flatten",
    "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "CrossChannelPool",
    "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Dropout",
    "BatchNorm1d", "BatchNorm2d", "LocalResponseNorm",
    "Sequential", "Residual", "Concat", "Identity", "AuxiliaryClassifier",
    "InceptionNaive", "Inception", "BasicBlock", "Bottleneck", "ZeroPadShortcut", "conv_bn_relu",
    "shapes_only",
    "Graph", "MultiInput", "LAYER_TYPES", "graph_to_spec", "graph_from_spec", "check_graph_spec",
    "Add", "Sub", "Mul", "Div", "Constant",
    "Clip", "HardSigmoid", "HardSwish", "Erf", "Gelu", "Sqrt", "Pow", "Exp", "Neg", "Reciprocal",
    "Reshape", "Transpose", "Slice", "Pad", "Cat",
    "ReduceMean", "ReduceMax", "ReduceSum", "Softmax", "LogSoftmax",
    "LayerNorm", "OnnxLocalResponseNorm", "LinearND",
    "SoftmaxCrossEntropy", "softmax", "log_softmax",
]
