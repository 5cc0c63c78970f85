"""Weight initialisers, in one place, passed to a layer by its ``init=`` argument.

An initialiser is any callable ``init(shape, rng, dtype) -> np.ndarray`` that returns a new
array of that shape and dtype, drawing its randomness from ``rng`` only. Fans come from the
shape in PyTorch's layout (``torch/nn/init.py``): a weight (out, in, *kernel) has
fan_in = in * prod(kernel) and fan_out = out * prod(kernel); a grouped convolution's weight
(F, C/groups, KH, KW) therefore has the fan_in of one group, as it should.

Each initialiser goes through :func:`~convscope.layers.base.init_param`, so inside
:func:`~convscope.layers.base.shapes_only` no array is made (and ``rng`` is not touched).

>>> import numpy as np
>>> from convscope.layers import Linear
>>> fc = Linear(256, 10, init=normal(0.01), rng=np.random.default_rng(0))
>>> bool(abs(fc.params["weight"].std() - 0.01) < 1e-3)
True
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..validation import check_real
from .base import init_param

__all__ = ["Initializer", "fans", "he_normal", "normal", "zeros", "xavier_uniform", "make_weight"]

Initializer = Callable[[tuple, np.random.Generator, np.dtype], np.ndarray]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` (out, in, *kernel): in*k and out*k."""
    if len(shape) < 2:
        raise ValueError(f"a weight needs at least 2 axes (out, in, ...) for its fans, got shape {shape}")
    receptive = int(np.prod(shape[2:], dtype=np.int64))
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def he_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """He et al. 2015, N(0, 2 / fan_in): keeps the scale of ReLU activations with depth.

    The default of :class:`~convscope.layers.Conv2d` and :class:`~convscope.layers.Linear`.
    """
    fan_in, _ = fans(shape)
    return init_param(shape, dtype,
                      lambda: (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype))


def normal(std: float) -> Initializer:
    """An initialiser drawing from N(0, std^2), e.g. ``normal(0.01)``, Krizhevsky et al.'s
    choice for AlexNet (§5). Small output weights start training from near-uniform class
    probabilities, a loss near ln(classes); the zoo's output layers use ``normal(0.001)``
    (``convscope.models._small.OUTPUT_INIT``)."""
    std = check_real(std, "normal: std", minimum=0.0)

    def init(shape, rng, dtype=np.float32):
        return init_param(shape, dtype, lambda: (rng.standard_normal(shape) * std).astype(dtype))

    init.__name__ = init.__qualname__ = f"normal({std})"
    return init


def zeros(shape: tuple[int, ...], rng: np.random.Generator | None = None, dtype=np.float32) -> np.ndarray:
    """All zeros (``rng`` is not used). Biases start here."""
    return init_param(shape, dtype, lambda: np.zeros(shape, dtype=dtype))


def xavier_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """Glorot & Bengio 2010, U(-a, a) with a = sqrt(6 / (fan_in + fan_out)): variance
    2 / (fan_in + fan_out), for tanh and sigmoid networks."""
    fan_in, fan_out = fans(shape)
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return init_param(shape, dtype, lambda: rng.uniform(-bound, bound, size=shape).astype(dtype))


def make_weight(init, shape: tuple[int, ...], rng: np.random.Generator, dtype, owner: str) -> np.ndarray:
    """``init(shape, rng, dtype)`` for a layer's weight, checked: TypeError when ``init`` is
    not callable, ValueError when it returns the wrong shape (``owner`` names the layer)."""
    if not callable(init):
        raise TypeError(f"{owner}: init must be an initialiser such as convscope.layers.init.normal(0.01), "
                        f"got {init!r}")
    shape = tuple(int(s) for s in shape)
    weight = init_param(shape, dtype, lambda: np.asarray(init(shape, rng, dtype), dtype=dtype))
    if weight.shape != shape:
        raise ValueError(f"{owner}: init {getattr(init, '__name__', init)!r} returned shape "
                         f"{weight.shape}, expected {shape}")
    return weight
