"""Reductions over per-sample axes (mean, max, sum) and softmax along one axis.

Axes are per sample (0 is the first axis after the batch): a global average pool that keeps
its 1x1 map is ``ReduceMean((1, 2), keepdims=True)`` on (N, C, H, W).
"""

from __future__ import annotations

from math import prod

import numpy as np

from ..validation import check_bool, check_int
from .base import Module
from .shape_ops import MAX_RANK

__all__ = ["ReduceMean", "ReduceMax", "ReduceSum", "Softmax", "LogSoftmax"]


class _Reduce(Module):
    """Reduce over per-sample ``axes``; ``keepdims`` keeps them with size 1."""

    def __init__(self, axes, keepdims: bool = True) -> None:
        super().__init__()
        kind = type(self).__name__
        if not isinstance(axes, (tuple, list)) or not 1 <= len(axes) <= MAX_RANK:
            raise ValueError(f"{kind}: axes must be a list of 1 to {MAX_RANK} axes, got {axes!r}")
        self.axes = tuple(sorted(check_int(a, f"{kind}: axis", minimum=0, maximum=MAX_RANK - 1)
                                 for a in axes))
        if len(set(self.axes)) != len(self.axes):
            raise ValueError(f"{kind}: axes must differ, got {list(axes)}")
        self.keepdims = check_bool(keepdims, f"{kind}: keepdims")

    def extra_repr(self) -> str:
        return f"axes={self.axes}, keepdims={self.keepdims}"

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if max(self.axes) >= len(shape):
            raise ValueError(f"{type(self).__name__} over axes {self.axes} needs per-sample rank > "
                             f"{max(self.axes)}, got {shape}")
        if self.keepdims:
            return tuple(1 if i in self.axes else s for i, s in enumerate(shape))
        return tuple(s for i, s in enumerate(shape) if i not in self.axes)

    def _batch_axes(self) -> tuple[int, ...]:
        return tuple(a + 1 for a in self.axes)

    def _keep_shape(self, x_shape, n: int) -> tuple[int, ...]:
        """(n, *x's per-sample shape) with the reduced axes of size 1: dy viewed to broadcast."""
        return (n,) + tuple(1 if i in self.axes else s for i, s in enumerate(x_shape[1:]))


class ReduceMean(_Reduce):
    """Mean over per-sample ``axes``. Backward: each input gets dy / (values reduced)."""

    def forward(self, x):
        self.output_shape(x.shape[1:])
        self._shape = x.shape
        return x.mean(axis=self._batch_axes(), keepdims=self.keepdims)

    def backward(self, dy):
        """dx = dy / (number of values reduced), broadcast back over the reduced axes."""
        count = prod(self._shape[a] for a in self._batch_axes())
        g = dy.reshape(self._keep_shape(self._shape, dy.shape[0])) / dy.dtype.type(count)
        return np.broadcast_to(g, self._shape).copy()


class ReduceSum(_Reduce):
    """Sum over per-sample ``axes``. Backward: each input gets dy."""

    def forward(self, x):
        self.output_shape(x.shape[1:])
        self._shape = x.shape
        return x.sum(axis=self._batch_axes(), keepdims=self.keepdims)

    def backward(self, dy):
        """dx = dy broadcast back over the reduced axes."""
        g = dy.reshape(self._keep_shape(self._shape, dy.shape[0]))
        return np.broadcast_to(g, self._shape).copy()


class ReduceMax(_Reduce):
    """Maximum over per-sample ``axes``. Backward: dy goes to the arg-max; where several
    values tie for the maximum they share it equally (the subgradient PyTorch's amax takes)."""

    def forward(self, x):
        self.output_shape(x.shape[1:])
        y = x.max(axis=self._batch_axes(), keepdims=True)
        mask = x == y
        self._share = mask / mask.sum(axis=self._batch_axes(), keepdims=True).astype(x.dtype)
        return y if self.keepdims else y.reshape((x.shape[0],) + self.output_shape(x.shape[1:]))

    def backward(self, dy):
        """dx = dy at the arg-max (shared equally between ties), 0 elsewhere."""
        shape = self._share.shape
        return dy.reshape(self._keep_shape(shape, dy.shape[0])) * self._share


class Softmax(Module):
    """y = exp(x) / sum(exp(x)) along per-sample ``axis`` (computed from x - max).
    Backward: dx = y * (dy - sum(dy * y)) along the axis."""

    def __init__(self, axis: int = 0) -> None:
        super().__init__()
        self.axis = check_int(axis, f"{type(self).__name__}: axis", minimum=0, maximum=MAX_RANK - 1)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"

    def output_shape(self, input_shape):
        if self.axis >= len(input_shape):
            raise ValueError(f"{type(self).__name__} along axis {self.axis} needs per-sample rank > "
                             f"{self.axis}, got {tuple(input_shape)}")
        return tuple(input_shape)

    def _log_softmax(self, x):
        self.output_shape(x.shape[1:])
        a = self.axis + 1
        z = x - x.max(axis=a, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=a, keepdims=True))

    def forward(self, x):
        self._y = np.exp(self._log_softmax(x))
        return self._y

    def backward(self, dy):
        """dx = y * (dy - sum(dy * y)) along the axis."""
        y = self._y
        return y * (dy - (dy * y).sum(axis=self.axis + 1, keepdims=True))


class LogSoftmax(Softmax):
    """y = x - log(sum(exp(x))) along per-sample ``axis``. Backward: dx = dy - softmax(x) *
    sum(dy) along the axis."""

    def forward(self, x):
        y = self._log_softmax(x)
        self._p = np.exp(y)
        return y

    def backward(self, dy):
        """dx = dy - softmax(x) * sum(dy) along the axis."""
        return dy - self._p * dy.sum(axis=self.axis + 1, keepdims=True)
