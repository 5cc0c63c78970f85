"""Conv2d (notes §1.1, §1.3.1): loop reference, gradient checks, worked examples, PyTorch."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convscope.layers import Conv2d
from gradcheck import assert_matches, check_module_grads, chwn


# -- a slow, obvious reference: the notes' sum, one output at a time ---------------------
def conv_reference(x, w, b=None, stride=(1, 1), padding=(0, 0), groups=1):
    """L[n, f, i, j] = sum_{c, a, b} I_c[i*sh + a, j*sw + b] G_{f,c}[a, b] (+ bias), over
    the zero-padded input, each filter f seeing only the input channels of its group."""
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=np.float64)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, f, oh, ow))
    fg = f // groups
    for ni in range(n):
        for fi in range(f):
            c0 = (fi // fg) * cg                       # first input channel of f's group
            for i in range(oh):
                for j in range(ow):
                    total = 0.0
                    for ci in range(cg):
                        for a in range(kh):
                            for bb in range(kw):
                                total += xp[ni, c0 + ci, i * sh + a, j * sw + bb] * w[fi, ci, a, bb]
                    out[ni, fi, i, j] = total + (0.0 if b is None else b[fi])
    return out


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    c, f = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 8))
    w = draw(st.integers(max(1, kw - 2 * pw), 8))
    n = draw(st.integers(1, 3))
    return dict(n=n, c=c, f=f, h=h, w=w, k=(kh, kw), s=(sh, sw), p=(ph, pw), groups=groups,
                bias=draw(st.booleans()), layout=draw(st.sampled_from(["nchw", "chwn"])),
                seed=draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=25, deadline=None)
@given(conv_cases())
def test_forward_matches_loop_reference(case):
    rng = np.random.default_rng(case["seed"])
    layer = Conv2d(case["c"], case["f"], case["k"], case["s"], case["p"], case["groups"],
                   bias=case["bias"], rng=rng, dtype=np.float64)
    if case["bias"]:
        layer.params["bias"] = rng.standard_normal(case["f"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"]))
    if case["layout"] == "chwn":
        x = chwn(x)
    y = layer(x)
    want = conv_reference(x, layer.params["weight"], layer.params.get("bias"),
                          case["s"], case["p"], case["groups"])
    assert y.shape == want.shape == (case["n"],) + layer.output_shape(x.shape[1:])
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_backward_matches_notes_loop_formulas(rng):
    """§1.3.1 written as loops: df/dG_c[x, y] = sum_{i,j} df/dL[i, j] I_c[i + x, j + y] and
    df/dI_c[x, y] = sum_{i,j} df/dL[i, j] G_c[x - i, y - j] (zero outside the filter)."""
    layer = Conv2d(2, 1, (3, 2), bias=False, rng=rng, dtype=np.float64)
    x = rng.standard_normal((1, 2, 6, 5))
    g = layer.params["weight"][0]                                   # (C, KH, KW)
    dl = rng.standard_normal(layer(x).shape)
    dx = layer.backward(dl.copy())
    dl = dl[0, 0]
    kh, kw = g.shape[1:]
    dg = np.zeros_like(g)
    for c, a, b in np.ndindex(g.shape):
        dg[c, a, b] = sum(dl[i, j] * x[0, c, i + a, j + b] for i, j in np.ndindex(dl.shape))
    di = np.zeros_like(x[0])
    for c, xx, yy in np.ndindex(di.shape):
        di[c, xx, yy] = sum(dl[i, j] * g[c, xx - i, yy - j] for i, j in np.ndindex(dl.shape)
                            if 0 <= xx - i < kh and 0 <= yy - j < kw)
    np.testing.assert_allclose(layer.grads["weight"][0], dg, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx[0], di, rtol=1e-12, atol=1e-12)


# -- gradient checks ----------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("kernel", [3, (3, 2)])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("padding", [0, 1, (1, 2)])
@pytest.mark.parametrize("stride", [1, 2])
def test_gradients(rng, stride, padding, groups, kernel, n, bias):
    layer = Conv2d(2, 4, kernel, stride, padding, groups, bias=bias, rng=rng, dtype=np.float64)
    if bias:
        layer.params["bias"] = rng.standard_normal(4)
    x = rng.standard_normal((n, 2, 7, 5))                           # odd, non-square input
    check_module_grads(layer, x, rng)


@pytest.mark.parametrize("layout", ["nchw", "chwn", "reversed"])
def test_gradients_for_any_input_strides(rng, layout):
    layer = Conv2d(3, 2, (2, 3), stride=(2, 1), padding=(1, 0), rng=rng)  # float32, cast by the check
    x = rng.standard_normal((2, 3, 5, 6))
    x = {"nchw": x, "chwn": chwn(x), "reversed": x[:, ::-1, :, ::-1]}[layout]
    check_module_grads(layer, x, rng)


# -- the three column strategies: pointwise, one cached matrix, chunks of output rows ----------
@pytest.fixture(params=["whole", "chunks of 1 row", "chunks of 2 rows"])
def column_strategy(request, monkeypatch):
    """Force the conv's whole-matrix path or its chunked path (one or two output rows a chunk)."""
    import convscope.layers.conv as conv_module
    if request.param != "whole":
        monkeypatch.setattr(conv_module, "CACHE_BYTES", 0)
        monkeypatch.setattr(conv_module, "CHUNK_BYTES", 1 if request.param == "chunks of 1 row" else None)
        monkeypatch.setattr(conv_module, "CHUNK_COLUMNS", 1)
    return conv_module, request.param


@pytest.mark.parametrize("stride, padding, groups, kernel", [
    (1, 1, 1, 3), (2, 1, 1, 3), (1, 0, 2, (3, 2)), (2, (1, 2), 2, 3), (1, 0, 1, 1), (2, 0, 1, 1)])
def test_column_strategies_match_the_loop_reference_and_gradient_checks(rng, column_strategy, stride,
                                                                         padding, groups, kernel):
    conv_module, strategy = column_strategy
    layer = Conv2d(2, 4, kernel, stride, padding, groups, rng=rng, dtype=np.float64)
    layer.params["bias"] = rng.standard_normal(4)
    x = rng.standard_normal((3, 2, 7, 5))
    if strategy == "chunks of 2 rows":           # two output rows per chunk, the last one shorter
        _, oh, ow = layer.output_shape(x.shape[1:])
        conv_module.CHUNK_BYTES = 2 * layer.params["weight"][0].size * ow * 3 * 8
    y = layer(x)
    want = conv_reference(x, layer.params["weight"], layer.params["bias"], layer.stride, layer.padding, groups)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    cached = layer._cache[2] is not None
    pointwise = layer.kernel_size == (1, 1) and layer.stride == (1, 1)
    assert cached == (strategy == "whole" or pointwise)
    check_module_grads(layer, x, rng)


def test_need_param_grad_off_gives_the_same_input_gradient_and_no_weight_gradient(rng, column_strategy):
    conv_module, strategy = column_strategy
    layer = Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 3, 6, 6))
    if strategy == "chunks of 2 rows":
        conv_module.CHUNK_BYTES = 2 * 27 * 6 * 2 * 8
    dy = rng.standard_normal(layer(x).shape)
    dx = layer.backward(dy)
    layer.grads.clear()
    layer.set_param_grad(False)
    layer(x)
    np.testing.assert_array_equal(layer.backward(dy), dx)
    assert layer.grads == {}


# -- the notes' worked examples -------------------------------------------------------------
def test_figure2_7x7_image_3x3_filter_gives_25_outputs():
    """W = H = 7, w = h = 3, D = 1: (7 - 3 + 1)^2 = 25 outputs from 49 inputs via 9 weights."""
    layer = Conv2d(1, 1, 3, bias=False, dtype=np.float64)
    assert layer.params["weight"].size == 9
    layer.params["weight"] = np.ones((1, 1, 3, 3))
    image = np.arange(49, dtype=np.float64).reshape(1, 1, 7, 7)    # I[x, y] = 7x + y
    y = layer(image)
    assert layer.output_shape((1, 7, 7)) == (1, 5, 5)
    assert y.shape == (1, 1, 5, 5) and y.size == 25
    # A 3x3 box sum of a linear ramp is 9 times the value at the window's centre (x+1, y+1).
    i, j = np.mgrid[0:5, 0:5]
    np.testing.assert_allclose(y[0, 0], 9 * (7 * (i + 1) + (j + 1)))


def edge_image(bright_left: bool) -> np.ndarray:
    """A 4x6 image: columns 0-2 one brightness, columns 3-5 the other (a vertical edge)."""
    img = np.zeros((1, 1, 4, 6))
    img[..., :3] = 1.0 if bright_left else 0.0
    img[..., 3:] = 0.0 if bright_left else 1.0
    return img


def test_figure3_edge_filter_sign_follows_the_notes_sum():
    """The notes' sum (I * G)[x] = I[x] G[0] + I[x + 1] G[1] with G = [1 -1] is left - right:
    positive where a bright pixel is left of a dark one, negative for dark-left/bright-right,
    zero on flat regions. (The notes' prose states the opposite signs, which is what true,
    flipped-kernel convolution gives; see the next test. Conv2d implements the sum.)"""
    layer = Conv2d(1, 1, (1, 2), bias=False, dtype=np.float64)
    layer.params["weight"] = np.array([[[[1.0, -1.0]]]])
    bright_left = layer(edge_image(True))[0, 0]
    dark_left = layer(edge_image(False))[0, 0]
    assert bright_left.shape == (4, 5)
    np.testing.assert_array_equal(bright_left[:, 2], 1.0)          # the edge, columns 2|3
    np.testing.assert_array_equal(dark_left[:, 2], -1.0)
    flat = [0, 1, 3, 4]
    np.testing.assert_array_equal(bright_left[:, flat], 0.0)
    np.testing.assert_array_equal(dark_left[:, flat], 0.0)


def test_figure3_prose_signs_hold_for_the_flipped_filter():
    """"[1 -1] produces large negative values where the left pixel is bright and the right
    dark": true convolution flips the kernel, i.e. correlation with [-1 1]."""
    layer = Conv2d(1, 1, (1, 2), bias=False, dtype=np.float64)
    layer.params["weight"] = np.array([[[[1.0, -1.0]]]])[..., ::-1].copy()
    assert np.all(layer(edge_image(True))[0, 0, :, 2] < 0)
    assert np.all(layer(edge_image(False))[0, 0, :, 2] > 0)


# -- PyTorch as a second opinion ----------------------------------------------------------
TORCH_CASES = [  # (C, F, kernel, stride, padding, groups, bias)
    (3, 4, 3, 1, 0, 1, True),
    (4, 6, (3, 2), 2, (1, 2), 2, True),
    (6, 3, 2, (1, 2), 1, 3, False),
    (2, 2, 1, 2, 0, 1, True),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", TORCH_CASES)
def test_matches_torch(torch, rng, case, dtype):
    c, f, k, s, p, g, bias = case
    layer = Conv2d(c, f, k, s, p, g, bias=bias, rng=rng, dtype=dtype)
    if bias:
        layer.params["bias"] = rng.standard_normal(f).astype(dtype)
    x = chwn(rng.standard_normal((3, c, 7, 5)).astype(dtype))
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)

    tconv = torch.nn.Conv2d(c, f, k, s, p, groups=g, bias=bias, dtype=getattr(torch, np.dtype(dtype).name))
    with torch.no_grad():
        tconv.weight.copy_(torch.from_numpy(layer.params["weight"]))
        if bias:
            tconv.bias.copy_(torch.from_numpy(layer.params["bias"]))
    tx = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    ty = tconv(tx)
    ty.backward(torch.from_numpy(dy))

    pairs = [(y, ty), (dx, tx.grad), (layer.grads["weight"], tconv.weight.grad)]
    if bias:
        pairs.append((layer.grads["bias"], tconv.bias.grad))
    for ours, theirs in pairs:
        theirs = theirs.detach().numpy()
        assert ours.dtype == dtype
        assert_matches(ours, theirs, dtype)

