"""Nearest neighbours in feature vs pixel space, and the translation example (notes §3, technique 3)."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.layers import Flatten, Linear, Sequential
from convscope.models import available_models, build_model
from convscope.visualize.features import feature_maps
from convscope.visualize.neighbors import nearest_neighbors, shift_images, translation_example


@pytest.fixture(scope="module")
def train_x(trained):
    """All 2,048 training images in model space."""
    return trained.normalizer(trained.data.train_images)


def _brute_force(train: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every distance by np.linalg.norm of the differences, sorted by a stable argsort."""
    t, q = train.reshape(len(train), -1).astype(np.float64), query.reshape(len(query), -1).astype(np.float64)
    d = np.linalg.norm(q[:, None, :] - t[None, :, :], axis=2)          # (Q, N)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, 1)


def test_nearest_neighbors_match_brute_force(trained, train_x):
    model, train, query = trained.model, train_x[:300], trained.x_test[:30]
    result = nearest_neighbors(model, train, trained.data.train_labels[:300], query, k=7, batch_size=64)
    assert result.layer == "flatten" and result.k == 7
    assert result.feature_agreement is None and result.pixel_agreement is None
    feats = (feature_maps(model, train, "flatten"), feature_maps(model, query, "flatten"))
    for (idx, dist), (got_idx, got_dist) in (
            (_brute_force(*feats, 7), (result.feature_indices, result.feature_distances)),
            (_brute_force(train, query, 7), (result.pixel_indices, result.pixel_distances))):
        assert got_idx.shape == got_dist.shape == (30, 7)
        np.testing.assert_allclose(got_dist, dist, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(got_idx, idx)
        assert np.all(np.diff(got_dist, axis=1) >= 0)


def test_feature_space_neighbours_agree_on_the_label_more_than_pixel_neighbours(trained, train_x):
    """The issue's sanity check: 100 test digits against the 2,048 training digits, k = 5.
    Measured: feature space ("flatten") 0.898, pixel space 0.844."""
    result = nearest_neighbors(trained.model, train_x, trained.data.train_labels,
                               trained.x_test[:100], trained.y_test[:100], k=5)
    assert result.feature_agreement > result.pixel_agreement + 0.02
    assert 0.5 < result.pixel_agreement < 1.0
    labels = trained.data.train_labels[result.feature_indices]
    assert result.feature_agreement == pytest.approx(np.mean(labels == trained.y_test[:100, None]))


def _pixel_neighbours_without_self(model, train, y, query):
    """Pixel neighbours when each query's own image is really removed from the training set."""
    rows = []
    for q, own in zip(query, (5, 17, 150)):
        keep = np.delete(np.arange(len(train)), own)
        r = nearest_neighbors(model, train[keep], y[keep], q[None], k=3)
        rows.append(keep[r.pixel_indices[0]])
    return np.array(rows)


def test_a_query_from_the_training_set_finds_itself_unless_excluded(trained, train_x):
    model, train, y = trained.model, train_x[:200], trained.data.train_labels[:200]
    query = train[[5, 17, 150]]
    found = nearest_neighbors(model, train, y, query, y[[5, 17, 150]], k=3, batch_size=64)
    np.testing.assert_array_equal(found.pixel_indices[:, 0], [5, 17, 150])
    np.testing.assert_array_equal(found.feature_indices[:, 0], [5, 17, 150])
    np.testing.assert_allclose(found.pixel_distances[:, 0], 0.0, atol=1e-4)
    excluded = nearest_neighbors(model, train, y, query, k=3, batch_size=64, exclude_self=True)
    assert not np.any(excluded.pixel_indices == np.array([[5], [17], [150]]))
    assert not np.any(excluded.feature_indices == np.array([[5], [17], [150]]))
    np.testing.assert_array_equal(excluded.pixel_indices, _pixel_neighbours_without_self(model, train, y, query))


def test_exclude_self_leaving_too_few_images_is_an_error(trained):
    x = trained.x_test[:2]
    with pytest.raises(ValueError, match="exclude_self"):
        nearest_neighbors(trained.model, x[:1], np.array([0]), x[:1], k=1, exclude_self=True)


def test_nearest_neighbors_on_a_residual_model_use_the_pooled_features():
    if "resnet20" not in available_models():
        pytest.skip("resnet20 is not registered")
    model = build_model("resnet20", 10, 1, (28, 28), rng=np.random.default_rng(0))
    x = np.random.default_rng(3).standard_normal((8, 1, 28, 28)).astype(np.float32)
    result = nearest_neighbors(model, x, np.arange(8) % 2, x[:2], k=2)
    assert result.layer == "avgpool"
    np.testing.assert_array_equal(result.feature_indices[:, 0], [0, 1])


@pytest.mark.parametrize("kwargs, error, words", [
    ({"k": 0}, ValueError, "k"),
    ({"k": 11}, ValueError, "11"),
    ({"k": 2.0}, TypeError, "2.0"),
    ({"train_y": np.zeros(9, np.int64)}, ValueError, r"\(9,\)"),
    ({"train_y": np.zeros(10)}, ValueError, "float64"),
    ({"query_y": np.zeros(3, np.int64)}, ValueError, "query_y"),
    ({"query_x": np.zeros((2, 1, 14, 14), np.float32)}, ValueError, "one shape"),
    ({"layer": "fc9"}, ValueError, "fc9"),
    ({"exclude_self": "yes"}, TypeError, "yes"),
    ({"batch_size": -1}, ValueError, "-1"),
])
def test_nearest_neighbors_validate_arguments(trained, kwargs, error, words):
    args = {"train_x": trained.x_test[:10], "train_y": trained.y_test[:10],
            "query_x": trained.x_test[10:12], "query_y": trained.y_test[10:12], **kwargs}
    with pytest.raises(error, match=words):
        nearest_neighbors(trained.model, **args)


def test_default_layer_needs_a_fully_connected_layer():
    model = Sequential(("flatten", Flatten()))
    x = np.zeros((3, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match="fully-connected"):
        nearest_neighbors(model, x, np.arange(3), x, k=1)


# -- the translation example -----------------------------------------------------------------
@pytest.mark.parametrize("shift, rows, cols", [
    (2, (slice(None), slice(None)), (slice(2, None), slice(None, -2))),
    (-1, (slice(None), slice(None)), (slice(None, -1), slice(1, None))),
    ((1, -3), (slice(1, None), slice(None, -1)), (slice(None, -3), slice(3, None))),
])
def test_shift_images_moves_content_and_fills_with_background(shift, rows, cols):
    x = np.random.default_rng(0).standard_normal((3, 2, 6, 7)).astype(np.float32)
    out = shift_images(x, shift)
    (dst_r, src_r), (dst_c, src_c) = rows, cols
    np.testing.assert_array_equal(out[:, :, dst_r, dst_c], x[:, :, src_r, src_c])
    uncovered = np.ones(x.shape, bool)
    uncovered[:, :, dst_r, dst_c] = False
    background = np.broadcast_to(x.min(axis=(1, 2, 3), keepdims=True), x.shape)
    np.testing.assert_array_equal(out[uncovered], background[uncovered])
    assert np.all(shift_images(x, shift, fill=-5.0)[uncovered] == -5.0)


@pytest.mark.parametrize("shift, error", [(7, ValueError), ((6, 0), ValueError), (True, TypeError),
                                          (1.5, TypeError), ((1, 2, 3), TypeError)])
def test_shift_images_validate_the_shift(shift, error):
    with pytest.raises(error, match="shift"):
        shift_images(np.zeros((1, 1, 6, 7), np.float32), shift)


def test_a_shifted_digit_is_far_in_pixels_but_near_in_features(trained):
    """The notes' translation example on MNIST: 200 test digits moved 3 pixels right.
    Measured (relative to the median distance between two different digits): pixel space
    1.00 (a shifted digit is as far as another digit), feature space ("flatten") 0.76,
    and the feature space is relatively nearer for 93.5% of the digits."""
    result = translation_example(trained.model, trained.x_test[:200], 3)
    assert result.layer == "flatten" and result.shift == (0, 3)
    assert result.pixel_relative.shape == result.feature_relative.shape == (200,)
    np.testing.assert_allclose(result.pixel_relative, result.pixel_distances / result.pixel_scale)
    assert result.pixel_relative_median > 0.9
    assert result.feature_relative_median < 0.85 * result.pixel_relative_median
    assert np.mean(result.feature_relative < result.pixel_relative) > 0.8


def test_translation_example_against_a_reference_set(trained):
    x, reference = trained.x_test[:20], trained.x_test[100:160]
    result = translation_example(trained.model, x, (2, 0), layer="relu3", reference=reference, fill=-1.0)
    pixels = reference.reshape(60, -1).astype(np.float64)
    d = np.linalg.norm(pixels[:, None] - pixels[None], axis=2)[np.triu_indices(60, 1)]
    assert result.pixel_scale == pytest.approx(np.median(d), rel=1e-6)
    shifted = shift_images(x, (2, 0), fill=-1.0)
    np.testing.assert_allclose(result.pixel_distances,
                               np.linalg.norm((x - shifted).reshape(20, -1), axis=1), rtol=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        translation_example(trained.model, x[:1], 1)
    with pytest.raises(ValueError, match="reference"):
        translation_example(trained.model, x, 1, reference=np.zeros((4, 1, 14, 14), np.float32))


def test_linear_layer_model_has_default_feature_layer():
    model = Sequential(("flatten", Flatten()), ("fc", Linear(4, 2, rng=np.random.default_rng(0))))
    x = np.random.default_rng(1).standard_normal((5, 1, 2, 2)).astype(np.float32)
    result = nearest_neighbors(model, x, np.arange(5), x, np.arange(5), k=1)
    assert result.layer == "flatten"
    assert result.feature_agreement == result.pixel_agreement == 1.0


def test_auxiliary_heads_are_not_examined():
    """GoogLeNet's training-only side heads hold the first Linear in module order; the feature
    space is still the main path's (the dropout after the global pool, an identity in
    evaluation, is the leaf before fc), and the heads' layers are refused by name."""
    from convscope.visualize.core import feature_layer, find_layer, leaf_layer_names

    rng = np.random.default_rng(0)
    model = build_model("googlenet", 10, 1, (28, 28), rng=rng, aux_logits=True).eval()
    assert feature_layer(model) == "dropout"
    assert not [name for name in leaf_layer_names(model) if name.startswith("aux")]
    with pytest.raises(ValueError, match="aux1.head.fc1.*training-only"):
        find_layer(model, "aux1.head.fc1")
    x = rng.standard_normal((6, 1, 28, 28)).astype(np.float32)
    result = nearest_neighbors(model, x[:2], np.arange(2), x, np.arange(6), k=2)
    assert result.layer == "dropout"
