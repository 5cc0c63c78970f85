"""Files in the style of the classic ONNX model zoo (Caffe-converted AlexNet / CaffeNet /
GoogLeNet): old opsets, a static batch of 1, LRN, Caffe's asymmetric pool padding, Dropout with
a ratio attribute, a Reshape to [1, -1], a softmax over the class axis (opset < 13)."""

from __future__ import annotations

import numpy as np
import pytest

from onnx_helpers import TOL, ort_logits, rel_error, require

onnx = require("onnx")
require("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from convscope.onnx import import_onnx  # noqa: E402


def caffe_style(opset: int, rng) -> onnx.ModelProto:
    def w(name, *shape, scale=0.2):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    dropout = dict(ratio=0.5) if opset < 12 else {}
    nodes = [
        helper.make_node("Conv", ["data", "conv1_w", "conv1_b"], ["conv1"], name="conv1", kernel_shape=[5, 5],
                         strides=[2, 2], pads=[2, 2, 2, 2], group=1),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("LRN", ["relu1"], ["norm1"], name="norm1", size=5, alpha=1e-2, beta=0.75, bias=1.0),
        helper.make_node("MaxPool", ["norm1"], ["pool1"], name="pool1", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[0, 0, 1, 1]),
        helper.make_node("Conv", ["pool1", "conv2_w", "conv2_b"], ["conv2"], name="conv2", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], group=2),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("AveragePool", ["relu2"], ["pool2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Dropout", ["pool2"], ["drop"], name="drop", **dropout),
        helper.make_node("Reshape", ["drop", "flat_shape"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["fc"], name="fc", transB=1),
        helper.make_node("Softmax", ["fc"], ["prob"], name="prob", axis=1),
    ]
    inits = [w("conv1_w", 8, 3, 5, 5), w("conv1_b", 8), w("conv2_w", 8, 4, 3, 3), w("conv2_b", 8),
             numpy_helper.from_array(np.array([1, -1], np.int64), "flat_shape"), w("fc_w", 10, 8 * 4 * 4),
             w("fc_b", 10)]
    graph = helper.make_graph(nodes, "caffe_style", [helper.make_tensor_value_info("data", TensorProto.FLOAT,
                                                                                   [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 4 if opset < 12 else 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("opset", [8, 9, 11, 13])
def test_a_caffe_style_classifier_imports(opset, tmp_path):
    rng = np.random.default_rng(opset)
    path = tmp_path / "caffenet.onnx"
    path.write_bytes(caffe_style(opset, rng).SerializeToString())
    clf = import_onnx(path)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    ours = clf.model.forward(x)
    assert rel_error(ours, ort_logits(path, x)) < TOL
    assert clf.model.forward(np.concatenate([x, x, x])).shape == (3, 10)      # the batch is dynamic now
    names = [n for n, _ in clf.model.named_modules() if n]
    assert {"conv1", "norm1", "pool1", "conv2", "fc", "prob"} <= set(names)
