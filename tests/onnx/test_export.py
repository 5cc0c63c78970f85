"""convscope -> ONNX: every zoo model passes onnx.checker, onnxruntime reproduces its logits
within 1e-4, the file carries the state-dict names and the preprocessing, and importing it
back gives the same logits."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from onnx_helpers import FULL, TOL, ort_logits, rel_error, require

onnx = require("onnx")
require("onnxruntime")

from convscope import Classifier, load  # noqa: E402
from convscope.data import Normalizer  # noqa: E402
from convscope.layers import (Add, BatchNorm1d, Cat, Clip, Constant, Conv2d, CrossChannelPool, Div,  # noqa: E402
                              Erf, Exp, Flatten, Gelu, GlobalAvgPool2d, Graph, HardSigmoid, HardSwish,
                              LayerNorm, LeakyReLU, Linear, LinearND, LocalResponseNorm, LogSoftmax, MaxPool2d,
                              AvgPool2d, Mul, Neg, OnnxLocalResponseNorm, Pad, Pow, Reciprocal, ReduceMax,
                              ReduceMean, ReduceSum, ReLU, Reshape, Sigmoid, Slice, Softmax, Sqrt, Sub, Tanh,
                              Transpose, ZeroPadShortcut)
from convscope.models import available_models, build_model  # noqa: E402
from convscope.onnx import OnnxExportError, export_onnx, import_onnx  # noqa: E402


def randomised(model, seed: int = 0):
    """Random BN statistics and affine parameters, so inference-form BN is really tested."""
    rng = np.random.default_rng(seed)
    for _, m in model.named_modules():
        for key, value in list(m.buffers.items()) + list(m.params.items()):
            if value.ndim == 1 and key in ("running_mean", "bias"):
                m.__dict__["buffers" if key in m.buffers else "params"][key] = \
                    (rng.standard_normal(value.shape) * 0.1).astype(value.dtype)
            elif value.ndim == 1 and key in ("running_var", "weight"):
                m.__dict__["buffers" if key in m.buffers else "params"][key] = \
                    rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
    return model


def zoo_shape(name: str) -> tuple[int, int, int]:
    """The small variants' input: MNIST's 1x28x28, the registry's default (every zoo model
    takes it; the CLI test below runs a CIFAR ResNet at 3x32x32)."""
    return (1, 28, 28)


def classifier(name, shape, seed=0, **options):
    c = shape[0]
    model = randomised(build_model(name, 10, c, shape[1:], rng=np.random.default_rng(seed), **options), seed)
    return Classifier(model, Normalizer([0.25] * c, [0.5] * c), [f"class{k}" for k in range(10)], shape,
                      {"preprocess": {"resize": 36, "crop": True}})


def roundtrip(clf, path, batch: int = 1):
    export_onnx(clf, path)
    x = np.random.default_rng(1).standard_normal((batch, *clf.input_shape)).astype(np.float32)
    ours = clf.model.eval().forward(x)
    assert rel_error(ours, ort_logits(path, x)) < TOL
    back = import_onnx(path)
    assert rel_error(back.model.forward(x), ours) < TOL
    return back, x, ours


@pytest.mark.parametrize("name", available_models())
def test_every_zoo_model_exports_and_comes_back(name, tmp_path):
    clf = classifier(name, zoo_shape(name))
    back, _, _ = roundtrip(clf, tmp_path / f"{name}.onnx")
    proto = onnx.load(tmp_path / f"{name}.onnx")
    onnx.checker.check_model(proto, full_check=True)
    inits = {t.name for t in proto.graph.initializer}
    assert set(clf.model.state_dict()) <= inits                     # the state-dict names survive
    assert set(back.model.state_dict()) == set(clf.model.state_dict())
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["logits"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert back.class_names == clf.class_names and back.meta["preprocess"] == {"resize": 36, "crop": True}
    np.testing.assert_allclose(back.normalizer.mean, 0.25) and np.testing.assert_allclose(back.normalizer.std, 0.5)


def test_batch_norm_stays_batch_normalization_and_aux_heads_are_dropped(tmp_path):
    clf = classifier("googlenet", (1, 28, 28), aux_logits=True)
    roundtrip(clf, tmp_path / "g.onnx")
    proto = onnx.load(tmp_path / "g.onnx")
    ops = {n.op_type for n in proto.graph.node}
    assert "BatchNormalization" in ops and not any("aux" in n.name for n in proto.graph.node)
    assert "conv1_bn.running_var" in {t.name for t in proto.graph.initializer}


def test_metadata_props_hold_the_preprocessing(tmp_path):
    clf = classifier("lenet5", (1, 28, 28))
    export_onnx(clf, tmp_path / "m.onnx")
    props = {p.key: p.value for p in onnx.load(tmp_path / "m.onnx").metadata_props}
    assert json.loads(props["convscope.normalizer"]) == {"mean": [0.25], "std": [0.5]}
    assert json.loads(props["convscope.class_names"])[:2] == ["class0", "class1"]
    assert json.loads(props["convscope.preprocess"]) == {"resize": 36, "crop": True}
    assert json.loads(props["convscope.input_shape"]) == [1, 28, 28] and props["convscope.model"] == "lenet5"


@pytest.mark.parametrize("name", ["resnet18", "googlenet"] + (["alexnet", "vgg11_bn"] if FULL else []))
def test_full_size_models_at_224(name, tmp_path):
    """At 224 (AlexNet's 61 M and VGG's 133 M weights with CONVSCOPE_ONNX_FULL=1)."""
    roundtrip(classifier(name, (3, 224, 224)), tmp_path / f"{name}.onnx")


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_other_opsets(opset, tmp_path):
    clf = classifier("alexnet_original", (1, 28, 28))          # LRN, grouped convs
    path = export_onnx(clf, tmp_path / "a.onnx", opset=opset)
    assert onnx.load(path).opset_import[0].version == opset
    x = np.random.default_rng(2).standard_normal((2, 1, 28, 28)).astype(np.float32)
    assert rel_error(ort_logits(path, x), clf.model.forward(x)) < TOL


def every_graph_layer(rng) -> Graph:
    """A graph holding every layer the importer creates, for the export -> import round trip."""
    scale = Constant((6, 1, 1), key="gamma", learnable=True)
    scale.params["gamma"] = rng.uniform(0.5, 1.5, (6, 1, 1)).astype(np.float32)
    layers = [
        ("conv", Conv2d(3, 6, 3, padding=1, rng=rng), ["input"]),
        ("gamma", scale, []), ("scaled", Mul(), ["conv", "gamma"]),
        ("relu6", Clip(0.0, 6.0), ["scaled"]), ("hsig", HardSigmoid(1 / 6, 0.5), ["conv"]),
        ("hswish", HardSwish(), ["hsig"]), ("gated", Mul(), ["relu6", "hswish"]),
        ("lrn_onnx", OnnxLocalResponseNorm(5, 1e-2, 0.75, 2.0), ["gated"]),     # onnxruntime: odd sizes only
        ("lrn", LocalResponseNorm(3, 1e-2), ["lrn_onnx"]), ("pad", Pad([[0, 0], [1, 0], [0, 1]], 0.5), ["lrn"]),
        ("slice", Slice([1, 2], [0, 1], [8, 8], [1, 1]), ["pad"]), ("pool", MaxPool2d(2, ceil_mode=True), ["slice"]),
        ("avg", AvgPool2d(3, 1, 1, count_include_pad=False), ["pool"]),
        ("ccp", CrossChannelPool(2, "max"), ["avg"]), ("zp", ZeroPadShortcut(3, 6, 2), ["ccp"]),
        ("last", Transpose([1, 2, 0]), ["zp"]), ("ln", LayerNorm([6], eps=1e-3), ["last"]),
        ("dense", LinearND(6, 8, rng=rng), ["ln"]), ("gelu", Gelu(), ["dense"]), ("erf", Erf(), ["dense"]),
        ("sum", Add(), ["gelu", "erf"]), ("sub", Sub(), ["sum", "dense"]), ("tanh", Tanh(), ["sub"]),
        ("sig", Sigmoid(), ["sub"]), ("pos", Exp(), ["tanh"]), ("div", Div(), ["sig", "pos"]),
        ("sq", Pow(2.0), ["div"]), ("root", Sqrt(), ["pos"]), ("inv", Reciprocal(), ["root"]),
        ("neg", Neg(), ["inv"]), ("leaky", LeakyReLU(0.1), ["neg"]), ("cat", Cat(2), ["sq", "leaky"]),
        ("first", Transpose([2, 0, 1]), ["cat"]), ("mean", ReduceMean([1, 2], keepdims=True), ["first"]),
        ("max", ReduceMax([1, 2], keepdims=True), ["first"]), ("sum2", ReduceSum([1, 2], keepdims=True), ["first"]),
        ("both", Add(), ["mean", "max"]), ("all", Add(), ["both", "sum2"]), ("flat", Reshape([16]), ["all"]),
        ("bn", BatchNorm1d(16), ["flat"]), ("soft", Softmax(0), ["bn"]), ("logs", LogSoftmax(0), ["bn"]),
        ("mix", Add(), ["soft", "logs"]), ("fc", Linear(16, 5, rng=rng), ["mix"]),
    ]
    return Graph(layers, output="fc")


@pytest.mark.parametrize("opset", [17, 20])
def test_every_graph_layer_exports_and_comes_back(opset, tmp_path, rng=np.random.default_rng(3)):
    g = randomised(every_graph_layer(rng))
    model = build_model("graph", num_classes=5, in_channels=3, input_size=(8, 8), graph=__import__(
        "convscope.layers", fromlist=["graph_to_spec"]).graph_to_spec(g))
    model.load_state_dict(g.state_dict())
    clf = Classifier(model, Normalizer([0.0] * 3, [1.0] * 3), list("abcde"), (3, 8, 8))
    export_onnx(clf, tmp_path / "g.onnx", opset=opset)
    x = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    ours = model.eval().forward(x)
    assert rel_error(ort_logits(tmp_path / "g.onnx", x), ours) < TOL
    back = import_onnx(tmp_path / "g.onnx")
    assert rel_error(back.model.forward(x), ours) < TOL
    assert set(back.model.named_parameters()) == set(model.named_parameters())
    # Before opset 20 GELU is written as Div, Erf, Add and Mul by constants, which come back as
    # Constant buffers.
    extra = set(back.model.named_buffers()) - set(model.named_buffers())
    assert all(name.startswith("gelu") for name in extra) and bool(extra) == (opset < 20)


def test_unexportable_models_say_why(tmp_path):
    g = Graph([("lrn", LocalResponseNorm(4), ["input"]), ("flat", Flatten(), ["lrn"])], output="flat")
    with pytest.raises(OnnxExportError, match="even size 4"):
        export_onnx(g, tmp_path / "x.onnx", input_shape=(4, 2, 2))
    with pytest.raises(ValueError, match="opset"):
        export_onnx(classifier("lenet5", (1, 28, 28)), tmp_path / "x.onnx", opset=9)
    with pytest.raises(OnnxExportError, match="input_shape"):
        export_onnx(build_model("lenet5"), tmp_path / "x.onnx")


def test_cli_export_then_summary_of_the_reimport(tmp_path, capsys):
    from convscope.cli.main import main
    ck = classifier("resnet20", (3, 32, 32)).save(tmp_path / "model.npz")
    assert main(["export", str(ck), "--out", str(tmp_path / "m.onnx"), "--opset", "18"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert onnx.load(tmp_path / "m.onnx").opset_import[0].version == 18
    assert main(["export", str(ck), "--out", str(tmp_path), "--opset", "17"]) == 2
    assert "is a directory" in capsys.readouterr().err
    import_onnx(tmp_path / "m.onnx").save(tmp_path / "back.npz")
    assert main(["summary", "--checkpoint", str(tmp_path / "back.npz")]) == 0
    table = capsys.readouterr().out
    assert "layer1.0.conv1" in table and "layer3.2.relu2" in table and "total MACs" in table
    assert load(tmp_path / "back.npz").num_classes == 10


def test_import_convscope_does_not_import_onnx():
    code = "import sys, convscope, convscope.onnx, convscope.cli.main; print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_missing_onnx_package_is_one_line(monkeypatch, tmp_path, capsys):
    from convscope.cli.main import main
    ck = classifier("lenet5", (1, 28, 28)).save(tmp_path / "model.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)           # as if it were not installed
    assert main(["export", str(ck), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'pip install "convscope[onnx]"' in err
