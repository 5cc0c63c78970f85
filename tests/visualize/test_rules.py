"""LRP-epsilon, LRP-alpha-beta and DeepLIFT (rescale) as backward rules: values worked by hand
on a 2-layer linear + ReLU net and single layers, conservation / summation-to-delta on small
CNNs (plain, max-pooled, residual with batch norm), and the rule switch leaving the model as
it was."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.layers import (BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, ReLU,
                              Residual, Sequential, Tanh)
from convscope.visualize.probe import evaluation_mode, logit_gradient
from convscope.visualize.rules import deeplift, lrp, propagation_rule


def linear(weight, bias=None) -> Linear:
    weight = np.asarray(weight, dtype=np.float64)
    layer = Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=np.float64)
    layer.params["weight"] = weight
    if bias is not None:
        layer.params["bias"] = np.asarray(bias, dtype=np.float64)
    return layer


def two_layer(b1=None) -> Sequential:
    """z1 = W1 x + b1, a1 = ReLU(z1), y = W2 a1, with W1 = [[1, 2], [-1, 1]], W2 = [[1, -1], [0.5, 2]]."""
    return Sequential(("fc1", linear([[1, 2], [-1, 1]], b1)), ("relu", ReLU()),
                      ("fc2", linear([[1, -1], [0.5, 2]])))


X = np.array([[2.0, 1.0]])          # z1 = [4, -1], a1 = [4, 0], y = [4, 2]
T = np.array([0])


def test_lrp_epsilon_by_hand_small_epsilon_conserves():
    # R(y_0) = 4; fc2: R(a1) = a1 * w_0 / z * R = [4, 0]; ReLU passes it; fc1: R(x) = x w_0 / 4 * 4 = [2, 2].
    r = lrp(two_layer(), X, T, epsilon=1e-12)
    np.testing.assert_allclose(r.attributions, [[2.0, 2.0]], atol=1e-9)
    np.testing.assert_allclose(r.scores, [4.0])
    assert abs(r.delta[0]) < 1e-9


def test_lrp_epsilon_by_hand_epsilon_one_absorbs():
    # fc2: R(a1) = [4 * 1 / (4 + 1) * 4, 0] = [3.2, 0]; fc1: R(x) = [2 * 1, 1 * 2] / (4 + 1) * 3.2.
    r = lrp(two_layer(), X, T, epsilon=1.0)
    np.testing.assert_allclose(r.attributions, [[1.28, 1.28]], atol=1e-12)
    assert r.delta[0] < 0                                   # epsilon absorbs relevance


def test_lrp_epsilon_bias_absorbs_its_share():
    # b1 = [1, 0]: z1 = [5, -1], y_0 = 5; R(z1) = [5, 0]; R(x) = [2, 2] / 5 * 5 = [2, 2]: 1 went to the bias.
    r = lrp(two_layer(b1=[1.0, 0.0]), X, T, epsilon=1e-12)
    np.testing.assert_allclose(r.attributions, [[2.0, 2.0]], atol=1e-9)
    np.testing.assert_allclose(r.delta, [-1.0], atol=1e-9)


@pytest.mark.parametrize("x, weight, alpha, beta, expected", [
    ([[2.0, 1.0]], [[1.0, -1.0]], 2.0, 1.0, [[2.0, -1.0]]),     # z+ = 2, z- = -1, R = 1
    ([[2.0, 1.0]], [[1.0, -1.0]], 1.0, 0.0, [[1.0, 0.0]]),
    ([[-2.0, 1.0]], [[1.0, 1.0]], 1.0, 0.0, [[0.0, -1.0]]),      # signed input: z_j = [-2, 1], R = -1
    ([[-2.0, 1.0]], [[1.0, 1.0]], 2.0, 1.0, [[1.0, -2.0]]),
])
def test_lrp_alpha_beta_by_hand(x, weight, alpha, beta, expected):
    model = Sequential(("fc", linear(weight)))
    r = lrp(model, np.array(x), np.array([0]), "alpha_beta", alpha=alpha, beta=beta)
    np.testing.assert_allclose(r.attributions, expected, atol=1e-12)
    np.testing.assert_allclose(r.attributions.sum(), r.scores[0], atol=1e-12)


def test_deeplift_rescale_by_hand():
    # x0 = [1, 3]: z1(x0) = [7, 2] (a1 = [7, 2]); dz1 = [-3, -3], da1 = [-3, -2]: ReLU multipliers [1, 2/3];
    # signal at z1 = [1, -1] * [1, 2/3]; m_x = W1^T [1, -2/3] = [5/3, 4/3]; attr = (x - x0) m = [5/3, -8/3].
    r = deeplift(two_layer(), X, T, np.array([[1.0, 3.0]]))
    np.testing.assert_allclose(r.attributions, [[5 / 3, -8 / 3]], atol=1e-12)
    np.testing.assert_allclose(r.baseline_scores, [5.0])
    np.testing.assert_allclose(r.attributions.sum(), 4.0 - 5.0, atol=1e-12)


def test_deeplift_uses_the_gradient_where_input_equals_reference():
    x0 = X.copy()
    r = deeplift(two_layer(), X, T, x0)
    np.testing.assert_array_equal(r.attributions, np.zeros_like(X))


def tiny_cnn(bias: bool, seed: int = 0) -> Sequential:
    rng = np.random.default_rng(seed)
    model = Sequential(("conv1", Conv2d(1, 4, 3, padding=1, bias=bias, rng=rng)), ("relu1", ReLU()),
                       ("pool", MaxPool2d(2)), ("conv2", Conv2d(4, 6, 3, padding=1, bias=bias, rng=rng)),
                       ("tanh", Tanh()), ("flatten", Flatten()), ("fc", Linear(6 * 4 * 4, 5, bias=bias, rng=rng)))
    for _, m in model.named_modules():
        if "bias" in m.params:
            m.params["bias"] = rng.standard_normal(m.params["bias"].shape).astype(np.float32)
    return model.to(np.float64)


def tiny_residual(seed: int = 1, bn_offset: bool = True) -> Sequential:
    """stem conv -> ReLU -> [conv -> BN -> ReLU -> conv] + identity -> ReLU -> pool -> GAP -> fc, no biases;
    without ``bn_offset`` the BN's running mean (its implicit bias) is zero too."""
    rng = np.random.default_rng(seed)
    bn = BatchNorm2d(4)
    bn.buffers["running_mean"] = rng.standard_normal(4).astype(np.float32) * bn_offset
    bn.buffers["running_var"] = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    bn.params["weight"] = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    body = Sequential(("conv1", Conv2d(4, 4, 3, padding=1, bias=False, rng=rng)), ("bn", bn), ("relu", ReLU()),
                      ("conv2", Conv2d(4, 4, 3, padding=1, bias=False, rng=rng)))
    model = Sequential(("stem", Conv2d(1, 4, 3, padding=1, bias=False, rng=rng)), ("relu0", ReLU()),
                       ("block", Residual(body, post=ReLU())), ("pool", MaxPool2d(2)), ("gap", GlobalAvgPool2d()),
                       ("fc", Linear(4, 3, bias=False, rng=rng)))
    return model.to(np.float64)


def images(n, shape=(1, 8, 8), seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + shape)


@pytest.mark.parametrize("build", [lambda: tiny_cnn(bias=True), tiny_residual])
def test_deeplift_sums_to_the_output_difference(build):
    model, x = build(), images(4, seed=2)
    base = images(4, seed=3) * 0.5
    r = deeplift(model, x, np.array([0, 1, 2, 1]), base, batch_size=3)
    gap = np.abs(r.delta) / np.maximum(np.abs(r.scores - r.baseline_scores), 1e-12)
    assert gap.max() < 1e-9


def test_lrp_epsilon_conserves_exactly_with_zero_biases_through_a_residual_block():
    model, x = tiny_residual(bn_offset=False), images(3, seed=4)
    r = lrp(model, x, np.array([0, 1, 2]), epsilon=1e-12)
    assert np.abs(r.delta / r.scores).max() < 1e-8


def test_lrp_with_vanishing_epsilon_is_gradient_times_input():
    """Ancona et al. 2018: for piecewise-linear networks LRP-0 equals gradient x input."""
    model = tiny_cnn(bias=True)
    model._layers[4] = ("tanh", ReLU())                        # piecewise linear throughout
    x, t = images(3, seed=5), np.array([4, 0, 2])
    r = lrp(model, x, t, epsilon=1e-12)
    with evaluation_mode(model):
        grad, _ = logit_gradient(model, x, t)
    np.testing.assert_allclose(r.attributions, x * grad, rtol=1e-6, atol=1e-12)


def test_rules_are_restored_and_batches_agree():
    model, x, t = tiny_cnn(bias=True), images(5, seed=6), np.array([0, 1, 2, 3, 4])
    with evaluation_mode(model):
        before, _ = logit_gradient(model, x, t)
    one = lrp(model, x, t, batch_size=5).attributions
    split = lrp(model, x, t, batch_size=2).attributions
    np.testing.assert_allclose(one, split, rtol=1e-10, atol=1e-14)
    assert all("backward" not in m.__dict__ for _, m in model.named_modules())
    with evaluation_mode(model):
        after, _ = logit_gradient(model, x, t)
    np.testing.assert_array_equal(before, after)


def test_propagation_rule_refuses_bad_arguments():
    model = two_layer()
    with pytest.raises(ValueError, match="rule must be one of"):
        with propagation_rule(model, "lrp_gamma"):
            pass
    with pytest.raises(ValueError, match="alpha - beta must be 1"):
        with propagation_rule(model, "lrp_alpha_beta", alpha=2.0, beta=0.0):
            pass
    with pytest.raises(ValueError, match="'epsilon' or 'alpha_beta'"):
        lrp(model, X, T, "z_plus")


def test_unknown_layer_types_are_named():
    from convscope.layers import Module

    class Square(Module):
        def forward(self, x):
            return x * x

        def backward(self, dy):
            return dy

        def output_shape(self, s):
            return s

    with pytest.raises(TypeError, match="Square"):
        with propagation_rule(Sequential(("sq", Square())), "lrp_epsilon"):
            pass


def graph_twin(model):
    """tiny_residual as an imported network looks: a Graph whose residual sum is an Add node,
    whose global pool is a ReduceMean and a Reshape, and whose shortcut is a fan-out."""
    from convscope.layers import Graph
    from convscope.layers.elementwise import Add
    from convscope.layers.reduce import ReduceMean
    from convscope.layers.shape_ops import Reshape
    layers = dict(model.children())
    body = dict(layers["block"].body.children())
    return Graph([("stem", layers["stem"], ["input"]), ("relu0", layers["relu0"], ["stem"]),
                  ("conv1", body["conv1"], ["relu0"]), ("bn", body["bn"], ["conv1"]), ("relu", body["relu"], ["bn"]),
                  ("conv2", body["conv2"], ["relu"]), ("add", Add(), ["conv2", "relu0"]),
                  ("post", ReLU(), ["add"]), ("pool", layers["pool"], ["post"]),
                  ("mean", ReduceMean([1, 2]), ["pool"]), ("flat", Reshape([-1]), ["mean"]),
                  ("fc", layers["fc"], ["flat"])], output="fc")


def test_rules_on_an_imported_graph_conserve_and_match_the_same_network_built_from_containers():
    """Add / ReduceMean / Reshape nodes get the rules their container counterparts have: LRP-eps
    conserves relevance with zero biases, DeepLIFT sums to the output difference, and both give
    the attributions of the same layers arranged as Sequential + Residual."""
    model = tiny_residual(bn_offset=False)
    graph = graph_twin(model)
    x, t = images(3, seed=4), np.array([0, 1, 2])
    graph.eval()                                  # (training mode would move BN's running statistics)
    np.testing.assert_allclose(graph.forward(x), model.eval().forward(x), rtol=1e-12)
    r_graph, r_model = lrp(graph, x, t, epsilon=1e-12), lrp(model, x, t, epsilon=1e-12)
    assert np.abs(r_graph.delta / r_graph.scores).max() < 1e-8
    np.testing.assert_allclose(r_graph.attributions, r_model.attributions, rtol=1e-9, atol=1e-12)
    base = images(3, seed=3) * 0.5
    d_graph, d_model = deeplift(graph, x, t, base), deeplift(model, x, t, base)
    gap = np.abs(d_graph.delta) / np.maximum(np.abs(d_graph.scores - d_graph.baseline_scores), 1e-12)
    assert gap.max() < 1e-9
    np.testing.assert_allclose(d_graph.attributions, d_model.attributions, rtol=1e-9, atol=1e-12)
