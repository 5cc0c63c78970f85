"""ONNX in both directions: ``export_onnx`` writes a convscope model, ``import_onnx`` reads one.

The ``onnx`` package is an optional extra (``pip install "convscope[onnx]"``), imported on
first use only: ``import convscope`` (and ``import convscope.onnx``) never loads it, and
calling either function without it raises :class:`OnnxUnavailableError` with that hint.

- :func:`export_onnx` / ``convscope export CK --out MODEL.onnx [--opset N]``: every zoo model,
  with the input ``input`` (N, C, H, W), the output ``logits``, initializers named by the
  state dict, and the preprocessing in ``metadata_props`` (:mod:`convscope.onnx.metadata`).
- :func:`import_onnx`: an image classifier exported by PyTorch (either exporter) or any tool
  that uses the supported ops (:data:`SUPPORTED_OPS`) becomes a
  :class:`~convscope.Classifier` around a :class:`~convscope.layers.Graph`, which
  ``clf.save`` writes as an ordinary checkpoint.

An ONNX file is untrusted input: see :mod:`convscope.onnx.reader` for the bounds.
"""

from __future__ import annotations

from pathlib import Path

from .errors import OnnxExportError, OnnxImportError, OnnxUnavailableError, require_onnx
from .export import DEFAULT_OPSET, export_checkpoint, export_onnx
from .importer import SUPPORTED_OPS, import_graph
from .metadata import KEYS as METADATA_KEYS

__all__ = ["export_onnx", "export_checkpoint", "import_onnx", "import_graph", "PRESETS", "SUPPORTED_OPS",
           "DEFAULT_OPSET", "METADATA_KEYS", "OnnxImportError", "OnnxExportError", "OnnxUnavailableError",
           "require_onnx"]

PRESETS = ("imagenet", "none")


def _preset_values(preset: str, model_name: str, classes: int, channels: int) -> dict:
    """normalizer / class_names / preprocess / input_shape of a named preset."""
    if preset == "none":              # pixels on the 0..1 scale, as they are
        return {"normalizer": {"mean": [0.0] * channels, "std": [1.0] * channels},
                "class_names": [str(k) for k in range(classes)], "preprocess": {}}
    from ..interop import imagenet_preset           # written beside this module; imported when used
    return dict(imagenet_preset(model_name))


def _normalizer(value, path):
    """A Normalizer from a preset's (already one) or the metadata's {"mean": [...], "std": [...]}."""
    from ..data import Normalizer
    if isinstance(value, Normalizer):
        return value
    if not (isinstance(value, dict) and {"mean", "std"} <= set(value)):
        raise OnnxImportError(f"'{path}': its normalizer {str(value)[:80]!r} is not {{'mean': [...], 'std': [...]}}")
    try:
        return Normalizer(value["mean"], value["std"])
    except (TypeError, ValueError) as err:
        raise OnnxImportError(f"'{path}': its normalizer metadata: {err}") from None


def import_onnx(path, *, preset: str | None = None, input_shape=None):
    """The classifier in ONNX file ``path``: a :class:`~convscope.Classifier` whose model is
    a :class:`~convscope.layers.Graph` that reproduces the file's logits.

    ``preset`` says how images are prepared and what the classes are called: None uses the
    file's convscope metadata when it has some (a convscope export), else "none";
    "imagenet" asks :func:`convscope.interop.imagenet_preset` for the ImageNet statistics,
    classes and resize / crop of the architecture (named by the metadata or the file's
    name); "none" takes pixels on the 0..1 scale as they are (mean 0, std 1) and names the
    classes "0".."K-1". ``input_shape`` (C, H, W) is needed only when the file's input has
    dynamic spatial sizes.
    """
    from ..classifier import Classifier
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)} or None, got {preset!r}")
    imported = import_graph(path, input_shape=input_shape)
    model, shape, meta = imported.model, imported.input_shape, imported.metadata
    classes = model.output_shape(shape)[0]
    if preset is None:
        preset = None if meta.get("normalizer") else "none"
    arch = meta.get("model") if meta.get("model") not in (None, "graph") else Path(path).stem
    values = meta if preset is None else _preset_values(preset, arch, classes, shape[0])
    normalizer = _normalizer(values.get("normalizer"), path)
    names = values.get("class_names") or [str(k) for k in range(classes)]
    if len(names) != classes:
        raise OnnxImportError(f"'{path}': the model has {classes} outputs but its class names (preset "
                              f"{preset or 'metadata'}) number {len(names)}")
    wanted = values.get("input_shape")
    if wanted is not None and tuple(wanted) != tuple(shape):
        raise OnnxImportError(f"'{path}': the model takes {tuple(shape)} inputs but the preset says {tuple(wanted)}")
    extra = {"preprocess": values.get("preprocess") or {},
             "imported_from": {"file": Path(path).name, "producer": imported.producer,
                               "preset": preset or "metadata"}}
    try:
        return Classifier(model, normalizer, names, shape, extra)
    except (TypeError, ValueError) as err:
        raise OnnxImportError(f"'{path}': {err}") from None
