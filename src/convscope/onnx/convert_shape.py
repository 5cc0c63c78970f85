"""ONNX ops that move values or reduce them, applied to run-time tensors.

ONNX counts the batch as axis 0; convscope's shape layers work per sample, so every axis is
shifted by one and an op that would touch the batch axis (a reshape merging it, a slice or
concatenation along it) is refused with a message naming the node. Shape-only ops
(``Shape``, ``Size``, ``Constant``) produce constants in both worlds (see
:mod:`convscope.onnx.context`).
"""

from __future__ import annotations

from math import prod

import numpy as np

from ..layers import Cat, Flatten, LogSoftmax, Pad, ReduceMax, ReduceMean, ReduceSum, Reshape, Slice, Softmax, Transpose
from .context import BATCH_A, BATCH_B, Const, FlatBatch, Tensor
from .fold import axes_of, onnx_dtype

__all__ = ["SHAPE_CONVERTERS"]

_BOUND = (1 << 31) - 1        # slice bounds beyond any size are clamped to this


def _reshaped(ctx, x: Tensor, shape, suffix: str = "") -> Tensor:
    """x viewed with per-sample ``shape``: no node if unchanged, Flatten if it flattens."""
    shape = tuple(int(s) for s in shape)
    if shape == x.shape:
        return x
    if len(shape) == 1 and shape[0] in (-1, prod(x.shape)) and len(x.shape) > 1:
        return ctx.emit(Flatten(), [x], suffix=suffix)
    return ctx.emit(Reshape(list(shape)), [x], suffix=suffix)


def reshape(ctx):
    x = ctx.tensor(0, "data")
    target = ctx.const(1, "target shape", fixed=False)
    allowzero = bool(ctx.attr("allowzero", 0))
    worlds = []
    for batch, values in ((BATCH_A, target.a), (BATCH_B, target.b)):
        full = (batch,) + x.shape
        t = [int(v) for v in np.asarray(values).reshape(-1)]
        if not allowzero:
            t = [full[i] if v == 0 and i < len(full) else v for i, v in enumerate(t)]
        worlds.append((batch, t))
    (_, ta), (_, tb) = worlds
    if ta == tb == [-1]:                       # every value in one axis, batch included
        ctx.set(FlatBatch(x, ctx.node.name or "(unnamed)"))
        return
    if not ta or ta[1:] != tb[1:]:
        raise ctx.fail(f"its target shape {ta} / {tb} changes with the batch size beyond the batch axis")
    rest = ta[1:]
    batch_first = (ta[0], tb[0]) == (BATCH_A, BATCH_B) or (ta[0] == tb[0] and (
        (ta[0] == -1 and -1 not in rest and prod(rest) == prod(x.shape))
        or (ctx.static_batch is not None and ta[0] == ctx.static_batch)))
    if not batch_first:
        raise ctx.fail(f"its target shape {ta} merges the batch axis with others, which convscope's "
                       f"per-sample layers cannot express")
    ctx.set(_reshaped(ctx, x, rest))


def flatten(ctx):
    x = ctx.tensor(0)
    axis = int(ctx.attr("axis", 1)) % x.rank if int(ctx.attr("axis", 1)) else 0
    if axis == 0:
        raise ctx.fail("Flatten at axis 0 merges the batch axis")
    s = x.shape
    ctx.set(_reshaped(ctx, x, (prod(s[:axis - 1]), prod(s[axis - 1:])) if axis > 1 else (prod(s),)))


def squeeze(ctx):
    x = ctx.tensor(0)
    axes = axes_of(ctx, [None] + [None if not isinstance(v, Const) else v.a for v in ctx.inputs()[1:]])
    axes = [a % x.rank for a in axes] if axes is not None else [i + 1 for i, s in enumerate(x.shape) if s == 1]
    if 0 in axes or any(x.shape[a - 1] != 1 for a in axes):
        raise ctx.fail(f"it squeezes axes {axes} of a tensor of per-sample shape {x.shape}")
    ctx.set(_reshaped(ctx, x, [s for i, s in enumerate(x.shape, start=1) if i not in axes]))


def unsqueeze(ctx):
    x = ctx.tensor(0)
    axes = axes_of(ctx, [None] + [None if not isinstance(v, Const) else v.a for v in ctx.inputs()[1:]])
    rank = x.rank + len(axes)
    axes = sorted(a % rank for a in axes)
    if 0 in axes:
        raise ctx.fail("it inserts an axis before the batch axis")
    shape = list(x.shape)
    for a in axes:
        shape.insert(a - 1, 1)
    ctx.set(_reshaped(ctx, x, shape))


def transpose(ctx):
    x = ctx.tensor(0)
    perm = [int(p) for p in ctx.attr("perm", list(range(x.rank))[::-1])]
    if perm[0] != 0:
        raise ctx.fail(f"its permutation {perm} moves the batch axis")
    inner = [p - 1 for p in perm[1:]]
    ctx.set(x if inner == list(range(len(inner))) else ctx.emit(Transpose(inner), [x]))


def _clamp(v: int) -> int:
    return max(-_BOUND, min(_BOUND, int(v)))


def _slice_layer(ctx, x: Tensor, starts, ends, axes, steps, suffix: str = "") -> Tensor:
    keep = []
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = a % x.rank
        if a == 0:
            if (st, s) == (1, 0) and e >= _BOUND:
                continue                              # the whole batch: nothing to do
            raise ctx.fail("it slices the batch axis")
        size = x.shape[a - 1]
        if st == 1 and range(*slice(s, e, st).indices(size)) == range(size):
            continue
        keep.append((a - 1, _clamp(s), _clamp(e), _clamp(st)))
    if not keep:
        return x
    axes_, starts_, ends_, steps_ = (list(v) for v in zip(*keep))
    return ctx.emit(Slice(axes_, starts_, ends_, steps_), [x], suffix=suffix)


def slice_(ctx):
    x = ctx.tensor(0, "data")
    if len(ctx.node.input) > 1:
        parts = [ctx.const(i, what) for i, what in enumerate(("starts", "ends", "axes", "steps"), start=1)]
        starts, ends = ([int(v) for v in np.asarray(p.a).reshape(-1)] for p in parts[:2])
        axes = list(range(len(starts))) if parts[2] is None else [int(v) for v in np.asarray(parts[2].a).reshape(-1)]
        steps = [1] * len(starts) if parts[3] is None else [int(v) for v in np.asarray(parts[3].a).reshape(-1)]
    else:
        starts, ends = list(ctx.attr("starts")), list(ctx.attr("ends"))
        axes = list(ctx.attr("axes", range(len(starts))))
        steps = [1] * len(starts)
    if 0 in steps:
        raise ctx.fail("a slice step is 0")
    ctx.set(_slice_layer(ctx, x, starts, ends, axes, steps))


def split(ctx):
    x = ctx.tensor(0)
    axis = int(ctx.attr("axis", 0)) % x.rank
    if axis == 0:
        raise ctx.fail("it splits the batch axis")
    size, n = x.shape[axis - 1], len(ctx.node.output)
    sizes = ctx.const(1, "split sizes") if len(ctx.node.input) > 1 and ctx.node.input[1] else None
    sizes = [int(v) for v in np.asarray(sizes.a).reshape(-1)] if sizes is not None else ctx.attr("split")
    if sizes is None:
        chunk = -(-size // n)
        sizes = [min(chunk, size - i * chunk) for i in range(n)]
    sizes = [int(s) for s in sizes]
    if len(sizes) != n or sum(sizes) != size or min(sizes) < 0:
        raise ctx.fail(f"split sizes {sizes} do not cut {size} into {n} parts")
    start = 0
    for i, s in enumerate(sizes):
        ctx.set(_slice_layer(ctx, x, [start], [start + s], [axis], [1], suffix=str(i)), i)
        start += s


def concat(ctx):
    values = ctx.inputs()
    if not all(isinstance(v, Tensor) for v in values):
        raise ctx.fail("it concatenates computed tensors with constants, which convscope does not support")
    axis = int(ctx.attr("axis")) % values[0].rank
    if axis == 0:
        raise ctx.fail("it concatenates along the batch axis")
    ctx.set(values[0] if len(values) == 1 else ctx.emit(Cat(axis - 1), values))


def pad(ctx):
    x = ctx.tensor(0, "data")
    mode = ctx.attr("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise ctx.fail(f"pad mode {mode!r} is not supported (only 'constant')")
    if len(ctx.node.input) > 1:
        pads = [int(v) for v in np.asarray(ctx.const(1, "pads").a).reshape(-1)]
        value = ctx.const(2, "pad value") if len(ctx.node.input) > 2 and ctx.node.input[2] else None
        value = 0.0 if value is None else float(np.asarray(value.a).reshape(-1)[0])
        axes = ctx.const(3, "axes") if len(ctx.node.input) > 3 and ctx.node.input[3] else None
    else:
        pads, value, axes = list(ctx.attr("pads")), float(ctx.attr("value", 0.0)), None
    axes = list(range(x.rank)) if axes is None else [int(a) % x.rank for a in np.asarray(axes.a).reshape(-1)]
    k = len(axes)
    if len(pads) != 2 * k or min(pads) < 0:
        raise ctx.fail(f"pads {pads} are not two non-negative numbers per axis")
    per_axis = {a: (pads[i], pads[i + k]) for i, a in enumerate(axes)}
    if per_axis.get(0, (0, 0)) != (0, 0):
        raise ctx.fail("it pads the batch axis")
    pairs = [list(per_axis.get(a, (0, 0))) for a in range(1, x.rank)]
    ctx.set(x if not any(map(any, pairs)) else ctx.emit(Pad(pairs, value), [x]))


def _reduce(cls):
    def convert(ctx):
        x = ctx.tensor(0)
        values = [None] + [None if not isinstance(v, Const) else v.a for v in ctx.inputs()[1:]]
        axes = axes_of(ctx, values)
        if not axes:
            if ctx.attr("noop_with_empty_axes", 0):
                ctx.set(x)
                return
            axes = list(range(x.rank))
        axes = sorted({a % x.rank for a in axes})
        if 0 in axes:
            raise ctx.fail("it reduces over the batch axis")
        ctx.set(ctx.emit(cls([a - 1 for a in axes], keepdims=bool(ctx.attr("keepdims", 1))), [x]))
    return convert


def _softmax(cls):
    def convert(ctx):
        x = ctx.tensor(0)
        default = -1 if ctx.opset >= 13 else 1
        axis = int(ctx.attr("axis", default)) % x.rank
        if axis == 0:
            raise ctx.fail("softmax over the batch axis is not supported")
        if ctx.opset >= 13 or axis == x.rank - 1:
            ctx.set(ctx.emit(cls(axis - 1), [x]))
            return
        # Before opset 13 the axes from ``axis`` on are flattened into one.
        flat = _reshaped(ctx, x, x.shape[:axis - 1] + (prod(x.shape[axis - 1:]),), suffix="flat")
        y = ctx.emit(cls(axis - 1), [flat], suffix="softmax")
        ctx.set(_reshaped(ctx, y, x.shape))
    return convert


def alias(ctx):
    """Identity, Dropout (inference), Cast to float: the tensor itself, no node."""
    x = ctx.tensor(0)
    if ctx.node.op_type == "Cast" and onnx_dtype(ctx.attr("to")).kind != "f":
        raise ctx.fail(f"it casts an image tensor to {onnx_dtype(ctx.attr('to'))}")
    if ctx.node.op_type == "Dropout" and len(ctx.node.output) > 1 and ctx.node.output[1]:
        raise ctx.fail("its mask output is not supported")
    ctx.set(x)


def shape(ctx):
    x = ctx.tensor(0)
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    a = np.asarray((BATCH_A,) + x.shape, dtype=np.int64)[start:end]
    b = np.asarray((BATCH_B,) + x.shape, dtype=np.int64)[start:end]
    ctx.set(Const(a, b))


def size(ctx):
    x = ctx.tensor(0)
    ctx.set(Const(np.asarray(BATCH_A * prod(x.shape), dtype=np.int64),
                  np.asarray(BATCH_B * prod(x.shape), dtype=np.int64)))


def _gather_flat(ctx, flat: FlatBatch) -> None:
    """Gather from a fully flattened batch with indices (N, *rest) that take sample n's own values
    in C order, n * size + arange(size): a per-sample reshape to ``rest``."""
    x, size = flat.tensor, prod(flat.tensor.shape)
    idx = ctx.const(1, "indices", fixed=False)
    for batch, values in ((BATCH_A, idx.a), (BATCH_B, idx.b)):
        v = np.asarray(values).astype(np.int64)
        own = v - (np.arange(batch) * size).reshape((-1,) + (1,) * (v.ndim - 1)) if v.ndim and len(v) == batch \
            else None
        if own is None or own.size != batch * size or \
                not np.array_equal(own, np.broadcast_to(np.arange(size).reshape(own.shape[1:]), own.shape)):
            raise ctx.fail("it gathers from a flattened batch in an order other than each sample's own "
                           "values, which convscope does not support")
    ctx.set(_reshaped(ctx, x, np.asarray(idx.a).shape[1:]))


def gather(ctx):
    """x[:, ..., i, ...] with a constant index (or a run of consecutive indices) on a non-batch axis."""
    data = ctx.inputs()[0]
    if isinstance(data, FlatBatch) and int(ctx.attr("axis", 0)) == 0:
        _gather_flat(ctx, data)
        return
    x = ctx.tensor(0, "data")
    idx = np.asarray(ctx.const(1, "indices").a).astype(np.int64)
    axis = int(ctx.attr("axis", 0)) % x.rank
    if axis == 0:
        raise ctx.fail("it gathers along the batch axis")
    size = x.shape[axis - 1]
    flat = np.where(idx < 0, idx + size, idx).reshape(-1)
    if flat.size == 0 or np.any((flat < 0) | (flat >= size)) or np.any(np.diff(flat) != 1):
        raise ctx.fail(f"only a constant index or a run of consecutive indices is supported, got "
                       f"{idx.reshape(-1)[:8].tolist()}")
    sliced = _slice_layer(ctx, x, [int(flat[0])], [int(flat[-1]) + 1], [axis], [1], suffix="slice")
    out = list(x.shape[:axis - 1]) + list(idx.shape) + list(x.shape[axis:])
    ctx.set(_reshaped(ctx, sliced, out))


def constant(ctx):
    attrs = {a.name for a in ctx.node.attribute}
    if "value" in attrs:
        value = ctx.tensor_value(ctx.attr("value"))
    elif attrs & {"value_float", "value_floats"}:
        value = np.asarray(ctx.attr("value_float", ctx.attr("value_floats")), dtype=np.float32)
    elif attrs & {"value_int", "value_ints"}:
        value = np.asarray(ctx.attr("value_int", ctx.attr("value_ints")), dtype=np.int64)
    else:
        raise ctx.fail(f"Constant with attributes {sorted(attrs)} is not supported")
    ctx.set(Const.of(value))


SHAPE_CONVERTERS = {
    "Reshape": reshape, "Flatten": flatten, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
    "Transpose": transpose, "Slice": slice_, "Split": split, "Concat": concat, "Pad": pad,
    "ReduceMean": _reduce(ReduceMean), "ReduceMax": _reduce(ReduceMax), "ReduceSum": _reduce(ReduceSum),
    "Softmax": _softmax(Softmax), "LogSoftmax": _softmax(LogSoftmax),
    "Identity": alias, "Dropout": alias, "Cast": alias, "Shape": shape, "Size": size,
    "Gather": gather, "Constant": constant,
}
