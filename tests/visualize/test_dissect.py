"""Semantic interpretation of units (notes §3)."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.layers import Flatten, Linear, ReLU, Sequential
from convscope.models import available_models, build_model
from convscope.visualize.dissect import dissect, selectivity_index
from convscope.visualize.features import feature_maps


def _class_detector(n: int = 200, rng_seed: int = 0):
    """Flatten -> Linear(10, 3) -> ReLU on noisy one-hot "images" (N, 10, 1, 1) of their label.
    Unit 0 copies input 3 (a detector of class 3), unit 1 input 7, unit 2 averages all ten."""
    rng = np.random.default_rng(rng_seed)
    labels = np.arange(n) % 10
    x = np.eye(10, dtype=np.float32)[labels] + 0.05 * rng.standard_normal((n, 10)).astype(np.float32)
    fc = Linear(10, 3, rng=rng)
    fc.params["weight"][:] = 0.0
    fc.params["weight"][0, 3] = 1.0
    fc.params["weight"][1, 7] = 1.0
    fc.params["weight"][2, :] = 0.1
    fc.params["bias"][:] = 0.0
    model = Sequential(("flatten", Flatten()), ("fc", fc), ("relu", ReLU()))
    return model, x.reshape(n, 10, 1, 1), labels


def test_top_images_are_the_argmax_images_of_a_conv_layer(trained):
    x = trained.x_test[:300]
    result = dissect(trained.model, x, "relu2", labels=trained.y_test[:300], top=5, batch_size=64)
    manual = feature_maps(trained.model, x, "relu2").max(axis=(2, 3))          # (300, 16)
    assert result.responses.shape == (300, 16)
    np.testing.assert_allclose(result.responses, manual, rtol=1e-5, atol=1e-6)
    assert result.top_indices.shape == result.top_activations.shape == (16, 5)
    for u in range(16):
        assert result.top_indices[u, 0] == np.argmax(result.responses[:, u])    # first of any ties
        np.testing.assert_array_equal(result.top_indices[u], np.argsort(-result.responses[:, u], kind="stable")[:5])
        expected = np.sort(result.responses[:, u])[::-1][:5]
        np.testing.assert_array_equal(result.top_activations[u], expected)
        np.testing.assert_array_equal(result.top_activations[u], result.responses[result.top_indices[u], u])
    dead = np.all(result.responses == 0, axis=0)
    for u in np.nonzero(dead)[0]:                                  # a unit that never fires
        np.testing.assert_array_equal(result.top_indices[u], np.arange(5))


def test_class_means_and_selectivity_of_a_trained_relu_layer(trained):
    x, y = trained.x_test[:300], trained.y_test[:300]
    result = dissect(trained.model, x, "relu3", labels=y, top=3)
    np.testing.assert_allclose(result.responses, feature_maps(trained.model, x, "relu3"), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.classes, np.arange(10))
    assert result.class_means.shape == (120, 10)
    np.testing.assert_allclose(result.class_means[:, 4], result.responses[y == 4].mean(axis=0))
    defined = ~np.isnan(result.selectivity)
    assert defined.sum() > 60
    assert np.all((result.selectivity[defined] >= 0) & (result.selectivity[defined] <= 1))
    # Undefined only for units that never fire on these images (all class means 0).
    np.testing.assert_array_equal(~defined, np.all(result.class_means == 0, axis=1))
    np.testing.assert_array_equal(result.preferred_class, np.argmax(result.class_means, axis=1))


def test_a_unit_built_for_one_class_prefers_it_with_high_selectivity():
    model, x, labels = _class_detector()
    result = dissect(model, x, "relu", labels=labels, top=4)
    assert result.preferred_class[0] == 3 and result.preferred_class[1] == 7
    assert result.selectivity[0] > 0.9 and result.selectivity[1] > 0.9
    assert result.selectivity[2] < 0.2
    assert set(labels[result.top_indices[0]]) == {3}
    rows = result.rows()
    assert [r["unit"] for r in rows] == [0, 1, 2]
    assert rows[0]["preferred_class"] == 3 and rows[0]["selectivity"] == pytest.approx(result.selectivity[0])
    assert rows[0]["top_activation"] == pytest.approx(result.top_activations[0, 0])


def test_concepts_give_means_selectivity_and_iou():
    model, x, labels = _class_detector()
    concepts = np.stack([labels == 3, labels == 7, labels % 2 == 0], axis=1)          # (200, 3)
    result = dissect(model, x, "relu", concepts=concepts, concept_names=["three", "seven", "even"])
    assert result.class_means is None and result.selectivity is None
    assert result.concept_means.shape == result.concept_iou.shape == (3, 3)
    assert result.concept_names == ["three", "seven", "even"]
    np.testing.assert_array_equal(result.preferred_concept[:2], [0, 1])
    assert result.concept_selectivity[0] > 0.9
    # Classes 3 and 7 are 10% of the images: the top decile of unit 0 is exactly the threes.
    assert result.concept_iou[0, 0] == pytest.approx(1.0)
    assert result.concept_iou[0, 1] == 0.0
    assert result.concept_iou[0, 2] < 0.2
    row = result.rows()[1]
    assert row["preferred_concept"] == "seven" and row["best_iou_concept"] == "seven"
    assert row["best_iou"] == pytest.approx(1.0) and "preferred_class" not in row


@pytest.mark.parametrize("means, expected", [
    ([[1.0, 0.0, 0.0]], 1.0),                  # only one class excites the unit
    ([[1.0, 1.0, 1.0]], 0.0),                  # all classes alike
    ([[2.0, 1.0, 0.0]], 1.5 / 2.5),            # mu_max 2, mu_rest (1 + 0) / 2
    ([[3.0, 1.0]], 0.5),
    ([[-1.0, 0.0, 1.0]], np.nan),              # negative means: undefined
    ([[0.0, 0.0, 0.0]], np.nan),               # a dead unit: undefined
])
def test_selectivity_index_formula(means, expected):
    index, best = selectivity_index(np.array(means))
    np.testing.assert_allclose(index, [expected])
    assert best[0] == np.argmax(means[0])


def test_dissect_on_a_residual_model():
    if "resnet20" not in available_models():
        pytest.skip("resnet20 is not registered")
    model = build_model("resnet20", 10, 1, (28, 28), rng=np.random.default_rng(0))
    x = np.random.default_rng(4).standard_normal((12, 1, 28, 28)).astype(np.float32)
    labels = np.arange(12) % 3
    result = dissect(model, x, "layer2.1.relu2", labels=labels, top=3, batch_size=5)
    assert result.responses.shape == (12, 32) and result.top_indices.shape == (32, 3)
    np.testing.assert_allclose(result.responses, feature_maps(model, x, "layer2.1.relu2").max(axis=(2, 3)),
                               rtol=1e-5, atol=1e-5)
    assert len(result.rows()) == 32 and result.class_means.shape == (32, 3)
    whole_block = dissect(model, x, "layer3", top=2)
    assert whole_block.responses.shape == (12, 64)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"top": 0}, ValueError, "top"),
    ({"top": 21}, ValueError, "21"),
    ({"labels": np.zeros(20, np.int64)}, ValueError, "2 classes"),
    ({"labels": np.arange(19)}, ValueError, r"\(19,\)"),
    ({"concepts": np.full((20, 2), 2)}, ValueError, "0 and 1"),
    ({"concepts": np.ones((20, 1))}, ValueError, r"\(20, 1\)"),
    ({"concepts": np.stack([np.ones(20), np.zeros(20)], 1)}, ValueError, r"\[1\]"),
    ({"concepts": np.eye(20)[:, :2] + np.eye(20)[:, 2:4], "concept_names": ["a"]}, ValueError, "'a'"),
    ({"concept_names": ["a", "b"]}, ValueError, "without concepts"),
    ({"quantile": 1.0}, ValueError, "quantile"),
    ({"layer": "nothing"}, ValueError, "nothing"),
    ({"x": np.zeros((20, 1, 28, 28), np.int64)}, TypeError, "int64"),
])
def test_dissect_validates_arguments(trained, kwargs, error, words):
    args = {"x": trained.x_test[:20], "layer": "relu3", **kwargs}
    with pytest.raises(error, match=words):
        dissect(trained.model, **args)
