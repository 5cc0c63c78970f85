"""LeNet-5 (LeCun et al. 1998, notes §2.1), in its modern form: ReLU and max-pooling.

conv 6@5x5 -> pool 2 -> conv 16@5x5 -> pool 2 -> fc 120 -> fc 84 -> fc classes. On a
1x32x32 input with 10 classes it has 61,706 parameters. 28x28 inputs (MNIST) get a
padding of 2 on the first convolution, which is the same as padding the image to 32x32.
Weights are He-initialised except fc3's, N(0, 0.001): the first loss is then near ln 10
(He-scaled fc3 weights started it anywhere from 3.3 to 9.9).
"""

from __future__ import annotations

import numpy as np

from ..layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from ._small import OUTPUT_INIT
from .registry import register

__all__ = ["lenet5"]


@register("lenet5", "LeNet-5 with ReLU and max-pooling (61,706 parameters at 1x32x32)")
def lenet5(num_classes: int = 10, in_channels: int = 1, input_size=(32, 32),
           rng: np.random.Generator | None = None) -> Sequential:
    h, w = input_size
    pad = 2 if max(h, w) <= 28 else 0            # 28x28 -> as if padded to 32x32
    # Spatial size after conv1 (5x5), pool, conv2 (5x5), pool.
    fh = ((h + 2 * pad - 4) // 2 - 4) // 2
    fw = ((w + 2 * pad - 4) // 2 - 4) // 2
    if fh < 1 or fw < 1:
        raise ValueError(f"lenet5 needs inputs of at least 28x28 (or 16x16 without padding), "
                         f"got {h}x{w}")
    return Sequential(
        ("conv1", Conv2d(in_channels, 6, 5, padding=pad, rng=rng)),
        ("relu1", ReLU()),
        ("pool1", MaxPool2d(2)),
        ("conv2", Conv2d(6, 16, 5, rng=rng)),
        ("relu2", ReLU()),
        ("pool2", MaxPool2d(2)),
        ("flatten", Flatten()),
        ("fc1", Linear(16 * fh * fw, 120, rng=rng)),
        ("relu3", ReLU()),
        ("fc2", Linear(120, 84, rng=rng)),
        ("relu4", ReLU()),
        ("fc3", Linear(84, num_classes, init=OUTPUT_INIT, rng=rng)),
    )
