"""A general directed acyclic graph of layers: named nodes, each reading named tensors.

:class:`Sequential`, :class:`Residual` and :class:`Concat` cover the zoo's networks, but an
imported network (ONNX, :mod:`convscope.onnx`) is an arbitrary DAG: a tensor may feed many
nodes, and a node may read several tensors (an addition, a concatenation). A :class:`Graph`
holds such a network as a list of nodes in topological order::

    Graph([("conv", Conv2d(3, 8, 3, padding=1), ["input"]),
           ("relu", ReLU(), ["conv"]),
           ("add", Add(), ["relu", "conv"])], output="add")

Each node is ``(name, layer, inputs)``: ``inputs`` name the graph input (``"input"``) or
earlier nodes, so every graph is acyclic by construction; a node's output tensor has the
node's name. Forward runs the nodes in order, keeping each tensor only until its last
reader has run. Backward runs them in reverse; where a tensor fans out to several readers
its gradient is the sum of theirs (the multivariate chain rule: dL/dt = sum_k dL/dy_k
dy_k/dt), accumulated as each reader's backward returns.

Layers read one tensor, except those derived from :class:`MultiInput` (``num_inputs``
tensors, or any number >= 2 when it is None) and sources such as
:class:`~convscope.layers.elementwise.Constant` (``num_inputs = 0``). Node names become the
layers' dotted names (``"layer1.0.conv1"`` gives the parameter ``"layer1.0.conv1.weight"``),
so they may contain dots; they must be unique and every node's output must be read.

A graph is saved as a JSON spec (:mod:`convscope.layers.graph_spec`) and rebuilt by the
registry as ``build_model("graph", ..., graph=spec)``.
"""

from __future__ import annotations

import re
from math import prod
from typing import NamedTuple

import numpy as np

from .base import Module

__all__ = ["Graph", "GraphNode", "MultiInput", "num_inputs", "INPUT", "MAX_SAMPLE_ELEMENTS"]

INPUT = "input"                  # the name of the graph's input tensor
# Any tensor's size for one sample: 2^28 float32 values are 1 GiB, far beyond a classifier's
# largest map (VGG's first conv at 224: 3.2 M values), so a hostile spec cannot make a
# forward pass allocate without bound.
MAX_SAMPLE_ELEMENTS = 1 << 28
_NAME = re.compile(r"[A-Za-z0-9_\-:/]+(\.[A-Za-z0-9_\-:/]+)*")


class MultiInput(Module):
    """A layer that reads several tensors: ``forward(x)`` takes a tuple of arrays,
    ``backward(dy)`` returns a tuple with one gradient per input (None where
    ``need_input_grad`` is off) and ``output_shape`` takes a tuple of per-sample shapes.

    ``num_inputs``: how many tensors it reads, or None for any number >= 2.
    """

    num_inputs: int | None = 2

    def _check_arity(self, xs) -> None:
        kind = type(self).__name__
        if not isinstance(xs, (tuple, list)):
            raise TypeError(f"{kind} reads a tuple of arrays, got {type(xs).__name__}")
        if (len(xs) != self.num_inputs) if self.num_inputs is not None else len(xs) < 2:
            want = self.num_inputs if self.num_inputs is not None else "at least 2"
            raise ValueError(f"{kind} reads {want} inputs, got {len(xs)}")


def num_inputs(module: Module) -> int | None:
    """How many tensors ``module`` reads: 1 for ordinary layers, 0 for sources, None for any >= 2."""
    return getattr(module, "num_inputs", 1)


class GraphNode(NamedTuple):
    name: str
    module: Module
    inputs: tuple[str, ...]


class Graph(Module):
    """A DAG of named layers (see the module docstring). x: the graph input (N, ...) ->
    the ``output`` node's tensor.

    Parameters are named ``{node}.{key}``; ``children()`` lists the nodes in order.
    """

    def __init__(self, nodes, output: str) -> None:
        super().__init__()
        checked, known = [], {INPUT}
        for entry in nodes:
            if not (isinstance(entry, (tuple, list)) and len(entry) == 3):
                raise TypeError(f"Graph: a node must be (name, layer, inputs), got {entry!r}")
            name, module, inputs = entry
            if not isinstance(name, str) or not _NAME.fullmatch(name) or name == INPUT:
                raise ValueError(f"Graph: node names are dot-separated words other than {INPUT!r}, "
                                 f"got {name!r}")
            if name in known:
                raise ValueError(f"Graph: node name {name!r} is used twice")
            if not isinstance(module, Module):
                raise TypeError(f"Graph: node {name!r} is a {type(module).__name__}, not a layer")
            inputs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
            for src in inputs:
                if src not in known:
                    raise ValueError(f"Graph: node {name!r} reads {src!r}, which is neither "
                                     f"{INPUT!r} nor an earlier node")
            arity = num_inputs(module)
            if (len(inputs) != arity) if arity is not None else len(inputs) < 2:
                want = arity if arity is not None else "at least 2"
                raise ValueError(f"Graph: node {name!r} ({type(module).__name__}) reads {want} "
                                 f"input(s), got {len(inputs)}: {list(inputs)}")
            checked.append(GraphNode(name, module, inputs))
            known.add(name)
        if not checked:
            raise ValueError("Graph: needs at least one node")
        if output not in known or output == INPUT:
            raise ValueError(f"Graph: output {output!r} is not a node")
        read = {src for node in checked for src in node.inputs} | {output}
        unused = [n.name for n in checked if n.name not in read]
        if unused:
            raise ValueError(f"Graph: the output of node(s) {unused[:5]} is never read")
        self.nodes: tuple[GraphNode, ...] = tuple(checked)
        self.output = output
        # Index of the last node reading each tensor, to free activations early.
        self._last_read = {}
        for i, node in enumerate(self.nodes):
            for src in node.inputs:
                self._last_read[src] = i
        self.set_input_grad(True)

    def children(self):
        return [(node.name, node.module) for node in self.nodes]

    def node(self, name: str) -> GraphNode:
        """The node called ``name``; ValueError listing the names if absent."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise ValueError(f"Graph: no node {name!r}; nodes: {', '.join(n.name for n in self.nodes)}")

    def extra_repr(self) -> str:
        return f"{len(self.nodes)} nodes, output={self.output!r}"

    # -- shapes -------------------------------------------------------------------------
    def shapes(self, input_shape) -> dict[str, tuple[int, ...]]:
        """Per-sample shape of every tensor (the input and each node) for one input shape.

        ValueError naming the node whose layer refuses its inputs, or whose output would
        exceed :data:`MAX_SAMPLE_ELEMENTS` values per sample.
        """
        shapes = {INPUT: tuple(input_shape)}
        for name, module, inputs in self.nodes:
            ins = tuple(shapes[src] for src in inputs)
            try:
                arity = num_inputs(module)
                out = module.output_shape(ins if arity != 1 else ins[0])
            except ValueError as err:
                raise ValueError(f"node {name!r}: {err}") from None
            out = tuple(int(s) for s in out)
            if prod(out) > MAX_SAMPLE_ELEMENTS:
                raise ValueError(f"node {name!r}: output of shape {out} has more than "
                                 f"{MAX_SAMPLE_ELEMENTS} values per sample")
            shapes[name] = out
        return shapes

    def output_shape(self, input_shape):
        return self.shapes(input_shape)[self.output]

    # -- forward and backward -------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, ...) -> the output node's tensor; tensors are freed after their last reader."""
        values = {INPUT: x}
        for i, (name, module, inputs) in enumerate(self.nodes):
            arity = num_inputs(module)
            if arity == 0:
                y = module.forward(None)
            elif arity == 1:
                y = module.forward(values[inputs[0]])
            else:
                y = module.forward(tuple(values[src] for src in inputs))
            for src in set(inputs):
                if self._last_read[src] == i and src != self.output:
                    del values[src]
            values[name] = y
        return values[self.output]

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """Reverse topological order; dL/dt for a tensor t read by several nodes is the sum
        of what their backward passes return for it (fan-out accumulation). Returns dL/dx
        for the graph input (None when ``need_input_grad`` is off)."""
        grads = {self.output: dy}
        for name, module, inputs in reversed(self.nodes):
            g = grads.pop(name, None)
            if g is None:                    # no reader passed a gradient back: it is zero
                for _, sub in module.named_modules():
                    sub.grads = {key: np.zeros_like(value) for key, value in sub.params.items()}
                continue
            d = module.backward(g)
            arity = num_inputs(module)
            if arity == 0:
                continue
            parts = (d,) if arity == 1 else tuple(d)
            for src, part in zip(inputs, parts):
                if part is None:
                    continue
                grads[src] = part if src not in grads else grads[src] + part
        return grads.get(INPUT) if self.need_input_grad else None

    def set_input_grad(self, flag: bool) -> None:
        """A node computes its input gradient only if some input depends on the graph input
        (when ``flag``) or on a parameter; sources and constant-only branches skip it."""
        super().set_input_grad(flag)
        needs = {INPUT: bool(flag)}
        for name, module, inputs in self.nodes:
            upstream = any(needs[src] for src in inputs)
            module.set_input_grad(upstream)
            has_params = any(m.params for _, m in module.named_modules())
            needs[name] = upstream or has_params
