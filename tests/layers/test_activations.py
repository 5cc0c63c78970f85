"""Element-wise non-linearities and dropout: gradient checks, backward rules, masks."""

import numpy as np
import pytest

from convscope.layers import Dropout, LeakyReLU, ReLU, Sigmoid, Tanh
from gradcheck import check_module_grads, chwn


def away_from_zero(rng, shape, gap=1e-3):
    """Normal values with |x| >= gap, so no finite-difference step crosses a kink at 0."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < gap, np.sign(x + 1e-300) * gap * 2, x)


@pytest.mark.parametrize("layer", [ReLU, lambda: LeakyReLU(0.2), Tanh, Sigmoid],
                         ids=["relu", "leaky", "tanh", "sigmoid"])
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4, 5)])
def test_gradients(rng, layer, shape):
    x = away_from_zero(rng, shape)
    check_module_grads(layer(), chwn(x) if x.ndim == 4 else x, rng)


def test_forward_values(rng):
    x = rng.standard_normal((4, 6)) * 3
    np.testing.assert_array_equal(ReLU()(x), np.where(x > 0, x, 0))
    np.testing.assert_allclose(LeakyReLU(0.1)(x), np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(Tanh()(x), np.tanh(x))
    np.testing.assert_allclose(Sigmoid()(x), 1 / (1 + np.exp(-x)), rtol=1e-14)


def test_sigmoid_does_not_overflow():
    x = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise"):       # underflow to 0 is fine
        y = Sigmoid()(x)
    np.testing.assert_allclose(y, [[0.0, np.exp(-50.0) / (1 + np.exp(-50.0)), 0.5, 1 / (1 + np.exp(-50.0)), 1.0]],
                               rtol=1e-14, atol=0)


def test_relu_backward_rules(rng):
    """gradient: dy where x > 0; deconvnet: rectify dy, ignore x; guided: both masks."""
    x = away_from_zero(rng, (3, 8))
    dy = away_from_zero(rng, (3, 8))
    relu = ReLU()
    relu(x)
    assert relu.backward_rule == "gradient"
    np.testing.assert_array_equal(relu.backward(dy), dy * (x > 0))
    relu.backward_rule = "deconvnet"
    np.testing.assert_array_equal(relu.backward(dy), np.where(dy > 0, dy, 0))
    relu.backward_rule = "guided"
    np.testing.assert_array_equal(relu.backward(dy), np.where((x > 0) & (dy > 0), dy, 0))
    relu.backward_rule = "bogus"
    with pytest.raises(ValueError, match="bogus"):
        relu.backward(dy)


# -- dropout ------------------------------------------------------------------------------
def test_dropout_gradients_with_the_mask_fixed(rng):
    """Rewinding the generator before every forward draws the same mask each time, so the
    layer is a fixed linear map whose gradient central differences can check."""
    drop = Dropout(0.4, rng=np.random.default_rng(7))
    state = drop.rng.bit_generator.state
    rewind = lambda: setattr(drop.rng.bit_generator, "state", state)  # noqa: E731
    check_module_grads(drop, chwn(rng.standard_normal((3, 2, 4, 5))), rng, before_forward=rewind)


def test_dropout_backward_uses_the_forward_mask(rng):
    p = 0.5
    drop = Dropout(p, rng=np.random.default_rng(3))
    x = away_from_zero(rng, (4, 50))
    y = drop(x)
    dropped = y == 0
    assert 0 < dropped.mean() < 1
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - p))
    dy = rng.standard_normal(x.shape)
    dx = drop.backward(dy)
    np.testing.assert_array_equal(dx[dropped], 0.0)
    np.testing.assert_allclose(dx[~dropped], dy[~dropped] / (1 - p))
    # Backward draws nothing: a second backward gives the same answer.
    np.testing.assert_array_equal(drop.backward(dy), dx)
    # A new forward draws a new mask.
    assert not np.array_equal(drop(x) == 0, dropped)


def test_dropout_keeps_the_expected_value(rng):
    drop = Dropout(0.3, rng=np.random.default_rng(0))
    x = np.ones((200, 500), dtype=np.float32)
    y = drop(x)
    assert y.dtype == np.float32
    assert (y == 0).mean() == pytest.approx(0.3, abs=0.01)
    assert y.mean() == pytest.approx(1.0, abs=0.02)


def test_dropout_is_identity_in_eval_and_with_p_zero(rng):
    x = rng.standard_normal((3, 7))
    dy = rng.standard_normal((3, 7))
    drop = Dropout(0.5, rng=rng).eval()
    np.testing.assert_array_equal(drop(x), x)
    np.testing.assert_array_equal(drop.backward(dy), dy)
    drop0 = Dropout(0.0, rng=rng)
    np.testing.assert_array_equal(drop0(x), x)
    np.testing.assert_array_equal(drop0.backward(dy), dy)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, True])
def test_dropout_rejects_bad_probability(p):
    with pytest.raises(ValueError, match=f"got {p!r}"):
        Dropout(p)
