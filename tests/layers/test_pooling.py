"""Spatial and cross-channel pooling (notes §1.2, §1.3.2): loop references, gradient checks,
hand-worked max-pool gradients, PyTorch."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convscope.layers import AvgPool2d, CrossChannelPool, GlobalAvgPool2d, MaxPool2d
from gradcheck import assert_matches, check_module_grads, chwn


# -- slow references: one window at a time ----------------------------------------------
def pool_out(size, k, s, p, ceil_mode):
    """PyTorch's output length: floor or ceil of the strides, but a last window must start
    inside the input or its left padding."""
    steps = (size + 2 * p - k) / s
    out = (math.ceil(steps) if ceil_mode else math.floor(steps)) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def pool_reference(x, kernel, stride, padding, mode, count_include_pad=True, ceil_mode=False):
    """Max or mean of each (KH, KW) window of the padded input; padding never wins a max and
    counts in the mean's divisor only with ``count_include_pad``; a ceil-mode window's part
    beyond the padding counts nowhere."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = pool_out(h, kh, sh, ph, ceil_mode), pool_out(w, kw, sw, pw, ceil_mode)
    out = np.zeros((n, c, oh, ow))
    for ni, ci, i, j in np.ndindex(out.shape):
        window, padded = [], 0
        for a in range(kh):
            for b in range(kw):
                r, q = i * sh + a - ph, j * sw + b - pw
                if 0 <= r < h and 0 <= q < w:
                    window.append(x[ni, ci, r, q])
                padded += -ph <= r < h + ph and -pw <= q < w + pw
        if mode == "max":
            out[ni, ci, i, j] = max(window)
        else:
            out[ni, ci, i, j] = sum(window) / (padded if count_include_pad else len(window))
    return out


def distinct_values(rng, shape):
    """A random permutation of 0.01 * (0 .. size-1): no ties, so finite differences of a max
    are valid (the step is far smaller than the gap between any two values)."""
    return 0.01 * rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    return dict(
        k=(kh, kw), s=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), p=(ph, pw),
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)),
               draw(st.integers(max(1, kh - 2 * ph), 8)), draw(st.integers(max(1, kw - 2 * pw), 8))),
        mode=draw(st.sampled_from(["max", "avg", "avg-nopad"])), ceil_mode=draw(st.booleans()),
        layout=draw(st.sampled_from(["nchw", "chwn"])), seed=draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=40, deadline=None)
@given(pool_cases())
def test_forward_matches_loop_reference(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"])
    if case["layout"] == "chwn":
        x = chwn(x)
    mode, ceil_mode = case["mode"], case["ceil_mode"]
    if mode == "max":
        layer = MaxPool2d(case["k"], case["s"], case["p"], ceil_mode=ceil_mode)
    else:
        layer = AvgPool2d(case["k"], case["s"], case["p"], count_include_pad=mode == "avg",
                          ceil_mode=ceil_mode)
    want = pool_reference(x, case["k"], case["s"], case["p"], mode[:3], mode == "avg", ceil_mode)
    y = layer(x)
    assert y.shape == want.shape == x.shape[:1] + layer.output_shape(x.shape[1:])
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_stride_defaults_to_the_window_size():
    """"We stride pooling layers ... with the stride equal to the size of the pooling layer"."""
    assert MaxPool2d(3).stride == (3, 3)
    assert AvgPool2d((2, 3)).output_shape((1, 6, 9)) == (1, 3, 3)


# -- gradient checks ----------------------------------------------------------------------
POOL_GEOMETRY = [  # (kernel, stride, padding)
    (2, 2, 0),              # the notes' non-overlapping 2x2 pool
    (3, 2, 0),              # AlexNet's overlapping 3x3 / 2
    (3, 2, 1),
    (3, 1, 1),              # every pixel in up to 9 windows
    ((3, 2), (1, 2), (1, 1)),
]


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("geometry", POOL_GEOMETRY)
def test_max_pool_gradients(rng, geometry, n):
    x = distinct_values(rng, (n, 2, 7, 5))
    check_module_grads(MaxPool2d(*geometry), x, rng)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("geometry", POOL_GEOMETRY)
def test_avg_pool_gradients(rng, geometry, n, count_include_pad):
    x = rng.standard_normal((n, 2, 7, 5))
    check_module_grads(AvgPool2d(*geometry, count_include_pad=count_include_pad), x, rng)


CEIL_GEOMETRY = [(3, 2, 0), (2, 2, 0), ((3, 2), (2, 3), (1, 0))]   # 7x5 inputs: partial windows


@pytest.mark.parametrize("geometry", CEIL_GEOMETRY)
def test_ceil_mode_pool_gradients(rng, geometry):
    x = distinct_values(rng, (2, 2, 7, 5))
    check_module_grads(MaxPool2d(*geometry, ceil_mode=True), x, rng)
    for count_include_pad in (True, False):
        pool = AvgPool2d(*geometry, count_include_pad=count_include_pad, ceil_mode=True)
        check_module_grads(pool, x, rng)


def test_ceil_mode_keeps_the_partial_last_window():
    # 8 columns, 3x3/2: floor gives windows at 0, 2, 4; ceil adds one at 6 that sees 6 and 7.
    x = np.arange(8.0).reshape(1, 1, 1, 8).repeat(3, axis=2)
    assert MaxPool2d(3, 2).forward(x)[0, 0, 0].tolist() == [2.0, 4.0, 6.0]
    assert MaxPool2d(3, 2, ceil_mode=True).forward(x)[0, 0, 0].tolist() == [2.0, 4.0, 6.0, 7.0]
    assert AvgPool2d(3, 2, ceil_mode=True).forward(x)[0, 0, 0, 3] == 6.5   # divisor 6, not 9
    assert MaxPool2d(3, 2, ceil_mode=True).output_shape((1, 112, 112)) == (1, 56, 56)  # GoogLeNet
    # A window that would start past the input is not kept: 6 columns, 2x2/2 -> 3, not 4.
    assert MaxPool2d(2, 2, ceil_mode=True).output_shape((1, 6, 6)) == (1, 3, 3)


def test_global_avg_pool_gradients(rng):
    check_module_grads(GlobalAvgPool2d(), chwn(rng.standard_normal((3, 4, 5, 3))), rng)


@pytest.mark.parametrize("pool_size", [1, 2, 3])
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_cross_channel_pool_gradients(rng, mode, pool_size):
    x = distinct_values(rng, (2, 6, 3, 4))
    check_module_grads(CrossChannelPool(pool_size, mode), x, rng)


def test_cross_channel_pool_forward_pools_adjacent_channels(rng):
    x = rng.standard_normal((2, 6, 3, 4))
    y_max = CrossChannelPool(3, "max")(x)
    y_avg = CrossChannelPool(3, "avg")(chwn(x))
    assert y_max.shape == y_avg.shape == (2, 2, 3, 4)
    for g in range(2):
        np.testing.assert_array_equal(y_max[:, g], np.maximum.reduce([x[:, 3 * g + i] for i in range(3)]))
        np.testing.assert_allclose(y_avg[:, g], sum(x[:, 3 * g + i] for i in range(3)) / 3)


# -- hand-worked examples of §1.3.2: dL/dI_j = 1(I_j = max) ------------------------------
def test_max_pool_gradient_is_the_indicator_of_the_maximum():
    x = np.array([[1., 5., 2., 0.],
                  [3., 4., 8., 7.],
                  [0., 2., 1., 1.5],
                  [9., 6., 3., 2.]]).reshape(1, 1, 4, 4)
    pool = MaxPool2d(2)
    np.testing.assert_array_equal(pool(x)[0, 0], [[5., 8.], [9., 3.]])
    dx = pool.backward(np.array([[10., 20.], [30., 40.]]).reshape(1, 1, 2, 2))
    np.testing.assert_array_equal(dx[0, 0], [[0., 10., 0., 0.],
                                             [0., 0., 20., 0.],
                                             [0., 0., 0., 0.],
                                             [30., 0., 40., 0.]])


def test_max_pool_ties_send_the_whole_gradient_to_the_first_maximum():
    x = np.array([[7., 7., 1., 1.],
                  [7., 0., 1., 1.]]).reshape(1, 1, 2, 4)
    pool = MaxPool2d(2)
    np.testing.assert_array_equal(pool(x)[0, 0], [[7., 1.]])
    dx = pool.backward(np.array([[2., 3.]]).reshape(1, 1, 1, 2))
    np.testing.assert_array_equal(dx[0, 0], [[2., 0., 3., 0.],      # row-major first
                                             [0., 0., 0., 0.]])


def test_overlapping_max_pool_adds_gradients_of_every_window_a_pixel_wins():
    x = np.zeros((1, 1, 3, 5))
    x[0, 0, 1, 2] = 1.0                          # in both 3x3 windows (columns 0-2 and 2-4)
    pool = MaxPool2d(3, stride=2)
    np.testing.assert_array_equal(pool(x)[0, 0], [[1., 1.]])
    dx = pool.backward(np.array([[4., 5.]]).reshape(1, 1, 1, 2))
    want = np.zeros((3, 5))
    want[1, 2] = 9.0
    np.testing.assert_array_equal(dx[0, 0], want)


def test_cross_channel_max_ties_go_to_the_first_channel():
    x = np.array([2., 2., 1.]).reshape(1, 3, 1, 1)
    pool = CrossChannelPool(3, "max")
    dx = pool.backward(pool(x) * 0 + 5.0)
    np.testing.assert_array_equal(dx.ravel(), [5., 0., 0.])


def test_avg_pool_padding_divisor_by_hand():
    """3x3 window, stride 1, padding 1 over a 3x3 image of ones: a corner window covers 4
    real pixels, an edge window 6, the centre 9."""
    x = np.ones((1, 1, 3, 3))
    counts = np.array([[4., 6., 4.], [6., 9., 6.], [4., 6., 4.]])
    with_pad = AvgPool2d(3, 1, 1, count_include_pad=True)
    without = AvgPool2d(3, 1, 1, count_include_pad=False)
    np.testing.assert_allclose(with_pad(x)[0, 0], counts / 9)
    np.testing.assert_allclose(without(x)[0, 0], np.ones((3, 3)))
    # Backward: the centre pixel is in all 9 windows and gets sum over windows of 1/divisor.
    dy = np.ones((1, 1, 3, 3))
    assert with_pad.backward(dy)[0, 0, 1, 1] == pytest.approx(1.0)
    assert without.backward(dy)[0, 0, 1, 1] == pytest.approx((1 / counts).sum())


# -- PyTorch as a second opinion ----------------------------------------------------------
TORCH_GEOMETRY = [(2, 2, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 1)), (3, 1, 1)]


def torch_pool(torch, x, dy, module):
    tx = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    ty = module(tx)
    ty.backward(torch.from_numpy(np.ascontiguousarray(dy)))
    return ty.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("geometry", TORCH_GEOMETRY)
def test_max_pool_matches_torch(torch, rng, geometry, dtype, ceil_mode):
    x = chwn(distinct_values(rng, (3, 2, 7, 5)).astype(dtype))
    pool = MaxPool2d(*geometry, ceil_mode=ceil_mode)
    y = pool(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = pool.backward(dy)
    ty, tdx = torch_pool(torch, x, dy, torch.nn.MaxPool2d(*geometry, ceil_mode=ceil_mode))
    assert y.dtype == dx.dtype == dtype
    assert_matches(y, ty, dtype)
    assert_matches(dx, tdx, dtype)


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("geometry", TORCH_GEOMETRY)
def test_avg_pool_matches_torch(torch, rng, geometry, count_include_pad, dtype, ceil_mode):
    x = chwn(rng.standard_normal((3, 2, 7, 5)).astype(dtype))
    pool = AvgPool2d(*geometry, count_include_pad=count_include_pad, ceil_mode=ceil_mode)
    y = pool(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = pool.backward(dy)
    ty, tdx = torch_pool(torch, x, dy, torch.nn.AvgPool2d(*geometry, ceil_mode=ceil_mode,
                                                          count_include_pad=count_include_pad))
    assert y.dtype == dx.dtype == dtype
    assert_matches(y, ty, dtype)
    assert_matches(dx, tdx, dtype)


@pytest.mark.parametrize("geometry", [dict(kernel_size=3, stride=2), dict(kernel_size=3, stride=1, padding=1),
                                      dict(kernel_size=2), dict(kernel_size=3, stride=2, ceil_mode=True)])
def test_max_pool_in_evaluation_finds_the_same_arg_max_as_in_training(rng, geometry):
    """Evaluation keeps only the maximum and finds the arg-max when a backward comes: the same
    routing as training's recorded switches, ties included (a coarse input has many)."""
    x = rng.integers(0, 3, (2, 3, 7, 6)).astype(np.float32)
    dy = None
    grads = {}
    for mode in ("train", "eval"):
        layer = MaxPool2d(**geometry)
        layer.train(mode == "train")
        y = layer(x)
        dy = rng.standard_normal(y.shape).astype(np.float32) if dy is None else dy
        grads[mode] = (y, layer.backward(dy))
    np.testing.assert_array_equal(grads["train"][0], grads["eval"][0])
    np.testing.assert_array_equal(grads["train"][1], grads["eval"][1])
