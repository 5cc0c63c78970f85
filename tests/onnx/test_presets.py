"""How an imported classifier prepares images: the file's convscope metadata, or a preset."""

from __future__ import annotations

import numpy as np
import pytest

from onnx_helpers import require

onnx = require("onnx")
require("onnxruntime")

from convscope import Classifier  # noqa: E402
from convscope.data import Normalizer  # noqa: E402
from convscope.layers import GlobalAvgPool2d, Graph, Linear, graph_to_spec  # noqa: E402
from convscope.models import build_model  # noqa: E402
from convscope.onnx import OnnxImportError, export_onnx, import_onnx  # noqa: E402


def tiny(classes: int, shape=(3, 224, 224)) -> Classifier:
    """Average pool and one linear layer: a classifier that is cheap at any input size."""
    g = Graph([("pool", GlobalAvgPool2d(), ["input"]), ("fc", Linear(shape[0], classes), ["pool"])], output="fc")
    model = build_model("graph", classes, shape[0], shape[1:], graph=graph_to_spec(g))
    return Classifier(model, Normalizer([0.1] * shape[0], [0.2] * shape[0]), [f"c{k}" for k in range(classes)], shape)


def test_metadata_by_default_none_on_request(tmp_path):
    path = export_onnx(tiny(4, (3, 8, 8)), tmp_path / "m.onnx")
    assert import_onnx(path).class_names == ["c0", "c1", "c2", "c3"]
    plain = import_onnx(path, preset="none")
    assert plain.class_names == ["0", "1", "2", "3"]
    assert plain.normalizer.mean.tolist() == [0.0] * 3 and plain.normalizer.std.tolist() == [1.0] * 3
    assert plain.transform == {}


def test_the_imagenet_preset(tmp_path):
    pytest.importorskip("convscope.interop")
    path = export_onnx(tiny(1000), tmp_path / "resnet50.onnx")
    clf = import_onnx(path, preset="imagenet")
    assert clf.class_names[0] == "tench" and clf.transform == {"resize": 256, "crop": True}
    assert clf.meta["imported_from"]["preset"] == "imagenet"
    with pytest.raises(OnnxImportError, match="1000"):
        import_onnx(export_onnx(tiny(10), tmp_path / "small.onnx"), preset="imagenet")


def test_unknown_presets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        import_onnx(tmp_path / "m.onnx", preset="cifar")


def test_dynamic_spatial_sizes_need_an_input_shape(tmp_path):
    proto = onnx.load(export_onnx(tiny(2, (3, 8, 8)), tmp_path / "m.onnx"))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    del proto.metadata_props[:]
    path = tmp_path / "dynamic.onnx"
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(OnnxImportError, match="input_shape"):
        import_onnx(path)
    clf = import_onnx(path, input_shape=(3, 16, 16))
    assert clf.input_shape == (3, 16, 16) and clf.predict(np.zeros((1, 16, 16, 3), np.uint8)).shape == (1, 2)
