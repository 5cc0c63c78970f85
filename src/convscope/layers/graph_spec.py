"""A :class:`~convscope.layers.graph.Graph` as JSON data, and back, checked like untrusted input.

The spec is what a checkpoint stores to rebuild a graph (``model.options.graph``)::

    {"version": 1, "output": "fc",
     "nodes": [{"name": "conv1", "op": "Conv2d", "inputs": ["input"],
                "args": {"in_channels": 3, "out_channels": 64, "kernel_size": [7, 7],
                         "stride": [2, 2], "padding": [3, 3], "groups": 1, "bias": false}},
               ...]}

``op`` is one of :data:`LAYER_TYPES` (a fixed table of layer classes: nothing else can be
built), ``args`` its constructor arguments, each checked against the table's schema (type
and range) before any constructor runs, and ``inputs`` the tensors it reads (``"input"`` or
earlier nodes). Weights are not in the spec: they are the checkpoint's arrays, named
``{node}.{key}`` as every state dict is.

Bounds (an untrusted file must not build arbitrary objects or allocate without limit): at
most :data:`MAX_NODES` nodes and :data:`MAX_NODE_INPUTS` inputs per node; names of at most
:data:`MAX_NAME` characters; channel and feature counts up to 65,536 (the checkpoint's bound
on layer widths); window sizes up to 4,096 (the largest input side); a constant's shape up
to 2^26 values; and the widths summed over all nodes up to 2^23, since batch norm and bias
vectors are allocated even when a model is built for its shapes only. :class:`Graph` then bounds every tensor at 2^28 values per sample when the
registry checks the output shape.

>>> from convscope.layers import Graph, ReLU, Add
>>> g = Graph([("relu", ReLU(), ["input"]), ("add", Add(), ["relu", "input"])], output="add")
>>> spec = graph_to_spec(g)
>>> [n["op"] for n in spec["nodes"]]
['ReLU', 'Add']
>>> graph_from_spec(spec).output_shape((2, 3))
(2, 3)
"""

from __future__ import annotations

import math
import re
from typing import Callable, NamedTuple

from ..validation import is_int
from .activations import Dropout, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Module
from .blocks import ZeroPadShortcut
from .containers import Identity
from .conv import Conv2d
from .elementwise import Add, Constant, Div, Mul, Sub
from .graph import Graph
from .linear import Flatten, Linear
from .linear_nd import LinearND
from .norm_extra import LayerNorm, OnnxLocalResponseNorm
from .normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from .pointwise import Clip, Erf, Exp, Gelu, HardSigmoid, HardSwish, Neg, Pow, Reciprocal, Sqrt
from .pooling import AvgPool2d, CrossChannelPool, GlobalAvgPool2d, MaxPool2d
from .reduce import LogSoftmax, ReduceMax, ReduceMean, ReduceSum, Softmax
from .shape_ops import MAX_RANK, Cat, Pad, Reshape, Slice, Transpose

__all__ = ["LAYER_TYPES", "SPEC_VERSION", "MAX_NODES", "MAX_NODE_INPUTS", "MAX_NAME",
           "check_graph_spec", "graph_from_spec", "graph_to_spec", "layer_args"]

SPEC_VERSION = 1
MAX_NODES = 20_000          # ResNet-152 has ~500 layers, an EfficientNet-B7 export ~1,500 nodes
MAX_NODE_INPUTS = 256       # a DenseNet-201 concatenation reads 49 tensors
MAX_NAME = 256
_WIDTH = 1 << 16            # channels / features (checkpoint.py's bound on integer options)
_SIDE = 4096                # kernel, stride, padding (checkpoint.py's MAX_SIDE)
_CONST = 1 << 26            # values in one Constant
_DIM = 1 << 31              # one entry of a shape
_TOTAL_WIDTH = 1 << 23      # channels + features over all nodes (ResNet-152: ~0.2 M)
_WIDTH_ARGS = ("in_channels", "out_channels", "num_features", "in_features", "out_features")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# -- argument kinds: each takes (value, what) and returns the checked value or raises ------
def _int(lo: int, hi: int) -> Callable:
    def check(v, what):
        if not is_int(v) or not lo <= v <= hi:
            raise ValueError(f"{what} must be an integer in {lo}..{hi}, got {_short(v)}")
        return int(v)
    return check


def _real(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number, got {_short(v)}")
    return float(v)


def _opt_real(v, what):
    return None if v is None else _real(v, what)


def _bool(v, what):
    if not isinstance(v, bool):
        raise ValueError(f"{what} must be true or false, got {_short(v)}")
    return v


def _choice(*options) -> Callable:
    def check(v, what):
        if v not in options:
            raise ValueError(f"{what} must be one of {', '.join(map(repr, options))}, got {_short(v)}")
        return v
    return check


def _ints(lo: int, hi: int, max_len: int = MAX_RANK, min_len: int = 0) -> Callable:
    one = _int(lo, hi)

    def check(v, what):
        if not isinstance(v, list) or not min_len <= len(v) <= max_len:
            raise ValueError(f"{what} must be a list of {min_len} to {max_len} integers, got {_short(v)}")
        return [one(x, f"{what} entry") for x in v]
    return check


def _pair(lo: int, hi: int) -> Callable:
    return _ints(lo, hi, 2, 2)


def _pairs(v, what):
    if not isinstance(v, list) or not 1 <= len(v) <= MAX_RANK:
        raise ValueError(f"{what} must be a list of 1 to {MAX_RANK} [before, after] pairs, got {_short(v)}")
    return [_pair(0, _SIDE)(p, f"{what} entry") for p in v]


def _key(v, what):
    if not isinstance(v, str) or len(v) > 64 or not _KEY.fullmatch(v):
        raise ValueError(f"{what} must be an identifier, got {_short(v)}")
    return v


def _shape(v, what):
    shape = _ints(1, _DIM)(v, what)
    if math.prod(shape) > _CONST:
        raise ValueError(f"{what} {shape} holds more than {_CONST} values")
    return shape


class LayerType(NamedTuple):
    """A buildable layer: its class, the schema of its constructor's arguments (name ->
    checker) and how to read those arguments back from an instance."""

    cls: type
    schema: dict[str, Callable]
    args_of: Callable[[Module], dict]


def _pool_args(m) -> dict:
    return {"kernel_size": list(m.kernel_size), "stride": list(m.stride), "padding": list(m.padding),
            "ceil_mode": m.ceil_mode}


def _lrn_args(m) -> dict:
    return {"size": m.size, "alpha": m.alpha, "beta": m.beta, "k": m.k}


def _none(m) -> dict:
    return {}


_W, _S = _int(1, _WIDTH), _pair(1, _SIDE)
_POOL = {"kernel_size": _S, "stride": _S, "padding": _pair(0, _SIDE), "ceil_mode": _bool}
_LRN = {"size": _int(1, _SIDE), "alpha": _real, "beta": _real, "k": _real}
_REDUCE = ({"axes": _ints(0, MAX_RANK - 1, min_len=1), "keepdims": _bool},
           lambda m: {"axes": list(m.axes), "keepdims": m.keepdims})
_AXIS = ({"axis": _int(0, MAX_RANK - 1)}, lambda m: {"axis": m.axis})
_BN = ({"num_features": _W, "eps": _real, "momentum": _real},
       lambda m: {"num_features": m.num_features, "eps": m.eps, "momentum": m.momentum})
_LINEAR = ({"in_features": _W, "out_features": _W, "bias": _bool},
           lambda m: {"in_features": m.in_features, "out_features": m.out_features, "bias": "bias" in m.params})

LAYER_TYPES: dict[str, LayerType] = {
    "Conv2d": LayerType(Conv2d, {"in_channels": _W, "out_channels": _W, "kernel_size": _S, "stride": _S,
                                 "padding": _pair(0, _SIDE), "groups": _W, "bias": _bool},
                        lambda m: {"in_channels": m.in_channels, "out_channels": m.out_channels,
                                   "kernel_size": list(m.kernel_size), "stride": list(m.stride),
                                   "padding": list(m.padding), "groups": m.groups, "bias": "bias" in m.params}),
    "Linear": LayerType(Linear, *_LINEAR),
    "LinearND": LayerType(LinearND, *_LINEAR),
    "Flatten": LayerType(Flatten, {}, _none),
    "MaxPool2d": LayerType(MaxPool2d, _POOL, _pool_args),
    "AvgPool2d": LayerType(AvgPool2d, {**_POOL, "count_include_pad": _bool},
                           lambda m: {**_pool_args(m), "count_include_pad": m.count_include_pad}),
    "GlobalAvgPool2d": LayerType(GlobalAvgPool2d, {}, _none),
    "CrossChannelPool": LayerType(CrossChannelPool, {"pool_size": _W, "mode": _choice("max", "avg")},
                                  lambda m: {"pool_size": m.pool_size, "mode": m.mode}),
    "ReLU": LayerType(ReLU, {}, _none),
    "LeakyReLU": LayerType(LeakyReLU, {"negative_slope": _real}, lambda m: {"negative_slope": m.negative_slope}),
    "Tanh": LayerType(Tanh, {}, _none),
    "Sigmoid": LayerType(Sigmoid, {}, _none),
    "Dropout": LayerType(Dropout, {"p": _real}, lambda m: {"p": m.p}),
    "Identity": LayerType(Identity, {}, _none),
    "BatchNorm1d": LayerType(BatchNorm1d, *_BN),
    "BatchNorm2d": LayerType(BatchNorm2d, *_BN),
    "LocalResponseNorm": LayerType(LocalResponseNorm, _LRN, _lrn_args),
    "OnnxLocalResponseNorm": LayerType(OnnxLocalResponseNorm, _LRN, _lrn_args),
    "LayerNorm": LayerType(LayerNorm, {"normalized_shape": _ints(1, _WIDTH, min_len=1), "eps": _real,
                                       "bias": _bool},
                           lambda m: {"normalized_shape": list(m.normalized_shape), "eps": m.eps,
                                      "bias": "bias" in m.params}),
    "ZeroPadShortcut": LayerType(ZeroPadShortcut, {"in_channels": _W, "out_channels": _W,
                                                   "stride": _int(1, _SIDE)},
                                 lambda m: {"in_channels": m.in_channels, "out_channels": m.out_channels,
                                            "stride": m.stride}),
    "Add": LayerType(Add, {}, _none),
    "Sub": LayerType(Sub, {}, _none),
    "Mul": LayerType(Mul, {}, _none),
    "Div": LayerType(Div, {}, _none),
    "Constant": LayerType(Constant, {"shape": _shape, "key": _key, "learnable": _bool},
                          lambda m: {"shape": list(m.shape), "key": m.key, "learnable": m.learnable}),
    "Clip": LayerType(Clip, {"low": _opt_real, "high": _opt_real}, lambda m: {"low": m.low, "high": m.high}),
    "HardSigmoid": LayerType(HardSigmoid, {"alpha": _real, "beta": _real},
                             lambda m: {"alpha": m.alpha, "beta": m.beta}),
    "HardSwish": LayerType(HardSwish, {}, _none),
    "Erf": LayerType(Erf, {}, _none),
    "Gelu": LayerType(Gelu, {"approximate": _choice("none", "tanh")}, lambda m: {"approximate": m.approximate}),
    "Sqrt": LayerType(Sqrt, {}, _none),
    "Pow": LayerType(Pow, {"exponent": _real}, lambda m: {"exponent": m.exponent}),
    "Exp": LayerType(Exp, {}, _none),
    "Neg": LayerType(Neg, {}, _none),
    "Reciprocal": LayerType(Reciprocal, {}, _none),
    "Reshape": LayerType(Reshape, {"shape": _ints(-1, _DIM, min_len=1)}, lambda m: {"shape": list(m.shape)}),
    "Transpose": LayerType(Transpose, {"perm": _ints(0, MAX_RANK - 1, min_len=1)},
                           lambda m: {"perm": list(m.perm)}),
    "Slice": LayerType(Slice, {"axes": _ints(0, MAX_RANK - 1, min_len=1), "starts": _ints(-_DIM, _DIM),
                               "stops": _ints(-_DIM, _DIM), "steps": _ints(-_DIM, _DIM)},
                       lambda m: {"axes": list(m.axes), "starts": list(m.starts), "stops": list(m.stops),
                                  "steps": list(m.steps)}),
    "Pad": LayerType(Pad, {"pads": _pairs, "value": _real},
                     lambda m: {"pads": [list(p) for p in m.pads], "value": m.value}),
    "Cat": LayerType(Cat, *_AXIS),
    "ReduceMean": LayerType(ReduceMean, *_REDUCE),
    "ReduceMax": LayerType(ReduceMax, *_REDUCE),
    "ReduceSum": LayerType(ReduceSum, *_REDUCE),
    "Softmax": LayerType(Softmax, *_AXIS),
    "LogSoftmax": LayerType(LogSoftmax, *_AXIS),
}


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_name(module: Module) -> str:
    """The table's name for ``module``'s exact class; ValueError for a class not in it."""
    for name, entry in LAYER_TYPES.items():
        if type(module) is entry.cls:
            return name
    raise ValueError(f"a {type(module).__name__} cannot be stored in a graph spec; storable layers: "
                     f"{', '.join(LAYER_TYPES)}")


def layer_args(module: Module) -> tuple[str, dict]:
    """(op, args) of a storable layer: its table name and constructor arguments."""
    op = _type_name(module)
    return op, LAYER_TYPES[op].args_of(module)


def graph_to_spec(graph: Graph) -> dict:
    """The JSON-ready spec of ``graph`` (see the module docstring)."""
    if not isinstance(graph, Graph):
        raise TypeError(f"graph_to_spec needs a Graph, got {type(graph).__name__}")
    nodes = []
    for name, module, inputs in graph.nodes:
        op, args = layer_args(module)
        nodes.append({"name": name, "op": op, "args": args, "inputs": list(inputs)})
    return {"version": SPEC_VERSION, "output": graph.output, "nodes": nodes}


def _checked_nodes(spec) -> list[tuple[str, str, dict, list[str]]]:
    """(name, op, checked args, inputs) per node; ValueError naming the node and key otherwise."""
    if not isinstance(spec, dict) or set(spec) != {"version", "output", "nodes"}:
        raise ValueError(f"a graph spec is an object with keys 'version', 'output' and 'nodes', "
                         f"got {_short(sorted(spec) if isinstance(spec, dict) else spec)}")
    if spec["version"] != SPEC_VERSION or isinstance(spec["version"], bool):
        raise ValueError(f"graph spec version {_short(spec['version'])} is not {SPEC_VERSION}")
    nodes = spec["nodes"]
    if not isinstance(nodes, list) or not 1 <= len(nodes) <= MAX_NODES:
        raise ValueError(f"graph spec 'nodes' must be a list of 1 to {MAX_NODES} nodes, got "
                         f"{len(nodes) if isinstance(nodes, list) else _short(nodes)}")
    if not isinstance(spec["output"], str):
        raise ValueError(f"graph spec 'output' must be a node name, got {_short(spec['output'])}")
    out, total_width = [], 0
    for i, node in enumerate(nodes):
        where = f"graph node {i}"
        if not isinstance(node, dict) or set(node) != {"name", "op", "args", "inputs"}:
            raise ValueError(f"{where} must be an object with keys 'name', 'op', 'args', 'inputs', got "
                             f"{_short(sorted(node) if isinstance(node, dict) else node)}")
        name = node["name"]
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
            raise ValueError(f"{where}: name must be a string of 1 to {MAX_NAME} characters, got {_short(name)}")
        where = f"graph node {name!r}"
        op = node["op"]
        if not isinstance(op, str) or op not in LAYER_TYPES:
            raise ValueError(f"{where}: unknown layer type {_short(op)}; known: {', '.join(LAYER_TYPES)}")
        inputs = node["inputs"]
        if not isinstance(inputs, list) or len(inputs) > MAX_NODE_INPUTS or \
                not all(isinstance(s, str) and len(s) <= MAX_NAME for s in inputs):
            raise ValueError(f"{where}: inputs must be a list of at most {MAX_NODE_INPUTS} names, "
                             f"got {_short(inputs)}")
        args, schema = node["args"], LAYER_TYPES[op].schema
        if not isinstance(args, dict) or set(args) - set(schema):
            extra = sorted(set(args) - set(schema)) if isinstance(args, dict) else args
            raise ValueError(f"{where}: {op} takes the arguments {sorted(schema)}, got {_short(extra)}")
        checked = {key: schema[key](value, f"{where}: {op} argument {key!r}") for key, value in args.items()}
        total_width += sum(checked.get(key, 0) for key in _WIDTH_ARGS)
        if total_width > _TOTAL_WIDTH:
            raise ValueError(f"{where}: the graph's layer widths add up to more than {_TOTAL_WIDTH}")
        out.append((name, op, checked, list(inputs)))
    return out


def check_graph_spec(spec) -> None:
    """ValueError (naming the node and the key) unless ``spec`` is a well-formed graph spec:
    the structure, the bounds, known layer types and arguments of the right types and ranges.
    Building (:func:`graph_from_spec`) then checks what the constructors and :class:`Graph`
    check: values that fit together, inputs that exist, every output read."""
    _checked_nodes(spec)


def graph_from_spec(spec, rng=None) -> Graph:
    """Build the :class:`Graph` a spec describes (weights initialised as each layer does;
    load them from a state dict). ValueError naming the node for anything malformed."""
    nodes = []
    for name, op, args, inputs in _checked_nodes(spec):
        cls = LAYER_TYPES[op].cls
        if cls in (Conv2d, Linear, LinearND, Dropout) and rng is not None:
            args = {**args, "rng": rng}
        try:
            module = cls(**args)
        except (TypeError, ValueError) as err:
            raise ValueError(f"graph node {name!r}: {err}") from None
        nodes.append((name, module, inputs))
    return Graph(nodes, output=spec["output"])
