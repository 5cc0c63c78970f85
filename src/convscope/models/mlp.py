"""The notes' fully connected baseline (§1): flatten the image, then hidden FC layers.

Its first layer holds in_features x hidden weights with in_features = C*H*W, which is the
notes' argument for convolutions: for a W x H x 3 image and a layer about as wide as its
input, that is about (3WH)^2 weights. Hidden layers are He-initialised, the output layer
N(0, 0.001) (``models._small.OUTPUT_INIT``).
"""

from __future__ import annotations

import numpy as np

from ..layers import Flatten, Linear, ReLU, Sequential
from ._small import OUTPUT_INIT
from .registry import register

__all__ = ["mlp"]


@register("mlp", "multilayer perceptron: flatten -> 512 -> 256 -> classes")
def mlp(num_classes: int = 10, in_channels: int = 1, input_size=(28, 28),
        rng: np.random.Generator | None = None, hidden=(512, 256)) -> Sequential:
    if isinstance(hidden, int):
        hidden = (hidden,)
    if not all(isinstance(h, (int, np.integer)) and h > 0 for h in hidden):
        raise ValueError(f"mlp: hidden must be positive layer widths, got {hidden!r}")
    layers = [("flatten", Flatten())]
    width = in_channels * input_size[0] * input_size[1]
    for i, h in enumerate(hidden, start=1):
        layers += [(f"fc{i}", Linear(width, int(h), rng=rng)), (f"relu{i}", ReLU())]
        width = int(h)
    layers.append((f"fc{len(hidden) + 1}", Linear(width, num_classes, init=OUTPUT_INIT, rng=rng)))
    return Sequential(*layers)
