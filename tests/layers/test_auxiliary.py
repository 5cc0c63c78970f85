"""AuxiliaryClassifier (GoogLeNet's side heads): the forked gradient, checked numerically on
the total loss L = sum(R * y) + weight * CE(head(x)); train/eval behaviour; bad arguments."""

import numpy as np
import pytest

from convscope.layers import (AuxiliaryClassifier, AvgPool2d, Conv2d, Flatten, Linear, ReLU,
                              Sequential, SoftmaxCrossEntropy)
from gradcheck import TOL, numerical_grad, rel_error


def aux_layer(rng, weight=0.3):
    head = Sequential(("pool", AvgPool2d(2)), ("conv", Conv2d(3, 4, 1, rng=rng)), ("relu", ReLU()),
                      ("flatten", Flatten()), ("fc", Linear(4 * 2 * 2, 5, rng=rng)))
    return AuxiliaryClassifier(head, weight).to(np.float64)


def test_gradients_of_main_plus_weighted_side_loss(rng):
    aux = aux_layer(rng, weight=0.3).train()
    x = rng.standard_normal((3, 3, 4, 5))
    y = np.array([0, 4, 2])
    r = rng.standard_normal(x.shape)                  # dL_main/d(output): the main path's gradient
    ce = SoftmaxCrossEntropy()

    def total_loss() -> float:
        out = aux.forward(x)
        return float(np.sum(r * out) + aux.weight * ce.forward(aux.logits, y))

    total_loss()
    aux.logits_grad = aux.weight * ce.backward()
    dx = aux.backward(r.copy())
    analytic = {"input": dx, **aux.named_grads()}
    numeric = {"input": numerical_grad(total_loss, x)}
    for name, p in aux.named_parameters().items():
        numeric[name] = numerical_grad(total_loss, p)
    assert set(analytic) == {"input", "head.conv.weight", "head.conv.bias", "head.fc.weight", "head.fc.bias"}
    for name in analytic:
        assert np.any(numeric[name]), name
        assert rel_error(analytic[name], numeric[name]) < TOL, name
    # The side path really contributes: without it the input gradient would be r alone.
    assert rel_error(dx, r) > 1e-3


def test_identity_without_a_side_gradient_and_in_evaluation(rng):
    aux = aux_layer(rng)
    x = rng.standard_normal((2, 3, 4, 4))
    dy = rng.standard_normal(x.shape)
    assert aux.train().forward(x) is x and aux.logits.shape == (2, 5)
    assert aux.backward(dy) is dy                     # no logits_grad: a loop without the side loss
    assert aux.eval().forward(x) is x and aux.logits is None
    assert aux.backward(dy) is dy
    assert aux.output_shape((3, 4, 4)) == (3, 4, 4)


def test_forward_clears_a_stale_side_gradient(rng):
    aux = aux_layer(rng).train()
    x = rng.standard_normal((2, 3, 4, 4))
    aux.forward(x)
    aux.logits_grad = np.ones((2, 5))
    aux.forward(x)
    assert aux.logits_grad is None


def test_no_input_gradient_when_switched_off(rng):
    aux = aux_layer(rng).train()
    aux.set_input_grad(False)
    x = rng.standard_normal((2, 3, 4, 4))
    aux.forward(x)
    aux.logits_grad = np.ones((2, 5))
    assert aux.backward(np.ones_like(x)) is None
    assert np.any(aux.named_grads()["head.fc.weight"])       # the head still learns


@pytest.mark.parametrize("head, weight, error, match", [
    ("not a layer", 0.3, TypeError, "str"),
    (None, 0.0, ValueError, "weight.*0.0"),
])
def test_bad_arguments(rng, head, weight, error, match):
    with pytest.raises(error, match=match):
        AuxiliaryClassifier(aux_layer(rng).head if head is None else head, weight)
