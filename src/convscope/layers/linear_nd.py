"""A fully connected layer applied along the last axis of a tensor of any rank.

:class:`~convscope.layers.Linear` maps (N, in) to (N, out). Channels-last networks
(ConvNeXt's blocks run ``Linear`` on (N, H, W, C) maps) apply the same matrix at every
position: :class:`LinearND` is that, y[..., :] = x[..., :] W^T + b, with PyTorch's weight
layout (out, in), so its parameters load from a ``Linear``'s state dict unchanged.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_bool, check_int
from .base import Module, default_rng
from .init import he_normal, make_weight

__all__ = ["LinearND"]


class LinearND(Module):
    """x: (N, ..., in_features) -> (N, ..., out_features); ``weight`` (out, in), ``bias`` (out,)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, init=he_normal,
                 rng: np.random.Generator | None = None, dtype=np.float32) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "LinearND: in_features", minimum=1)
        self.out_features = check_int(out_features, "LinearND: out_features", minimum=1)
        self.params["weight"] = make_weight(init, (self.out_features, self.in_features),
                                            default_rng(rng), dtype, "LinearND")
        if check_bool(bias, "LinearND: bias"):
            self.params["bias"] = np.zeros(self.out_features, dtype=dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}"
                + ("" if "bias" in self.params else ", bias=False"))

    def output_shape(self, input_shape):
        if len(input_shape) < 1 or input_shape[-1] != self.in_features:
            raise ValueError(f"LinearND expects inputs ending in {self.in_features} features, "
                             f"got {tuple(input_shape)}")
        return tuple(input_shape[:-1]) + (self.out_features,)

    def forward(self, x):
        self.output_shape(x.shape[1:])
        self._x = x
        y = x @ self.params["weight"].T
        if "bias" in self.params:
            y += self.params["bias"]
        return y

    def backward(self, dy):
        """With rows r running over every position (N and the other axes):
        dW = sum_r dy_r^T x_r, db = sum_r dy_r, dx = dy W."""
        w = self.params["weight"]
        x2 = self._x.reshape(-1, self.in_features)
        d2 = dy.reshape(-1, self.out_features)
        self.grads["weight"] = (d2.T @ x2).astype(w.dtype, copy=False)
        if "bias" in self.params:
            self.grads["bias"] = d2.sum(axis=0).astype(w.dtype, copy=False)
        return dy @ w if self.need_input_grad else None
