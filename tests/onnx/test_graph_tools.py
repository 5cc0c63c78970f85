"""The tools on imported graphs: ``convscope summary`` rows (node names, shapes, parameters,
receptive fields where defined, MACs), the visualisation techniques, and training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from onnx_helpers import require

require("onnx")
require("onnxruntime")
require("torch")

import convscope.visualize as V  # noqa: E402
from convscope.layers import SoftmaxCrossEntropy  # noqa: E402
from convscope.onnx import import_onnx  # noqa: E402
from convscope.summary import summarize  # noqa: E402


@pytest.fixture(scope="module")
def squeezenet(torchvision_export):
    path, x, _, _ = torchvision_export("squeezenet1_0", "torchscript")
    return import_onnx(path), x


def test_summary_of_an_imported_resnet(torchvision_export):
    path, _, _, net = torchvision_export("resnet18", "torchscript")
    clf = import_onnx(path)
    s = summarize(clf.model, clf.input_shape)
    # The exporter folds each BN into its conv: 2C parameters become the conv's C biases.
    bn_channels = sum(m.num_features for m in net.modules() if type(m).__name__ == "BatchNorm2d")
    assert s.total_params == sum(p.numel() for p in net.parameters()) - bn_channels
    assert s.row("conv1").receptive_field == (7, 7) and s.row("conv1").jump == (2, 2)
    assert s.row("conv1").macs == 64 * 32 * 32 * 3 * 7 * 7
    # The same geometry as convscope's own ResNet-18 (tests/test_summary.py): 435 pixels.
    assert s.row("layer4.1.conv2").receptive_field == (435, 435)
    assert s.row("layer1.0.add").type == "Add" and s.row("layer1.0.add").receptive_field == (27, 27)
    assert s.rows[-1].name == "fc" and s.rows[-1].output_shape == (10,)
    assert all(r.receptive_field is not None for r in s.rows)


def test_summary_marks_undefined_fields(torchvision_export):
    """ConvNeXt: the channels-last blocks keep their field through the transposes; the GELU's
    scalar constants have none (null in JSON, "-" in the table)."""
    path, _, _, _ = torchvision_export("convnext_tiny", "torchscript")
    clf = import_onnx(path)
    s = summarize(clf.model, clf.input_shape)
    norm = next(r for r in s.rows if r.type == "LayerNorm" and len(r.output_shape) == 3)
    assert norm.receptive_field is not None
    constants = [r for r in s.rows if r.type == "Constant"]
    assert constants and all(r.receptive_field is None for r in constants)
    data = json.loads(json.dumps(s.to_dict()))
    assert any(layer["receptive_field"] is None for layer in data["layers"])
    assert " - " in s.format_table()


def test_squeeze_excitation_sees_the_whole_image(torchvision_export):
    path, _, _, _ = torchvision_export("mobilenet_v3_small", "torchscript")
    clf = import_onnx(path)
    s = summarize(clf.model, clf.input_shape)
    gate = next(r for r in s.rows if r.type == "Mul" and len(r.output_shape) == 3)
    assert gate.receptive_field == clf.input_shape[1:]


def test_visualisation_techniques_run_on_an_imported_graph(squeezenet):
    clf, _ = squeezenet
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 3, 64, 64), dtype=np.uint8)
    layer = "features.12.expand3x3_activation"            # a 4-D node late in the network
    assert V.filter_grid(clf).weights.shape[1] == 3
    assert V.feature_maps(clf, images).ndim == 4
    for saliency in (V.gradient_saliency(clf, images), V.guided_backprop(clf, images),
                     V.integrated_gradients(clf, images, steps=2).attributions):
        assert saliency.shape[0] == 2 and np.isfinite(saliency).all() and np.abs(saliency).max() > 0
    assert V.grad_cam(clf, images, layer=layer).upsampled.shape == (2, 64, 64)
    for method in ("grad_cam_plus_plus", "eigen_cam"):
        assert V.attribute(clf, images[:1], method, layer=layer).shape[-2:] == (64, 64)
    assert V.deconv(clf, images[:1], layer=layer) is not None
    assert V.occlusion(clf, images[:1], window=32, stride=32).shape[-2:] == (64, 64)
    assert V.invert(clf, images[:1], layer=layer, steps=2) is not None      # no Linear: name the layer
    assert V.activation_maximization(clf, unit=0, steps=2) is not None
    assert V.dissect(clf, images, layer=layer, top=2) is not None
    labels = np.array([0, 1])
    assert V.nearest_neighbors(clf, images, labels, images[:1], layer=layer, k=1) is not None


def test_grad_cam_default_layer_on_a_graph(squeezenet):
    clf, _ = squeezenet
    images = np.random.default_rng(0).integers(0, 256, (1, 3, 64, 64), dtype=np.uint8)
    cam = V.grad_cam(clf, images)                       # default: the last node with a feature map
    assert cam.upsampled.shape == (1, 64, 64) and np.isfinite(cam.upsampled).all()


def test_an_imported_graph_trains(squeezenet):
    """Gradients flow end to end (fan-outs into the Fire modules' two branches accumulate):
    a few SGD steps on one batch lower its loss."""
    clf, _ = squeezenet
    model = clf.model.train()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    y = np.array([0, 1])
    loss_fn, losses = SoftmaxCrossEntropy(), []
    for _ in range(3):
        losses.append(loss_fn.forward(model.forward(x), y))
        model.backward(loss_fn.backward())
        for name, module, key in model.parameter_slots():
            module.params[key] = module.params[key] - 1e-3 * module.grads[key]
    assert losses[-1] < losses[0]
    model.eval()
