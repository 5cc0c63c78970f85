"""Fully connected layer (notes §1, Figure 1) and the flatten that feeds it."""

from __future__ import annotations

import numpy as np

from ..validation import check_int
from ._windows import chwn_empty
from .base import Module, default_rng
from .init import he_normal, make_weight

__all__ = ["Linear", "Flatten"]


class Linear(Module):
    """y = x W^T + b: every one of ``in_features`` inputs connects to every output.

    x: (N, in_features) -> y: (N, out_features). Parameters ``weight`` (out, in) and
    ``bias`` (out,), PyTorch's layout. The notes' point: for a flattened W x H x 3 image,
    in_features = 3WH, so a layer of similar width holds about (3WH)^2 weights.

    ``init`` draws the weight (see :mod:`convscope.layers.init`; default He normal, or e.g.
    ``init=normal(0.01)`` for a network's output layer); the bias starts at zero.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, init=he_normal,
                 rng: np.random.Generator | None = None, dtype=np.float32) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            check_int(value, f"Linear: {name}", minimum=1)
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = default_rng(rng)
        self.params["weight"] = make_weight(init, (out_features, in_features), rng, dtype, "Linear")
        if bias:
            self.params["bias"] = np.zeros(out_features, dtype=dtype)
        self._x = None

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}"
                + ("" if "bias" in self.params else ", bias=False"))

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"Linear expects inputs of shape ({self.in_features},), "
                             f"got {tuple(input_shape)}")
        return (self.out_features,)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, in) -> (N, out)."""
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Linear expects a (N, {self.in_features}) input, got shape {x.shape}")
        self._x = x
        y = x @ self.params["weight"].T
        if "bias" in self.params:
            y += self.params["bias"]
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """dy: (N, out) -> dx: (N, in). dW = dy^T x, db = sum_n dy (skipped when
        ``need_param_grad`` is off), dx = dy W."""
        w = self.params["weight"]
        if self.need_param_grad:
            self.grads["weight"] = (dy.T @ self._x).astype(w.dtype, copy=False)
            if "bias" in self.params:
                self.grads["bias"] = dy.sum(axis=0).astype(w.dtype, copy=False)
        return dy @ w if self.need_input_grad else None


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W), in C-order, the layout PyTorch's Flatten produces.

    Backward hands dx back in the memory layout the input had (CHWN after a convolution or
    pool), so the layers below keep working on contiguous runs.
    """

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        self._chwn = x.ndim == 4 and x.transpose(1, 2, 3, 0).flags.c_contiguous
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if not self._chwn:
            return dy.reshape(self._shape)
        dx = chwn_empty(self._shape, dy.dtype)
        dx[...] = dy.reshape(self._shape)
        return dx
