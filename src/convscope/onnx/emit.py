"""Each convscope layer as ONNX nodes: one emitter per layer class.

An emitter is ``fn(w, layer, name, inputs, shapes) -> tensor`` with ``w`` the
:class:`~convscope.onnx.writer.Writer`, ``inputs`` the ONNX tensor names the layer reads and
``shapes`` their per-sample shapes (one each); it returns the name of its output tensor.
Axes are shifted by one (ONNX counts the batch axis). Batch norm stays BatchNormalization
in inference form, so its four state-dict names survive; the zero-padding shortcut is a
strided Slice and a channel Pad; cross-channel pooling is a Reshape and a reduction.
"""

from __future__ import annotations

import numpy as np

from ..layers import (Add, AvgPool2d, BatchNorm1d, BatchNorm2d, Cat, Clip, Constant, Conv2d,
                      CrossChannelPool, Div, Erf, Exp, Flatten, Gelu, GlobalAvgPool2d, HardSigmoid,
                      HardSwish, LayerNorm, LeakyReLU, Linear, LinearND, LocalResponseNorm, LogSoftmax,
                      MaxPool2d, Mul, Neg, OnnxLocalResponseNorm, Pad, Pow, Reciprocal, ReduceMax,
                      ReduceMean, ReduceSum, ReLU, Reshape, Sigmoid, Slice, Softmax, Sqrt, Sub, Tanh,
                      Transpose, ZeroPadShortcut)
from .errors import OnnxExportError

__all__ = ["EMITTERS", "emitter_for"]

_INT64_MAX = np.iinfo(np.int64).max


def _param(layer, key: str, name: str):
    store = layer.params if key in layer.params else layer.buffers
    return store[key]


def _init(w, layer, name: str, key: str) -> str:
    return w.initializer(f"{name}.{key}", _param(layer, key, name))


def _conv(w, m: Conv2d, name, xs, shapes):
    ins = [xs[0], _init(w, m, name, "weight")] + ([_init(w, m, name, "bias")] if "bias" in m.params else [])
    (ph, pw) = m.padding
    return w.node("Conv", ins, name, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                  pads=[ph, pw, ph, pw], group=m.groups, dilations=[1, 1])


def _linear(w, m: Linear, name, xs, shapes):
    ins = [xs[0], _init(w, m, name, "weight")] + ([_init(w, m, name, "bias")] if "bias" in m.params else [])
    return w.node("Gemm", ins, name, transB=1)


def _linear_nd(w, m: LinearND, name, xs, shapes):
    weight_t = w.node("Transpose", [_init(w, m, name, "weight")], f"{name}/weight_t", perm=[1, 0])
    y = w.node("MatMul", [xs[0], weight_t], f"{name}/matmul" if "bias" in m.params else name)
    return w.node("Add", [y, _init(w, m, name, "bias")], name) if "bias" in m.params else y


def _pool(op):
    def emit(w, m, name, xs, shapes):
        (ph, pw) = m.padding
        attrs = dict(kernel_shape=list(m.kernel_size), strides=list(m.stride), pads=[ph, pw, ph, pw],
                     ceil_mode=int(m.ceil_mode))
        if op == "AveragePool":
            attrs["count_include_pad"] = int(m.count_include_pad)
        return w.node(op, [xs[0]], name, **attrs)
    return emit


def _global_avg(w, m, name, xs, shapes):
    pooled = w.node("GlobalAveragePool", [xs[0]], f"{name}/pool")
    return w.node("Flatten", [pooled], name, axis=1)


def _reduce(w, op: str, x: str, name: str, axes, keepdims: bool) -> str:
    """A reduction over ONNX ``axes``: an attribute before opset 18 (13 for ReduceSum), an input after."""
    since = 13 if op == "ReduceSum" else 18
    if w.opset >= since:
        return w.node(op, [x, w.ints(f"{name}/axes", axes)], name, keepdims=int(keepdims))
    return w.node(op, [x], name, axes=list(axes), keepdims=int(keepdims))


def _cross_channel(w, m: CrossChannelPool, name, xs, shapes):
    c, h, wd = shapes[0]
    grouped = w.node("Reshape", [xs[0], w.ints(f"{name}/shape", [0, c // m.pool_size, m.pool_size, h, wd])],
                     f"{name}/groups")
    return _reduce(w, "ReduceMax" if m.mode == "max" else "ReduceMean", grouped, name, [2], False)


def _bn(w, m, name, xs, shapes):
    ins = [xs[0]] + [_init(w, m, name, k) for k in ("weight", "bias", "running_mean", "running_var")]
    return w.node("BatchNormalization", ins, name, epsilon=m.eps)


def _lrn(w, m, name, xs, shapes):
    if type(m) is LocalResponseNorm and m.size % 2 == 0:
        raise OnnxExportError(f"layer {name!r}: LocalResponseNorm of even size {m.size} has no ONNX form "
                              f"(ONNX's LRN centres even windows one channel higher than PyTorch's)")
    return w.node("LRN", [xs[0]], name, size=m.size, alpha=m.alpha, beta=m.beta, bias=m.k)


def _zero_pad(w, m: ZeroPadShortcut, name, xs, shapes):
    s = m.stride
    sliced = w.node("Slice", [xs[0], w.ints(f"{name}/starts", [0, 0]), w.ints(f"{name}/ends", [_INT64_MAX] * 2),
                              w.ints(f"{name}/axes", [2, 3]), w.ints(f"{name}/steps", [s, s])], f"{name}/subsample")
    extra = m.out_channels - m.in_channels
    if not extra:
        return sliced
    return w.node("Pad", [sliced, w.ints(f"{name}/pads", [0, 0, 0, 0, 0, extra, 0, 0])], name, mode="constant")


def _simple(op, **fixed):
    def emit(w, m, name, xs, shapes):
        return w.node(op, list(xs), name, **fixed)
    return emit


def _leaky(w, m, name, xs, shapes):
    return w.node("LeakyRelu", [xs[0]], name, alpha=m.negative_slope)


def _constant(w, m: Constant, name, xs, shapes):
    value = w.initializer(f"{name}.{m.key}", m.value)
    return w.node("Unsqueeze", [value, w.ints(f"{name}/axes", [0])], name)      # the batch axis of 1


def _clip(w, m: Clip, name, xs, shapes):
    low = w.scalar(f"{name}/min", m.low) if m.low is not None else ""
    high = w.scalar(f"{name}/max", m.high) if m.high is not None else ""
    ins = [xs[0], low, high]
    while ins[-1] == "":
        ins.pop()
    return w.node("Clip", ins, name)


def _gelu(w, m: Gelu, name, xs, shapes):
    if w.opset >= 20:
        return w.node("Gelu", [xs[0]], name, approximate=m.approximate)
    if m.approximate == "tanh":
        raise OnnxExportError(f"layer {name!r}: the tanh GELU needs opset 20 or later, got {w.opset}")
    x = xs[0]                                            # 0.5 x (1 + erf(x / sqrt 2))
    e = w.node("Erf", [w.node("Div", [x, w.scalar(f"{name}/sqrt2", np.sqrt(2.0))], f"{name}/scaled")],
               f"{name}/erf")
    one = w.node("Add", [e, w.scalar(f"{name}/one", 1.0)], f"{name}/one_plus")
    half = w.node("Mul", [x, w.scalar(f"{name}/half", 0.5)], f"{name}/half_x")
    return w.node("Mul", [half, one], name)


def _pow(w, m: Pow, name, xs, shapes):
    return w.node("Pow", [xs[0], w.scalar(f"{name}/exponent", m.exponent)], name)


def _reshape(w, m: Reshape, name, xs, shapes):
    return w.node("Reshape", [xs[0], w.ints(f"{name}/shape", [0, *m.shape])], name)


def _transpose(w, m: Transpose, name, xs, shapes):
    return w.node("Transpose", [xs[0]], name, perm=[0] + [p + 1 for p in m.perm])


def _slice(w, m: Slice, name, xs, shapes):
    stops = [max(s, -_INT64_MAX) for s in m.stops]
    return w.node("Slice", [xs[0], w.ints(f"{name}/starts", m.starts), w.ints(f"{name}/ends", stops),
                            w.ints(f"{name}/axes", [a + 1 for a in m.axes]), w.ints(f"{name}/steps", m.steps)],
                  name)


def _pad(w, m: Pad, name, xs, shapes):
    pads = [0] + [p[0] for p in m.pads] + [0] + [p[1] for p in m.pads]
    return w.node("Pad", [xs[0], w.ints(f"{name}/pads", pads), w.scalar(f"{name}/value", m.value)], name,
                  mode="constant")


def _cat(w, m: Cat, name, xs, shapes):
    return w.node("Concat", list(xs), name, axis=m.axis + 1)


def _reduction(op):
    def emit(w, m, name, xs, shapes):
        return _reduce(w, op, xs[0], name, [a + 1 for a in m.axes], m.keepdims)
    return emit


def _softmax(op):
    def emit(w, m, name, xs, shapes):
        return w.node(op, [xs[0]], name, axis=m.axis + 1)
    return emit


def _layer_norm(w, m: LayerNorm, name, xs, shapes):
    if w.opset < 17:
        raise OnnxExportError(f"layer {name!r}: LayerNormalization needs opset 17 or later, got {w.opset}")
    ins = [xs[0], _init(w, m, name, "weight")] + ([_init(w, m, name, "bias")] if "bias" in m.params else [])
    return w.node("LayerNormalization", ins, name, axis=-len(m.normalized_shape), epsilon=m.eps)


def _hard_swish(w, m, name, xs, shapes):
    if w.opset < 14:
        gate = w.node("HardSigmoid", [xs[0]], f"{name}/gate", alpha=1 / 6, beta=0.5)
        return w.node("Mul", [xs[0], gate], name)
    return w.node("HardSwish", [xs[0]], name)


EMITTERS = {
    Conv2d: _conv, Linear: _linear, LinearND: _linear_nd, Flatten: _simple("Flatten", axis=1),
    MaxPool2d: _pool("MaxPool"), AvgPool2d: _pool("AveragePool"), GlobalAvgPool2d: _global_avg,
    CrossChannelPool: _cross_channel, BatchNorm1d: _bn, BatchNorm2d: _bn,
    LocalResponseNorm: _lrn, OnnxLocalResponseNorm: _lrn, ZeroPadShortcut: _zero_pad,
    ReLU: _simple("Relu"), LeakyReLU: _leaky, Tanh: _simple("Tanh"), Sigmoid: _simple("Sigmoid"),
    Add: _simple("Add"), Sub: _simple("Sub"), Mul: _simple("Mul"), Div: _simple("Div"),
    Constant: _constant, Clip: _clip,
    HardSigmoid: lambda w, m, name, xs, s: w.node("HardSigmoid", [xs[0]], name, alpha=m.alpha, beta=m.beta),
    HardSwish: _hard_swish, Erf: _simple("Erf"), Gelu: _gelu, Sqrt: _simple("Sqrt"), Pow: _pow,
    Exp: _simple("Exp"), Neg: _simple("Neg"), Reciprocal: _simple("Reciprocal"),
    Reshape: _reshape, Transpose: _transpose, Slice: _slice, Pad: _pad, Cat: _cat,
    ReduceMean: _reduction("ReduceMean"), ReduceMax: _reduction("ReduceMax"), ReduceSum: _reduction("ReduceSum"),
    Softmax: _softmax("Softmax"), LogSoftmax: _softmax("LogSoftmax"), LayerNorm: _layer_norm,
}


def emitter_for(layer, name: str):
    """The emitter of ``layer``'s class (or of its nearest base that has one)."""
    for cls in type(layer).__mro__:
        if cls in EMITTERS:
            return EMITTERS[cls]
    raise OnnxExportError(f"layer {name!r} is a {type(layer).__name__}, which has no ONNX form; exportable "
                          f"layers: {', '.join(sorted(c.__name__ for c in EMITTERS))}")
