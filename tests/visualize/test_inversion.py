"""convscope.visualize.inversion and the TV prior (notes §3).

Sanity test of the issue: the reconstruction from a late layer is classified as the
original's class for most test images, and the relative feature error falls well below its
starting value. The TV gradient is checked against central differences.
"""

from __future__ import annotations

import numpy as np
import pytest

from convscope.layers import Flatten, Linear, ReLU, Sequential
from convscope.visualize.inversion import InversionResult, invert
from convscope.visualize.probe import layer_output
from convscope.visualize.regularizers import total_variation


def test_late_layer_reconstruction_keeps_the_class(trained):
    """Ten test images rebuilt from relu4 (84 numbers each) from noise: at least 7 are given
    the class the model gives the originals, and the feature error drops to under half."""
    model, x = trained.model, trained.x_test[:10]
    result = invert(model, x, "relu4", steps=100, normalizer=trained.normalizer)
    assert isinstance(result, InversionResult)
    assert result.images.shape == x.shape and result.images.dtype == x.dtype
    original = layer_output(model, x, "").argmax(axis=1)
    rebuilt = layer_output(model, result.images, "").argmax(axis=1)
    assert np.sum(rebuilt == original) >= 7, (original, rebuilt)
    assert result.history.shape == (100, 10)
    assert np.all(result.history[0] > 0.9)                          # noise shares little with the code
    assert result.relative_error.mean() < 0.5 * result.history[0].mean()
    phi, phi0 = layer_output(model, result.images, "relu4"), layer_output(model, x, "relu4")
    expected = np.linalg.norm(phi - phi0, axis=1) / np.linalg.norm(phi0, axis=1)
    np.testing.assert_allclose(result.relative_error, expected, rtol=1e-4)


def test_images_stay_in_range_and_batches_and_seeds(trained):
    model, x = trained.model, trained.x_test[:5]
    norm = trained.normalizer
    one = invert(model, x, "pool2", steps=4, normalizer=norm)
    low, high = (0 - norm.mean[0]) / norm.std[0], (1 - norm.mean[0]) / norm.std[0]
    assert one.images.min() >= low - 1e-6 and one.images.max() <= high + 1e-6
    split = invert(model, x, "pool2", steps=4, normalizer=norm, batch_size=2)
    np.testing.assert_allclose(split.images, one.images, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(invert(model, x, "pool2", steps=4, normalizer=norm).images, one.images)
    assert not np.array_equal(invert(model, x, "pool2", steps=4, normalizer=norm, seed=1).images, one.images)
    free = invert(model, x, "pool2", steps=4)                      # no normalizer: x's own range
    assert free.images.min() >= x.min() and free.images.max() <= x.max()
    assert free.settings["pixel_low"] == pytest.approx([float(x.min())])


def test_an_all_zero_code_gives_nan_errors_and_the_other_images_are_still_inverted():
    """One dead image (its code all zero after the ReLU) has no relative error: NaN for it,
    while the image beside it in the batch is inverted as usual."""
    model = Sequential(("flatten", Flatten()), ("fc", Linear(4, 3)), ("relu", ReLU()))
    model.get_module("fc").params["weight"][:] = -1.0
    model.get_module("fc").params["bias"][:] = 0.0
    x = np.stack([np.ones((1, 2, 2)), -np.ones((1, 2, 2))]).astype(np.float32)   # codes 0 and 4
    result = invert(model, x, "relu", steps=30, lr=0.1, init_scale=0.5)
    assert np.isnan(result.relative_error[0]) and np.all(np.isnan(result.history[:, 0]))
    assert np.isfinite(result.relative_error[1]) and np.all(np.isfinite(result.history[:, 1]))
    assert result.relative_error[1] < 0.5 * result.history[0, 1]
    assert np.all(np.isfinite(result.images))


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(layer="fc9"), ValueError, ["fc9", "relu4"]),
    (dict(layer=3), TypeError, ["layer", "3"]),
    (dict(layer="fc2", steps=-3), ValueError, ["steps", "-3"]),
    (dict(layer="fc2", lr=0), ValueError, ["lr", "0"]),
    (dict(layer="fc2", tv=float("nan")), ValueError, ["tv", "nan"]),
    (dict(layer="fc2", l2="1"), TypeError, ["l2", "'1'"]),
    (dict(layer="fc2", batch_size=0), ValueError, ["batch_size", "0"]),
])
def test_arguments_are_checked(trained, kwargs, error, words):
    with pytest.raises(error) as info:
        invert(trained.model, trained.x_test[:2], **kwargs)
    for word in words:
        assert word in str(info.value)


def test_input_must_be_a_float_batch(trained):
    with pytest.raises(TypeError, match="int64"):
        invert(trained.model, np.zeros((1, 1, 28, 28), dtype=np.int64), "fc2")


# -- the shared TV prior --------------------------------------------------------------------

@pytest.mark.parametrize("beta", [2.0, 1.5, 1.0])
def test_total_variation_gradient_matches_central_differences(beta):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 6))                          # float64
    weights = np.array([0.7, -1.3])                                # an upstream gradient per image
    value, grad = total_variation(x, beta)
    assert value.shape == (2,) and grad.shape == x.shape
    h = 1e-6
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        numeric[idx] = (weights @ total_variation(xp, beta)[0] - weights @ total_variation(xm, beta)[0]) / (2 * h)
    analytic = weights[:, None, None, None] * grad
    error = np.abs(numeric - analytic) / np.maximum(np.abs(numeric) + np.abs(analytic), 1e-8)
    assert error.max() < 1e-6


def test_total_variation_values_by_hand():
    ramp = np.tile(np.arange(4.0), (1, 1, 3, 1))                   # (1, 1, 3, 4): columns 0..3
    value, grad = total_variation(ramp)                            # dw = 1, dh = 0 on the 2x3 corner block
    assert value[0] == pytest.approx(6.0)
    flat, flat_grad = total_variation(np.full((3, 2, 4, 4), 1.5))
    np.testing.assert_array_equal(flat, 0)
    np.testing.assert_array_equal(flat_grad, 0)
    with pytest.raises(ValueError, match="0.5"):
        total_variation(ramp, beta=0.5)
