"""GoogLeNet / Inception v1 (Szegedy et al. 2014, notes §2.4), torchvision's layout.

A stem (7x7/2 conv, pool, 1x1 and 3x3 convs, pool), nine Inception modules with 1x1
reductions (3a, 3b, pool, 4a-4e, pool, 5a, 5b), global average pooling, dropout and one
FC layer: no large fully connected layers, 6,624,904 parameters at 3x224x224 with 1000
classes. As in torchvision every convolution is "BasicConv2d": conv without bias, batch
norm (eps 0.001), ReLU; and the "5x5" branch uses a 3x3 kernel (``branch3_kernel=5``
gives the paper's 5x5 instead, and more parameters).

The pools are torchvision's: 3x3/2 and, before 5a, 2x2/2 max-pools with ``ceil_mode``
(112 -> 56 -> 28 -> 14 -> 7 at 224), the same windows as torchvision's.

``aux_logits=True`` adds the paper's two auxiliary classifiers, ``aux1`` after 4a and
``aux2`` after 4d (after 3b and 4a in the small variant): :class:`AuxiliaryClassifier`
layers that pass the map on unchanged and, in training only, classify it with
torchvision's InceptionAux head (average pool to 4x4, 1x1 conv to 128 + BN + ReLU, FC 1024,
ReLU, dropout 0.7, FC). The trainer adds 0.3 x each side loss to the main one, as in the
paper; evaluation ignores them. 13,004,888 parameters at 3x224x224/1000, as torchvision's
``googlenet(aux_logits=True)``. The pool is the paper's 5x5/3 (14 -> 4; torchvision's
adaptive 4x4 pool gives the same size at 224), or 3x3/2 on maps under 14 px.

Small variant (max(H, W) <= 64): a 3x3/1 stem conv to 48 channels, a 3x3/2 pool, Inception
3a and 3b, a pool, Inception 4a and 4b, all with torchvision's widths divided by 4 (outputs
64, 120, 128, 128 channels), global average pooling, dropout and FC; 28 -> 14 -> 7 pixels.
Its auxiliary heads are a quarter as wide too (1x1 conv to 32, FC 256).

Weights are He-initialised except those of the layers that give logits (``fc`` and the
auxiliary heads' ``fc2``), N(0, 0.001) (``models._small.OUTPUT_INIT``).

Layers: ``conv1, conv1_bn, conv1_relu, maxpool1, conv2, ..., inception3a.branch2.reduce,
..., avgpool, dropout, fc``.
"""

from __future__ import annotations

import numpy as np

from ..layers import (AuxiliaryClassifier, AvgPool2d, Dropout, Flatten, GlobalAvgPool2d, Inception,
                      Linear, MaxPool2d, ReLU, Sequential, conv_bn_relu)
from ..validation import check_probability
from ._small import OUTPUT_INIT, use_small_variant
from .registry import register

__all__ = ["googlenet", "INCEPTION_V1"]

BN_EPS = 1e-3     # torchvision's BasicConv2d

# Inception modules of the paper's Table 1: (name, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5,
# pool_proj); "pool" marks a 3x3/2 max-pool, "pool2" the final 2x2/2 one.
INCEPTION_V1 = (
    ("inception3a", 64, 96, 128, 16, 32, 32), ("inception3b", 128, 128, 192, 32, 96, 64),
    ("maxpool3", "pool"),
    ("inception4a", 192, 96, 208, 16, 48, 64), ("inception4b", 160, 112, 224, 24, 64, 64),
    ("inception4c", 128, 128, 256, 24, 64, 64), ("inception4d", 112, 144, 288, 32, 64, 64),
    ("inception4e", 256, 160, 320, 32, 128, 128),
    ("maxpool4", "pool2"),
    ("inception5a", 256, 160, 320, 32, 128, 128), ("inception5b", 384, 192, 384, 48, 128, 128),
)
# The small variant: 3a, 3b, pool, 4a, 4b with a quarter of the widths (rounded).
_SMALL_MODULES = (
    ("inception3a", 16, 24, 32, 4, 8, 8), ("inception3b", 32, 32, 48, 8, 24, 16),
    ("maxpool3", "pool"),
    ("inception4a", 48, 24, 52, 4, 12, 16), ("inception4b", 40, 28, 56, 6, 16, 16),
)


AUX_WEIGHT = 0.3      # Szegedy et al.: "their loss is added to the total loss ... weighted by 0.3"


def _aux_head(in_shape: tuple, num_classes: int, small: bool, rng) -> AuxiliaryClassifier:
    """torchvision's InceptionAux on a (C, H, W) map (see the module docstring)."""
    c, h, _ = in_shape
    pool = AvgPool2d(5, stride=3) if h >= 14 else AvgPool2d(3, stride=2)
    width, hidden = (32, 256) if small else (128, 1024)
    _, ph, pw = pool.output_shape(in_shape)
    head = Sequential(("pool", pool), *conv_bn_relu("conv", c, width, 1, bn_eps=BN_EPS, rng=rng),
                      ("flatten", Flatten()), ("fc1", Linear(width * ph * pw, hidden, rng=rng)),
                      ("fc1_relu", ReLU()), ("dropout", Dropout(0.7, rng=rng)),
                      ("fc2", Linear(hidden, num_classes, init=OUTPUT_INIT, rng=rng)))
    return AuxiliaryClassifier(head, AUX_WEIGHT)


def _pool(size: int) -> MaxPool2d:
    """torchvision's halving max-pool: stride 2, a last partial window kept (ceil_mode)."""
    return MaxPool2d(size, stride=2, ceil_mode=True)


def _stem(in_channels: int, small: bool, rng) -> tuple[list, int]:
    """The layers before the first Inception module and the channels they output."""
    kw = dict(bn_eps=BN_EPS, rng=rng)
    if small:
        return conv_bn_relu("conv1", in_channels, 48, 3, padding=1, **kw) + [
            ("maxpool1", _pool(3))], 48
    return (conv_bn_relu("conv1", in_channels, 64, 7, stride=2, padding=3, **kw)
            + [("maxpool1", _pool(3))]
            + conv_bn_relu("conv2", 64, 64, 1, **kw)
            + conv_bn_relu("conv3", 64, 192, 3, padding=1, **kw)
            + [("maxpool2", _pool(3))]), 192


@register("googlenet", "GoogLeNet (Inception v1), torchvision layout with batch norm, global average "
                       "pooling, one FC (6,624,904 parameters at 3x224x224/1000); small inputs: "
                       "3x3 stem and Inception 3a, 3b, 4a, 4b at a quarter width")
def googlenet(num_classes: int = 10, in_channels: int = 1, input_size=(28, 28),
              rng: np.random.Generator | None = None, *, small: bool | None = None,
              dropout: float = 0.2, branch3_kernel: int = 3, aux_logits: bool = False) -> Sequential:
    """GoogLeNet, or its small variant when max(H, W) <= 64 (see the module docstring).

    Options: ``small`` (None: by input size; True/False: force), ``dropout`` (p before the
    FC layer; torchvision's 0.2, the paper's 0.4), ``branch3_kernel`` (3 as torchvision, or
    the paper's 5), ``aux_logits`` (add the two training-only auxiliary classifiers).
    """
    p = check_probability(dropout, "googlenet: dropout")
    if not isinstance(aux_logits, bool):
        raise ValueError(f"googlenet: aux_logits must be True or False, got {aux_logits!r}")
    is_small = use_small_variant("googlenet", input_size, small)
    layers, c = _stem(in_channels, is_small, rng)
    aux_after = ("inception3b", "inception4a") if is_small else ("inception4a", "inception4d")
    for name, *widths in _SMALL_MODULES if is_small else INCEPTION_V1:
        if widths == ["pool"]:
            layers.append((name, _pool(3)))
        elif widths == ["pool2"]:
            layers.append((name, _pool(2)))
        else:
            block = Inception(c, *widths, batch_norm=True, bn_eps=BN_EPS,
                              branch3_kernel=branch3_kernel, rng=rng)
            layers.append((name, block))
            c = block.out_channels
            if aux_logits and name in aux_after:
                shape = Sequential(*layers).output_shape((in_channels,) + tuple(input_size))
                aux_name = f"aux{aux_after.index(name) + 1}"
                layers.append((aux_name, _aux_head(shape, num_classes, is_small, rng)))
    layers += [("avgpool", GlobalAvgPool2d()), ("dropout", Dropout(p, rng=rng)),
               ("fc", Linear(c, num_classes, init=OUTPUT_INIT, rng=rng))]
    return Sequential(*layers)
