"""The state of one ONNX import: what every ONNX tensor has become, and the graph being built.

An ONNX tensor becomes either

- a :class:`Tensor`: computed at run time by the convscope graph (the input, or a node's
  output), with its static per-sample shape; or
- a :class:`Const`: known while importing (initializers, Constant nodes, and everything
  computed from them and from the *shapes* of run-time tensors). Older exporters compute a
  reshape's target from ``Shape(x)``, whose first entry is the batch size. So every constant
  is evaluated twice, in two "worlds" whose batch sizes differ (:data:`BATCH_A`,
  :data:`BATCH_B`): an entry equal in both is a true constant, one that differs depends on
  the batch. A reshape's target may depend on the batch in its first entry only.

:class:`ImportContext` turns converters' layers into graph nodes: it names them, checks the
ONNX weights against the layers' parameter shapes and records them under state-dict names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..layers import Constant, Module
from ..layers.graph import INPUT, num_inputs
from .errors import OnnxImportError

__all__ = ["Tensor", "Const", "FlatBatch", "ImportContext", "BATCH_A", "BATCH_B"]

BATCH_A, BATCH_B = 2, 3            # the two worlds' batch sizes
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_\-:.]+")


@dataclass(frozen=True)
class Tensor:
    """A run-time tensor: the convscope graph's tensor ``name`` of per-sample ``shape``."""

    name: str
    shape: tuple[int, ...]

    @property
    def rank(self) -> int:
        """Rank with the batch axis, as ONNX counts it."""
        return len(self.shape) + 1


@dataclass(frozen=True)
class FlatBatch:
    """A run-time tensor reshaped to one axis, batch included (``Reshape(x, [-1])``): only an
    index-gather that takes each sample's values back (the dynamo exporter's ``as_strided``)
    can read it."""

    tensor: Tensor
    node: str                # the ONNX node that flattened it, for error messages

    def error(self) -> OnnxImportError:
        return OnnxImportError(f"ONNX node {self.node!r} (Reshape) merges the batch axis with the others, "
                               f"which convscope's per-sample layers cannot express")


@dataclass(frozen=True)
class Const:
    """A value known at import time, in both worlds; ``source`` is the initializer it was read
    from (through reshapes and casts), which names the parameter it becomes."""

    a: np.ndarray
    b: np.ndarray
    source: str | None = None

    @staticmethod
    def of(value: np.ndarray, source: str | None = None) -> "Const":
        return Const(value, value, source)

    @property
    def fixed(self) -> bool:
        return self.a is self.b or (self.a.shape == self.b.shape and bool(np.array_equal(self.a, self.b)))


def clean_name(text: str) -> str:
    """``text`` as a graph node name: runs of unusual characters become "_", no empty parts."""
    parts = [p for p in _NAME_CHARS.sub("_", text).split(".") if p]
    return ".".join(parts)[:200] or "node"


def param_base(source: str | None) -> tuple[str, str] | None:
    """("layer1.0.conv1", "weight") for an initializer named like a state-dict entry, else None."""
    if source and _DOTTED.fullmatch(source):
        base, _, key = source.rpartition(".")
        return base, key
    return None


@dataclass
class ImportContext:
    """Values by ONNX name, the convscope nodes built so far and their weights."""

    values: dict = field(default_factory=dict)
    nodes: list = field(default_factory=list)          # (name, module, inputs)
    weights: dict = field(default_factory=dict)        # state-dict name -> array
    static_batch: int | None = None                    # the batch size the file declares, if fixed
    reserved: set = field(default_factory=set)         # names kept for parameter-named layers
    opset: int = 17
    fused: dict = field(default_factory=dict)          # MatMul output -> (its Add node, bias input index)
    done: set = field(default_factory=set)             # ids of ONNX nodes already converted by a fusion
    node = None                                        # the ONNX node being converted
    base = "node"                                      # the name its layers get by default
    _used: set = field(default_factory=lambda: {INPUT})

    # -- errors and attributes --------------------------------------------------------
    def fail(self, message: str) -> OnnxImportError:
        n = self.node
        where = f"ONNX node {n.name or '(unnamed)'!r} ({n.op_type})" if n is not None else "ONNX graph"
        return OnnxImportError(f"{where}: {message}")

    def attr(self, name: str, default=None):
        for a in self.node.attribute:
            if a.name == name:
                from onnx import helper
                return helper.get_attribute_value(a)
        return default

    def tensor_value(self, proto) -> np.ndarray:
        """A TensorProto held in an attribute, its size checked (no external data here)."""
        from .reader import tensor_array
        return tensor_array(proto, None)

    # -- values -------------------------------------------------------------------------
    def inputs(self) -> list:
        """The current node's input values (None for an omitted optional input)."""
        return [None if not n else self.values[n] for n in self.node.input]

    def tensor(self, i: int, what: str = "input") -> Tensor:
        v = self.inputs()[i] if i < len(self.node.input) else None
        if isinstance(v, FlatBatch):
            raise v.error()
        if not isinstance(v, Tensor):
            raise self.fail(f"its {what} must be a tensor computed from the image, not a constant")
        return v

    def const(self, i: int, what: str, fixed: bool = True) -> Const | None:
        """Input ``i`` as a Const (None if omitted); with ``fixed`` it may not depend on the batch."""
        v = self.inputs()[i] if i < len(self.node.input) else None
        if v is None:
            return None
        if not isinstance(v, Const):
            raise self.fail(f"its {what} must be a constant (an initializer), not a computed tensor")
        if fixed and not v.fixed:
            raise self.fail(f"its {what} depends on the batch size")
        return v

    def set(self, value, i: int = 0) -> None:
        """Value of the current node's output ``i``."""
        if i < len(self.node.output) and self.node.output[i]:
            self.values[self.node.output[i]] = value

    # -- nodes ----------------------------------------------------------------------------
    def _fresh(self, name: str, own: bool = False) -> str:
        name = clean_name(name)
        candidate, k = name, 1
        while candidate in self._used or (not own and candidate in self.reserved):
            k += 1
            candidate = f"{name}_{k}"
        self._used.add(candidate)
        return candidate

    def emit(self, layer: Module, inputs, weights: dict | None = None, suffix: str = "") -> Tensor:
        """Add ``layer`` reading ``inputs`` (Tensors) as a graph node; ``weights`` maps its
        parameter / buffer keys to (array, initializer name). Returns its output Tensor.

        The node is named after its first dotted initializer ("layer1.0.conv1" for
        "layer1.0.conv1.weight"), else the ONNX node's name (plus ``suffix``)."""
        weights = weights or {}
        name = None
        for _, source in weights.values():
            if (found := param_base(source)) is not None:
                name = self._fresh(found[0], own=True)
                break
        if name is None:
            name = self._fresh(f"{self.base}.{suffix}" if suffix else self.base)
        shapes = [t.shape for t in inputs]
        try:
            out = layer.output_shape(tuple(shapes) if num_inputs(layer) != 1 else shapes[0])
        except ValueError as err:
            raise self.fail(f"{type(layer).__name__} does not fit its inputs: {err}") from None
        for key, (array, source) in weights.items():
            store = layer.params if key in layer.params else layer.buffers
            if key not in store or store[key].shape != array.shape:
                want = store[key].shape if key in store else None
                raise self.fail(f"its {key} {source!r} has shape {array.shape}, the layer needs {want}")
            self.weights[f"{name}.{key}"] = np.asarray(array, dtype=np.float32)
        self.nodes.append((name, layer, [t.name for t in inputs]))
        return Tensor(name, tuple(int(s) for s in out))

    def constant(self, c: Const, rank: int, what: str) -> Tensor:
        """A Constant node broadcasting like ``c`` against run-time tensors of ``rank`` (batch
        axis included): ONNX aligns shapes on the right, so ``c`` is padded with leading 1s;
        its batch axis must be 1. Learnable when its initializer is named like a parameter."""
        if not c.fixed:
            raise self.fail(f"its {what} depends on the batch size")
        value = np.asarray(c.a, dtype=np.float32)
        if value.ndim > rank:
            raise self.fail(f"its {what} of shape {value.shape} has more axes than the tensor it meets")
        value = value.reshape((1,) * (rank - value.ndim) + value.shape)
        if value.shape[0] != 1:
            raise self.fail(f"its {what} of shape {value.shape} varies along the batch axis")
        per_sample = value.shape[1:]
        found = param_base(c.source)
        key, learnable = (found[1], True) if found else ("value", False)
        layer = Constant(list(per_sample), key=key, learnable=learnable)
        if found:
            return self.emit(layer, [], {key: (value[0], c.source)})
        name = self._fresh(f"{self.base}.{what.replace(' ', '_')}")
        self.weights[f"{name}.{key}"] = value[0]
        self.nodes.append((name, layer, []))
        return Tensor(name, per_sample)
