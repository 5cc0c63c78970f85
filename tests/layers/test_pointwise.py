"""Element-wise functions: forward against a reference, backward against central differences
on inputs kept away from the kinks of the piecewise-linear ones."""

import math

import numpy as np
import pytest

from convscope.layers import (Clip, Erf, Exp, Gelu, HardSigmoid, HardSwish, Neg, Pow, Reciprocal,
                              Sqrt)
from convscope.layers.pointwise import erf
from gradcheck import check_module_grads

_erf = np.vectorize(math.erf)

# (id, layer factory, reference, input sampler, kinks to stay away from)
CASES = [
    ("relu6", lambda: Clip(0.0, 6.0), lambda x: np.clip(x, 0, 6), lambda r, s: r.uniform(-3, 9, s), (0, 6)),
    ("clip_low", lambda: Clip(-1.0, None), lambda x: np.maximum(x, -1), lambda r, s: r.normal(0, 2, s), (-1,)),
    ("hardsigmoid", lambda: HardSigmoid(1 / 6, 0.5), lambda x: np.clip(x / 6 + 0.5, 0, 1),
     lambda r, s: r.uniform(-5, 5, s), (-3, 3)),
    ("hardsigmoid_onnx", lambda: HardSigmoid(), lambda x: np.clip(0.2 * x + 0.5, 0, 1),
     lambda r, s: r.uniform(-4, 4, s), (-2.5, 2.5)),
    ("hardswish", lambda: HardSwish(), lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
     lambda r, s: r.uniform(-5, 5, s), (-3, 3)),
    ("erf", lambda: Erf(), _erf, lambda r, s: r.normal(0, 1.5, s), ()),
    ("gelu", lambda: Gelu(), lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), lambda r, s: r.normal(0, 2, s), ()),
    ("gelu_tanh", lambda: Gelu("tanh"),
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
     lambda r, s: r.normal(0, 2, s), ()),
    ("sqrt", lambda: Sqrt(), np.sqrt, lambda r, s: r.uniform(0.5, 3, s), ()),
    ("square", lambda: Pow(2), np.square, lambda r, s: r.normal(0, 1, s), ()),
    ("cube_root", lambda: Pow(1 / 3), np.cbrt, lambda r, s: r.uniform(0.5, 3, s), ()),
    ("exp", lambda: Exp(), np.exp, lambda r, s: r.normal(0, 1, s), ()),
    ("neg", lambda: Neg(), np.negative, lambda r, s: r.normal(0, 1, s), ()),
    ("reciprocal", lambda: Reciprocal(), np.reciprocal, lambda r, s: r.uniform(0.5, 2, s) * r.choice([-1, 1], s),
     ()),
]
IDS = [c[0] for c in CASES]


def sample(rng, draw, kinks, shape=(2, 3, 4, 3)):
    x = draw(rng, shape)
    for k in kinks:                                 # keep central differences off the kinks
        near = np.abs(x - k) < 1e-3
        x[near] += 1e-2
    return x


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_reference(case, rng):
    _, make, ref, draw, kinks = case
    x = sample(rng, draw, kinks)
    layer = make()
    y = layer.forward(x.astype(np.float32))
    assert y.dtype == np.float32 and y.shape == x.shape and layer.output_shape(x.shape[1:]) == x.shape[1:]
    np.testing.assert_allclose(y, ref(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients(case, rng):
    _, make, _, draw, kinks = case
    check_module_grads(make(), sample(rng, draw, kinks), rng)


def test_erf_is_double_precision_everywhere():
    x = np.linspace(-12, 12, 20001)
    assert np.abs(erf(x) - _erf(x)).max() < 1e-15
    assert erf(np.array([np.inf, -np.inf])).tolist() == [1.0, -1.0]


@pytest.mark.parametrize("make,match", [(lambda: Clip(2.0, 1.0), "must not exceed"),
                                        (lambda: Gelu("fast"), "approximate"),
                                        (lambda: Pow(float("nan")), "exponent"),
                                        (lambda: HardSigmoid("a"), "alpha")])
def test_arguments_are_checked(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()
