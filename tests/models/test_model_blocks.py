"""Composite blocks (notes §2.4-2.5): shapes, readable names, float64 gradient checks."""

import numpy as np
import pytest

from convscope.layers import (BasicBlock, Bottleneck, Conv2d, Identity, Inception, InceptionNaive,
                              LocalResponseNorm, MaxPool2d, ReLU, Sequential, ZeroPadShortcut)
from gradcheck import check_module_grads, chwn


def jitter_biases(block, rng):
    """Non-zero biases: with zero biases a conv over an all-zero (post-ReLU) patch outputs
    exactly 0, the ReLU's kink, where central differences disagree with any derivative."""
    for _, module in block.named_modules():
        if "bias" in module.params:
            module.params["bias"] = module.params["bias"] + 0.1 * rng.standard_normal(
                module.params["bias"].shape).astype(module.params["bias"].dtype)


# -- gradient checks: every block's backward is its layers' backward, composed ------------------
BLOCKS = {
    "basic_identity": (lambda r: BasicBlock(3, 3, 1, rng=r), (2, 3, 5, 5)),
    "basic_projection": (lambda r: BasicBlock(3, 4, 2, rng=r), (2, 3, 5, 5)),
    "basic_zero_pad": (lambda r: BasicBlock(2, 4, 2, shortcut="zero_pad", rng=r), (2, 2, 5, 4)),
    "bottleneck_identity": (lambda r: Bottleneck(4, 2, 1, expansion=2, rng=r), (2, 4, 4, 4)),
    "bottleneck_projection": (lambda r: Bottleneck(3, 2, 2, rng=r), (2, 3, 5, 5)),
    "inception_naive": (lambda r: InceptionNaive(3, 2, 2, 1, rng=r), (2, 3, 5, 5)),
    "inception_naive_proj": (lambda r: InceptionNaive(3, 2, 2, 1, pool_proj=2, rng=r), (2, 3, 4, 5)),
    "inception": (lambda r: Inception(3, 2, 2, 3, 1, 2, 2, rng=r), (2, 3, 5, 5)),
    "inception_bn_3x3": (lambda r: Inception(3, 2, 2, 3, 1, 2, 2, batch_norm=True, bn_eps=1e-3,
                                             branch3_kernel=3, rng=r), (2, 3, 4, 4)),
    "zero_pad_shortcut": (lambda r: ZeroPadShortcut(3, 5, 2), (2, 3, 5, 6)),
    # AlexNet's two-GPU split and normalisation: grouped convs around LRN and an overlapping pool.
    "grouped_conv_lrn": (lambda r: Sequential(
        ("conv1", Conv2d(4, 6, 3, padding=1, groups=2, rng=r)), ("relu1", ReLU()),
        ("norm1", LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)),
        ("pool1", MaxPool2d(3, stride=2)),
        ("conv2", Conv2d(6, 4, 3, padding=1, groups=2, rng=r))), (2, 4, 7, 7)),
}


@pytest.mark.parametrize("layout", ["nchw", "chwn"])
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_gradients(name, layout, rng):
    make, shape = BLOCKS[name]
    block = make(rng)
    block.train()
    jitter_biases(block, rng)
    x = rng.standard_normal(shape)
    check_module_grads(block, chwn(x) if layout == "chwn" else x, rng)


def test_lrn_gradient_at_alexnet_scale(rng):
    """With inputs of ReLU-activation size, LRN's alpha/n * sum a^2 term matters: check it there."""
    lrn = LocalResponseNorm(5, alpha=1e-1, beta=0.75, k=2.0)
    check_module_grads(lrn, np.abs(rng.standard_normal((2, 7, 3, 3))) * 3, rng)


# -- shapes and structure ---------------------------------------------------------------------
@pytest.mark.parametrize("block, in_shape, out_shape", [
    (BasicBlock(8, 8, 1), (8, 9, 9), (8, 9, 9)),
    (BasicBlock(8, 16, 2), (8, 9, 9), (16, 5, 5)),
    (Bottleneck(16, 4, 1), (16, 6, 6), (16, 6, 6)),
    (Bottleneck(16, 8, 2), (16, 7, 6), (32, 4, 3)),
    (InceptionNaive(5, 2, 3, 4), (5, 6, 6), (2 + 3 + 4 + 5, 6, 6)),
    (InceptionNaive(5, 2, 3, 4, pool_proj=1), (5, 6, 6), (10, 6, 6)),
    (Inception(192, 64, 96, 128, 16, 32, 32), (192, 28, 28), (256, 28, 28)),
    (ZeroPadShortcut(16, 32, 2), (16, 7, 8), (32, 4, 4)),
])
def test_output_shapes(block, in_shape, out_shape, rng):
    assert block.output_shape(in_shape) == out_shape
    assert getattr(block, "out_channels", out_shape[0]) == out_shape[0]
    y = block.forward(rng.standard_normal((2,) + in_shape).astype(np.float32))
    assert y.shape == (2,) + out_shape
    assert block.backward(np.ones_like(y)).shape == (2,) + in_shape


def test_residual_blocks_name_their_layers_directly():
    names = [n for n, _ in BasicBlock(4, 8, 2).named_modules()]
    assert names == ["", "conv1", "bn1", "relu1", "conv2", "bn2", "shortcut", "shortcut.conv",
                     "shortcut.bn", "relu2"]
    block = Bottleneck(256, 64, 1)
    assert isinstance(block.shortcut, Identity)
    assert list(block.named_parameters()) == [
        "conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
        "conv3.weight", "bn3.weight", "bn3.bias"]
    assert block.get_module("relu3") is block.post


def test_inception_branch_names():
    names = {n for n, _ in Inception(8, 2, 2, 2, 2, 2, 2, batch_norm=True).named_modules()}
    assert {"branch1.conv", "branch1.bn", "branch2.reduce", "branch2.reduce_bn", "branch2.conv",
            "branch3.reduce_relu", "branch4.pool", "branch4.conv"} <= names
    naive = {n for n, _ in InceptionNaive(8, 2, 2, 2).named_modules()}
    assert {"branch1.conv", "branch2.conv", "branch3.conv", "branch4.pool"} <= naive
    assert InceptionNaive(8, 2, 2, 2).get_module("branch3.conv").kernel_size == (5, 5)


def test_zero_pad_shortcut_by_hand():
    x = np.arange(2 * 2 * 3 * 3, dtype=np.float32).reshape(2, 2, 3, 3)
    sc = ZeroPadShortcut(2, 3, 2)
    y = sc.forward(x)
    np.testing.assert_array_equal(y[:, :2], x[:, :, ::2, ::2])
    np.testing.assert_array_equal(y[:, 2], 0)
    dx = sc.backward(np.ones_like(y))
    expected = np.zeros_like(x)
    expected[:, :, ::2, ::2] = 1
    np.testing.assert_array_equal(dx, expected)
    assert sc.num_parameters() == 0


@pytest.mark.parametrize("make, message", [
    (lambda: ZeroPadShortcut(8, 4, 2), "out_channels=4"),
    (lambda: BasicBlock(4, 8, 2, shortcut="option C"), "option C"),
    (lambda: Inception(8, 2, 2, 2, 2, 2, 2, branch3_kernel=7), "branch3_kernel"),
    (lambda: InceptionNaive(8, 0, 2, 2), "c1"),
    (lambda: Bottleneck(8, 4, stride=0), "stride"),
])
def test_bad_arguments_name_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("name", ["basic_projection", "basic_zero_pad", "bottleneck_identity",
                                  "inception_bn_3x3", "inception_naive"])
def test_float32_stays_float32_and_input_grad_can_be_skipped(name, rng):
    make, shape = BLOCKS[name]
    block = make(rng)
    x = rng.standard_normal(shape).astype(np.float32)
    y = block.forward(x)
    dx = block.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in block.named_grads().values())
    want = {k: g.copy() for k, g in block.named_grads().items()}
    block.set_input_grad(False)
    block.forward(x)
    assert block.backward(np.ones_like(y)) is None
    for k, g in block.named_grads().items():
        np.testing.assert_allclose(g, want[k], rtol=1e-5, atol=1e-6, err_msg=k)
