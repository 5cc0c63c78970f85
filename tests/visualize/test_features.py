"""Filters, feature maps and activation sparsity (notes §3)."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from convscope.models import build_model
from convscope.visualize.features import feature_maps, filter_grid, sparsity


def _one_conv(filters: int, channels: int = 1, kernel: int = 3) -> Sequential:
    return Sequential(("conv", Conv2d(channels, filters, kernel, rng=np.random.default_rng(filters))))


# -- filter_grid ---------------------------------------------------------------------------
def test_filter_grid_of_trained_lenet_is_first_conv_scaled_per_filter(trained):
    grid = filter_grid(trained.model)
    assert grid.layer == "conv1"
    assert grid.weights.shape == (6, 1, 5, 5)
    np.testing.assert_array_equal(grid.weights, trained.model.get_module("conv1").params["weight"])
    assert grid.tiles.shape == (6, 5, 5)
    flat = grid.tiles.reshape(6, -1)
    np.testing.assert_allclose(flat.min(axis=1), 0.0)
    np.testing.assert_allclose(flat.max(axis=1), 1.0)
    # 6 filters -> 3 columns, 2 rows of 5x5 tiles with 1-pixel separators.
    assert grid.grid.shape == (2 * 5 + 1, 3 * 5 + 2)
    np.testing.assert_array_equal(grid.grid[6:11, 6:11], grid.tiles[4])       # row 1, column 1


def test_filter_grid_of_rgb_model_has_colour_tiles():
    model = build_model("lenet5", 10, 3, (32, 32), rng=np.random.default_rng(0))
    grid = filter_grid(model)
    assert grid.weights.shape == (6, 3, 5, 5)
    assert grid.tiles.shape == (6, 5, 5, 3)
    assert grid.grid.shape == (11, 17, 3)
    assert grid.tiles.min() >= 0.0 and grid.tiles.max() <= 1.0
    w = grid.weights[2].transpose(1, 2, 0)                                     # (KH, KW, 3)
    np.testing.assert_allclose(grid.tiles[2], (w - w.min()) / (w.max() - w.min()), rtol=1e-6)


def test_filter_grid_of_deeper_layer_shows_channel_mean(trained):
    grid = filter_grid(trained.model, "conv2", pad=0)
    assert grid.tiles.shape == (16, 5, 5) and grid.grid.shape == (20, 20)
    mean = grid.weights[7].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(grid.tiles[7], (mean - mean.min()) / (mean.max() - mean.min()), rtol=1e-6)


@pytest.mark.parametrize("filters, kernel, pad, shape", [
    (1, 3, 1, (3, 3)),                     # 1 x 1 tiles: no separator
    (2, 3, 1, (3, 3 + 1 + 3)),             # 1 row, 2 columns
    (5, 3, 2, (3 + 2 + 3, 3 * 3 + 2 * 2)),     # ceil(sqrt(5)) = 3 columns, 2 rows
    (16, 3, 0, (12, 12)),                  # 4 x 4, touching
    (17, 2, 1, (4 * 2 + 3, 5 * 2 + 4)),    # 5 columns, ceil(17 / 5) = 4 rows, 3 cells blank
])
def test_filter_grid_size_arithmetic(filters, kernel, pad, shape):
    grid = filter_grid(_one_conv(filters, kernel=kernel), pad=pad)
    assert grid.grid.shape == shape
    assert grid.grid.min() >= 0.0 and grid.grid.max() <= 1.0


def test_constant_filter_shows_as_mid_grey():
    model = _one_conv(2)
    model.get_module("conv").params["weight"][0] = 0.25
    assert np.all(filter_grid(model).tiles[0] == 0.5)


@pytest.mark.parametrize("layer, words", [("fc1", "fc1"), ("relu1", "relu1"), ("nope", "nope")])
def test_filter_grid_names_a_layer_without_4d_weight(trained, layer, words):
    with pytest.raises(ValueError, match=words):
        filter_grid(trained.model, layer)


def test_filter_grid_rejects_bad_arguments(trained):
    with pytest.raises(ValueError, match="no Conv2d"):
        filter_grid(Sequential(("flatten", Flatten()), ("fc", Linear(4, 2))))
    with pytest.raises(ValueError, match="-1"):
        filter_grid(trained.model, pad=-1)
    with pytest.raises(TypeError, match="1.5"):
        filter_grid(trained.model, pad=1.5)
    with pytest.raises(TypeError, match="3"):
        filter_grid(trained.model, layer=3)


# -- feature_maps --------------------------------------------------------------------------
def test_feature_maps_equal_a_manual_forward(trained):
    model, x = trained.model, trained.x_test[:50]
    expected = x
    for name in ("conv1", "relu1", "pool1"):
        expected = model.get_module(name).forward(expected)
    maps = feature_maps(model, x, "pool1", batch_size=16)
    assert maps.shape == (50, 6, 14, 14)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    # Another batch size changes only the GEMM's rounding.
    np.testing.assert_allclose(maps, feature_maps(model, x, "pool1"), rtol=1e-5, atol=1e-6)


def test_feature_maps_of_linear_layer_are_vectors(trained):
    maps = feature_maps(trained.model, trained.x_test[:10], "fc1", batch_size=4)
    assert maps.shape == (10, 120)
    logits = trained.model.forward(trained.x_test[:10])
    np.testing.assert_allclose(feature_maps(trained.model, trained.x_test[:10], "fc3"), logits, rtol=1e-5)


@pytest.mark.parametrize("x, kwargs, error, words", [
    (np.zeros((2, 1, 28, 28), np.uint8), {}, TypeError, "uint8"),
    (np.zeros((1, 28, 28), np.float32), {}, ValueError, r"\(1, 28, 28\)"),
    (np.zeros((0, 1, 28, 28), np.float32), {}, ValueError, "N >= 1"),
    ([[0.0]], {}, TypeError, "list"),
    (np.zeros((2, 1, 28, 28), np.float32), {"batch_size": 0}, ValueError, "batch_size"),
    (np.zeros((2, 1, 28, 28), np.float32), {"layer": "conv9"}, ValueError, "conv9"),
])
def test_feature_maps_validate_arguments(trained, x, kwargs, error, words):
    kwargs = {"layer": "conv1", **kwargs}
    with pytest.raises(error, match=words):
        feature_maps(trained.model, x, **kwargs)


# -- sparsity ------------------------------------------------------------------------------
def test_sparsity_defaults_to_relus_and_matches_per_layer_counts(trained):
    model, x = trained.model, trained.x_test[:300]
    conv1 = model.get_module("conv1")
    calls = []
    conv1.forward = lambda a: calls.append(len(a)) or type(conv1).forward(conv1, a)
    try:
        rows = sparsity(model, x, batch_size=128)
    finally:
        del conv1.forward                            # back to the class's method
    assert calls == [128, 128, 44]                   # one forward pass per batch for all layers
    assert [r.layer for r in rows] == ["relu1", "relu2", "relu3", "relu4"]
    assert {r.type for r in rows} == {"ReLU"}
    assert [r.shape for r in rows] == [(6, 28, 28), (16, 10, 10), (120,), (84,)]
    for row in rows:
        assert 0.0 <= row.fraction_zero <= 1.0
        maps = feature_maps(model, x, row.layer)
        assert row.fraction_zero == pytest.approx(np.mean(maps == 0), abs=1e-12)


def test_sparsity_grows_from_the_first_relu(trained):
    """Notes §3: responses get sparser with depth. On the trained LeNet-5 (300 test images)
    relu1 is about 0.53 zero, relu2 0.84, relu3 0.62 and relu4 0.68 (with the old He-initialised
    output layer: 0.38, 0.95, 0.70, 0.70): every deeper ReLU is sparser than the first, but the
    trend is not monotone (the fully-connected ReLUs are less sparse than relu2), so only the
    first claim is tested."""
    rows = {r.layer: r.fraction_zero for r in sparsity(trained.model, trained.x_test[:300])}
    assert all(rows[name] > rows["relu1"] + 0.05 for name in ("relu2", "relu3", "relu4")), rows


def test_sparsity_of_chosen_layers_and_of_a_model_without_relu(trained):
    rows = sparsity(trained.model, trained.x_test[:20], layers=["fc1", "pool2", "conv1"], batch_size=8)
    assert [r.layer for r in rows] == ["fc1", "pool2", "conv1"]
    assert [r.type for r in rows] == ["Linear", "MaxPool2d", "Conv2d"]
    assert rows[1].shape == (16, 5, 5)
    model = Sequential(("conv", Conv2d(1, 2, 3, rng=np.random.default_rng(0))), ("pool", MaxPool2d(2)),
                       ("flatten", Flatten()))
    x = np.random.default_rng(1).standard_normal((4, 1, 8, 8)).astype(np.float32)
    assert [r.layer for r in sparsity(model, x)] == ["conv", "pool", "flatten"]
    relu_model = Sequential(("conv", Conv2d(1, 2, 3, rng=np.random.default_rng(0))), ("relu", ReLU()))
    assert sparsity(relu_model, x)[0].fraction_zero == pytest.approx(
        np.mean(relu_model.forward(x) == 0), abs=1e-12)


@pytest.mark.parametrize("layers, words", [("relu1", "relu1"), ([], r"\[\]"),
                                            (["relu1", "relu1"], "repeat"), (["relu9"], "relu9")])
def test_sparsity_validates_layers(trained, layers, words):
    with pytest.raises(ValueError, match=words):
        sparsity(trained.model, trained.x_test[:2], layers=layers)


def test_sparsity_on_a_residual_model():
    from convscope.models import available_models
    if "resnet20" not in available_models():
        pytest.skip("resnet20 is not registered")
    model = build_model("resnet20", 10, 1, (28, 28), rng=np.random.default_rng(0))
    x = np.random.default_rng(2).standard_normal((6, 1, 28, 28)).astype(np.float32)
    rows = sparsity(model, x, batch_size=4)
    assert len(rows) == 19 and rows[-1].layer == "layer3.2.relu2"
    block = sparsity(model, x, layers=["layer1.0", "layer1.0.conv1", "avgpool"])
    assert [r.shape for r in block] == [(16, 28, 28), (16, 28, 28), (64,)]
    assert block[0].fraction_zero == pytest.approx(np.mean(feature_maps(model, x, "layer1.0") == 0))
