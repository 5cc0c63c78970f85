"""Element-wise non-linearities and dropout (AlexNet's regulariser)."""

from __future__ import annotations

import numpy as np

from .base import Module, default_rng

__all__ = ["ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Dropout"]


class _Elementwise(Module):
    """Shape-preserving layer: output shape equals input shape."""

    def output_shape(self, input_shape):
        return tuple(input_shape)


class ReLU(_Elementwise):
    """max(0, x), AlexNet's non-saturating activation. Backward passes dy where x > 0.

    ``backward_rule`` changes only the backward pass, for the §3 visualisations:
    "gradient" (the true derivative), "deconvnet" (Zeiler & Fergus: rectify the signal
    going back, ignoring the forward mask) and "guided" (both: Springenberg et al.).
    """

    RULES = ("gradient", "deconvnet", "guided")

    def __init__(self) -> None:
        super().__init__()
        self.backward_rule = "gradient"

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.maximum(x, 0, dtype=x.dtype)
        # Training keeps the mask x > 0 for the backward that will follow; evaluation keeps
        # only y (y > 0 exactly where x > 0) and builds the mask if a backward comes.
        self._mask, self._y = (x > 0, None) if self.training else (None, y)
        return y

    def _forward_mask(self) -> np.ndarray:
        return self._mask if self._mask is not None else self._y > 0

    def backward(self, dy: np.ndarray) -> np.ndarray:
        rule = self.backward_rule
        if rule == "gradient":
            return dy * self._forward_mask()      # a product, not np.where: no branch mispredictions
        if rule == "deconvnet":
            return np.maximum(dy, 0)
        if rule == "guided":
            return dy * (self._forward_mask() & (dy > 0))
        raise ValueError(f"ReLU.backward_rule must be one of {self.RULES}, got {rule!r}")


class LeakyReLU(_Elementwise):
    """x if x > 0 else slope * x; backward multiplies dy by 1 or slope."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, x * x.dtype.type(self.negative_slope))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return np.where(self._mask, dy, dy * dy.dtype.type(self.negative_slope))


class Tanh(_Elementwise):
    """tanh(x); backward uses d tanh/dx = 1 - tanh(x)^2 from the cached output."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * (1 - self._y * self._y)


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)), computed without overflow; backward uses s (1 - s)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(-np.abs(x))
        self._y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * self._y * (1 - self._y)


class Dropout(_Elementwise):
    """Inverted dropout: in training zero each unit with probability p and scale the rest by
    1 / (1 - p), so evaluation (identity) needs no rescaling. AlexNet uses p = 0.5 before fc6
    and fc7. ``rng`` is the generator that draws the masks.
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = default_rng(rng)
        self._scale = None

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0.0:
            self._scale = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        self._scale = keep * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._scale

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy if self._scale is None else dy * self._scale
