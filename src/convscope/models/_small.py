"""Helpers shared by the model builders: full-size or small-input variant, output-layer init.

Options are checked with :mod:`convscope.validation` (``check_probability(dropout,
"vgg16: dropout")``, ``check_int(width, "resnet18: width", minimum=1)``).
"""

from __future__ import annotations

import numpy as np

from ..layers import Module
from ..layers.init import normal

__all__ = ["SMALL_MAX_SIDE", "OUTPUT_STD", "OUTPUT_INIT", "use_small_variant", "flat_features"]

# Inputs whose longer side is at most this get an architecture's small variant (MNIST's
# 28x28, CIFAR's 32x32, 64x64 thumbnails); larger ones get the full ImageNet layout.
SMALL_MAX_SIDE = 64


def use_small_variant(name: str, input_size, small) -> bool:
    """The ``small`` option: None picks by size (max(H, W) <= 64), True/False force it."""
    if small is None:
        return max(input_size) <= SMALL_MAX_SIDE
    if isinstance(small, (bool, np.bool_)):
        return bool(small)
    raise ValueError(f"{name}: small must be True, False or None (by input size), got {small!r}")


# The standard deviation of every model's output-layer weights (the Linear that gives the
# logits): small logits start training from near-uniform class probabilities, a loss near
# ln(classes). He-scaled output weights started LeNet-5 at a loss of 3.3-9.9 and the CIFAR
# ResNets at up to 12 (ln 10 = 2.3); AlexNet's first large gradients then silenced every
# ReLU at lr 0.05. Krizhevsky et al.'s N(0, 0.01) (AlexNet §5) still leaves AlexNet's small
# variant, whose pools and dropout grow the activations, with logits of std ~1 in training
# mode (a first loss of 2.5-3.1); a tenth of it starts every zoo model within 0.06 of
# ln 10 (tests/models/test_initial_loss.py).
OUTPUT_STD = 0.001
OUTPUT_INIT = normal(OUTPUT_STD)


def flat_features(name: str, features: Module, in_channels: int, input_size) -> int:
    """C*H*W of the feature extractor's output, the first FC layer's input size.

    Raises ValueError naming the input shape when the features cannot take it.
    """
    shape = (in_channels,) + tuple(input_size)
    try:
        out = features.output_shape(shape)
    except ValueError as err:
        raise ValueError(f"{name}: input of shape {shape} is too small for its layers: {err}") from None
    return int(np.prod(out))
