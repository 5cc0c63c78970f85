"""Normalisations that imported networks use besides batch norm: layer norm and ONNX's LRN.

:class:`LayerNorm` normalises each sample over its trailing axes (ConvNeXt, channels last);
:class:`OnnxLocalResponseNorm` is :class:`~convscope.layers.LocalResponseNorm` with ONNX's
window, which differs from PyTorch's for even sizes only.
"""

from __future__ import annotations

from math import prod

import numpy as np

from ..validation import check_bool, check_int, check_real
from .base import Module, init_param
from .normalization import LocalResponseNorm
from .shape_ops import MAX_RANK

__all__ = ["LayerNorm", "OnnxLocalResponseNorm"]


class LayerNorm(Module):
    """Normalise over the last ``len(normalized_shape)`` axes of each sample, then scale by
    ``weight`` and shift by ``bias`` (both of ``normalized_shape``):

    y = (x - mean) / sqrt(var + eps) * weight + bias, mean and (biased) var over those axes.

    x: (N, ..., *normalized_shape) -> same shape. Unlike batch norm it has no running
    statistics and behaves alike in training and evaluation.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, bias: bool = True, *, dtype=np.float32) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)) or not 1 <= len(normalized_shape) <= MAX_RANK:
            raise ValueError(f"LayerNorm: normalized_shape must be 1 to {MAX_RANK} sizes, "
                             f"got {normalized_shape!r}")
        self.normalized_shape = tuple(check_int(s, "LayerNorm: normalized_shape entry", minimum=1)
                                      for s in normalized_shape)
        self.eps = check_real(eps, "LayerNorm: eps", minimum=0.0, strict=True)
        shape = self.normalized_shape
        self.params["weight"] = init_param(shape, dtype, lambda: np.ones(shape, dtype=dtype))
        if check_bool(bias, "LayerNorm: bias"):
            self.params["bias"] = init_param(shape, dtype, lambda: np.zeros(shape, dtype=dtype))

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}" + ("" if "bias" in self.params else ", bias=False")

    def output_shape(self, input_shape):
        k = len(self.normalized_shape)
        if tuple(input_shape[-k:]) != self.normalized_shape or len(input_shape) < k:
            raise ValueError(f"LayerNorm{self.normalized_shape} expects inputs ending in that shape, "
                             f"got {tuple(input_shape)}")
        return tuple(input_shape)

    def _axes(self, ndim: int) -> tuple[int, ...]:
        return tuple(range(ndim - len(self.normalized_shape), ndim))

    def forward(self, x):
        self.output_shape(x.shape[1:])
        axes = self._axes(x.ndim)
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        xhat = (x - mean) * inv_std
        self._cache = (xhat, inv_std)
        y = xhat * self.params["weight"]
        return y + self.params["bias"] if "bias" in self.params else y

    def backward(self, dy):
        """dweight = sum dy * xhat, dbias = sum dy (over every axis but the normalised ones);
        with g = dy * weight and means over the normalised axes,
        dx = inv_std * (g - mean(g) - xhat * mean(g * xhat))."""
        xhat, inv_std = self._cache
        w = self.params["weight"]
        outer = tuple(range(dy.ndim - len(self.normalized_shape)))
        self.grads["weight"] = (dy * xhat).sum(axis=outer).astype(w.dtype, copy=False)
        if "bias" in self.params:
            self.grads["bias"] = dy.sum(axis=outer).astype(w.dtype, copy=False)
        if not self.need_input_grad:
            return None
        axes = self._axes(dy.ndim)
        g = dy * w
        m = prod(self.normalized_shape)
        return inv_std * (g - g.sum(axis=axes, keepdims=True) / m
                          - xhat * (g * xhat).sum(axis=axes, keepdims=True) / m)


class OnnxLocalResponseNorm(LocalResponseNorm):
    """LRN with ONNX's window: channels c - (n-1)//2 .. c + n//2 (PyTorch's, and
    :class:`LocalResponseNorm`'s, is c - n//2 .. c + (n-1)//2). The two agree for odd n;
    for even n ONNX's window leans one channel further up. Forward and backward are the
    parent's with every window mirrored, so the backward stays its exact adjoint.
    """

    def _window_sum(self, v: np.ndarray, before: int, after: int) -> np.ndarray:
        return super()._window_sum(v, after, before)
