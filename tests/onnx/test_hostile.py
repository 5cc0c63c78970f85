"""Untrusted ONNX files: each is refused with one line (OnnxImportError, a ValueError) before
anything large is read or allocated, and no path outside the model's folder is opened."""

from __future__ import annotations

import os

import numpy as np
import pytest

from onnx_helpers import require

onnx = require("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from convscope.onnx import OnnxImportError, SUPPORTED_OPS, import_onnx  # noqa: E402


def model(nodes, inits=(), out="y", out_shape=(None, 2), extra_inputs=()):
    """A model with input x (N, 1, 2, 2), output ``out`` and the given nodes and initializers."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 2, 2]), *extra_inputs]
    graph = helper.make_graph(nodes, "hostile", inputs,
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(out_shape))],
                              initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def flatten_gemm(w_init):
    return [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
            helper.make_node("Gemm", ["f", w_init], ["y"], name="fc", transB=1)]


def save(m, path):
    path.write_bytes(m.SerializeToString())
    return path


def refused(path, match):
    with pytest.raises(OnnxImportError, match=match) as err:
        import_onnx(path)
    assert "\n" not in str(err.value)
    return str(err.value)


def external(name, location, nbytes=32, dims=(2, 4)):
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims))
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(nbytes))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def test_a_sane_file_with_external_data_inside_its_folder_imports(tmp_path):
    w = np.arange(8, dtype=np.float32).reshape(2, 4)
    (tmp_path / "weights.bin").write_bytes(w.tobytes())
    clf = import_onnx(save(model(flatten_gemm("w"), [external("w", "weights.bin")]), tmp_path / "m.onnx"))
    x = np.ones((1, 1, 2, 2), dtype=np.float32)
    np.testing.assert_allclose(clf.model.forward(x), x.reshape(1, 4) @ w.T)


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_outside_the_folder_is_refused(location, tmp_path):
    (tmp_path / "sub").mkdir()
    refused(save(model(flatten_gemm("w"), [external("w", location)]), tmp_path / "sub" / "m.onnx"),
            "refused")


def test_an_external_data_symlink_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 32)
    folder = tmp_path / "model"
    folder.mkdir()
    os.symlink(outside, folder / "weights.bin")
    refused(save(model(flatten_gemm("w"), [external("w", "weights.bin")]), folder / "m.onnx"), "outside")


def test_external_data_shorter_than_declared_is_refused(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 8)
    refused(save(model(flatten_gemm("w"), [external("w", "weights.bin")]), tmp_path / "m.onnx"), "does not hold")


def test_a_tensor_declaring_2_to_the_40_values_is_refused_before_allocation(tmp_path):
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20], raw_data=b"\0" * 16)
    refused(save(model(flatten_gemm("w"), [huge]), tmp_path / "m.onnx"), "1099511627776 values")


def test_a_tensor_holding_fewer_bytes_than_declared_is_refused(tmp_path):
    short = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 4], raw_data=b"\0" * 12)
    refused(save(model(flatten_gemm("w"), [short]), tmp_path / "m.onnx"), "holds 12 bytes")


def test_a_huge_node_count_is_refused_before_parsing(tmp_path):
    nodes = [helper.make_node("Relu", ["x" if i == 0 else f"t{i - 1}"], [f"t{i}"]) for i in range(20_001)]
    refused(save(model(nodes, out="t20000"), tmp_path / "m.onnx"), "more than 20000 nodes")


def test_sub_graphs_are_refused_before_parsing(tmp_path):
    branch = helper.make_graph([helper.make_node("Relu", ["x"], ["z"])], "b", [],
                               [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    cond = numpy_helper.from_array(np.array(True), "c")
    node = helper.make_node("If", ["c"], ["y"], name="if", then_branch=branch, else_branch=branch)
    refused(save(model([node], [cond]), tmp_path / "m.onnx"), "sub-graph")


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    def varint(v):
        out = b""
        while True:
            out += bytes([(v & 0x7F) | (0x80 if v > 0x7F else 0)])
            v >>= 7
            if not v:
                return out
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_deeply_nested_types_fail_to_parse_in_one_line(tmp_path):
    """A value_info whose type nests sequence-of-sequence 5,000 deep (written by hand: protobuf
    refuses to serialise it): the parser's recursion limit stops it, and the error is one line."""
    t = b""
    for _ in range(5000):
        t = _field(4, _field(1, t))              # TypeProto.sequence_type -> Sequence.elem_type
    value_info = _field(1, b"deep") + _field(2, t)
    m = model(flatten_gemm("w"), [numpy_helper.from_array(np.ones((2, 4), np.float32), "w")])
    graph = m.graph.SerializeToString() + _field(13, value_info)
    m.ClearField("graph")
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString() + _field(7, graph))
    refused(path, "not a readable ONNX model")


def test_an_unsupported_op_is_one_line_naming_op_node_and_the_supported_ops(tmp_path):
    nodes = [helper.make_node("Resize", ["x", "", "s"], ["r"], name="upsample"),
             helper.make_node("Flatten", ["r"], ["y"], name="flat")]
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")
    message = refused(save(model(nodes, [scales]), tmp_path / "m.onnx"), "'Resize' .node 'upsample'. is not supported")
    assert "supported ops: " in message and all(op in message for op in ("Conv", "Gemm", "LayerNormalization"))
    assert "Resize" not in SUPPORTED_OPS


def test_foreign_domains_and_batch_merging_reshapes_say_which_node(tmp_path):
    custom = helper.make_node("Fancy", ["x"], ["y"], name="magic", domain="com.example")
    m = model([custom])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    refused(save(m, tmp_path / "a.onnx"), "node 'magic'.*domain 'com.example'")
    shape = numpy_helper.from_array(np.array([-1], np.int64), "s")
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="merge")]
    refused(save(model(nodes, [shape], out_shape=(None,)), tmp_path / "b.onnx"), "node 'merge'.*batch axis")


def test_a_folded_constant_is_bounded(tmp_path):
    shape = numpy_helper.from_array(np.array([1 << 20, 1 << 20], np.int64), "s")
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["big"], name="fill"),
             helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "big"], ["y"], name="fc")]
    refused(save(model(nodes, [shape]), tmp_path / "m.onnx"), "node 'fill'.*at most")


@pytest.mark.parametrize("content,match", [(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not"),
                                           (b"", "holds 0 graphs"), (b"\x0a\xff\xff\xff\xff\x0f", "truncated")])
def test_files_that_are_not_models(content, match, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    refused(path, match)


def test_a_truncated_model_is_refused(tmp_path):
    m = model(flatten_gemm("w"), [numpy_helper.from_array(np.ones((2, 4), np.float32), "w")])
    data = m.SerializeToString()
    path = tmp_path / "m.onnx"
    path.write_bytes(data[:len(data) // 2])
    refused(path, "not|truncated|past the end")


def test_two_image_inputs_and_missing_files(tmp_path):
    extra = helper.make_tensor_value_info("x2", TensorProto.FLOAT, [None, 1, 2, 2])
    nodes = [helper.make_node("Add", ["x", "x2"], ["a"]), helper.make_node("Flatten", ["a"], ["y"])]
    refused(save(model(nodes, extra_inputs=[extra], out_shape=(None, 4)), tmp_path / "m.onnx"), "2 inputs")
    refused(tmp_path / "nope.onnx", "does not exist")
