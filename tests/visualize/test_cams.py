"""The CAM family against its definitions on a one-conv model (conv -> global average pool ->
fc, where d y_t / d A_k = W_tk / (h w) exactly), the perturbation CAMs against slow loops,
Eigen-CAM against an SVD, upsampling against PyTorch, and the front door's defaults."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.layers import Conv2d, GlobalAvgPool2d, Linear, ReLU, Sequential, softmax
from convscope.visualize import attribute
from convscope.visualize.attribution import grad_cam
from convscope.visualize.cams import CAM_METHODS, class_activation_map, upsample
from convscope.visualize.display import resize_bilinear
from convscope.visualize.probe import evaluation_mode, layer_output


def one_conv(seed=0) -> Sequential:
    """conv 3@3x3 (padding 1) -> ReLU -> GAP -> fc 4 on 1x6x6: A = ReLU(conv(x)), y = W mean(A) + b."""
    rng = np.random.default_rng(seed)
    model = Sequential(("conv", Conv2d(1, 3, 3, padding=1, rng=rng)), ("relu", ReLU()),
                       ("gap", GlobalAvgPool2d()), ("fc", Linear(3, 4, rng=rng)))
    model.get_module("fc").params["bias"] = rng.standard_normal(4).astype(np.float32)
    return model.to(np.float64)


@pytest.fixture(scope="module")
def case():
    model = one_conv()
    x = np.random.default_rng(1).standard_normal((3, 1, 6, 6))
    targets = np.array([0, 2, 3])
    with evaluation_mode(model):
        a = layer_output(model, x, "relu")                              # (N, K, h, w)
    w = model.get_module("fc").params["weight"][targets]                # (N, K) = d y / d mean(A_k)
    return model, x, targets, a, w


def run(model, x, targets, method, layer="relu", **kw):
    with evaluation_mode(model):
        return class_activation_map(model, x, targets, method, layer, **kw)


def test_grad_cam_hires_and_xgrad_agree_when_the_gradient_is_constant(case):
    model, x, t, a, w = case
    g = w / 36                                                          # d y / d A_k at every pixel
    expected = np.maximum(np.einsum("nk,nkhw->nhw", g, a), 0)
    for method, rtol in (("grad_cam", 1e-9), ("hires_cam", 1e-9), ("xgrad_cam", 1e-6)):   # xgrad: eps 1e-7
        np.testing.assert_allclose(run(model, x, t, method).cam, expected, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(run(model, x, t, "grad_cam").weights, g, rtol=1e-12)


def test_layer_cam_rectifies_the_gradient(case):
    model, x, t, a, w = case
    expected = np.maximum(np.einsum("nk,nkhw->nhw", np.maximum(w / 36, 0), a), 0)
    np.testing.assert_allclose(run(model, x, t, "layer_cam").cam, expected, rtol=1e-9, atol=1e-12)


def test_grad_cam_plus_plus_weights(case):
    model, x, t, a, w = case
    g = np.broadcast_to((w / 36)[:, :, None, None], a.shape)
    alpha = g ** 2 / (2 * g ** 2 + a.sum(axis=(2, 3), keepdims=True) * g ** 3 + 1e-6)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(2, 3))
    np.testing.assert_allclose(run(model, x, t, "grad_cam_plus_plus").weights, weights, rtol=1e-9)


def test_ablation_cam_weights_are_the_relative_drop(case):
    model, x, t, a, w = case
    fc = model.get_module("fc")
    y = a.mean(axis=(2, 3)) @ fc.params["weight"].T + fc.params["bias"]
    clean = y[np.arange(3), t]
    drop = w * a.mean(axis=(2, 3))                                      # y - y with channel k zeroed
    np.testing.assert_allclose(run(model, x, t, "ablation_cam", batch_size=4).weights,
                               drop / clean[:, None], rtol=1e-9)


def test_score_cam_against_a_slow_loop(case):
    model, x, t, a, w = case
    res = run(model, x, t, "score_cam", batch_size=5)
    for i in range(3):
        floor = softmax(model.forward(np.zeros_like(x[i:i + 1])))[0, t[i]]
        for k in range(3):
            m = resize_bilinear(a[i:i + 1, k], (6, 6))[0]
            m = (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else np.zeros_like(m)
            p = softmax(model.forward(x[i:i + 1] * m))[0, t[i]]
            assert res.weights[i, k] == pytest.approx(p - floor, rel=1e-9, abs=1e-12)


def test_eigen_cam_is_the_first_principal_projection(case):
    model, x, t, a, _ = case
    res = run(model, x, t, "eigen_cam")
    for i in range(3):
        flat = a[i].reshape(3, -1).T
        v = np.linalg.svd(flat, full_matrices=False)[2][0]
        proj = flat @ v
        proj *= 1 if proj.sum() >= 0 else -1
        np.testing.assert_allclose(res.cam[i].ravel(), proj, rtol=1e-9, atol=1e-12)


def test_upsampling_matches_pytorch():
    torch = pytest.importorskip("torch")
    maps = np.random.default_rng(0).standard_normal((2, 3, 5))
    for mode in ("nearest", "bilinear"):
        ours = upsample(maps, (7, 12), mode)
        theirs = torch.nn.functional.interpolate(torch.from_numpy(maps)[:, None], (7, 12), mode=mode,
                                                 **({} if mode == "nearest" else {"align_corners": False}))
        np.testing.assert_allclose(ours, theirs[:, 0].numpy(), rtol=1e-12, atol=1e-12)


def test_front_door_maps_are_input_sized_rectified_and_batch_invariant(case):
    model, x, t, _, _ = case
    for method in CAM_METHODS:
        one = attribute(model, x, method, target=t, layer="relu", batch_size=64)
        two = attribute(model, x, method, target=t, layer="relu", batch_size=2)
        assert one.shape == (3, 6, 6)
        np.testing.assert_allclose(one, two, rtol=1e-10, atol=1e-14)
        if method != "eigen_cam":
            assert one.min() >= 0


def test_default_layer_is_the_last_conv_and_inner_layers_are_checked(clf, trained):
    images = trained.data.test_images[:4]
    default = attribute(clf, images, "grad_cam")
    named = attribute(clf, images, "grad_cam", layer="conv2")
    np.testing.assert_array_equal(default, named)
    np.testing.assert_allclose(default, grad_cam(clf, images, layer="conv2").upsampled, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="4-D output"):
        attribute(clf, images, "grad_cam", layer="fc1")
    with pytest.raises(ValueError, match="no layer named"):
        attribute(clf, images, "score_cam", layer="conv9")
    with pytest.raises(ValueError, match="upsample must be one of"):
        attribute(clf, images, "grad_cam", upsample="cubic")
