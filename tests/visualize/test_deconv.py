"""convscope.visualize.deconv: Zeiler & Fergus deconvnet projections (notes §3).

Sanity tests of the issue: the projection has the input's shape and is zero outside the kept
unit's receptive field (the window comes from summarize()'s rf / jump / start), and with no
ReLU between the input and the layer the deconvnet is the plain gradient of the kept unit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from convscope.layers import BasicBlock, Conv2d, GlobalAvgPool2d, Linear, MaxPool2d, ReLU, Sequential
from convscope.summary import summarize
from convscope.visualize.deconv import DeconvResult, deconv
from convscope.visualize.probe import backprop_from, layer_output


def field_window(row, position, image_hw):
    """Input rows and columns (inclusive, clipped to the image) seen by unit ``position`` of
    a summary row: centre = start + index * jump, half-width (rf - 1) / 2, per axis."""
    spans = []
    for axis in range(2):
        centre = row.start[axis] + position[axis] * row.jump[axis]
        half = (row.receptive_field[axis] - 1) / 2
        spans.append((max(0, math.ceil(centre - half)), min(image_hw[axis] - 1, math.floor(centre + half))))
    return spans


def assert_zero_outside_field(result: DeconvResult, row, image_hw):
    for n, position in enumerate(result.positions):
        (r0, r1), (c0, c1) = field_window(row, position, image_hw)
        inside = np.zeros(image_hw, dtype=bool)
        inside[r0:r1 + 1, c0:c1 + 1] = True
        p = result.projections[n]                                   # (C, H, W)
        assert np.all(p[:, ~inside] == 0), f"image {n}: non-zero outside rows {r0}..{r1}, cols {c0}..{c1}"
        assert np.count_nonzero(p[:, inside]) > 0.5 * inside.sum() * p.shape[0]


@pytest.mark.parametrize("layer", ["conv1", "pool1", "conv2", "relu2", "pool2"])
def test_projection_has_input_shape_and_is_zero_outside_the_receptive_field(trained, layer):
    x = trained.x_test[:8]
    result = deconv(trained.model, x, layer)
    assert result.projections.shape == x.shape and result.projections.dtype == x.dtype
    assert result.units.shape == (8,) and result.positions.shape == (8, 2) and result.activations.shape == (8,)
    assert np.all(result.activations > 0)
    row = summarize(trained.model, x.shape[1:]).row(layer)
    assert_zero_outside_field(result, row, x.shape[2:])


def test_conv2_field_by_hand(trained):
    """LeNet-5 at 28x28, by hand: conv1 (5x5, padding 2) row r sees input rows r-2..r+2;
    pool1 (2x2/2) row p sees conv1 rows 2p..2p+1, so input rows 2p-2..2p+3; conv2 (5x5) row i
    sees pool1 rows i..i+4, so input rows 2i-2..2i+11 (14 rows). Same for columns."""
    result = deconv(trained.model, trained.x_test[:4], "conv2")
    for n, (i, j) in enumerate(result.positions):
        rows, cols = np.nonzero(np.any(result.projections[n] != 0, axis=0))
        assert rows.min() >= 2 * i - 2 and rows.max() <= 2 * i + 11
        assert cols.min() >= 2 * j - 2 and cols.max() <= 2 * j + 11


def test_without_relu_below_the_layer_deconvnet_is_the_plain_gradient(trained):
    """conv1 sits directly on the input: its projection is d(a * unit)/dx, which is the kept
    activation times the unit's filter, placed on its window (cropped by the padding)."""
    model, x = trained.model, trained.x_test[:6]
    result = deconv(model, x, "conv1", unit=2)
    out = layer_output(model, x, "conv1")
    seed = np.zeros_like(out)
    for n, (i, j) in enumerate(result.positions):
        seed[n, 2, i, j] = out[n, 2, i, j]
    gradient, _ = backprop_from(model, x, "conv1", seed, rule="gradient")
    np.testing.assert_allclose(result.projections, gradient, rtol=1e-6, atol=1e-7)

    conv = model.get_module("conv1")
    weight = conv.params["weight"][2]                               # (C, 5, 5)
    pad, k = conv.padding[0], conv.kernel_size[0]
    for n, (i, j) in enumerate(result.positions):
        expected = np.zeros((x.shape[1], x.shape[2] + 2 * pad, x.shape[3] + 2 * pad), dtype=np.float64)
        expected[:, i:i + k, j:j + k] = result.activations[n] * weight
        expected = expected[:, pad:-pad, pad:-pad]
        np.testing.assert_allclose(result.projections[n], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.activations, out[np.arange(6), 2, result.positions[:, 0],
                                                          result.positions[:, 1]])


def test_rectification_changes_projections_above_a_relu(trained):
    """Above relu1 the deconvnet rectifies the signal going back: no longer the gradient."""
    model, x = trained.model, trained.x_test[:4]
    result = deconv(model, x, "conv2")
    out = layer_output(model, x, "conv2")
    seed = np.zeros_like(out)
    seed[np.arange(4), result.units, result.positions[:, 0], result.positions[:, 1]] = result.activations
    gradient, _ = backprop_from(model, x, "conv2", seed, rule="gradient")
    assert not np.allclose(result.projections, gradient)


def test_kept_activation_is_the_strongest_of_the_channel_or_layer(trained):
    model, x = trained.model, trained.x_test[:5]
    out = layer_output(model, x, "relu2")                           # (5, 16, 10, 10)
    whole = deconv(model, x, "relu2")
    np.testing.assert_array_equal(whole.activations, out.reshape(5, -1).max(axis=1))
    one = deconv(model, x, "relu2", unit=7)
    np.testing.assert_array_equal(one.units, 7)
    np.testing.assert_array_equal(one.activations, out[:, 7].reshape(5, -1).max(axis=1))


def test_top_keeps_the_strongest_activations_together(trained):
    """top=3 keeps the three strongest activations of the channel in one projection; below
    the first ReLU that is the gradient of the three kept units, weighted by their values."""
    model, x = trained.model, trained.x_test[:3]
    top3 = deconv(model, x, "conv1", unit=0, top=3)
    out = layer_output(model, x, "conv1")[:, 0].reshape(3, -1)
    order = np.argsort(-out, axis=1, kind="stable")[:, :3]
    seed = np.zeros((3, 6) + out.shape[1:], dtype=out.dtype).reshape(3, 6, -1)
    for n in range(3):
        seed[n, 0, order[n]] = out[n, order[n]]
    seed = seed.reshape(3, 6, 28, 28)
    expected, _ = backprop_from(model, x, "conv1", seed)
    np.testing.assert_allclose(top3.projections, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(top3.activations, out.max(axis=1))


def test_linear_layers_have_no_positions_and_batches_do_not_matter(trained):
    model, x = trained.model, trained.x_test[:7]
    full = deconv(model, x, "fc1")
    assert full.positions is None
    np.testing.assert_array_equal(full.units, layer_output(model, x, "fc1").argmax(axis=1))
    small = deconv(model, x, "fc1", batch_size=3)
    np.testing.assert_allclose(small.projections, full.projections, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(small.units, full.units)
    logits = deconv(model, x, "", unit=4)                           # "" is the logits
    np.testing.assert_array_equal(logits.units, 4)


def test_any_model_structure_residual_block():
    """Not only stacks: a residual block, found by dotted name; the field comes from summarize()."""
    rng = np.random.default_rng(0)
    model = Sequential(("stem", Conv2d(2, 4, 3, padding=1, rng=rng)), ("relu", ReLU()),
                       ("pool", MaxPool2d(2)), ("block", BasicBlock(4, 4, rng=rng)),
                       ("gap", GlobalAvgPool2d()), ("fc", Linear(4, 3, rng=rng)))
    x = rng.standard_normal((3, 2, 16, 16)).astype(np.float32)
    for layer in ("block.conv1", "block.relu2"):
        result = deconv(model, x, layer)
        assert result.projections.shape == x.shape
        assert_zero_outside_field(result, summarize(model, (2, 16, 16)).row(layer), (16, 16))
    assert model.training                                           # evaluation mode was undone


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(layer="conv9"), ValueError, ["conv9", "conv2", "fc3"]),
    (dict(layer="conv2", unit=16), ValueError, ["16", "16 channels"]),
    (dict(layer="fc2", unit=84), ValueError, ["84 features"]),
    (dict(layer="conv2", unit=1.5), TypeError, ["1.5"]),
    (dict(layer="conv2", unit=0, top=101), ValueError, ["top=101", "100"]),
    (dict(layer="fc2", unit=0, top=2), ValueError, ["top=2"]),
    (dict(layer="conv2", top=0), ValueError, ["top", "0"]),
    (dict(layer="conv2", batch_size=True), TypeError, ["batch_size", "True"]),
    (dict(layer=3), TypeError, ["3"]),
])
def test_arguments_are_checked(trained, kwargs, error, words):
    with pytest.raises(error) as info:
        deconv(trained.model, trained.x_test[:2], **kwargs)
    for word in words:
        assert word in str(info.value)


def test_input_must_be_a_float_batch(trained):
    with pytest.raises(ValueError, match=r"\(1, 28, 28\)"):
        deconv(trained.model, trained.x_test[0], "conv1")
    with pytest.raises(TypeError, match="list"):
        deconv([], trained.x_test[:1], "conv1")
