"""Linear (notes §1, Figure 1) and Flatten: gradient checks, layout handling, PyTorch."""

import numpy as np
import pytest

from convscope.layers import Conv2d, Flatten, Linear, Sequential
from gradcheck import assert_matches, check_module_grads, chwn


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n", [1, 3])
def test_linear_gradients(rng, n, bias):
    layer = Linear(5, 4, bias=bias, rng=rng, dtype=np.float64)
    if bias:
        layer.params["bias"] = rng.standard_normal(4)
    check_module_grads(layer, rng.standard_normal((n, 5)), rng)


def test_linear_forward_is_every_input_times_every_weight(rng):
    """y_o = sum_i W[o, i] x_i + b_o, written as the notes' fully connected sum."""
    layer = Linear(3, 2, rng=rng, dtype=np.float64)
    layer.params["bias"] = rng.standard_normal(2)
    x = rng.standard_normal((4, 3))
    w, b = layer.params["weight"], layer.params["bias"]
    want = [[sum(w[o, i] * x[n, i] for i in range(3)) + b[o] for o in range(2)] for n in range(4)]
    np.testing.assert_allclose(layer(x), want, rtol=1e-13)
    assert layer.params["weight"].size == 3 * 2                  # n_i x n_o weights


@pytest.mark.parametrize("layout", ["nchw", "chwn"])
def test_flatten_gradients(rng, layout):
    x = rng.standard_normal((3, 2, 3, 4))
    check_module_grads(Flatten(), chwn(x) if layout == "chwn" else x, rng)


def test_flatten_is_c_order_whatever_the_memory_layout(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    flat = Flatten()
    y = flat(chwn(x))
    assert flat.output_shape((3, 4, 5)) == (60,)
    np.testing.assert_array_equal(y, x.reshape(2, -1))            # PyTorch's nn.Flatten order
    dy = rng.standard_normal(y.shape)
    dx = flat.backward(dy)
    np.testing.assert_array_equal(dx, dy.reshape(x.shape))
    assert dx.transpose(1, 2, 3, 0).flags.c_contiguous            # CHWN in, CHWN gradient out


def test_flatten_after_conv_feeds_linear(rng):
    """The conv -> flatten -> linear chain, checked end to end through the CHWN views."""
    net = Sequential(Conv2d(2, 3, 3, stride=2, rng=rng), Flatten(), Linear(3 * 3 * 2, 4, rng=rng))
    check_module_grads(net, rng.standard_normal((2, 2, 7, 5)), rng)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(torch, rng, bias, dtype):
    layer = Linear(6, 4, bias=bias, rng=rng, dtype=dtype)
    if bias:
        layer.params["bias"] = rng.standard_normal(4).astype(dtype)
    x = rng.standard_normal((5, 6)).astype(dtype)
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)

    tl = torch.nn.Linear(6, 4, bias=bias, dtype=getattr(torch, np.dtype(dtype).name))
    with torch.no_grad():
        tl.weight.copy_(torch.from_numpy(layer.params["weight"]))
        if bias:
            tl.bias.copy_(torch.from_numpy(layer.params["bias"]))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = tl(tx)
    ty.backward(torch.from_numpy(dy))
    pairs = [(y, ty), (dx, tx.grad), (layer.grads["weight"], tl.weight.grad)]
    if bias:
        pairs.append((layer.grads["bias"], tl.bias.grad))
    for ours, theirs in pairs:
        assert ours.dtype == dtype
        assert_matches(ours, theirs.detach().numpy(), dtype)


def test_need_param_grad_off_keeps_the_input_gradient_and_skips_the_weights(rng):
    from convscope.layers import ReLU
    model = Sequential(Linear(5, 4, rng=rng, dtype=np.float64), ReLU(), Linear(4, 3, rng=rng, dtype=np.float64))
    x = rng.standard_normal((6, 5))
    dy = rng.standard_normal((6, 3))
    model.forward(x)
    dx = model.backward(dy)
    model.set_param_grad(False)
    for _, m in model.named_modules():
        m.grads.clear()
    model.forward(x)
    np.testing.assert_array_equal(model.backward(dy), dx)
    assert all(not m.grads for _, m in model.named_modules())
    model.set_param_grad(True)
    model.forward(x)
    model.backward(dy)
    assert all(set(m.grads) == {"weight", "bias"} for _, m in model.named_modules() if m.params)
