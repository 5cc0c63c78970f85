"""Faithfulness metrics: METRICS' directions, deletion / insertion curves against a slow loop,
baselines, ROAD's imputation against a dense solve, randomisation and sensitivity on methods
whose answers are known, and on the trained LeNet-5: gradient methods beat random maps, and
the randomisation check tells the trained model from the re-initialised one."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.layers import softmax
from convscope.visualize import METRICS, attribute, faithfulness, faithfulness_curves, randomisation_curve
from convscope.visualize.faithfulness import spearman
from convscope.visualize.perturbation import baseline_images, gaussian_blur
from convscope.visualize.probe import evaluation_mode
from convscope.visualize.road import NEIGHBOURS, noisy_linear_imputation

from test_methods import images, tiny_cnn


def test_metrics_say_which_way_is_better():
    assert set(METRICS) >= {"deletion", "insertion", "road", "road_morf", "road_lerf", "randomisation",
                            "infidelity", "sensitivity"}
    assert {m: METRICS[m]["better"] for m in ("deletion", "insertion", "road_morf", "road_lerf", "road")} == {
        "deletion": "lower", "insertion": "higher", "road_morf": "lower", "road_lerf": "higher", "road": "higher"}
    assert all(v["better"] in ("lower", "higher") and v["doc"] for v in METRICS.values())


@pytest.mark.parametrize("metric", ["deletion", "insertion"])
def test_deletion_and_insertion_curves_against_a_slow_loop(metric):
    model, x = tiny_cnn(), images(2)
    maps = np.random.default_rng(0).standard_normal((2, 8, 8))
    curves = faithfulness_curves(model, x, maps, metric, steps=4, baseline=-0.5, batch_size=3)
    with evaluation_mode(model):
        t = model.forward(x).argmax(1)
        for i in range(2):
            order = np.argsort(-maps[i].ravel(), kind="stable")
            for k, count in enumerate((0, 16, 32, 48, 64)):
                hit = np.zeros(64, bool)
                hit[order[:count]] = True
                hit = hit.reshape(1, 1, 8, 8)
                copy = np.where(hit, -0.5, x[i:i + 1]) if metric == "deletion" else np.where(hit, x[i:i + 1], -0.5)
                assert curves.scores[i, k] == pytest.approx(softmax(model.forward(copy))[0, t[i]], rel=1e-10)
    np.testing.assert_allclose(curves.fractions, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(curves.auc, np.trapezoid(curves.scores, curves.fractions, axis=1))
    np.testing.assert_allclose(faithfulness(model, x, maps, metric, steps=4, baseline=-0.5), curves.auc)


def test_baselines(clf, trained):
    x = trained.x_test[:2]
    black = baseline_images("black", x, clf)
    np.testing.assert_allclose(black, (0 - clf.normalizer.mean[0]) / clf.normalizer.std[0], rtol=1e-6)
    assert np.all(baseline_images(None, x) == 0)
    blurred = baseline_images("blur", x, clf, blur_sigma=2.0)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    np.testing.assert_allclose(gaussian_blur(np.full((1, 1, 9, 9), 3.0), 1.5), 3.0, rtol=1e-12)
    with pytest.raises(ValueError, match="needs a Classifier"):
        faithfulness(clf.model, x, np.zeros((2, 28, 28)), "deletion")
    with pytest.raises(ValueError, match="baseline must be"):
        faithfulness(clf, trained.data.test_images[:2], np.zeros((2, 28, 28)), "deletion", baseline="grey")


def test_noisy_linear_imputation_solves_the_neighbour_system():
    rng = np.random.default_rng(0)
    x, removed = rng.standard_normal((1, 2, 7, 9)), rng.random((1, 7, 9)) < 0.7
    out = noisy_linear_imputation(x, removed, 0.0, rng, tol=1e-12)
    idx = np.flatnonzero(removed[0].ravel())
    where = {k: i for i, k in enumerate(idx)}
    a, b = np.zeros((len(idx), len(idx))), np.zeros((len(idx), 2))
    for i, k in enumerate(idx):
        r, c = divmod(int(k), 9)
        for dr, dc, w in NEIGHBOURS:
            rr, cc = r + dr, c + dc
            if 0 <= rr < 7 and 0 <= cc < 9:
                a[i, i] += w
                if rr * 9 + cc in where:
                    a[i, where[rr * 9 + cc]] -= w
                else:
                    b[i] += w * x[0, :, rr, cc]
    np.testing.assert_allclose(out[0].reshape(2, -1)[:, idx], np.linalg.solve(a, b).T, atol=1e-9)
    np.testing.assert_array_equal(out[0][:, ~removed[0]], x[0][:, ~removed[0]])


def test_road_orders_and_combination():
    model, x = tiny_cnn(), images(2)
    maps = np.random.default_rng(2).standard_normal((2, 8, 8))
    kw = dict(fractions=[0.2, 0.5], seed=4)
    morf = faithfulness(model, x, maps, "road_morf", **kw)
    lerf = faithfulness(model, x, maps, "road_lerf", **kw)
    flipped = faithfulness(model, x, -maps, "road_morf", **kw)
    np.testing.assert_allclose(lerf, flipped, rtol=1e-12)              # LeRF of m is MoRF of -m
    combined = faithfulness(model, x, maps, "road", **kw)
    assert combined.shape == (2,) and np.isfinite(combined).all()
    with pytest.raises(ValueError, match="fractions"):
        faithfulness(model, x, maps, "road", fractions=[0.5, 1.0])


def test_spearman():
    a = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 2.0, 3.0]])
    np.testing.assert_allclose(spearman(a, a), [1.0, 1.0])
    np.testing.assert_allclose(spearman(a, -a), [-1.0, -1.0])
    assert np.isnan(spearman(a[:1], np.ones((1, 4))))[0]


def test_randomisation_and_sensitivity_of_methods_with_known_answers():
    model, x = tiny_cnn(), images(3)
    edges = lambda net, z, t: np.abs(z).sum(axis=1)                    # ignores the weights
    maps = edges(None, x, None)
    assert np.allclose(faithfulness(model, x, maps, "randomisation", method=edges, seed=0), 1.0)
    curve = randomisation_curve(model, x, attribute(model, x, "gradient"), "gradient", seed=0)
    assert curve.layers == ["fc", "conv2", "conv1"] and curve.correlations.shape == (3, 3)
    assert np.all(faithfulness(model, x, maps, "sensitivity", method=edges, radius=0.0, seed=0) == 0)
    bound = 0.05 * (x.max((1, 2, 3)) - x.min((1, 2, 3))) * 2 * 8 / np.linalg.norm(maps.reshape(3, -1), axis=1)
    s = faithfulness(model, x, maps, "sensitivity", method=edges, radius=0.05, samples=3, seed=0)
    assert np.all(s > 0) and np.all(s <= bound + 1e-12)
    with pytest.raises(ValueError, match="pass method="):
        faithfulness(model, x, maps, "sensitivity")


def test_infidelity_of_exact_linear_attributions_is_zero():
    """For a linear model, gradient x perturbation equals f(x) - f(x - I) exactly."""
    from convscope.layers import Flatten, Linear, Sequential
    rng = np.random.default_rng(0)
    model = Sequential(("flatten", Flatten()), ("fc", Linear(2 * 8 * 8, 3, rng=rng))).to(np.float64)
    x = images(2)
    grads = attribute(model, x, "gradient", reduce="none")
    assert np.all(faithfulness(model, x, grads, "infidelity", seed=0) < 1e-20)
    assert np.all(faithfulness(model, x, -grads, "infidelity", seed=0) > 1e-6)
    with pytest.raises(TypeError, match="unexpected steps"):
        faithfulness(model, x, grads, "infidelity", steps=3)


# -- the trained LeNet-5 ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits(trained):
    return trained.data.test_images[:16]


def test_gradient_methods_beat_random_maps(clf, digits):
    rand = np.random.default_rng(0).random((16, 28, 28))
    for metric, better in (("deletion", np.less), ("insertion", np.greater)):
        chance = faithfulness(clf, digits, rand, metric, steps=28).mean()
        for method in ("gradient", "input_x_gradient", "integrated_gradients", "deeplift", "lrp_epsilon"):
            score = faithfulness(clf, digits, attribute(clf, digits, method, steps=16) if method ==
                                 "integrated_gradients" else attribute(clf, digits, method), metric, steps=28).mean()
            assert better(score, chance), (metric, method, score, chance)


def test_randomisation_separates_the_trained_model_from_the_reinitialised_one(clf, digits):
    maps = attribute(clf, digits, "gradient")
    assert np.allclose(spearman(np.abs(maps), np.abs(attribute(clf, digits, "gradient"))), 1.0)
    curve = randomisation_curve(clf, digits, maps, "gradient", seed=0)
    assert curve.layers == ["fc3", "fc2", "fc1", "conv2", "conv1"]
    assert np.nanmean(curve.correlations[:, -1]) < 0.5
    np.testing.assert_allclose(faithfulness(clf, digits, maps, "randomisation", method="gradient", seed=0),
                               curve.correlations[:, -1])
