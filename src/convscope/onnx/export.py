"""Writing a convscope model as an ONNX file: ``convscope export CK --out MODEL.onnx``.

The module tree is walked in forward order. :class:`~convscope.layers.Sequential` chains,
:class:`~convscope.layers.Residual` becomes its two paths and an Add (then its ``post``),
:class:`~convscope.layers.Concat` its branches and a Concat along channels, a
:class:`~convscope.layers.Graph` its nodes; an
:class:`~convscope.layers.AuxiliaryClassifier` (training only), Dropout and Identity leave
no node. Each leaf becomes the nodes of its emitter (:mod:`convscope.onnx.emit`).

The file has one input ``input`` (N, C, H, W) with a dynamic batch and one output ``logits``
(N, K); initializers carry the state-dict names, nodes and tensors the layers' dotted names;
preprocessing and class names travel in ``metadata_props`` (:mod:`convscope.onnx.metadata`).
The model passes ``onnx.checker`` before it is written (atomically).
"""

from __future__ import annotations

from pathlib import Path

from ..layers import (AuxiliaryClassifier, Concat, Dropout, Graph, Identity, Module, Residual,
                      Sequential)
from ..validation import check_int
from .emit import emitter_for
from .errors import OnnxExportError, require_onnx
from .metadata import write_metadata
from .writer import MIN_OPSET, Writer

__all__ = ["export_onnx", "export_checkpoint", "DEFAULT_OPSET", "model_proto"]

DEFAULT_OPSET = 17           # LayerNormalization's first opset; onnxruntime runs 7..23


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class _Walker:
    """Emit ``module`` reading tensor ``x`` of per-sample ``shape``; returns (tensor, shape)."""

    def __init__(self, writer: Writer, model: Module) -> None:
        self.w = writer
        self.names: dict[int, str] = {}
        for dotted, module in model.named_modules():
            self.names.setdefault(id(module), dotted)

    def walk(self, module: Module, name: str, x: str, shape: tuple) -> tuple[str, tuple]:
        name = self.names.get(id(module), name)          # the name named_modules gives it
        if isinstance(module, (Identity, Dropout, AuxiliaryClassifier)):
            return x, shape                      # the identity in evaluation: no node
        if isinstance(module, Graph):
            return self._graph(module, name, x, shape)
        if isinstance(module, Residual):
            a, a_shape = self._child(module.body, name, "body", x, shape)
            b, _ = self._child(module.shortcut, name, "shortcut", x, shape)
            y = self.w.node("Add", [a, b], _join(name, "add"))
            if module.post is None:
                return y, a_shape
            return self._child(module.post, name, "post", y, a_shape)
        if isinstance(module, Concat):
            outs = [self._child(child, name, key, x, shape)[0] for key, child in module.children()]
            return self.w.node("Concat", outs, name or "concat", axis=1), tuple(module.output_shape(shape))
        if isinstance(module, Sequential):
            for key, child in module.children():
                x, shape = self.walk(child, _join(name, key), x, shape)
            return x, shape
        if module.children():
            raise OnnxExportError(f"layer {name or '(model)'!r} is a {type(module).__name__}, a container "
                                  f"whose data flow the exporter does not know")
        out = emitter_for(module, name)(self.w, module, name or type(module).__name__, [x], [shape])
        return out, tuple(module.output_shape(shape))

    def _child(self, child: Module, name: str, key: str, x: str, shape: tuple):
        """A Residual's part. Blocks list their body's layers as their own children, so those
        are named ``layer1.0.conv1`` (by :meth:`walk`'s lookup), not ``layer1.0.body.conv1``."""
        return self.walk(child, _join(name, key), x, shape)

    def _graph(self, graph: Graph, name: str, x: str, shape: tuple):
        shapes = graph.shapes(shape)
        tensors = {"input": x}
        for node_name, module, inputs in graph.nodes:
            full = _join(name, node_name)
            ins = [tensors[src] for src in inputs]
            in_shapes = [shapes[src] for src in inputs]
            if isinstance(module, (Identity, Dropout)):
                tensors[node_name] = ins[0]
            elif module.children():
                tensors[node_name] = self.walk(module, full, ins[0], in_shapes[0])[0]
            else:
                tensors[node_name] = emitter_for(module, full)(self.w, module, full, ins, in_shapes)
        return tensors[graph.output], shapes[graph.output]


def model_proto(model: Module, input_shape, *, opset: int = DEFAULT_OPSET, metadata: dict | None = None):
    """The ``onnx.ModelProto`` of ``model`` for (C, H, W) ``input_shape``, checked by onnx.checker."""
    onnx = require_onnx()
    opset = check_int(opset, "opset", minimum=MIN_OPSET, maximum=onnx.defs.onnx_opset_version())
    shape = tuple(check_int(s, "input_shape entry", minimum=1) for s in input_shape)
    try:
        out_shape = tuple(model.output_shape(shape))
    except ValueError as err:
        raise OnnxExportError(f"the model cannot take inputs of shape {shape}: {err}") from None
    if len(out_shape) != 1:
        raise OnnxExportError(f"the model gives outputs of shape {out_shape} per image, not logits (K,)")
    writer = Writer(opset)
    walker = _Walker(writer, model)
    writer.fresh("input")
    writer.fresh("logits")                 # a layer called "logits" becomes "logits_2": the name is the output's
    was_training = model.training
    model.eval()
    try:
        out, _ = walker.walk(model, "", "input", shape)
    finally:
        model.train(was_training)
    if out == "input":
        out = writer.node("Identity", ["input"], "identity")
    writer.rename_output(out, "logits")
    helper = onnx.helper
    graph = helper.make_graph(
        writer.nodes, "convscope",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["N", out_shape[0]])],
        initializer=writer.initializers)
    proto = helper.make_model(graph, producer_name="convscope",
                              opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = min(proto.ir_version, 10)      # onnxruntime reads IR versions up to 10
    if metadata:
        helper.set_model_props(proto, write_metadata(metadata))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as err:                              # a bug in an emitter, not the user's input
        raise OnnxExportError(f"the exported graph fails onnx.checker: {' '.join(str(err).split())[:300]}") \
            from None
    return proto


def export_onnx(model, path, *, opset: int = DEFAULT_OPSET, input_shape=None) -> Path:
    """Write ``model`` (a :class:`~convscope.Classifier`, or a bare Module with ``input_shape``)
    to ``path`` as ONNX. A Classifier's normaliser, class names, preprocessing, input shape
    and architecture name go into ``metadata_props``. Returns the path."""
    from .. import __version__
    from ..classifier import Classifier
    from ..io import atomic_write_bytes
    if isinstance(model, Classifier):
        clf, network = model, model.model
        input_shape = clf.input_shape if input_shape is None else input_shape
        meta = {"normalizer": clf.normalizer.to_dict(), "class_names": list(clf.class_names),
                "preprocess": clf.meta.get("preprocess") or {}, "input_shape": list(clf.input_shape),
                "model": clf.name}
    elif isinstance(model, Module):
        if input_shape is None:
            raise OnnxExportError("export_onnx: a bare Module needs input_shape=(C, H, W)")
        network, meta = model, {"input_shape": list(input_shape)}
        if getattr(model, "config", None):
            meta["model"] = model.config.get("name")
    else:
        raise TypeError(f"export_onnx: model must be a convscope Classifier or Module, got {type(model).__name__}")
    meta["version"] = __version__
    proto = model_proto(network, input_shape, opset=opset, metadata=meta)
    data = proto.SerializeToString()
    path = Path(path)
    atomic_write_bytes(path, data)
    return path


def export_checkpoint(checkpoint, out, *, opset: int = DEFAULT_OPSET) -> Path:
    """Export the classifier in a checkpoint file or run directory (``convscope export``)."""
    from ..classifier import load
    return export_onnx(load(checkpoint), out, opset=opset)
