"""The registry's ``"graph"`` builder: a :class:`~convscope.layers.Graph` from its JSON spec.

``build_model("graph", num_classes=K, in_channels=C, input_size=(H, W), graph=spec)`` builds
the graph that ``spec`` describes (:mod:`convscope.layers.graph_spec`) and, as for every
registry model, checks that (C, H, W) inputs give K outputs. The spec lands in
``model.config["options"]["graph"]``, so a checkpoint rebuilds the graph from its file alone:
this is how an ONNX import (:func:`convscope.onnx.import_onnx`) is saved and loaded.
"""

from __future__ import annotations

import numpy as np

from ..layers import Graph, graph_from_spec

__all__ = ["graph", "graph_with_classes"]


def graph(num_classes: int = 10, in_channels: int = 1, input_size=(28, 28),
          rng: np.random.Generator | None = None, *, graph: dict | None = None) -> Graph:
    """The Graph of spec ``graph`` (required); ValueError naming the node for a malformed spec.

    ``num_classes``, ``in_channels`` and ``input_size`` are checked against the graph by
    :func:`~convscope.models.build_model`, not used to build it.
    """
    if graph is None:
        raise ValueError("model 'graph' needs its spec: build_model('graph', ..., graph=spec)")
    return graph_from_spec(graph, rng=rng)


# Ops between the classifier's last learned layer and the logits that keep the class axis as it
# is: a fine-tuned head is found by walking back through them from the output.
_HEAD_PASS = {"Flatten", "Reshape", "ReLU", "LeakyReLU", "Dropout", "Identity", "ReduceMean", "ReduceMax",
              "GlobalAvgPool2d", "Softmax", "LogSoftmax", "Sigmoid", "Tanh", "Clip", "HardSwish",
              "HardSigmoid", "Gelu"}


def graph_with_classes(spec: dict, num_classes: int) -> dict:
    """A copy of graph ``spec`` whose logits layer gives ``num_classes`` outputs (fine-tuning
    on new classes): walking back from the output through class-preserving ops (flatten,
    pooling, activations), the first Linear / LinearND / ungrouped 1x1-style Conv2d gets the
    new width, and a Reshape on the way its new class count. The caller re-initialises the
    weights whose shape changed. ValueError naming the node where no such head is found.

    >>> spec = {"version": 1, "output": "fc", "nodes": [
    ...     {"name": "flat", "op": "Flatten", "args": {}, "inputs": ["input"]},
    ...     {"name": "fc", "op": "Linear", "args": {"in_features": 4, "out_features": 10, "bias": True},
    ...      "inputs": ["flat"]}]}
    >>> graph_with_classes(spec, 3)["nodes"][1]["args"]["out_features"]
    3
    """
    import copy

    from ..layers import check_graph_spec
    from ..validation import check_int
    check_int(num_classes, "num_classes", minimum=1)
    check_graph_spec(spec)
    new = copy.deepcopy(spec)
    nodes = {node["name"]: node for node in new["nodes"]}
    name, reshapes = new["output"], []
    while name in nodes:
        node = nodes[name]
        op, args = node["op"], node["args"]
        if op in ("Linear", "LinearND"):
            old, args["out_features"] = args["out_features"], num_classes
            break
        if op == "Conv2d" and args.get("groups", 1) == 1:
            old, args["out_channels"] = args["out_channels"], num_classes
            break
        if op not in _HEAD_PASS or len(node["inputs"]) != 1:
            raise ValueError(f"graph: no classifier head found before node {name!r} ({op}); fine-tuning on "
                             f"new classes needs a Linear or Conv2d giving the logits")
        if op == "Reshape":
            reshapes.append(args)
        name = node["inputs"][0]
    else:
        raise ValueError("graph: the logits are not computed by a Linear or Conv2d layer; cannot change "
                         "the number of classes")
    for args in reshapes:
        args["shape"] = [num_classes if s == old else s for s in args["shape"]]
    return new
