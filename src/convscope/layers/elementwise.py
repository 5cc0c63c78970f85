"""Element-wise arithmetic between tensors, with NumPy broadcasting, and constant tensors.

:class:`Add`, :class:`Sub`, :class:`Mul` and :class:`Div` read two tensors of the same rank
(batch axis included) and broadcast them as NumPy does: an axis of size 1 in one operand
stretches to the other's size. A squeeze-and-excitation gate (N, C, 1, 1) times a map
(N, C, H, W) is one :class:`Mul`. Backward "un-broadcasts": an operand that was stretched
along an axis receives the sum of the gradient over that axis (every copy of the value
contributed to the loss), so each operand's gradient has the operand's own shape.

:class:`Constant` is a source node of a :class:`~convscope.layers.graph.Graph`: it reads no
tensor and outputs its stored value with a batch axis of 1 (so it broadcasts over the
batch). It is a learned parameter (ConvNeXt's layer scale) or a fixed buffer (a scalar such
as the 6 of a hard swish), stored under ``key``, so its state-dict name can be the one the
exporting framework used (``"features.1.0.layer_scale"`` for node ``"features.1.0"`` with key
``"layer_scale"``).
"""

from __future__ import annotations

import re

import numpy as np

from ..validation import check_bool, check_int
from .base import Module, init_param
from .graph import MultiInput

__all__ = ["Add", "Sub", "Mul", "Div", "Constant", "unbroadcast", "broadcast_shape"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_CONSTANT_RANK = 8


def broadcast_shape(shapes, kind: str) -> tuple[int, ...]:
    """NumPy's broadcast of per-sample shapes of the same rank; ValueError naming them otherwise."""
    shapes = [tuple(s) for s in shapes]
    if len({len(s) for s in shapes}) != 1:
        raise ValueError(f"{kind} needs inputs of the same rank, got shapes {shapes}")
    try:
        return tuple(int(v) for v in np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"{kind}: shapes {shapes} do not broadcast") from None


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes where ``shape`` (same rank) has size 1 and ``g`` does not:
    the gradient of an operand that broadcasting stretched to ``g.shape``."""
    axes = tuple(i for i, (gs, s) in enumerate(zip(g.shape, shape)) if s == 1 and gs != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


class _Binary(MultiInput):
    """Two same-rank inputs (a, b) -> one output of their broadcast shape."""

    num_inputs = 2

    def output_shape(self, input_shape):
        return broadcast_shape(input_shape, type(self).__name__)

    def _inputs(self, x) -> tuple[np.ndarray, np.ndarray]:
        self._check_arity(x)
        a, b = x
        if a.ndim != b.ndim:
            raise ValueError(f"{type(self).__name__} needs inputs of the same rank, got shapes "
                             f"{a.shape} and {b.shape}")
        return a, b


class Add(_Binary):
    """y = a + b. Backward: da = dy, db = dy, each summed over its broadcast axes."""

    def forward(self, x):
        a, b = self._inputs(x)
        self._shapes = (a.shape, b.shape)
        return a + b

    def backward(self, dy):
        """(da, db) = (dy, dy), each summed over the axes broadcasting stretched."""
        if not self.need_input_grad:
            return None, None
        sa, sb = self._shapes
        return unbroadcast(dy, sa), unbroadcast(dy, sb)


class Sub(_Binary):
    """y = a - b. Backward: da = dy, db = -dy, each summed over its broadcast axes."""

    def forward(self, x):
        a, b = self._inputs(x)
        self._shapes = (a.shape, b.shape)
        return a - b

    def backward(self, dy):
        """(da, db) = (dy, -dy), each summed over the axes broadcasting stretched."""
        if not self.need_input_grad:
            return None, None
        sa, sb = self._shapes
        return unbroadcast(dy, sa), unbroadcast(-dy, sb)


class Mul(_Binary):
    """y = a * b. Backward (product rule): da = dy * b, db = dy * a, summed over broadcast axes."""

    def forward(self, x):
        a, b = self._inputs(x)
        self._cache = (a, b)
        return a * b

    def backward(self, dy):
        """(da, db) = (dy * b, dy * a) (the product rule), each summed over its broadcast axes."""
        if not self.need_input_grad:
            return None, None
        a, b = self._cache
        return unbroadcast(dy * b, a.shape), unbroadcast(dy * a, b.shape)


class Div(_Binary):
    """y = a / b. Backward: da = dy / b, db = -dy * a / b^2 = -dy * y / b, summed over
    broadcast axes."""

    def forward(self, x):
        a, b = self._inputs(x)
        y = a / b
        self._cache = (a.shape, b, y)
        return y

    def backward(self, dy):
        """(da, db) = (dy / b, -dy * y / b), each summed over its broadcast axes."""
        if not self.need_input_grad:
            return None, None
        sa, b, y = self._cache
        g = dy / b
        return unbroadcast(g, sa), unbroadcast(-g * y, b.shape)


class Constant(Module):
    """A stored tensor of per-sample ``shape``: forward() -> value[None], shape (1, *shape).

    ``learnable``: a parameter (trained, gradient = the incoming gradient, which readers have
    already summed over the batch axis) or, by default, a buffer (fixed). ``key`` names it
    in ``params`` / ``buffers``. The value starts at zero; it is loaded from a state dict.
    """

    num_inputs = 0

    def __init__(self, shape, key: str = "value", learnable: bool = False, *, dtype=np.float32) -> None:
        super().__init__()
        if not isinstance(shape, (tuple, list)) or len(shape) > MAX_CONSTANT_RANK:
            raise ValueError(f"Constant: shape must be a list of at most {MAX_CONSTANT_RANK} sizes, "
                             f"got {shape!r}")
        self.shape = tuple(check_int(s, "Constant: shape entry", minimum=1) for s in shape)
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"Constant: key must be an identifier, got {key!r}")
        self.key, self.learnable = key, check_bool(learnable, "Constant: learnable")
        store = self.params if self.learnable else self.buffers
        store[key] = init_param(self.shape, dtype, lambda: np.zeros(self.shape, dtype=dtype))

    @property
    def value(self) -> np.ndarray:
        return (self.params if self.learnable else self.buffers)[self.key]

    def extra_repr(self) -> str:
        return f"shape={self.shape}, key={self.key!r}, learnable={self.learnable}"

    def output_shape(self, input_shape=()):
        return self.shape

    def forward(self, x=None):
        """Ignores x; returns the value with a batch axis of 1."""
        return self.value[None]

    def backward(self, dy):
        """dy: (1, *shape), already summed over the batch by the readers' un-broadcast; it is
        the parameter's gradient. Returns None: a constant has no input."""
        if self.learnable:
            self.grads[self.key] = dy.reshape(self.shape).astype(self.value.dtype, copy=False)
        return None
