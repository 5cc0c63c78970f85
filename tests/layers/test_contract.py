"""The public layer contract that code outside the package relies on.

``from convscope import layers``; ``y = layer.forward(x)`` equals ``layer(x)``;
``dx = layer.backward(dy)`` fills ``grads`` with the keys of ``params``; ``params`` entries
are looked up on every call; ``train()``/``eval()``; float32 stays float32; bad arguments
raise errors that name the value received; any memory layout is accepted.
"""

import numpy as np
import pytest

from convscope import layers
from gradcheck import chwn

L = layers


def seeded(seed=0):
    return np.random.default_rng(seed)


# (id, factory(rng) -> layer, input shape): every layer and container, on a small input.
LAYERS = [
    ("conv", lambda r: L.Conv2d(3, 4, 3, stride=2, padding=1, rng=r), (2, 3, 7, 5)),
    ("conv_grouped", lambda r: L.Conv2d(4, 6, (3, 2), padding=(1, 2), groups=2, rng=r), (2, 4, 7, 5)),
    ("conv_nobias", lambda r: L.Conv2d(3, 2, 1, bias=False, rng=r), (1, 3, 4, 4)),
    ("maxpool", lambda r: L.MaxPool2d(3, 2, 1), (2, 3, 7, 5)),
    ("avgpool", lambda r: L.AvgPool2d(3, 2, 1), (2, 3, 7, 5)),
    ("avgpool_nopad", lambda r: L.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 3, 7, 5)),
    ("gap", lambda r: L.GlobalAvgPool2d(), (2, 3, 4, 5)),
    ("ccp_max", lambda r: L.CrossChannelPool(2, "max"), (2, 4, 3, 3)),
    ("ccp_avg", lambda r: L.CrossChannelPool(2, "avg"), (2, 4, 3, 3)),
    ("linear", lambda r: L.Linear(6, 4, rng=r), (3, 6)),
    ("flatten", lambda r: L.Flatten(), (2, 3, 4, 5)),
    ("relu", lambda r: L.ReLU(), (2, 3, 4, 5)),
    ("leaky", lambda r: L.LeakyReLU(0.1), (2, 3, 4, 5)),
    ("tanh", lambda r: L.Tanh(), (2, 3, 4, 5)),
    ("sigmoid", lambda r: L.Sigmoid(), (3, 6)),
    ("dropout", lambda r: L.Dropout(0.5, rng=r), (2, 3, 4, 5)),
    ("bn1d", lambda r: L.BatchNorm1d(6), (4, 6)),
    ("bn2d", lambda r: L.BatchNorm2d(3), (2, 3, 4, 5)),
    ("lrn", lambda r: L.LocalResponseNorm(3, alpha=0.5), (2, 5, 3, 4)),
    ("identity", lambda r: L.Identity(), (2, 3, 4, 5)),
    ("sequential", lambda r: L.Sequential(L.Conv2d(3, 4, 3, rng=r), L.BatchNorm2d(4), L.ReLU(),
                                          L.MaxPool2d(2), L.Flatten(), L.Linear(8, 3, rng=r)),
     (2, 3, 6, 5)),
    ("residual", lambda r: L.Residual(L.Sequential(L.Conv2d(3, 4, 3, 2, 1, rng=r), L.ReLU()),
                                      L.Conv2d(3, 4, 1, 2, rng=r), post=L.ReLU()), (2, 3, 7, 5)),
    ("concat", lambda r: L.Concat(L.Conv2d(3, 2, 1, rng=r), L.MaxPool2d(3, 1, 1)), (2, 3, 5, 4)),
]
IDS = [case[0] for case in LAYERS]


def inputs(shape, seed=1, dtype=np.float32):
    return seeded(seed).standard_normal(shape).astype(dtype)


def layouts(a):
    """The same values in several memory layouts: C order, CHWN (4-D), Fortran, a reversed view."""
    out = {"c": np.ascontiguousarray(a), "fortran": np.asfortranarray(a)}
    if a.ndim == 4:
        out["chwn"] = chwn(a)
        rev = np.ascontiguousarray(a[:, :, ::-1])[:, :, ::-1]      # negative strides, same values
        out["reversed"] = rev
    return out


def run(layer, x, dy_seed=2):
    y = layer.forward(x)
    dy = seeded(dy_seed).standard_normal(y.shape).astype(y.dtype)
    dx = layer.backward(dy)
    return y, dx, {k: v.copy() for k, v in layer.named_grads().items()}


def test_public_names():
    for name in ["Module", "Conv2d", "Linear", "Flatten", "MaxPool2d", "AvgPool2d",
                 "GlobalAvgPool2d", "CrossChannelPool", "ReLU", "LeakyReLU", "Tanh", "Sigmoid",
                 "Dropout", "BatchNorm1d", "BatchNorm2d", "LocalResponseNorm", "Sequential",
                 "Residual", "Concat", "Identity", "SoftmaxCrossEntropy", "softmax", "log_softmax"]:
        assert name in layers.__all__ and hasattr(layers, name), name


@pytest.mark.parametrize("make, shape", [c[1:] for c in LAYERS], ids=IDS)
def test_forward_equals_call_and_backward_fills_grads(make, shape):
    a, b = make(seeded()), make(seeded())                 # twins: same weights, same dropout draws
    x = inputs(shape)
    y = a.forward(x)
    np.testing.assert_array_equal(b(x), y)
    assert y.shape[1:] == a.output_shape(shape[1:])
    dx = a.backward(np.ones_like(y))
    assert dx.shape == x.shape
    grads, params = a.named_grads(), a.named_parameters()
    assert set(grads) == set(params)
    for name in params:
        assert grads[name].shape == params[name].shape, name


@pytest.mark.parametrize("make, shape", [c[1:] for c in LAYERS], ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(make, shape, dtype):
    layer = make(seeded())
    if dtype == np.float64:
        layer.to(np.float64)
    else:                                                   # float32 is the default
        assert all(p.dtype == np.float32 for p in layer.named_parameters().values())
    y, dx, grads = run(layer, inputs(shape, dtype=dtype))
    assert y.dtype == dtype and dx.dtype == dtype
    assert all(g.dtype == dtype for g in grads.values()), {k: g.dtype for k, g in grads.items()}
    assert all(b.dtype == dtype for b in layer.named_buffers().values())


@pytest.mark.parametrize("make, shape", [c[1:] for c in LAYERS], ids=IDS)
def test_any_memory_layout_gives_the_same_answer(make, shape):
    """Inputs and upstream gradients of any strides (CHWN views from a conv, Fortran order,
    negative strides) give the values that C-ordered arrays give; nothing is modified."""
    x64 = inputs(shape, dtype=np.float64)
    ref_layer = make(seeded()).to(np.float64)
    y_ref, dx_ref, g_ref = run(ref_layer, x64.copy())
    dy_ref = seeded(2).standard_normal(y_ref.shape)
    for name, x in layouts(x64).items():
        layer = make(seeded()).to(np.float64)
        x_before = x.copy()
        y = layer.forward(x)
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12, err_msg=f"forward, {name} input")
        np.testing.assert_array_equal(x, x_before)                      # forward leaves x alone
        for dname, dy in layouts(dy_ref).items():
            dy_before = dy.copy()
            dx = layer.backward(dy)
            np.testing.assert_array_equal(dy, dy_before)                # backward leaves dy alone
            np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12,
                                       err_msg=f"dx, {name} input, {dname} dy")
            for k, g in layer.named_grads().items():
                np.testing.assert_allclose(g, g_ref[k], rtol=1e-12, atol=1e-12,
                                           err_msg=f"{k}, {name} input, {dname} dy")


@pytest.mark.parametrize("make, shape", [c[1:] for c in LAYERS], ids=IDS)
def test_grads_are_the_last_calls_not_accumulated(make, shape):
    layer = make(seeded()).to(np.float64)
    x = inputs(shape, dtype=np.float64)
    y, _, g1 = run(layer, x)
    layer.backward(seeded(2).standard_normal(y.shape))          # the same dy again
    assert set(layer.named_grads()) == set(g1)
    for k, g in layer.named_grads().items():
        np.testing.assert_allclose(g, g1[k], rtol=1e-12, atol=1e-12, err_msg=k)


# -- Conv2d: the parameters outside checks read and write --------------------------------
def test_conv_params_and_grads():
    conv = layers.Conv2d(4, 6, (3, 2), groups=2, rng=seeded())
    assert set(conv.params) == {"weight", "bias"}
    assert conv.params["weight"].shape == (6, 2, 3, 2) and conv.params["bias"].shape == (6,)
    assert conv.params["weight"].dtype == np.float32
    assert set(layers.Conv2d(4, 6, 3, bias=False).params) == {"weight"}
    y = conv.forward(inputs((2, 4, 5, 5)))
    conv.backward(np.ones_like(y))
    assert set(conv.grads) == set(conv.params)


def test_conv_replacing_the_weight_is_honoured():
    conv = layers.Conv2d(2, 3, 3, rng=seeded())
    x = inputs((2, 2, 5, 5))
    y_old = conv(x)
    conv.params["weight"] = 2 * conv.params["weight"]
    conv.params["bias"] = np.full(3, 0.5, dtype=np.float32)
    np.testing.assert_allclose(conv(x), 2 * y_old + 0.5, rtol=1e-5, atol=1e-6)
    conv.params["weight"] = np.zeros((3, 2, 3, 3), dtype=np.float32)
    np.testing.assert_array_equal(conv(x), 0.5)


def test_conv_he_initialisation_scale():
    """N(0, 2 / fan_in) with fan_in = C/groups * KH * KW; seeded by the rng passed in."""
    w = layers.Conv2d(16, 64, 3, groups=2, rng=seeded(5)).params["weight"]
    assert w.std() == pytest.approx(np.sqrt(2 / (8 * 9)), rel=0.05)
    np.testing.assert_array_equal(w, layers.Conv2d(16, 64, 3, groups=2, rng=seeded(5)).params["weight"])


def test_conv_set_input_grad_false_returns_none_but_fills_grads():
    x = inputs((2, 3, 6, 5), dtype=np.float64)
    conv = layers.Conv2d(3, 4, 3, padding=1, rng=seeded()).to(np.float64)
    y, _, want = run(conv, x)
    conv.set_input_grad(False)
    assert conv.need_input_grad is False
    conv.grads.clear()
    conv.forward(x)
    assert conv.backward(seeded(2).standard_normal(y.shape)) is None
    assert set(conv.grads) == {"weight", "bias"}
    for k in want:
        np.testing.assert_allclose(conv.grads[k], want[k], rtol=1e-12)


@pytest.mark.parametrize("make", [lambda: layers.Linear(6, 4, rng=seeded()),
                                  lambda: layers.BatchNorm1d(6)], ids=["linear", "bn"])
def test_other_parametrised_layers_honour_set_input_grad(make):
    layer = make()
    layer.set_input_grad(False)
    y = layer(inputs((4, 6)))
    assert layer.backward(np.ones_like(y)) is None
    assert set(layer.grads) == set(layer.params)


# -- modes -----------------------------------------------------------------------------------
def test_train_eval_switches_dropout():
    drop = layers.Dropout(0.5, rng=seeded())
    x = inputs((4, 50))
    assert drop.training
    assert np.any(drop(x) == 0)
    assert drop.eval() is drop and not drop.training
    np.testing.assert_array_equal(drop(x), x)
    drop.train()
    assert drop.training and np.any(drop(x) == 0)


def test_train_eval_switches_batchnorm_statistics():
    bn = layers.BatchNorm2d(3)
    assert set(bn.buffers) == {"running_mean", "running_var"}
    np.testing.assert_array_equal(bn.buffers["running_mean"], 0.0)
    np.testing.assert_array_equal(bn.buffers["running_var"], 1.0)
    x = 3 * inputs((4, 3, 2, 2)) + 5
    y_train = bn(x)
    # Batch statistics: every channel of the output has mean 0 and variance 1.
    np.testing.assert_allclose(y_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    assert not np.allclose(bn.buffers["running_mean"], 0.0)            # a training step moves them
    bn.eval()
    y_eval = bn(x)
    rm, rv = bn.buffers["running_mean"], bn.buffers["running_var"]
    want = (x - rm.reshape(1, -1, 1, 1)) / np.sqrt(rv.reshape(1, -1, 1, 1) + bn.eps)
    np.testing.assert_allclose(y_eval, want, rtol=1e-5, atol=1e-5)
    # Evaluation treats samples independently: one sample alone gives its own rows.
    np.testing.assert_allclose(bn(x[:1]), y_eval[:1], rtol=1e-6)


# -- state -----------------------------------------------------------------------------------
def test_state_dict_round_trip_and_to():
    make = dict((c[0], c[1]) for c in LAYERS)["sequential"]
    a, b = make(seeded(0)), make(seeded(1))
    x = inputs((2, 3, 6, 5))
    a(x)                                                   # a training step moves a's BN buffers
    a.eval(), b.eval()
    assert not np.allclose(a(x), b(x))
    state = a.state_dict()
    assert "1.running_mean" in state and "0.weight" in state
    b.load_state_dict(state)
    np.testing.assert_array_equal(b(x), a(x))
    state["0.weight"][...] = 0                             # b holds copies, not a's arrays
    assert np.any(b.named_parameters()["0.weight"])
    b.to(np.float64)
    assert all(v.dtype == np.float64 for v in b.state_dict().values())
    assert b(x.astype(np.float64)).dtype == np.float64


def test_load_state_dict_rejects_mismatches():
    conv = layers.Conv2d(2, 3, 3)
    with pytest.raises(ValueError, match="missing.*bias"):
        conv.load_state_dict({"weight": np.zeros((3, 2, 3, 3))})
    with pytest.raises(ValueError, match=r"\(3, 2, 2, 2\)"):
        conv.load_state_dict({"weight": np.zeros((3, 2, 2, 2)), "bias": np.zeros(3)})


# -- errors that name the value received ------------------------------------------------------
@pytest.mark.parametrize("build, error, match", [
    (lambda: L.Conv2d(3, 4, 0), ValueError, r"kernel_size.*\(0, 0\)"),
    (lambda: L.Conv2d(3, 4, (3, 0)), ValueError, r"kernel_size.*\(3, 0\)"),
    (lambda: L.Conv2d(3, 4, 3, padding=-1), ValueError, r"padding.*-1"),
    (lambda: L.Conv2d(3, 4, 3, stride=0), ValueError, r"stride.*0"),
    (lambda: L.Conv2d(3, 4, 3, groups=2), ValueError, r"groups=2.*in_channels=3"),
    (lambda: L.Conv2d(4, 6, 3, groups=4), ValueError, r"groups=4.*out_channels=6"),
    (lambda: L.Conv2d(0, 4, 3), ValueError, r"in_channels.*0"),
    (lambda: L.Conv2d(3.0, 4, 3), TypeError, r"in_channels.*3\.0"),
    (lambda: L.Conv2d(3, 4, (3, 3, 3)), TypeError, r"kernel_size.*\(3, 3, 3\)"),
    (lambda: L.Conv2d(3, 4, 3, rng=42), TypeError, r"rng.*int"),
    (lambda: L.Linear(0, 4), ValueError, r"in_features.*0"),
    (lambda: L.MaxPool2d(0), ValueError, r"kernel_size.*0"),
    (lambda: L.MaxPool2d(3, padding=-1), ValueError, r"padding.*-1"),
    (lambda: L.AvgPool2d(2, padding=2), ValueError, r"padding \(2, 2\)"),
    (lambda: L.CrossChannelPool(0), ValueError, r"pool_size.*0"),
    (lambda: L.CrossChannelPool(2, "min"), ValueError, r"'min'"),
    (lambda: L.BatchNorm2d(0), ValueError, r"num_features.*0"),
    (lambda: L.BatchNorm2d(3, eps=0.0), ValueError, r"eps.*0\.0"),
    (lambda: L.BatchNorm2d(3, momentum=1.5), ValueError, r"momentum.*1\.5"),
    (lambda: L.LocalResponseNorm(0), ValueError, r"size.*0"),
    (lambda: L.Dropout(1.0), ValueError, r"1\.0"),
])
def test_bad_constructor_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize("layer, shape, match", [
    (L.Conv2d(3, 4, 3), (2, 2, 7, 5), r"\(3, H, W\).*\(2, 7, 5\)"),        # wrong channel count
    (L.Conv2d(3, 4, 3), (3, 7, 5), r"\(3, 7, 5\)"),                        # not 4-D
    (L.Conv2d(3, 4, 5), (1, 3, 4, 9), r"size 4.*window 5"),                # smaller than the kernel
    (L.MaxPool2d(3), (1, 2, 2, 9), r"size 2.*window 3"),
    (L.Linear(6, 4), (2, 5), r"\(2, 5\)"),
    (L.BatchNorm2d(3), (2, 4, 3, 3), r"C=3.*\(4, 3, 3\)"),
    (L.BatchNorm1d(3), (2, 3, 1, 1), r"\(2, 3, 1, 1\)"),
    (L.CrossChannelPool(2), (1, 3, 2, 2), r"\(3, 2, 2\)"),
    (L.LocalResponseNorm(3), (2, 3), r"\(2, 3\)"),
])
def test_bad_inputs_at_forward(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer.forward(np.zeros(shape, dtype=np.float32))
    with pytest.raises(ValueError):
        layer.output_shape(shape[1:])
