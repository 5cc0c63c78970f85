"""ONNX -> a convscope :class:`~convscope.layers.Graph`: ``convscope.onnx.import_onnx(path)``.

The file is read with :func:`~convscope.onnx.reader.read_model` (bounded, pre-scanned). The
nodes the output depends on are converted in order: a node whose inputs are all constants is
folded (:mod:`convscope.onnx.fold`), any other goes through its converter
(:mod:`convscope.onnx.convert_nn`, :mod:`convscope.onnx.convert_shape`), which emits layers.
An op without a converter ends the import with one line naming the op and the node and
listing the supported ops.

Layer names. A layer with weights is named after them: ``layer1.0.conv1`` for the
initializer ``layer1.0.conv1.weight``, so the state dict keeps the exporter's names. Other
layers take the module path the exporter recorded (TorchScript's node names
``/layer1/layer1.0/relu/Relu``, the dynamo exporter's ``pkg.torch.onnx.name_scopes``), or
the node's own name; a path that holds other layers (a residual block's Add) gets the op
appended (``layer1.0.add``).

The layers are built for shapes only while converting; the graph is then rebuilt from its
spec through the registry (``build_model("graph", ..., graph=spec)``, exactly what loading
the saved checkpoint does, again for shapes only: no random initialisation) and every
parameter and buffer loaded by name from the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..layers import Flatten, Graph, graph_to_spec, shapes_only
from ..layers.graph import INPUT
from .context import Const, FlatBatch, ImportContext, Tensor, clean_name, param_base
from .convert_nn import NN_CONVERTERS
from .convert_shape import SHAPE_CONVERTERS
from .errors import OnnxImportError
from .fold import FOLDERS
from .reader import read_model, tensor_array

__all__ = ["import_graph", "CONVERTERS", "SUPPORTED_OPS", "ImportedGraph"]

CONVERTERS = {**NN_CONVERTERS, **SHAPE_CONVERTERS}
SUPPORTED_OPS = tuple(sorted(set(CONVERTERS) | set(FOLDERS)))
_NAME_KEEP = 1 << 20                 # at most this many characters of node names are examined
_QUOTED = re.compile(r"'([^']*)'")
_PASS_THROUGH = ("Identity", "Cast", "Reshape", "Unsqueeze", "Squeeze", "Transpose", "Flatten")


class ImportedGraph:
    """What :func:`import_graph` returns: the graph model (built by the registry, weights loaded),
    its (C, H, W) input shape, the convscope metadata of the file and its producer."""

    def __init__(self, model, input_shape, metadata: dict, producer: str) -> None:
        self.model, self.input_shape, self.metadata, self.producer = model, input_shape, metadata, producer


def _opset(model) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise OnnxImportError("the model declares no version of the standard ONNX operator set")
    return int(versions[0])


def _input(graph, inits, input_shape) -> tuple[str, tuple[int, int, int], int | None]:
    """(name, per-sample (C, H, W), declared static batch or None) of the one image input."""
    real = [i for i in graph.input if i.name not in inits]
    if len(real) != 1:
        raise OnnxImportError(f"the model has {len(real)} inputs ({[i.name for i in real][:4]}); "
                              f"convscope imports classifiers of one image input")
    value = real[0]
    tt = value.type.tensor_type
    if tt.elem_type not in (1, 10, 11):             # FLOAT, FLOAT16, DOUBLE
        raise OnnxImportError(f"the input {value.name!r} is not a float tensor (element type {tt.elem_type})")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    if len(dims) != 4:
        raise OnnxImportError(f"the input {value.name!r} has {len(dims)} axes; convscope imports image "
                              f"classifiers with (N, C, H, W) inputs")
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if any(d is not None and d != s for d, s in zip(dims[1:], shape)):
            raise OnnxImportError(f"input shape {shape} does not match the model's {dims[1:]}")
    elif None in dims[1:]:
        raise OnnxImportError(f"the input {value.name!r} has dynamic sizes {dims}; give input_shape=(C, H, W)")
    else:
        shape = tuple(dims[1:])
    return value.name, shape, dims[0]


def _needed(graph, output: str) -> list:
    """The nodes ``output`` depends on, in file order (ONNX requires topological order)."""
    producer = {}
    for node in graph.node:
        for out in node.output:
            if out:
                producer[out] = node
    need, stack = set(), [output]
    while stack:
        name = stack.pop()
        node = producer.get(name)
        if node is None or id(node) in need:
            continue
        need.add(id(node))
        stack.extend(i for i in node.input if i)
    return [n for n in graph.node if id(n) in need]


def _scope_path(node) -> tuple[str, str] | None:
    """(module path, op instance) recorded by the exporter, if any."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes" and len(prop.value) < 4096:
            scopes = _QUOTED.findall(prop.value)
            if len(scopes) >= 3:
                return scopes[-2], scopes[-1]
            if len(scopes) == 2:
                return "", scopes[-1]
    name = node.name
    if name.startswith("/") and len(name) < 4096:
        parts = [p for p in name.strip("/").split("/") if p]
        path: list[str] = []
        for seg in parts[:-1]:
            if path and seg.startswith(path[-1] + "."):
                path[-1] = seg                        # "layer1" then "layer1.0": one module, named longer
            else:
                path.append(seg)
        joined = ".".join(path) if path else ""
        return (joined, parts[-1].lower()) if parts else None
    return None


def _base_names(nodes) -> dict[int, str]:
    """The default layer name of every ONNX node (see the module docstring)."""
    paths = {id(n): _scope_path(n) for n in nodes}
    containers = set()
    for found in paths.values():
        if found and found[0]:
            parts = found[0].split(".")
            containers.update(".".join(parts[:k]) for k in range(1, len(parts)))
    bases = {}
    for n in nodes:
        found = paths[id(n)]
        if found and found[0]:
            path, op = found
            bases[id(n)] = f"{path}.{op}" if path in containers else path
        elif found:
            bases[id(n)] = found[1]
        else:
            name = n.name[:200]
            bases[id(n)] = name[5:] if name.startswith("node_") else (name or n.op_type.lower())
    return {k: clean_name(v) for k, v in bases.items()}


def _fusions(nodes, consumers: dict) -> dict:
    """MatMul outputs read only by an Add with a constant: {matmul output: (add node, bias index)}."""
    fused = {}
    for n in nodes:
        if n.op_type == "MatMul" and len(consumers.get(n.output[0], [])) == 1:
            add = consumers[n.output[0]][0]
            if add.op_type == "Add" and len(add.input) == 2:
                fused[n.output[0]] = (add, 1 if add.input[0] == n.output[0] else 0)
    return fused


def _fold(ctx, node) -> None:
    """Evaluate ``node`` on constant inputs, once per world."""
    fn = FOLDERS[node.op_type]
    values = ctx.inputs()
    try:
        outs_a = fn(ctx, [None if v is None else v.a for v in values])
        same = all(v is None or v.fixed for v in values)
        outs_b = outs_a if same else fn(ctx, [None if v is None else v.b for v in values])
    except OnnxImportError:
        raise
    except (ValueError, IndexError, TypeError) as err:
        raise ctx.fail(f"its constant inputs cannot be evaluated: {err}") from None
    source = None
    if node.op_type in _PASS_THROUGH and values and values[0] is not None:
        source = values[0].source
    for i, (a, b) in enumerate(zip(outs_a, outs_b)):
        ctx.set(Const(np.asarray(a), np.asarray(b) if b is not a else np.asarray(a), source), i)


def _convert(ctx, nodes) -> None:
    for node in nodes:
        if id(node) in ctx.done:
            continue
        ctx.node, ctx.base = node, ctx.bases[id(node)]
        if node.domain not in ("", "ai.onnx"):
            raise ctx.fail(f"operators of domain {node.domain!r} are not supported")
        for name in node.input:
            if name and name not in ctx.values:
                raise ctx.fail(f"it reads {name!r}, which no earlier node or initializer defines")
        values = [v for v in ctx.inputs() if v is not None]
        if node.op_type in FOLDERS and all(isinstance(v, Const) for v in values) and \
                (values or node.op_type not in CONVERTERS):
            _fold(ctx, node)
        elif node.op_type in CONVERTERS:
            CONVERTERS[node.op_type](ctx)
        else:
            raise OnnxImportError(
                f"ONNX op {node.op_type!r} (node {node.name or '(unnamed)'!r}) is not supported; "
                f"supported ops: {', '.join(SUPPORTED_OPS)}")


def _prune(nodes, output: str) -> list:
    """Only the nodes the output depends on (a Split's unused parts, for one)."""
    need = {output}
    for name, _, inputs in reversed(nodes):
        if name in need:
            need.update(inputs)
    return [n for n in nodes if n[0] in need]


def import_graph(path, *, input_shape=None) -> ImportedGraph:
    """The ONNX file ``path`` as a graph model with its weights (see the module docstring)."""
    from ..models import build_model
    from .metadata import read_metadata
    path = Path(path)
    model = read_model(path)
    graph = model.graph
    meta = read_metadata(model.metadata_props)
    if input_shape is None and meta.get("input_shape") is not None:
        input_shape = meta["input_shape"]
    inits = {t.name: t for t in graph.initializer}
    in_name, shape, static_batch = _input(graph, inits, input_shape)
    if len(graph.output) < 1:
        raise OnnxImportError("the model has no output")
    out_name = graph.output[0].name
    nodes = _needed(graph, out_name)
    consumers: dict = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    ctx = ImportContext(static_batch=static_batch, opset=_opset(model))
    ctx.bases = _base_names(nodes)
    ctx.fused = _fusions(nodes, consumers)
    for name in consumers:
        if name in inits:
            ctx.values[name] = Const.of(tensor_array(inits[name], path.parent), name)
            found = param_base(name)
            if found:
                ctx.reserved.add(clean_name(found[0]))
    ctx.values[in_name] = Tensor(INPUT, shape)
    with shapes_only():
        _convert(ctx, nodes)
        ctx.node = None
        out = ctx.values.get(out_name)
        if isinstance(out, FlatBatch):
            raise out.error()
        if not isinstance(out, Tensor) or out.name == INPUT:
            raise OnnxImportError(f"the model's output {out_name!r} is not computed from its input")
        if len(out.shape) != 1:
            if out.shape[0] != int(np.prod(out.shape)):
                raise OnnxImportError(f"the model's output has per-sample shape {out.shape}, not logits (K,)")
            ctx.base = "logits_flatten"
            out = ctx.emit(Flatten(), [out])
        nodes_cs = _prune(ctx.nodes, out.name)
        spec = graph_to_spec(Graph(nodes_cs, output=out.name))
    kept = {name for name, _, _ in nodes_cs}
    weights = {k: v for k, v in ctx.weights.items() if k.rpartition(".")[0] in kept}
    try:
        with shapes_only():           # every parameter and buffer is replaced by the file's next
            network = build_model("graph", num_classes=out.shape[0], in_channels=shape[0],
                                  input_size=shape[1:], graph=spec)
        network.load_state_dict(weights)
    except ValueError as err:
        raise OnnxImportError(f"'{path}': the imported graph does not build: {err}") from None
    producer = f"{model.producer_name} {model.producer_version}".strip()
    return ImportedGraph(network.eval(), shape, meta, producer)
