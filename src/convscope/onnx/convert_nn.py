"""ONNX ops that compute: convolution, fully connected, pooling, normalisation, activations,
element-wise arithmetic. Each converter ``fn(ctx)`` reads the current ONNX node from ``ctx``
(:class:`~convscope.onnx.context.ImportContext`), emits convscope layers and sets the node's
outputs. Weights must be constants (initializers); data inputs must be run-time tensors.
"""

from __future__ import annotations

import math

import numpy as np

from ..layers import (Add, AvgPool2d, BatchNorm1d, BatchNorm2d, Clip, Conv2d, Div, Erf, Exp, Gelu,
                      HardSigmoid, HardSwish, LayerNorm, LeakyReLU, Linear, LinearND, LocalResponseNorm,
                      MaxPool2d, Mul, Neg, OnnxLocalResponseNorm, Pad, Pow, Reciprocal, ReduceMax,
                      ReduceMean, ReLU, Sigmoid, Sqrt, Sub, Tanh)
from ..layers.init import zeros
from .context import Const, Tensor

__all__ = ["NN_CONVERTERS"]

_LOWEST = float(np.finfo(np.float32).min)       # max-pool padding that never wins


def _text(value, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def _spatial(ctx, x: Tensor, what: str) -> None:
    if x.rank != 4:
        raise ctx.fail(f"convscope {what} is 2-D: it needs an (N, C, H, W) input, got per-sample shape {x.shape}")


def _pads(ctx, x: Tensor, kernel, strides) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from ``pads`` or ``auto_pad``."""
    auto = _text(ctx.attr("auto_pad"), "NOTSET")
    if auto == "NOTSET":
        pads = [int(p) for p in ctx.attr("pads", [0, 0, 0, 0])]
        if len(pads) != 4 or min(pads) < 0:
            raise ctx.fail(f"pads {pads} are not four non-negative numbers")
        return pads[0], pads[1], pads[2], pads[3]
    if auto == "VALID":
        return 0, 0, 0, 0
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.fail(f"auto_pad {auto!r} is not one ONNX defines")
    out = []
    for size, k, s in zip(x.shape[1:], kernel, strides):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        small, big = total // 2, total - total // 2
        out.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def _check_dilations(ctx) -> None:
    dil = ctx.attr("dilations")
    if dil is not None and any(d != 1 for d in dil):
        raise ctx.fail(f"dilations {list(dil)} are not supported (convscope's windows have dilation 1)")


def _explicit_pad(ctx, x: Tensor, pads, value: float) -> Tensor:
    t, l, b, r = pads
    return ctx.emit(Pad([[0, 0], [t, b], [l, r]], value), [x], suffix="pad")


def conv(ctx):
    x = ctx.tensor(0)
    _spatial(ctx, x, "convolution")
    _check_dilations(ctx)
    w = ctx.const(1, "weight")
    b = ctx.const(2, "bias")
    weight = np.asarray(w.a, dtype=np.float32)
    if weight.ndim != 4:
        raise ctx.fail(f"its weight has shape {weight.shape}; convscope convolutions are 2-D")
    f, cg, kh, kw = weight.shape
    groups = int(ctx.attr("group", 1))
    strides = tuple(int(s) for s in ctx.attr("strides", [1, 1]))
    pads = _pads(ctx, x, (kh, kw), strides)
    if groups < 1 or cg * groups != x.shape[0]:
        raise ctx.fail(f"weight {weight.shape} with group={groups} does not fit {x.shape[0]} input channels")
    if (pads[0], pads[1]) != (pads[2], pads[3]):
        x, pads = _explicit_pad(ctx, x, pads, 0.0), (0, 0, 0, 0)
    layer = Conv2d(x.shape[0], f, (kh, kw), strides, (pads[0], pads[1]), groups=groups, bias=b is not None,
                   init=zeros)
    weights = {"weight": (weight, w.source)}
    if b is not None:
        weights["bias"] = (np.asarray(b.a, dtype=np.float32).reshape(f), b.source)
    ctx.set(ctx.emit(layer, [x], weights))


def _pool(kind: str):
    def convert(ctx):
        x = ctx.tensor(0)
        _spatial(ctx, x, "pooling")
        _check_dilations(ctx)
        if kind == "max" and len(ctx.node.output) > 1 and ctx.node.output[1]:
            raise ctx.fail("its second output (the arg-max indices) is not supported")
        kernel = tuple(int(k) for k in ctx.attr("kernel_shape"))
        strides = tuple(int(s) for s in ctx.attr("strides", [1, 1]))
        pads = _pads(ctx, x, kernel, strides)
        ceil = bool(ctx.attr("ceil_mode", 0))
        include = bool(ctx.attr("count_include_pad", 0))
        symmetric = (pads[0], pads[1]) == (pads[2], pads[3])
        if not (symmetric and 2 * pads[0] <= kernel[0] and 2 * pads[1] <= kernel[1]):
            if ceil or (kind == "avg" and not include):
                raise ctx.fail(f"pads {list(pads)} with this kernel and ceil_mode/count_include_pad "
                               f"have no convscope form")
            x, pads = _explicit_pad(ctx, x, pads, _LOWEST if kind == "max" else 0.0), (0, 0, 0, 0)
        padding = (pads[0], pads[1])
        layer = MaxPool2d(kernel, strides, padding, ceil_mode=ceil) if kind == "max" else \
            AvgPool2d(kernel, strides, padding, count_include_pad=include, ceil_mode=ceil)
        ctx.set(ctx.emit(layer, [x]))
    return convert


def _global(cls):
    def convert(ctx):
        x = ctx.tensor(0)
        if x.rank < 3:
            raise ctx.fail(f"it needs a map with spatial axes, got per-sample shape {x.shape}")
        ctx.set(ctx.emit(cls(list(range(1, len(x.shape))), keepdims=True), [x]))
    return convert


def _linear(ctx, x: Tensor, weight: np.ndarray, w_source, bias, b_source):
    out, n_in = weight.shape
    if x.shape[-1] != n_in:
        raise ctx.fail(f"its weight {weight.shape} does not fit inputs with {x.shape[-1]} features")
    cls = Linear if x.rank == 2 else LinearND
    layer = cls(n_in, out, bias=bias is not None, init=zeros)
    weights = {"weight": (weight, w_source)}
    if bias is not None:
        weights["bias"] = (bias, b_source)
    return ctx.emit(layer, [x], weights)


def _bias_vector(ctx, c: Const, out: int, scale: float = 1.0) -> np.ndarray:
    value = np.asarray(c.a, dtype=np.float32)
    if value.size not in (1, out) or (value.ndim == 2 and value.shape[0] != 1) or value.ndim > 2:
        raise ctx.fail(f"its bias of shape {value.shape} is not one value per output ({out})")
    return np.broadcast_to(value.reshape(-1), (out,)) * np.float32(scale)


def gemm(ctx):
    x = ctx.tensor(0)
    if x.rank != 2 or ctx.attr("transA", 0):
        raise ctx.fail(f"only y = x B + C with x (N, in) is supported (got per-sample {x.shape}, "
                       f"transA={ctx.attr('transA', 0)})")
    b, c = ctx.const(1, "weight"), ctx.const(2, "bias")
    weight = np.asarray(b.a, dtype=np.float32)
    weight = weight if ctx.attr("transB", 0) else weight.T
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    if alpha != 1.0:
        weight = weight * np.float32(alpha)
    bias = None if c is None else _bias_vector(ctx, c, weight.shape[0], beta)
    ctx.set(_linear(ctx, x, weight, b.source, bias, None if c is None else c.source))


def matmul(ctx):
    x = ctx.tensor(0, "first operand")
    b = ctx.const(1, "second operand (the weight)")
    weight = np.asarray(b.a, dtype=np.float32)
    if weight.ndim != 2:
        raise ctx.fail(f"only products with a constant 2-D weight are supported, got {weight.shape}")
    bias = bias_source = None
    fused = ctx.fused.get(ctx.node.output[0])
    if fused is not None:                              # MatMul then Add(bias): one linear layer
        add_node, other = fused
        c = ctx.values.get(add_node.input[other])
        if isinstance(c, Const) and c.fixed and np.asarray(c.a).size == weight.shape[1]:
            bias, bias_source = _bias_vector(ctx, c, weight.shape[1]), c.source
        else:
            fused = None
    y = _linear(ctx, x, np.ascontiguousarray(weight.T), b.source, bias, bias_source)
    ctx.set(y)
    if fused is not None:
        ctx.values[fused[0].output[0]] = y
        ctx.done.add(id(fused[0]))


def batch_norm(ctx):
    x = ctx.tensor(0)
    if ctx.attr("training_mode", 0) or any(o for o in ctx.node.output[1:]):
        raise ctx.fail("batch norm in training mode (with its statistics outputs) is not supported")
    cls = {4: BatchNorm2d, 2: BatchNorm1d}.get(x.rank)
    if cls is None:
        raise ctx.fail(f"batch norm over per-sample shape {x.shape} is not supported ((C,) or (C, H, W))")
    c = x.shape[0]
    parts = [ctx.const(i, what) for i, what in enumerate(("scale", "bias", "mean", "variance"), start=1)]
    keys = ("weight", "bias", "running_mean", "running_var")
    weights = {k: (np.asarray(p.a, dtype=np.float32).reshape(c), p.source) for k, p in zip(keys, parts)}
    momentum = 1.0 - float(ctx.attr("momentum", 0.9))          # ONNX keeps (1 - PyTorch's momentum)
    layer = cls(c, eps=float(ctx.attr("epsilon", 1e-5)), momentum=min(max(momentum, 0.0), 1.0))
    ctx.set(ctx.emit(layer, [x], weights))


def layer_norm(ctx):
    x = ctx.tensor(0)
    if any(o for o in ctx.node.output[1:]):
        raise ctx.fail("its mean / inverse-deviation outputs are not supported")
    axis = int(ctx.attr("axis", -1)) % x.rank
    if axis == 0:
        raise ctx.fail("layer norm over the batch axis is not supported")
    shape = x.shape[axis - 1:]
    scale, bias = ctx.const(1, "scale"), ctx.const(2, "bias")
    weights = {"weight": (np.broadcast_to(np.asarray(scale.a, dtype=np.float32), shape).copy(), scale.source)}
    if bias is not None:
        weights["bias"] = (np.broadcast_to(np.asarray(bias.a, dtype=np.float32), shape).copy(), bias.source)
    layer = LayerNorm(list(shape), eps=float(ctx.attr("epsilon", 1e-5)), bias=bias is not None)
    ctx.set(ctx.emit(layer, [x], weights))


def lrn(ctx):
    x = ctx.tensor(0)
    _spatial(ctx, x, "LRN")
    size = int(ctx.attr("size"))
    cls = LocalResponseNorm if size % 2 else OnnxLocalResponseNorm
    layer = cls(size, alpha=float(ctx.attr("alpha", 1e-4)), beta=float(ctx.attr("beta", 0.75)),
                k=float(ctx.attr("bias", 1.0)))
    ctx.set(ctx.emit(layer, [x]))


def _scalar(ctx, i: int, attr: str, what: str):
    """A scalar from input ``i`` (newer opsets) or attribute ``attr`` (older ones), or None."""
    c = ctx.const(i, what) if i < len(ctx.node.input) and ctx.node.input[i] else None
    if c is not None:
        value = np.asarray(c.a)
        if value.size != 1:
            raise ctx.fail(f"its {what} must be one number, got shape {value.shape}")
        return float(value.reshape(-1)[0])
    value = ctx.attr(attr)
    return None if value is None else float(value)


def clip(ctx):
    x = ctx.tensor(0)
    low, high = _scalar(ctx, 1, "min", "minimum"), _scalar(ctx, 2, "max", "maximum")
    low = None if low is not None and low <= -3.4e38 else low
    high = None if high is not None and high >= 3.4e38 else high
    ctx.set(ctx.emit(Clip(low, high), [x]))


def power(ctx):
    x = ctx.tensor(0)
    exponent = _scalar(ctx, 1, "", "exponent")
    ctx.set(ctx.emit(Pow(exponent), [x]))


def _unary(make):
    def convert(ctx):
        ctx.set(ctx.emit(make(ctx), [ctx.tensor(0)]))
    return convert


def _binary(cls):
    def convert(ctx):
        a, b = ctx.inputs()[:2]
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            if a.rank != b.rank:
                raise ctx.fail(f"its operands have ranks {a.rank} and {b.rank}; convscope broadcasts "
                               f"tensors of the same rank")
            ctx.set(ctx.emit(cls(), [a, b]))
            return
        t = a if isinstance(a, Tensor) else b
        k = ctx.constant(b if t is a else a, t.rank, "operand")
        ctx.set(ctx.emit(cls(), [t, k] if t is a else [k, t]))
    return convert


def total(ctx):
    """ONNX Sum: a chain of additions."""
    values = ctx.inputs()
    if not all(isinstance(v, Tensor) for v in values):
        raise ctx.fail("Sum with constant operands is not supported")
    acc = values[0]
    for i, v in enumerate(values[1:], start=1):
        acc = ctx.emit(Add(), [acc, v], suffix=f"add{i}" if i < len(values) - 1 else "")
    ctx.set(acc)


NN_CONVERTERS = {
    "Conv": conv, "MaxPool": _pool("max"), "AveragePool": _pool("avg"),
    "GlobalAveragePool": _global(ReduceMean), "GlobalMaxPool": _global(ReduceMax),
    "Gemm": gemm, "MatMul": matmul, "BatchNormalization": batch_norm, "LayerNormalization": layer_norm,
    "LRN": lrn, "Clip": clip, "Pow": power,
    "Relu": _unary(lambda ctx: ReLU()), "Sigmoid": _unary(lambda ctx: Sigmoid()),
    "Tanh": _unary(lambda ctx: Tanh()),
    "LeakyRelu": _unary(lambda ctx: LeakyReLU(float(ctx.attr("alpha", 0.01)))),
    "HardSigmoid": _unary(lambda ctx: HardSigmoid(float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5)))),
    "HardSwish": _unary(lambda ctx: HardSwish()), "Erf": _unary(lambda ctx: Erf()),
    "Gelu": _unary(lambda ctx: Gelu(_text(ctx.attr("approximate"), "none"))),
    "Sqrt": _unary(lambda ctx: Sqrt()), "Exp": _unary(lambda ctx: Exp()), "Neg": _unary(lambda ctx: Neg()),
    "Reciprocal": _unary(lambda ctx: Reciprocal()),
    "Add": _binary(Add), "Sub": _binary(Sub), "Mul": _binary(Mul), "Div": _binary(Div), "Sum": total,
}
