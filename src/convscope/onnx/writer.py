"""The bookkeeping of an ONNX export: unique tensor names, initializers, nodes, the opset.

:class:`Writer` collects what :mod:`convscope.onnx.emit` produces for each layer. Tensor and
node names are the layers' dotted names (``"layer1.0.conv1"``); initializers are named by
the state dict (``"layer1.0.conv1.weight"``); the small integer tensors ONNX takes as inputs
(axes, shapes, pads) are named ``"<layer>/<what>"``.
"""

from __future__ import annotations

import numpy as np

from .errors import OnnxExportError, require_onnx

__all__ = ["Writer", "MIN_OPSET"]

MIN_OPSET = 13       # Softmax along one axis, Split / Squeeze / Unsqueeze / ReduceSum axes as inputs


class Writer:
    """Nodes and initializers of one ONNX graph, for ``opset``."""

    def __init__(self, opset: int) -> None:
        self.onnx = require_onnx()
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self._used: set[str] = set()

    def fresh(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``, ... if taken: every tensor name is unique."""
        candidate, k = name, 1
        while candidate in self._used:
            k += 1
            candidate = f"{name}_{k}"
        self._used.add(candidate)
        return candidate

    def initializer(self, name: str, array: np.ndarray, dtype=np.float32) -> str:
        """Add ``array`` as an initializer named exactly ``name`` (a state-dict name)."""
        if name in self._used:
            raise OnnxExportError(f"two tensors would be named {name!r} in the ONNX file")
        self._used.add(name)
        return self._add(name, array, dtype)

    def _add(self, name: str, array, dtype) -> str:
        value = np.ascontiguousarray(np.asarray(array, dtype=dtype))
        self.initializers.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def ints(self, name: str, values) -> str:
        """An int64 initializer (axes, shapes, pads) named ``name`` (made unique)."""
        return self._add(self.fresh(name), np.asarray(values, dtype=np.int64).reshape(-1), np.int64)

    def scalar(self, name: str, value: float) -> str:
        """A float32 scalar initializer named ``name`` (made unique)."""
        return self._add(self.fresh(name), np.asarray(value, dtype=np.float32).reshape(()), np.float32)

    def node(self, op: str, inputs, name: str, **attrs) -> str:
        """Add one node named ``name`` (made unique) whose single output has the same name."""
        out = self.fresh(name)
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def rename_output(self, old: str, new: str) -> None:
        """Give the tensor ``old`` (a node's output) the name ``new`` everywhere."""
        for node in self.nodes:
            for field in (node.input, node.output):
                for i, name in enumerate(field):
                    if name == old:
                        field[i] = new
