"""Helpers shared by the model builders: full-size or small-input variant, option checks."""

from __future__ import annotations

import numpy as np

from ..layers import Module

__all__ = ["SMALL_MAX_SIDE", "use_small_variant", "check_dropout", "check_width", "flat_features"]

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


def check_dropout(name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name}: dropout must be a probability in [0, 1), got {p!r}")
    return float(p)


def check_width(name: str, width) -> int:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"{name}: width must be a positive int, got {width!r}")
    return int(width)


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
