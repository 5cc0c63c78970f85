"""Saliency and attribution maps: gradients against finite differences, the modified ReLU rules
against a hand computation, Grad-CAM against a split model, occlusion against a slow loop,
batch-size invariance, argument checks. Small random models keep every test quick."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, softmax
from convscope.models import available_models, build_model
from convscope.visualize.attribution import grad_cam, integrated_gradients
from convscope.visualize.display import normalize_map, resize_bilinear
from convscope.visualize.occlusion import occlusion
from convscope.visualize.saliency import gradient_saliency, guided_backprop, input_gradients, smoothgrad


def tiny_cnn(dtype=np.float32, seed=0) -> Sequential:
    """conv 3@3x3 -> ReLU -> pool 2 -> fc 5, for 1x8x8 inputs."""
    rng = np.random.default_rng(seed)
    model = Sequential(("conv", Conv2d(1, 3, 3, padding=1, rng=rng)), ("relu", ReLU()),
                       ("pool", MaxPool2d(2)), ("flatten", Flatten()), ("fc", Linear(3 * 4 * 4, 5, rng=rng)))
    for _, m in model.named_modules():             # non-zero biases move the ReLU kinks around
        if "bias" in m.params:
            m.params["bias"] = rng.standard_normal(m.params["bias"].shape).astype(m.params["bias"].dtype)
    return model.to(dtype)


def images(n, shape=(1, 8, 8), seed=0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n,) + shape).astype(dtype)


@pytest.fixture(scope="module")
def lenet():
    return build_model("lenet5", 10, 1, (28, 28), rng=np.random.default_rng(5))


@pytest.fixture(scope="module")
def digits():
    return images(6, (1, 28, 28), seed=3)


# -- gradients ---------------------------------------------------------------------------------

def test_input_gradients_match_central_differences_in_float64():
    model, x = tiny_cnn(np.float64), images(3, dtype=np.float64)
    targets = np.array([0, 4, 2])
    grad = input_gradients(model, x, targets)
    d, eps = x[0].size, 1e-6
    bump = eps * np.eye(d).reshape(d, *x.shape[1:])                       # (D, C, H, W)
    plus = (x[:, None] + bump).reshape(-1, *x.shape[1:])                  # (N*D, C, H, W)
    minus = (x[:, None] - bump).reshape(-1, *x.shape[1:])
    rows = np.repeat(targets, d)
    scores = lambda z: model.forward(z)[np.arange(len(z)), rows]
    numeric = ((scores(plus) - scores(minus)) / (2 * eps)).reshape(x.shape)
    err = np.abs(grad - numeric).max() / max(np.abs(numeric).max(), 1e-8)
    assert err < 1e-6


def test_default_target_is_the_predicted_class(lenet, digits):
    predicted = lenet.forward(digits).argmax(axis=1)
    np.testing.assert_array_equal(input_gradients(lenet, digits), input_gradients(lenet, digits, predicted))


def test_rules_match_a_hand_computation_on_one_hidden_layer():
    """x -> h = W1 x + b1 -> ReLU -> W2 -> logits; for class c the backward reaching the ReLU
    is W2[c]. gradient: mask * W2[c]; deconvnet: max(W2[c], 0); guided: mask * max(W2[c], 0)."""
    rng = np.random.default_rng(2)
    model = Sequential(("flat", Flatten()), ("fc1", Linear(12, 7, rng=rng)), ("relu", ReLU()),
                       ("fc2", Linear(7, 4, rng=rng)))
    model.get_module("fc1").params["bias"] = rng.standard_normal(7).astype(np.float32)
    x = images(5, (3, 2, 2), seed=4)
    w1, b1 = model.get_module("fc1").params["weight"], model.get_module("fc1").params["bias"]
    w2 = model.get_module("fc2").params["weight"]
    target = 1
    mask = (x.reshape(5, -1) @ w1.T + b1) > 0                              # (N, 7)
    upstream = np.broadcast_to(w2[target], mask.shape)
    expected = {"gradient": mask * upstream, "deconvnet": np.maximum(upstream, 0),
                "guided": mask * np.maximum(upstream, 0)}
    for rule, back in expected.items():
        np.testing.assert_allclose(input_gradients(model, x, target, rule=rule),
                                   (back @ w1).reshape(x.shape), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(guided_backprop(model, x, target), input_gradients(model, x, target, "guided"))


def test_gradient_saliency_is_the_channel_max_of_the_absolute_gradient():
    model = Sequential(Conv2d(3, 2, 3, rng=np.random.default_rng(0)), ReLU(), Flatten(),
                       Linear(2 * 4 * 4, 3, rng=np.random.default_rng(1)))
    x = images(4, (3, 6, 6))
    sal = gradient_saliency(model, x, 2)
    assert sal.shape == (4, 6, 6)
    np.testing.assert_array_equal(sal, np.abs(input_gradients(model, x, 2)).max(axis=1))


def test_model_state_is_restored(lenet, digits):
    lenet.train()
    guided_backprop(lenet, digits[:2])
    grad_cam(lenet, digits[:2], "conv2")
    assert all(m.training for _, m in lenet.named_modules())
    assert all(m.backward_rule == "gradient" for _, m in lenet.named_modules() if isinstance(m, ReLU))
    lenet.eval()


# -- SmoothGrad ------------------------------------------------------------------------------

def test_smoothgrad_is_reproducible_and_reduces_to_the_gradient_without_noise(lenet, digits):
    x = digits[:3]
    a = smoothgrad(lenet, x, samples=6, rng=np.random.default_rng(7))
    b = smoothgrad(lenet, x, samples=6, rng=np.random.default_rng(7), batch_size=4)
    c = smoothgrad(lenet, x, samples=6, rng=np.random.default_rng(8))
    assert a.shape == x.shape
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not np.allclose(a, c)
    # equal up to float32 rounding: the noisy copies go through BLAS in batches of another size
    np.testing.assert_allclose(smoothgrad(lenet, x, samples=4, noise=0.0), input_gradients(lenet, x),
                               rtol=1e-5, atol=1e-7)


# -- integrated gradients --------------------------------------------------------------------

def test_integrated_gradients_on_a_linear_model_are_exact():
    """For f(x) = w.x + b the gradient is w everywhere: attr = (x - baseline) * w."""
    model = Sequential(Flatten(), Linear(16, 3, rng=np.random.default_rng(0))).to(np.float64)
    x, baseline = images(2, (1, 4, 4), dtype=np.float64), 0.5
    result = integrated_gradients(model, x, target=2, baseline=baseline, steps=3)
    w = model[1].params["weight"][2].reshape(1, 4, 4)
    np.testing.assert_allclose(result.attributions, (x - baseline) * w, rtol=1e-12, atol=1e-12)
    assert np.all(result.completeness_gap < 1e-10)
    assert result.targets.tolist() == [2, 2]


# -- Grad-CAM --------------------------------------------------------------------------------

def test_grad_cam_matches_a_manual_computation_on_lenet_conv2(lenet, digits):
    result = grad_cam(lenet, digits, "conv2")
    assert result.cam.shape == (6, 10, 10) and result.upsampled.shape == (6, 28, 28)
    assert result.cam.min() >= 0 and result.cam.max() > 0
    # the layers after conv2, as their own model: d score / d A is its input gradient
    names = [name for name, _ in lenet.children()]
    head, tail = Sequential(*[(n, lenet[n]) for n in names[:4]]), Sequential(*[(n, lenet[n]) for n in names[4:]])
    head.eval(), tail.eval()
    tail.set_input_grad(True)
    acts = head.forward(digits)                                           # (N, 16, 10, 10)
    logits = tail.forward(acts)
    targets = logits.argmax(axis=1)
    seed = np.zeros_like(logits)
    seed[np.arange(len(seed)), targets] = 1
    weights = tail.backward(seed).mean(axis=(2, 3))                       # (N, 16)
    cam = np.maximum((weights[:, :, None, None] * acts).sum(axis=1), 0)
    np.testing.assert_allclose(result.cam, cam, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.weights, weights, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(result.targets, targets)


def test_resize_bilinear_matches_pytorch():
    torch = pytest.importorskip("torch")
    maps = images(2, (5, 7), seed=9)
    for size in ((28, 28), (10, 3), (5, 7)):
        ours = resize_bilinear(maps, size)
        theirs = torch.nn.functional.interpolate(torch.from_numpy(maps)[:, None], size=size,
                                                 mode="bilinear", align_corners=False)[:, 0].numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_grad_cam_works_inside_a_residual_block():
    if "resnet20" not in available_models():
        pytest.skip("resnet20 is not registered")
    model = build_model("resnet20", 10, 1, (28, 28), rng=np.random.default_rng(0)).to(np.float64)
    x = images(2, (1, 28, 28), seed=1, dtype=np.float64)
    name, target = "layer2.1.conv1", 4
    result = grad_cam(model, x, name, target)
    assert result.cam.shape == (2, 14, 14) and result.upsampled.shape == (2, 28, 28)
    assert np.all(np.isfinite(result.cam)) and result.cam.min() >= 0
    # the weights against central differences: adding eps * v_k to every position of channel k
    # of the layer's output moves the score by eps * h * w * sum_k v_k weights_k
    layer = model.get_module(name)
    v = np.random.default_rng(2).standard_normal(result.weights.shape[1])
    eps, h, w = 1e-7, *result.cam.shape[1:]          # small: a wider step crosses ReLU kinks
    model.eval()

    def score(shift):
        layer.forward = lambda a: type(layer).forward(layer, a) + shift * v[:, None, None]
        try:
            return model.forward(x)[:, target]
        finally:
            del layer.forward

    numeric = (score(eps) - score(-eps)) / (2 * eps)
    np.testing.assert_allclose(numeric, h * w * result.weights @ v, rtol=1e-5, atol=1e-7)


def test_grad_cam_rejects_layers_without_feature_maps(lenet, digits):
    with pytest.raises(ValueError, match=r"'fc1'.*\(2, 120\)"):
        grad_cam(lenet, digits[:2], "fc1")
    with pytest.raises(ValueError, match="no layer named 'conv9'"):
        grad_cam(lenet, digits[:2], "conv9")
    with pytest.raises(ValueError, match="logits"):
        grad_cam(lenet, digits[:2], "")


# -- occlusion -------------------------------------------------------------------------------

def region_model(region=(slice(2, 5), slice(4, 7))) -> Sequential:
    """Two classes on 1x10x10 inputs: logit 0 = 0.3 * sum of the pixels in ``region``, logit 1 = 0."""
    model = Sequential(Flatten(), Linear(100, 2))
    w = np.zeros((2, 10, 10), dtype=np.float32)
    w[0][region] = 0.3
    model[1].params["weight"] = w.reshape(2, 100)
    return model


def slow_occlusion(model, x, target, window, stride, fill):
    """Straight from the definition: one window, one image at a time."""
    n, _, h, w = x.shape
    total, count = np.zeros((n, h, w)), np.zeros((h, w))
    p0 = softmax(model.forward(x))[np.arange(n), target]
    tops = sorted(set(range(0, h - window + 1, stride)) | {h - window})
    lefts = sorted(set(range(0, w - window + 1, stride)) | {w - window})
    for top in tops:
        for left in lefts:
            count[top:top + window, left:left + window] += 1
            for i in range(n):
                z = x[i:i + 1].copy()
                z[:, :, top:top + window, left:left + window] = fill
                p = softmax(model.forward(z))[0, target[i]]
                total[i, top:top + window, left:left + window] += p0[i] - p
    return total / count


def test_occlusion_peaks_where_the_score_lives_and_matches_a_slow_loop():
    model, x = region_model(), np.ones((2, 1, 10, 10), dtype=np.float32)
    x[1] *= 0.5
    heat = occlusion(model, x, target=0, window=3, stride=2, batch_size=7)
    assert heat.shape == (2, 10, 10)
    for m in heat:
        top, left = np.unravel_index(np.argmax(m), m.shape)
        assert 2 <= top < 5 and 4 <= left < 7
        assert np.all(m[8:] == 0) and np.all(m[:, :2] == 0)               # never near the region
    np.testing.assert_allclose(heat, slow_occlusion(model, x, np.array([0, 0]), 3, 2, 0.0), atol=1e-6)


# -- batch size and arguments ----------------------------------------------------------------

@pytest.mark.parametrize("method", [
    lambda m, x, b: input_gradients(m, x, batch_size=b),
    lambda m, x, b: guided_backprop(m, x, 3, batch_size=b),
    lambda m, x, b: smoothgrad(m, x, samples=3, rng=np.random.default_rng(1), batch_size=b),
    lambda m, x, b: integrated_gradients(m, x, steps=4, batch_size=b).attributions,
    lambda m, x, b: grad_cam(m, x, "conv", batch_size=b).upsampled,
    lambda m, x, b: occlusion(m, x, window=3, stride=2, batch_size=b),
], ids=["gradient", "guided", "smoothgrad", "integrated", "grad_cam", "occlusion"])
def test_results_do_not_depend_on_the_batch_size(method):
    model, x = tiny_cnn(), images(7)
    np.testing.assert_allclose(method(model, x, 3), method(model, x, 64), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("call, error, message", [
    (lambda m, x: input_gradients(m, x, batch_size=0), ValueError, "batch_size must be an integer >= 1, got 0"),
    (lambda m, x: input_gradients(m, x, batch_size="8"), TypeError, "batch_size must be an integer >= 1, got '8'"),
    (lambda m, x: input_gradients(m, x, rule="guided-ish"), ValueError, "'guided-ish'"),
    (lambda m, x: input_gradients(m, x, target=5), ValueError, "target class 5 is out of range"),
    (lambda m, x: input_gradients(m, x, target=-1), ValueError, "non-negative, got -1"),
    (lambda m, x: input_gradients(m, x, target=np.zeros(3, int)), ValueError, r"shape \(3,\)"),
    (lambda m, x: input_gradients(m, x, target=1.5), TypeError, "got float"),
    (lambda m, x: input_gradients(m, x.astype(np.int64)), TypeError, "dtype int64"),
    (lambda m, x: input_gradients(m, x[0]), ValueError, r"\(1, 8, 8\)"),
    (lambda m, x: smoothgrad(m, x, samples=0), ValueError, "samples must be an integer >= 1, got 0"),
    (lambda m, x: smoothgrad(m, x, noise=-0.1), ValueError, "noise must be .* got -0.1"),
    (lambda m, x: smoothgrad(m, x, rng=42), TypeError, "numpy.random.Generator, got int"),
    (lambda m, x: integrated_gradients(m, x, steps=0), ValueError, "steps must be an integer >= 1, got 0"),
    (lambda m, x: integrated_gradients(m, x, baseline=np.zeros((3, 3))), ValueError, r"\(3, 3\)"),
    (lambda m, x: integrated_gradients(m, x, baseline="black"), TypeError, "got str"),
    (lambda m, x: grad_cam(m, x, 3), TypeError, "layer must be a dotted layer name .* got 3"),
    (lambda m, x: occlusion(m, x, window=9), ValueError, r"window \(9, 9\) is larger"),
    (lambda m, x: occlusion(m, x, stride=0), ValueError, r"stride must be an int or a pair of ints >= 1, got 0"),
    (lambda m, x: occlusion(m, x, fill=float("nan")), ValueError, "fill must be a finite number, got nan"),
    (lambda m, x: occlusion(m, x, target=7), ValueError, "target class 7 is out of range"),
])
def test_arguments_are_checked(call, error, message):
    with pytest.raises(error, match=message):
        call(tiny_cnn(), images(2))


# -- display ---------------------------------------------------------------------------------

def test_normalize_map_abs_and_signed():
    m = np.array([[[[1.0, -4.0], [0.0, 2.0]], [[-3.0, 1.0], [0.0, 1.0]]]])         # (1, 2, 2, 2)
    np.testing.assert_allclose(normalize_map(m), [[[0.75, 1.0], [0.0, 0.5]]])
    np.testing.assert_allclose(normalize_map(m, "signed"), [[[-2 / 3, -1.0], [0.0, 1.0]]])
    np.testing.assert_allclose(normalize_map(m[:, 0], "signed"), [[[0.25, -1.0], [0.0, 0.5]]])
    np.testing.assert_array_equal(normalize_map(np.zeros((2, 3, 3))), np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="'log'"):
        normalize_map(m, "log")
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        normalize_map(m[0, 0])
