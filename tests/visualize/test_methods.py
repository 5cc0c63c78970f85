"""The front door ``attribute`` and the METHODS table: every method's shape and sign contract,
channel reductions, completeness of integrated gradients and DeepLIFT, the noise tunnel against
the existing SmoothGrad, agreement with the older single-method functions, and argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.layers import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, Tanh
from convscope.visualize import METHODS, attribute
from convscope.visualize.attribution import integrated_gradients
from convscope.visualize.methods import integrated_gradients_path
from convscope.visualize.occlusion import occlusion
from convscope.visualize.probe import evaluation_mode
from convscope.visualize.saliency import input_gradients, smoothgrad

REQUIRED = ("gradient", "input_x_gradient", "guided_backprop", "deconvnet", "integrated_gradients", "deeplift",
            "lrp_epsilon", "lrp_alpha_beta", "smoothgrad", "occlusion", "rise", "grad_cam", "grad_cam_plus_plus",
            "xgrad_cam", "layer_cam", "hires_cam", "score_cam", "ablation_cam", "eigen_cam", "guided_grad_cam")
FAST = {"rise": {"masks": 64}, "occlusion": {"window": 4, "stride": 4}, "integrated_gradients": {"steps": 8}}


def tiny_cnn(act=ReLU, pool=MaxPool2d, dtype=np.float64, seed=0) -> Sequential:
    """conv 3@3x3 -> act -> pool 2 -> conv 4@3x3 -> act -> fc 5, for 2x8x8 inputs."""
    rng = np.random.default_rng(seed)
    model = Sequential(("conv1", Conv2d(2, 3, 3, padding=1, rng=rng)), ("act1", act()), ("pool", pool(2)),
                       ("conv2", Conv2d(3, 4, 3, padding=1, rng=rng)), ("act2", act()), ("flatten", Flatten()),
                       ("fc", Linear(4 * 4 * 4, 5, rng=rng)))
    for _, m in model.named_modules():
        if "bias" in m.params:
            m.params["bias"] = 0.1 * rng.standard_normal(m.params["bias"].shape).astype(np.float32)
    return model.to(dtype)


def images(n=3, seed=1, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal((n, 2, 8, 8)).astype(dtype)


def test_the_table_has_every_method_with_its_conventions():
    assert set(REQUIRED) <= set(METHODS)
    for name, m in METHODS.items():
        assert m.name == name and m.kind in ("pixel", "map") and m.doc
        assert m.sign in ("signed", "non-negative", "rectified")


@pytest.mark.parametrize("name", REQUIRED)
def test_every_method_gives_input_sized_finite_maps_with_its_sign(name):
    model, x = tiny_cnn(), images()
    maps = attribute(model, x, name, seed=0, samples=2, **FAST.get(name, {}))
    assert maps.shape == (3, 8, 8) and maps.dtype == np.float64 and np.isfinite(maps).all()
    if METHODS[name].sign != "signed":
        assert maps.min() >= 0
    raw = attribute(model, x, name, seed=0, samples=2, reduce="none", **FAST.get(name, {}))
    assert raw.shape == ((3, 2, 8, 8) if METHODS[name].kind == "pixel" else (3, 1, 8, 8))
    np.testing.assert_allclose(raw.sum(axis=1), maps, rtol=1e-12, atol=1e-15)


def test_reductions():
    model, x = tiny_cnn(), images()
    raw = attribute(model, x, "gradient", reduce="none")
    np.testing.assert_allclose(attribute(model, x, "gradient", reduce="abs"), np.abs(raw).sum(1))
    np.testing.assert_allclose(attribute(model, x, "gradient", reduce="max_abs"), np.abs(raw).max(1))


def test_pixel_methods_match_their_definitions():
    model, x, t = tiny_cnn(), images(), np.array([0, 3, 1])
    grad = input_gradients(model, x, t)
    np.testing.assert_allclose(attribute(model, x, "gradient", t, reduce="none"), grad)
    np.testing.assert_allclose(attribute(model, x, "input_x_gradient", t, reduce="none"), x * grad)
    np.testing.assert_allclose(attribute(model, x, "guided_backprop", t, reduce="none"),
                               input_gradients(model, x, t, rule="guided"))
    np.testing.assert_allclose(attribute(model, x, "deconvnet", t, reduce="none"),
                               input_gradients(model, x, t, rule="deconvnet"))
    np.testing.assert_allclose(attribute(model, x, "occlusion", t, window=3, stride=2),
                               occlusion(model, x, t, window=3, stride=2))


def test_trapezoid_integrated_gradients_equal_the_older_function():
    model, x, t = tiny_cnn(), images(), np.array([1, 1, 4])
    old = integrated_gradients(model, x, t, steps=20).attributions
    new = attribute(model, x, "integrated_gradients", t, reduce="none", steps=21, integration="riemann_trapezoid")
    np.testing.assert_allclose(new, old, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["integrated_gradients", "deeplift"])
def test_completeness_on_a_smooth_model(name):
    """Sum of attributions = f(x) - f(baseline): Gauss-Legendre IG converges fast on a smooth
    (tanh, average-pooled) network; DeepLIFT's rescale rule is exact by construction."""
    model, x, t = tiny_cnn(act=Tanh, pool=AvgPool2d), images(), np.array([0, 2, 4])
    base = 0.3 * images(seed=9)
    maps = attribute(model, x, name, t, baseline=base, **({"steps": 40} if name != "deeplift" else {}))
    with evaluation_mode(model):
        change = model.forward(x)[np.arange(3), t] - model.forward(base)[np.arange(3), t]
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), change, rtol=1e-7)


def test_integrated_gradients_completeness_on_relu_lenet(trained):
    x = trained.x_test[:4].astype(np.float64)
    model = trained.model
    t = np.array([0, 1, 2, 3])
    with evaluation_mode(model):
        attr = integrated_gradients_path(model, x, t, np.zeros_like(x), steps=64)
        change = model.forward(x)[np.arange(4), t] - model.forward(np.zeros_like(x))[np.arange(4), t]
    assert np.abs(attr.reshape(4, -1).sum(1) - change).max() < 0.02 * np.abs(change).max()


def test_noise_tunnel_smoothgrad_equals_the_older_smoothgrad_and_ignores_batch_size():
    model, x = tiny_cnn(), images()
    old = smoothgrad(model, x, samples=5, noise=0.2, rng=np.random.default_rng(3))
    new = attribute(model, x, "smoothgrad", samples=5, noise=0.2, rng=np.random.default_rng(3), reduce="none")
    tunnel = attribute(model, x, "gradient", noise_tunnel="smoothgrad", samples=5, noise=0.2, seed=3,
                       batch_size=4, reduce="none")
    np.testing.assert_allclose(new, old, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(tunnel, old, rtol=1e-10, atol=1e-14)


def test_noise_tunnel_kinds_with_zero_noise():
    model, x = tiny_cnn(), images()
    ig = attribute(model, x, "integrated_gradients", reduce="none", steps=8)
    kw = dict(reduce="none", steps=8, samples=3, noise=0.0, seed=0)
    np.testing.assert_allclose(attribute(model, x, "integrated_gradients", noise_tunnel="smoothgrad", **kw), ig)
    np.testing.assert_allclose(attribute(model, x, "integrated_gradients", noise_tunnel="smoothgrad_sq", **kw),
                               ig * ig, rtol=1e-10)
    assert np.abs(attribute(model, x, "integrated_gradients", noise_tunnel="vargrad", **kw)).max() < 1e-12
    noisy = attribute(model, x, "deeplift", noise_tunnel="vargrad", samples=4, noise=0.3, seed=1)
    assert noisy.min() >= 0 and noisy.max() > 0


def test_seeded_randomness_repeats():
    model, x = tiny_cnn(), images()
    a = attribute(model, x, "rise", masks=32, seed=5)
    b = attribute(model, x, "rise", masks=32, rng=np.random.default_rng(5), batch_size=7)
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_classifier_with_raw_images(clf, trained):
    raw = trained.data.test_images[:3]                                   # uint8 (N, H, W)
    maps = attribute(clf, raw, "lrp_epsilon")
    same = attribute(clf.model, trained.x_test[:3], "lrp_epsilon")
    assert maps.shape == (3, 28, 28)
    np.testing.assert_allclose(maps, same, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(method="gradcam"), ValueError, "method must be one of"),
    (dict(method="gradient", steps=3), TypeError, "unexpected steps"),
    (dict(method="gradient", layer="conv1"), ValueError, "reads no inner layer"),
    (dict(method="grad_cam", noise_tunnel="smoothgrad"), ValueError, "noise tunnel wraps"),
    (dict(method="gradient", noise_tunnel="blur"), ValueError, "noise_tunnel must be one of"),
    (dict(method="rise", seed=1, rng=np.random.default_rng(1)), ValueError, "rng or seed"),
    (dict(method="gradient", reduce="mean"), ValueError, "reduce must be one of"),
    (dict(method="gradient", target=7), ValueError, "out of range"),
    (dict(method="integrated_gradients", integration="simpson"), ValueError, "integration must be one of"),
    (dict(method="deeplift", baseline="black"), ValueError, "needs a Classifier"),
    (dict(method="lrp_alpha_beta", alpha=2.0), ValueError, "alpha - beta must be 1"),
])
def test_argument_errors_name_what_was_received(kwargs, error, match):
    with pytest.raises(error, match=match):
        attribute(tiny_cnn(), images(), **kwargs)


def test_raw_pixels_are_refused_by_a_bare_module():
    with pytest.raises(TypeError, match="raw pixels"):
        attribute(tiny_cnn(), np.zeros((1, 2, 8, 8), dtype=np.uint8), "gradient")
