"""Helpers of the ONNX tests: the optional packages, onnxruntime's logits, torchvision reference
networks with random weights.

The suite skips cleanly without onnx, onnxruntime or (for the torchvision tests) torch. By
default the dynamo exporter runs on a few models only, since each of its exports takes 5-20 s;
set CONVSCOPE_ONNX_FULL=1 to run it on every model, and the full-size variants.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

FULL = bool(os.environ.get("CONVSCOPE_ONNX_FULL"))
TOL = 1e-4                       # relative to the largest logit, as the issue asks


def rel_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max |ours - theirs| / max |theirs|."""
    return float(np.abs(ours - theirs).max() / max(float(np.abs(theirs).max()), 1e-12))


def ort_logits(path, x: np.ndarray) -> np.ndarray:
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def randomise(net, seed: int = 0):
    """Random norm scales and shifts, BN statistics and layer scales (torchvision initialises them
    to 1 and 0, which hides scale / shift mix-ups and lets the dynamo exporter merge equal tensors)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim <= 1 or "layer_scale" in name:
                scale = name.endswith("weight") or "layer_scale" in name
                p.copy_(torch.rand(p.shape, generator=g) + 0.5 if scale else torch.randn(p.shape, generator=g) * 0.1)
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return net


def small_input(net, side: int):
    """AlexNet and VGG end in an adaptive pool to 6x6 / 7x7, the identity at 224 and an upsampling
    the TorchScript exporter refuses below. At a small input they pool to the map's own size and
    their classifier is 256 wide (4096 at 224): the same layers and ops, a tenth of the weights to
    export. The full-size networks run with CONVSCOPE_ONNX_FULL=1."""
    import torch
    arch = type(net).__name__
    if arch in ("AlexNet", "VGG"):
        with torch.no_grad():
            cells = net.features(torch.zeros(1, 3, side, side)).shape[-1]
        net.avgpool = torch.nn.AdaptiveAvgPool2d(cells)
        fcs = [i for i, m in enumerate(net.classifier) if isinstance(m, torch.nn.Linear)]
        channels = [m for m in net.features if isinstance(m, torch.nn.Conv2d)][-1].out_channels
        widths = [channels * cells * cells, 256, 256, net.classifier[fcs[-1]].out_features]
        for i, k in enumerate(fcs):
            net.classifier[k] = torch.nn.Linear(widths[i], widths[i + 1])
    return net


SIDES = {"inception_v3": 75}


def build_reference(arch: str, side: int):
    """torchvision's ``arch`` (10 classes, random weights, eval mode), ready for ``side``.

    Without CONVSCOPE_ONNX_FULL, ResNeXt-50 and Wide ResNet-50 have one bottleneck per stage
    and ConvNeXt two stages of one block (the same blocks and ops, a fraction of the export time)."""
    from torchvision_models import torchvision_model, torchvision_module
    import torch
    torch.manual_seed(0)
    if arch in ("resnext50_32x4d", "wide_resnet50_2") and not FULL:
        resnet = torchvision_module("resnet")
        kw = dict(groups=32, width_per_group=4) if arch.startswith("resnext") else dict(width_per_group=128)
        net = resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1], num_classes=10, **kw)
    elif arch == "convnext_tiny" and not FULL:
        convnext = torchvision_module("convnext")
        net = convnext.ConvNeXt([convnext.CNBlockConfig(32, 64, 1), convnext.CNBlockConfig(64, None, 1)],
                                num_classes=10)
    else:
        kw = {"init_weights": True} if arch in ("googlenet", "inception_v3") else {}
        net = torchvision_model(arch, num_classes=10, **kw)
    return randomise(small_input(net, side) if side < 224 else net).eval()


def require(name: str):
    """The installed package ``name``, or skip. (``tests/onnx`` is a directory on sys.path, so a
    bare ``import onnx`` without the package would find it as an empty namespace package.)"""
    module = pytest.importorskip(name)
    if getattr(module, "__file__", None) is None:
        pytest.skip(f"{name} is not installed")
    return module


def dynamo_available() -> bool:
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True
