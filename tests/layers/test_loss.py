"""Softmax cross-entropy (the f of notes §1.3) and the softmax helpers."""

import numpy as np
import pytest

from convscope.layers import SoftmaxCrossEntropy, log_softmax, softmax
from gradcheck import TOL, numerical_grad, rel_error


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("n", [1, 4])
def test_gradient_wrt_logits(rng, n, smoothing):
    loss = SoftmaxCrossEntropy(label_smoothing=smoothing)
    logits = 2 * rng.standard_normal((n, 5))
    targets = rng.integers(0, 5, n)
    loss(logits, targets)
    analytic = loss.backward()
    numeric = numerical_grad(lambda: loss(logits, targets), logits)
    assert np.any(numeric)
    assert rel_error(analytic, numeric) < TOL


def explicit_loss(logits, targets, smoothing=0.0):
    """Mean over the batch of -sum_k t_k log p_k, p = exp(z) / sum exp(z), written out."""
    total = 0.0
    n, k = logits.shape
    for row, y in zip(logits, targets):
        p = np.exp(row) / np.exp(row).sum()
        t = np.full(k, smoothing / k)
        t[y] += 1 - smoothing
        total += -(t * np.log(p)).sum()
    return total / n


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_loss_value(rng, smoothing):
    logits = rng.standard_normal((6, 4))
    targets = rng.integers(0, 4, 6)
    got = SoftmaxCrossEntropy(smoothing)(logits, targets)
    assert isinstance(got, float)
    assert got == pytest.approx(explicit_loss(logits, targets, smoothing), rel=1e-12)


def test_uniform_logits_give_log_k():
    assert SoftmaxCrossEntropy()(np.zeros((3, 10)), np.array([0, 4, 9])) == pytest.approx(np.log(10))


def test_large_logits_are_stable():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0]])
    loss = SoftmaxCrossEntropy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss(logits, np.array([0, 2]))
        grad = loss.backward()
    # Row 0 is certain and right (loss 0); row 1 puts e^-1/(1+e^-1) on class 2: -log of that.
    assert value == pytest.approx(np.log1p(np.e) / 2, rel=1e-12)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)


def test_softmax_and_log_softmax(rng):
    z = rng.standard_normal((3, 7)) * 5
    p = softmax(z)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(p, np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), rtol=1e-13)
    np.testing.assert_allclose(log_softmax(z), np.log(p), rtol=1e-12)
    np.testing.assert_allclose(softmax(z + 100.0), p, rtol=1e-12)     # shift invariance


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_matches_torch(torch, rng, smoothing):
    logits = rng.standard_normal((5, 4))
    targets = rng.integers(0, 4, 5)
    loss = SoftmaxCrossEntropy(smoothing)
    value = loss(logits, targets)
    grad = loss.backward()
    tz = torch.from_numpy(logits.copy()).requires_grad_(True)
    tl = torch.nn.functional.cross_entropy(tz, torch.from_numpy(targets), label_smoothing=smoothing)
    tl.backward()
    assert value == pytest.approx(tl.item(), rel=1e-12)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("logits, targets, match", [
    (np.zeros((2, 3)), np.array([0, 3]), r"\[0, 3\)"),
    (np.zeros((2, 3)), np.array([-1, 0]), r"\[0, 3\)"),
    (np.zeros((2, 3)), np.array([0.0, 1.0]), "float64"),
    (np.zeros((2, 3)), np.array([0, 1, 2]), r"\(3,\)"),
    (np.zeros(3), np.array([0]), r"\(3,\)"),
])
def test_bad_inputs_raise(logits, targets, match):
    with pytest.raises(ValueError, match=match):
        SoftmaxCrossEntropy()(logits, targets)


@pytest.mark.parametrize("smoothing", [-0.1, 1.0])
def test_bad_label_smoothing(smoothing):
    with pytest.raises(ValueError, match=repr(smoothing).replace(".", r"\.")):
        SoftmaxCrossEntropy(smoothing)
