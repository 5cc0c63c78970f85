"""Layers that move values without computing new ones: reshape, transpose, slice, pad, concatenate.

Every argument is *per sample*: the batch axis 0 is never reshaped, permuted, sliced,
padded or concatenated along, so axis 0 of an argument is the first axis after the batch.
A ShuffleNet channel shuffle is ``Reshape((g, C // g, H, W))``, ``Transpose((1, 0, 2, 3))``,
``Reshape((C, H, W))``; ConvNeXt's channels-last block is ``Transpose((1, 2, 0))`` ... and back.

Each backward is the adjoint of its forward: reshape back, the inverse permutation, the
gradient scattered into zeros at the sliced positions, the padding cropped off, the
gradient split at the concatenation's boundaries.
"""

from __future__ import annotations

from math import prod

import numpy as np

from ..validation import check_int, check_real
from .graph import MultiInput
from .base import Module

__all__ = ["Reshape", "Transpose", "Slice", "Pad", "Cat", "MAX_RANK"]

MAX_RANK = 8          # per-sample rank of any tensor these layers handle


def _int_list(value, name: str, minimum: int | None = None) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > MAX_RANK:
        raise ValueError(f"{name} must be a list of at most {MAX_RANK} integers, got {value!r}")
    return tuple(check_int(v, f"{name} entry", minimum=minimum) for v in value)


def _axis(axis: int, rank: int, kind: str) -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"{kind}: axis {axis} is out of range for per-sample rank {rank}")
    return axis % rank


class Reshape(Module):
    """(N, *in_shape) -> (N, *shape), values in C order; one entry of ``shape`` may be -1
    (inferred). Backward reshapes dy to the input's shape."""

    def __init__(self, shape) -> None:
        super().__init__()
        self.shape = _int_list(shape, "Reshape: shape", minimum=-1)
        if self.shape.count(-1) > 1 or 0 in self.shape:
            raise ValueError(f"Reshape: shape may hold one -1 and no 0, got {list(self.shape)}")

    def extra_repr(self) -> str:
        return f"shape={self.shape}"

    def output_shape(self, input_shape):
        size, known = prod(input_shape), prod(s for s in self.shape if s != -1)
        out = tuple(size // known if s == -1 else s for s in self.shape)
        if prod(out) != size:
            raise ValueError(f"Reshape cannot make {tuple(input_shape)} into {self.shape}")
        return out

    def forward(self, x):
        self._shape = x.shape
        return x.reshape((x.shape[0],) + self.output_shape(x.shape[1:]))

    def backward(self, dy):
        """dx = dy reshaped to the input shape (the adjoint of a reshape)."""
        return dy.reshape(self._shape)


class Transpose(Module):
    """Permute the per-sample axes: output axis i is input axis ``perm[i]``. Backward applies
    the inverse permutation."""

    def __init__(self, perm) -> None:
        super().__init__()
        self.perm = _int_list(perm, "Transpose: perm", minimum=0)
        if sorted(self.perm) != list(range(len(self.perm))):
            raise ValueError(f"Transpose: perm must be a permutation of 0..{len(self.perm) - 1}, "
                             f"got {list(self.perm)}")
        self._inverse = tuple(int(i) for i in np.argsort(self.perm))

    def extra_repr(self) -> str:
        return f"perm={self.perm}"

    def output_shape(self, input_shape):
        if len(input_shape) != len(self.perm):
            raise ValueError(f"Transpose{self.perm} expects per-sample rank {len(self.perm)}, "
                             f"got {tuple(input_shape)}")
        return tuple(input_shape[p] for p in self.perm)

    def forward(self, x):
        self.output_shape(x.shape[1:])
        return x.transpose((0,) + tuple(p + 1 for p in self.perm))

    def backward(self, dy):
        """dx = dy permuted back by the inverse permutation."""
        return dy.transpose((0,) + tuple(p + 1 for p in self._inverse))


class Slice(Module):
    """x[:, ..., start:stop:step, ...] on each of ``axes`` (per sample), with Python's
    (and ONNX's) clamping of out-of-range bounds. Backward writes dy into zeros at the
    positions the slice read."""

    def __init__(self, axes, starts, stops, steps) -> None:
        super().__init__()
        self.axes = _int_list(axes, "Slice: axes", minimum=0)
        self.starts = _int_list(starts, "Slice: starts")
        self.stops = _int_list(stops, "Slice: stops")
        self.steps = _int_list(steps, "Slice: steps")
        if not len(self.axes) == len(self.starts) == len(self.stops) == len(self.steps) >= 1:
            raise ValueError("Slice: axes, starts, stops and steps need one entry each per axis")
        if len(set(self.axes)) != len(self.axes) or 0 in self.steps:
            raise ValueError(f"Slice: axes must differ and steps be non-zero, got axes "
                             f"{list(self.axes)}, steps {list(self.steps)}")

    def extra_repr(self) -> str:
        return f"axes={self.axes}, starts={self.starts}, stops={self.stops}, steps={self.steps}"

    def _index(self, shape) -> tuple:
        if max(self.axes) >= len(shape):
            raise ValueError(f"Slice on axes {self.axes} needs per-sample rank > {max(self.axes)}, "
                             f"got {tuple(shape)}")
        index = [slice(None)] * (len(shape) + 1)
        for a, start, stop, step in zip(self.axes, self.starts, self.stops, self.steps):
            # Python's slice clamps like ONNX's, except that a negative stop counts from the
            # end: a stop below -size means "before the first element".
            stop_ = None if stop < -shape[a] else stop
            index[a + 1] = slice(start, stop_, step)
        return tuple(index)

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        index = self._index(shape)
        out = list(shape)
        for a in self.axes:
            out[a] = len(range(*index[a + 1].indices(shape[a])))
        if 0 in out:
            raise ValueError(f"Slice leaves nothing of {shape}: {self.extra_repr()}")
        return tuple(out)

    def forward(self, x):
        self._shape, self._idx = x.shape, self._index(x.shape[1:])
        return x[self._idx]

    def backward(self, dy):
        """dx = zeros of the input shape with dy written at the sliced positions."""
        dx = np.zeros(self._shape, dtype=dy.dtype)
        dx[self._idx] = dy
        return dx


class Pad(Module):
    """Pad per-sample axis i with ``pads[i] = (before, after)`` entries of ``value``.
    Backward crops the gradient back to the input's extent."""

    def __init__(self, pads, value: float = 0.0) -> None:
        super().__init__()
        if not isinstance(pads, (tuple, list)) or not 1 <= len(pads) <= MAX_RANK:
            raise ValueError(f"Pad: pads must be a list of (before, after) pairs, got {pads!r}")
        self.pads = tuple(_int_list(p, "Pad: pads", minimum=0) for p in pads)
        if any(len(p) != 2 for p in self.pads):
            raise ValueError(f"Pad: each entry of pads must be (before, after), got {pads!r}")
        self.value = check_real(value, "Pad: value")

    def extra_repr(self) -> str:
        return f"pads={self.pads}, value={self.value}"

    def output_shape(self, input_shape):
        if len(input_shape) != len(self.pads):
            raise ValueError(f"Pad with {len(self.pads)} (before, after) pairs expects per-sample "
                             f"rank {len(self.pads)}, got {tuple(input_shape)}")
        return tuple(s + a + b for s, (a, b) in zip(input_shape, self.pads))

    def forward(self, x):
        out_shape = (x.shape[0],) + self.output_shape(x.shape[1:])
        y = np.full(out_shape, self.value, dtype=x.dtype)
        self._idx = (slice(None),) + tuple(slice(a, a + s) for s, (a, _) in zip(x.shape[1:], self.pads))
        y[self._idx] = x
        return y

    def backward(self, dy):
        """dx = dy with the padding cropped off."""
        return dy[self._idx]


class Cat(MultiInput):
    """Concatenate two or more tensors along per-sample ``axis`` (ONNX's Concat; the
    :class:`~convscope.layers.Concat` container instead runs branches on one input).
    Backward splits dy at the inputs' boundaries."""

    num_inputs = None

    def __init__(self, axis: int = 0) -> None:
        super().__init__()
        self.axis = check_int(axis, "Cat: axis", minimum=0, maximum=MAX_RANK - 1)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"

    def output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        a = self.axis
        if any(len(s) <= a for s in shapes) or len({s[:a] + s[a + 1:] for s in shapes}) != 1:
            raise ValueError(f"Cat along axis {a} needs shapes that agree elsewhere, got {shapes}")
        out = list(shapes[0])
        out[a] = sum(s[a] for s in shapes)
        return tuple(out)

    def forward(self, x):
        self._check_arity(x)
        self._sizes = [t.shape[self.axis + 1] for t in x]
        return np.concatenate(x, axis=self.axis + 1)

    def backward(self, dy):
        """dx_i = the slice of dy along the axis that input i filled."""
        if not self.need_input_grad:
            return tuple(None for _ in self._sizes)
        cuts = np.cumsum(self._sizes)[:-1]
        return tuple(np.split(dy, cuts, axis=self.axis + 1))
