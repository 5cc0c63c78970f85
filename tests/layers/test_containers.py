"""Sequential, Residual, Concat and Identity: gradients routed through composed contracts,
names, modes and input-gradient switches."""

import numpy as np
import pytest

from convscope.layers import (BatchNorm2d, Concat, Conv2d, Flatten, Identity, Linear, MaxPool2d,
                              ReLU, Residual, Sequential)
from gradcheck import check_module_grads, chwn


def small_cnn(rng):
    """conv -> BN -> ReLU -> overlapping max pool -> flatten -> linear, with readable names.

    The conv has no bias: BN in training subtracts the batch mean, so a conv bias would have
    an exactly zero gradient, which central differences can only resolve to round-off."""
    return Sequential(("conv", Conv2d(2, 3, 3, padding=1, bias=False, rng=rng)), ("bn", BatchNorm2d(3)),
                      ("relu", ReLU()), ("pool", MaxPool2d(3, 2)), ("flat", Flatten()),
                      ("fc", Linear(3 * 3 * 2, 4, rng=rng)))


def test_identity_gradients(rng):
    check_module_grads(Identity(), rng.standard_normal((2, 3, 4, 2)), rng)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_sequential_gradients(rng, mode):
    net = small_cnn(rng).train(mode == "train")
    net["bn"].buffers["running_var"] = rng.uniform(0.5, 2, 3).astype(np.float32)
    check_module_grads(net, rng.standard_normal((3, 2, 7, 5)), rng)


def basic_block(rng, c):
    return Sequential(Conv2d(c, c, 3, padding=1, rng=rng), ReLU(), Conv2d(c, c, 3, padding=1, rng=rng))


def test_residual_identity_shortcut_gradients(rng):
    block = Residual(basic_block(rng, 2), post=ReLU())
    check_module_grads(block, rng.standard_normal((2, 2, 5, 4)), rng)


def test_residual_without_post_adds_the_identity_gradient(rng):
    """y = F(x) + x, so dx = dF/dx^T dy + dy: zeroing F leaves exactly dy."""
    body = basic_block(rng, 2)
    block = Residual(body)
    check_module_grads(block, rng.standard_normal((1, 2, 5, 4)), rng)
    for _, m, key in body.parameter_slots():
        m.params[key] = np.zeros_like(m.params[key])
    x = rng.standard_normal((2, 2, 5, 4))
    np.testing.assert_array_equal(block(x), x)
    dy = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(block.backward(dy), dy)


def test_residual_projection_shortcut_gradients(rng):
    """ResNet's down-sampling block: body halves the size with a stride-2 conv; the shortcut
    is a 1x1 stride-2 projection; a ReLU after the sum."""
    body = Sequential(Conv2d(2, 4, 3, stride=2, padding=1, rng=rng), ReLU(),
                      Conv2d(4, 4, 3, padding=1, rng=rng))
    block = Residual(body, shortcut=Conv2d(2, 4, 1, stride=2, rng=rng), post=ReLU())
    x = rng.standard_normal((2, 2, 7, 5))
    assert block.output_shape((2, 7, 5)) == (4, 4, 3) == block(x).shape[1:]
    errors = check_module_grads(block, x, rng)
    assert {"shortcut.weight", "shortcut.bias", "body.0.weight", "body.2.bias"} <= set(errors)


def test_residual_shape_mismatch_is_reported():
    block = Residual(Conv2d(2, 4, 3, stride=2, padding=1))
    with pytest.raises(ValueError, match="body gives"):
        block.output_shape((2, 7, 5))


def test_concat_gradients(rng):
    """An Inception-like module: 1x1 conv | 3x3 conv + ReLU | 3x3/1 max pool, side by side."""
    block = Concat(("b1", Conv2d(2, 2, 1, rng=rng)),
                   ("b3", Sequential(Conv2d(2, 3, 3, padding=1, rng=rng), ReLU())),
                   ("pool", MaxPool2d(3, 1, 1)))
    x = chwn(rng.standard_normal((2, 2, 5, 4)))
    y = block(x)
    assert y.shape == (2, 7, 5, 4) == (2,) + block.output_shape((2, 5, 4))
    np.testing.assert_allclose(y[:, 5:], block.get_module("pool")(x))   # channel order = branch order
    check_module_grads(block, x, rng)


def test_concat_spatial_mismatch_is_reported():
    block = Concat(Conv2d(2, 2, 1), Conv2d(2, 2, 3))
    with pytest.raises(ValueError, match="different spatial shapes"):
        block.output_shape((2, 5, 5))


# -- structure, modes, input-gradient switch ----------------------------------------------
def test_dotted_parameter_names_and_lookup(rng):
    net = Sequential(("features", small_cnn(rng)),
                     ("res", Residual(basic_block(rng, 2), Conv2d(2, 2, 1, rng=rng))))
    names = list(net.named_parameters())
    assert names[:4] == ["features.conv.weight", "features.bn.weight", "features.bn.bias", "features.fc.weight"]
    assert "res.body.0.weight" in names and "res.shortcut.weight" in names
    assert set(net.named_buffers()) == {"features.bn.running_mean", "features.bn.running_var"}
    assert net.get_module("features.fc") is net["features"]["fc"]
    with pytest.raises(ValueError, match="no layer named 'features.nope'"):
        net.get_module("features.nope")


def test_sequential_naming_rules(rng):
    assert [n for n, _ in Sequential(ReLU(), ReLU()).children()] == ["0", "1"]
    assert [n for n, _ in Sequential({"a": ReLU(), "b": ReLU()}).children()] == ["a", "b"]
    with pytest.raises(ValueError, match="unique"):
        Sequential(("a", ReLU()), ("a", ReLU()))
    with pytest.raises(ValueError, match="'a.b'"):
        Sequential(("a.b", ReLU()))
    with pytest.raises(TypeError, match="ndarray"):
        Sequential(np.zeros(3))


def test_output_shape_names_the_failing_layer(rng):
    net = small_cnn(rng)
    assert net.output_shape((2, 7, 5)) == (4,)
    with pytest.raises(ValueError, match="layer 'fc'"):
        net.output_shape((2, 9, 9))


def test_train_and_eval_reach_every_descendant(rng):
    net = Sequential(small_cnn(rng), Residual(basic_block(rng, 4), post=ReLU()))
    net.eval()
    assert all(not m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())


@pytest.mark.parametrize("make", [
    lambda rng: small_cnn(rng),
    lambda rng: Residual(basic_block(rng, 2), Conv2d(2, 2, 1, rng=rng), post=ReLU()),
    lambda rng: Concat(Conv2d(2, 2, 1, rng=rng), Conv2d(2, 3, 3, padding=1, rng=rng)),
], ids=["sequential", "residual", "concat"])
def test_set_input_grad_false_returns_none_and_keeps_grads(rng, make):
    net = make(rng).to(np.float64)
    x = rng.standard_normal((2, 2, 7, 5))
    dy = rng.standard_normal(net(x).shape)
    assert net.backward(dy) is not None
    want = {k: v.copy() for k, v in net.named_grads().items()}
    net.set_input_grad(False)
    net(x)
    assert net.backward(dy) is None
    got = net.named_grads()
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, err_msg=k)
    net.set_input_grad(True)
    net(x)
    assert net.backward(dy) is not None


def test_sequential_input_grad_switch_only_touches_the_first_layer(rng):
    net = small_cnn(rng)
    net.set_input_grad(False)
    flags = [m.need_input_grad for _, m in net.children()]
    assert flags == [False] + [True] * (len(flags) - 1)
