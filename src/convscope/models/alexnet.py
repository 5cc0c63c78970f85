"""AlexNet (Krizhevsky et al. 2012, notes §2.2), in two layouts, each with a small variant.

``alexnet`` is torchvision's single-GPU layout: 64-192-384-256-256 filters, no LRN, no
groups; 61,100,840 parameters at 3x224x224 with 1000 classes. ``alexnet_original`` is the
paper's: 96-256-384-384-256 filters, conv2/conv4/conv5 split in two groups (the two GPUs
of the notes' Figure 10: each half sees only its own GPU's half of the previous layer),
local response normalisation after conv1 and conv2; 60,965,224 parameters at 3x224x224.

Both use an 11x11/4 first filter with padding 2 (at 224 and at the paper's 227 the map is
55 or 56 wide, 27 after the pool), overlapping 3x3/2 max-pools after conv1, conv2 and conv5,
which leave a 6x6 map at 224 (torchvision's adaptive 6x6 pool is then the identity and is
left out: other sizes simply change fc6's input), dropout before fc6 and fc7 and a
4096-4096-classes classifier. Weights are He-initialised except fc8's, drawn from
N(0, 0.001) like every zoo model's output layer (``init=OUTPUT_INIT``, see ``models._small``)
so that training starts from near-uniform class probabilities: He-scaled logits start with a
standard deviation near 7 on the small variant (the overlapping max-pools and dropout's
1/(1-p) grow the activations layer by layer), and the first large gradients then silenced
every ReLU at lr 0.05. The paper's N(0, 0.01) still leaves them near 1 in training mode.

Small variant (max(H, W) <= 64; MNIST, CIFAR): the same sequence with a 5x5/1 first filter
(padding 2), widths 32-64-96-96-64 and a 256-256-classes classifier; at 28x28 the pools
give 13, 6 and 2 pixels (15, 7, 3 at 32x32). ``alexnet_original``'s small variant keeps
LRN and the grouped conv2/conv4/conv5.

Layers: ``features.conv1, relu1, norm1, pool1, ..., conv5, relu5, pool5``, ``flatten``,
``classifier.drop6, fc6, relu6, drop7, fc7, relu7, fc8``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..layers import (Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU,
                      Sequential)
from ..layers.base import default_rng
from ..validation import check_probability
from ._small import OUTPUT_INIT, flat_features, use_small_variant
from .registry import register

__all__ = ["alexnet", "alexnet_original"]


class ConvSpec(NamedTuple):
    out: int            # filters
    kernel: int
    stride: int
    padding: int
    groups: int         # 2: the two-GPU split
    lrn: bool           # local response normalisation after the ReLU
    pool: bool          # overlapping 3x3/2 max-pool after that


_TORCHVISION = (ConvSpec(64, 11, 4, 2, 1, False, True), ConvSpec(192, 5, 1, 2, 1, False, True),
                ConvSpec(384, 3, 1, 1, 1, False, False), ConvSpec(256, 3, 1, 1, 1, False, False),
                ConvSpec(256, 3, 1, 1, 1, False, True))
_ORIGINAL = (ConvSpec(96, 11, 4, 2, 1, True, True), ConvSpec(256, 5, 1, 2, 2, True, True),
             ConvSpec(384, 3, 1, 1, 1, False, False), ConvSpec(384, 3, 1, 1, 2, False, False),
             ConvSpec(256, 3, 1, 1, 2, False, True))
_SMALL_TORCHVISION = (ConvSpec(32, 5, 1, 2, 1, False, True), ConvSpec(64, 5, 1, 2, 1, False, True),
                      ConvSpec(96, 3, 1, 1, 1, False, False), ConvSpec(96, 3, 1, 1, 1, False, False),
                      ConvSpec(64, 3, 1, 1, 1, False, True))
_SMALL_ORIGINAL = (ConvSpec(32, 5, 1, 2, 1, True, True), ConvSpec(64, 5, 1, 2, 2, True, True),
                   ConvSpec(96, 3, 1, 1, 1, False, False), ConvSpec(96, 3, 1, 1, 2, False, False),
                   ConvSpec(64, 3, 1, 1, 2, False, True))
_FC_FULL, _FC_SMALL = (4096, 4096), (256, 256)


def _lrn() -> LocalResponseNorm:
    # Krizhevsky et al. §3.3: n = 5 neighbouring maps, alpha = 1e-4, beta = 0.75, k = 2.
    return LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)


def _alexnet(name, specs, fc, num_classes, in_channels, input_size, rng, dropout) -> Sequential:
    p = check_probability(dropout, f"{name}: dropout")
    rng = default_rng(rng)
    layers, c = [], in_channels
    for i, s in enumerate(specs, start=1):
        conv = Conv2d(c, s.out, s.kernel, s.stride, s.padding, groups=s.groups, rng=rng)
        layers += [(f"conv{i}", conv), (f"relu{i}", ReLU())]
        if s.lrn:
            layers.append((f"norm{i}", _lrn()))
        if s.pool:
            layers.append((f"pool{i}", MaxPool2d(3, stride=2)))
        c = s.out
    features = Sequential(*layers)
    n_flat = flat_features(name, features, in_channels, input_size)     # 256*6*6 at 224
    classifier = Sequential(
        ("drop6", Dropout(p, rng=rng)), ("fc6", Linear(n_flat, fc[0], rng=rng)), ("relu6", ReLU()),
        ("drop7", Dropout(p, rng=rng)), ("fc7", Linear(fc[0], fc[1], rng=rng)), ("relu7", ReLU()),
        ("fc8", Linear(fc[1], num_classes, init=OUTPUT_INIT, rng=rng)),     # N(0, 0.001)
    )
    return Sequential(("features", features), ("flatten", Flatten()), ("classifier", classifier))


@register("alexnet", "AlexNet, torchvision layout 64-192-384-256-256, fc 4096-4096 "
                     "(61,100,840 parameters at 3x224x224/1000); small inputs: 5x5 first filter, "
                     "32-64-96-96-64, fc 256-256")
def alexnet(num_classes: int = 10, in_channels: int = 1, input_size=(28, 28),
            rng: np.random.Generator | None = None, *, small: bool | None = None,
            dropout: float = 0.5) -> Sequential:
    """torchvision's AlexNet, or its small variant when max(H, W) <= 64 (see the module doc).

    Options: ``small`` (None: by input size; True/False: force), ``dropout`` (p before
    fc6 and fc7, 0.5).
    """
    is_small = use_small_variant("alexnet", input_size, small)
    specs, fc = (_SMALL_TORCHVISION, _FC_SMALL) if is_small else (_TORCHVISION, _FC_FULL)
    return _alexnet("alexnet", specs, fc, num_classes, in_channels, input_size, rng, dropout)


@register("alexnet_original", "AlexNet as in Krizhevsky et al. 2012: 96-256-384-384-256, "
                              "grouped conv2/4/5, LRN (60,965,224 parameters at 3x224x224/1000); "
                              "small inputs: 5x5 first filter, 32-64-96-96-64, fc 256-256")
def alexnet_original(num_classes: int = 10, in_channels: int = 1, input_size=(28, 28),
                     rng: np.random.Generator | None = None, *, small: bool | None = None,
                     dropout: float = 0.5) -> Sequential:
    """The paper's AlexNet (two-GPU groups, LRN), or its small variant when max(H, W) <= 64.

    Options as for :func:`alexnet`.
    """
    is_small = use_small_variant("alexnet_original", input_size, small)
    specs, fc = (_SMALL_ORIGINAL, _FC_SMALL) if is_small else (_ORIGINAL, _FC_FULL)
    return _alexnet("alexnet_original", specs, fc, num_classes, in_channels, input_size, rng, dropout)
