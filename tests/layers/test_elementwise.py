"""Element-wise arithmetic with broadcasting and constants: forward against NumPy, backward
against central differences (the un-broadcast sums over stretched axes)."""

import numpy as np
import pytest

from convscope.layers import Add, Constant, Div, Mul, Sub
from convscope.layers.base import shapes_only
from convscope.layers.elementwise import unbroadcast
from gradcheck import check_module_grads
from multigrad import check_multi_input_grads

OPS = [(Add, np.add), (Sub, np.subtract), (Mul, np.multiply), (Div, np.divide)]
# (shape of a, shape of b), batch axis included: same shapes, an SE gate, a per-channel
# constant with a batch axis of 1, a scalar-like operand, broadcasting on both sides.
SHAPES = [((2, 3, 4, 5), (2, 3, 4, 5)), ((2, 3, 4, 5), (2, 3, 1, 1)), ((2, 3, 4, 5), (1, 3, 1, 1)),
          ((2, 3, 4), (1, 1, 1)), ((2, 1, 4), (2, 3, 1))]


def operands(rng, sa, sb):
    a = rng.standard_normal(sa)
    b = rng.uniform(0.5, 2.0, sb) * rng.choice([-1, 1], sb)      # away from 0 for Div
    return a, b


@pytest.mark.parametrize("cls,ref", OPS, ids=[c.__name__ for c, _ in OPS])
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_binary_forward_and_gradients(cls, ref, sa, sb, rng):
    a, b = operands(rng, sa, sb)
    layer = cls()
    y = layer.forward((a.astype(np.float32), b.astype(np.float32)))
    np.testing.assert_allclose(y, ref(a, b), rtol=1e-5, atol=1e-6)
    assert y.shape[1:] == layer.output_shape((sa[1:], sb[1:]))
    check_multi_input_grads(cls(), [a, b], rng)


@pytest.mark.parametrize("cls", [Add, Mul])
def test_same_tensor_twice_gets_both_gradients(cls, rng):
    x = rng.standard_normal((2, 3))
    layer = cls()
    y = layer.forward((x, x))
    da, db = layer.backward(np.ones_like(y))
    np.testing.assert_allclose(da + db, 2 * (x if cls is Mul else np.ones_like(x)))


def test_shapes_that_do_not_broadcast_are_refused():
    with pytest.raises(ValueError, match="do not broadcast"):
        Add().output_shape(((3, 4), (2, 4)))
    with pytest.raises(ValueError, match="same rank"):
        Mul().output_shape(((3, 4, 5), (4, 5)))
    with pytest.raises(ValueError, match="same rank"):
        Mul().forward((np.ones((2, 3)), np.ones(3)))


def test_unbroadcast_sums_stretched_axes():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (1, 3, 1)), g.sum(axis=(0, 2), keepdims=True))
    assert unbroadcast(g, g.shape) is g


def test_constant_outputs_its_value_with_a_batch_axis_and_learns_when_asked(rng):
    c = Constant((3, 1, 1), key="layer_scale", learnable=True)
    assert set(c.params) == {"layer_scale"} and not c.buffers
    c.params["layer_scale"] = rng.standard_normal((3, 1, 1)).astype(np.float32)
    assert c.forward(None).shape == (1, 3, 1, 1) and c.output_shape(()) == (3, 1, 1)
    fixed = Constant((2,))
    assert set(fixed.buffers) == {"value"} and not fixed.params
    assert fixed.backward(np.ones((1, 2))) is None and not fixed.grads


def test_constant_is_free_under_shapes_only():
    with shapes_only():
        c = Constant((1 << 20, 64))
    assert c.value.strides == (0, 0)


@pytest.mark.parametrize("bad,match", [(dict(shape=[0]), "shape entry"), (dict(shape=[2], key="a.b"), "key"),
                                        (dict(shape=[1] * 9), "at most")])
def test_constant_arguments_are_checked(bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Constant(**bad)


def test_learnable_constant_gradient_in_a_graph(rng):
    """Mul by a learned (C, 1, 1) scale: its gradient is the batch-and-space sum of dy * x."""
    from convscope.layers import Graph
    scale = Constant((3, 1, 1), key="layer_scale", learnable=True)
    scale.params["layer_scale"] = rng.standard_normal((3, 1, 1)).astype(np.float32)
    g = Graph([("gamma", scale, []), ("mul", Mul(), ["input", "gamma"])], output="mul")
    check_module_grads(g, rng.standard_normal((2, 3, 4, 4)), rng)
