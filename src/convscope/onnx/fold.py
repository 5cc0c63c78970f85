"""Constant folding: ONNX ops evaluated in NumPy on values known at import time.

Exporters compute reshape targets, slice bounds and scalars with small subgraphs (``Shape``
-> ``Gather`` -> ``Unsqueeze`` -> ``Concat`` -> ``Reshape``); folding them leaves only layers.
Each folder is ``fn(ctx, values) -> list of arrays`` for the current node's inputs (None where
omitted); the importer runs it once per world (see :mod:`convscope.onnx.context`). Results
are bounded at :data:`MAX_FOLDED_VALUES` values, so a hostile ``ConstantOfShape`` or
``Expand`` cannot allocate without limit.
"""

from __future__ import annotations

from math import prod

import numpy as np

__all__ = ["FOLDERS", "MAX_FOLDED_VALUES", "axes_of", "onnx_dtype"]

MAX_FOLDED_VALUES = 1 << 24


def onnx_dtype(code: int):
    from onnx import helper
    return np.dtype(helper.tensor_dtype_to_np_dtype(code))


def _bounded(ctx, shape) -> tuple[int, ...]:
    shape = tuple(int(s) for s in np.asarray(shape).reshape(-1))
    if any(s < 0 for s in shape) or prod(shape) > MAX_FOLDED_VALUES:
        raise ctx.fail(f"it would make a constant of shape {list(shape)}; at most {MAX_FOLDED_VALUES} "
                       f"values are folded")
    return shape


def axes_of(ctx, values, index: int = 1, attr: str = "axes"):
    """Axes from input ``index`` (newer opsets) or from attribute ``attr`` (older ones)."""
    if len(values) > index and values[index] is not None:
        return [int(a) for a in np.asarray(values[index]).reshape(-1)]
    axes = ctx.attr(attr)
    return None if axes is None else [int(a) for a in axes]


def _int_div(a, b):
    """ONNX's integer division truncates toward zero (C's), unlike NumPy's floor division."""
    q = np.abs(a) // np.maximum(np.abs(b), 1)
    return np.where((a < 0) != (b < 0), -q, q).astype(np.result_type(a, b))


def _binary(fn):
    return lambda ctx, v: [np.asarray(fn(v[0], v[1]))]


def _div(ctx, v):
    a, b = v
    if np.issubdtype(np.result_type(a, b), np.integer):
        return [_int_div(a, b)]
    return [np.asarray(a / b)]


def _gather(ctx, v):
    data, idx = v
    axis = ctx.attr("axis", 0)
    idx = np.asarray(idx).astype(np.int64)
    size = data.shape[axis]
    if np.any((idx < -size) | (idx >= size)):
        raise ctx.fail(f"its indices {idx.reshape(-1)[:8].tolist()} are out of range for size {size}")
    return [np.take(data, np.where(idx < 0, idx + size, idx), axis=axis)]


def _unsqueeze(ctx, v):
    x = v[0]
    axes = sorted(a % (x.ndim + len(axes_of(ctx, v))) for a in axes_of(ctx, v))
    for a in axes:
        x = np.expand_dims(x, a)
    return [x]


def _squeeze(ctx, v):
    axes = axes_of(ctx, v)
    x = v[0]
    return [np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(a % x.ndim for a in axes))]


def _slice_bounds(ctx, v):
    """(starts, ends, axes, steps) from inputs (opset >= 10) or attributes (older)."""
    if len(v) > 1:
        starts, ends = (np.asarray(x).reshape(-1).tolist() for x in v[1:3])
        axes = np.asarray(v[3]).reshape(-1).tolist() if len(v) > 3 and v[3] is not None else None
        steps = np.asarray(v[4]).reshape(-1).tolist() if len(v) > 4 and v[4] is not None else None
    else:
        starts, ends, axes, steps = ctx.attr("starts"), ctx.attr("ends"), ctx.attr("axes"), None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    return [int(s) for s in starts], [int(e) for e in ends], [int(a) for a in axes], [int(s) for s in steps]


def python_slice(start: int, end: int, step: int, size: int) -> slice:
    """ONNX's clamped (start, end, step) on an axis of ``size`` as a Python slice."""
    if step == 0:
        raise ValueError("a slice step of 0")
    stop = None if end < -size else end
    return slice(start, stop, step)


def _slice(ctx, v):
    x = v[0]
    starts, ends, axes, steps = _slice_bounds(ctx, v)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[a % x.ndim] = python_slice(s, e, st, x.shape[a % x.ndim])
    return [x[tuple(index)]]


def _reshape(ctx, v):
    x, shape = v[0], [int(s) for s in np.asarray(v[1]).reshape(-1)]
    if not ctx.attr("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(shape)]


def _range(ctx, v):
    start, limit, delta = (np.asarray(x).reshape(()) for x in v)
    if delta == 0:
        raise ctx.fail("its delta is 0")
    count = max(int(np.ceil((limit - start) / delta)), 0)
    _bounded(ctx, [count])
    return [np.arange(count, dtype=np.result_type(start, limit, delta)) * delta + start]


def _constant_of_shape(ctx, v):
    shape = _bounded(ctx, v[0])
    value = ctx.attr("value")
    fill = np.zeros(1, dtype=np.float32) if value is None else ctx.tensor_value(value)
    return [np.full(shape, fill.reshape(-1)[0], dtype=fill.dtype)]


def _expand(ctx, v):
    shape = np.broadcast_shapes(v[0].shape, tuple(int(s) for s in np.asarray(v[1]).reshape(-1)))
    _bounded(ctx, shape)
    return [np.broadcast_to(v[0], shape).copy()]


def _tile(ctx, v):
    reps = [int(r) for r in np.asarray(v[1]).reshape(-1)]
    _bounded(ctx, [s * r for s, r in zip(v[0].shape, reps)])
    return [np.tile(v[0], reps)]


def _shape(ctx, v):
    shape = np.asarray(v[0].shape, dtype=np.int64)
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    return [shape[start:end]]


def _cast(ctx, v):
    return [np.asarray(v[0]).astype(onnx_dtype(ctx.attr("to")))]


def _where(ctx, v):
    return [np.where(v[0], v[1], v[2])]


def _concat(ctx, v):
    return [np.concatenate([np.asarray(x) for x in v], axis=ctx.attr("axis"))]


def _reduce(fn):
    def fold(ctx, v):
        axes = axes_of(ctx, v)
        keep = bool(ctx.attr("keepdims", 1))
        x = v[0]
        if axes is None or not axes:
            return [np.asarray(fn(x, axis=None, keepdims=keep))]
        return [np.asarray(fn(x, axis=tuple(a % x.ndim for a in axes), keepdims=keep))]
    return fold


def _unary(fn):
    return lambda ctx, v: [np.asarray(fn(v[0]))]


FOLDERS = {
    "Identity": lambda ctx, v: [v[0]], "Cast": _cast, "Shape": _shape,
    "Size": lambda ctx, v: [np.asarray(v[0].size, dtype=np.int64)],
    "Gather": _gather, "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Slice": _slice,
    "Reshape": _reshape, "Concat": _concat,
    "Transpose": lambda ctx, v: [np.transpose(v[0], ctx.attr("perm"))],
    "Flatten": lambda ctx, v: [v[0].reshape(prod(v[0].shape[:ctx.attr("axis", 1)]), -1)],
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply), "Div": _div,
    "Pow": _binary(np.power), "Equal": _binary(np.equal), "Less": _binary(np.less),
    "Greater": _binary(np.greater), "And": _binary(np.logical_and), "Or": _binary(np.logical_or),
    "Min": lambda ctx, v: [np.minimum.reduce(np.broadcast_arrays(*v))],
    "Max": lambda ctx, v: [np.maximum.reduce(np.broadcast_arrays(*v))],
    "Not": _unary(np.logical_not), "Neg": _unary(np.negative), "Abs": _unary(np.abs),
    "Sqrt": _unary(np.sqrt), "Exp": _unary(np.exp), "Floor": _unary(np.floor), "Ceil": _unary(np.ceil),
    "Reciprocal": _unary(np.reciprocal), "Relu": _unary(lambda x: np.maximum(x, 0)),
    "Where": _where, "Range": _range, "ConstantOfShape": _constant_of_shape, "Expand": _expand,
    "Tile": _tile, "ReduceProd": _reduce(np.prod), "ReduceSum": _reduce(np.sum),
    "ReduceMin": _reduce(np.min), "ReduceMax": _reduce(np.max),
}
