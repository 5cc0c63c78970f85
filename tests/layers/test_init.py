"""Initialisers (convscope.layers.init) and the layers' ``init=`` argument."""

import doctest

import numpy as np
import pytest

from convscope.layers import Conv2d, Linear, init, shapes_only
from convscope.layers.init import fans, he_normal, make_weight, normal, xavier_uniform, zeros


@pytest.mark.parametrize("shape, expected", [
    ((10, 4), (4, 10)),                    # Linear (out, in)
    ((8, 3, 5, 5), (75, 200)),             # Conv2d (F, C, KH, KW)
    ((6, 2, 3, 1), (6, 18)),               # grouped Conv2d: C/groups input channels per filter
])
def test_fans_follow_pytorch(shape, expected):
    assert fans(shape) == expected


def test_fans_need_two_axes():
    with pytest.raises(ValueError, match=r"\(5,\)"):
        fans((5,))


@pytest.mark.parametrize("make, fan_in", [
    (lambda r: Conv2d(16, 32, 3, rng=r), 16 * 9),
    (lambda r: Conv2d(16, 32, 3, groups=4, rng=r), 4 * 9),
    (lambda r: Linear(300, 200, rng=r), 300),
])
def test_layers_default_to_he_normal(make, fan_in):
    w = make(np.random.default_rng(0)).params["weight"]
    assert w.dtype == np.float32
    assert abs(w.std() / np.sqrt(2.0 / fan_in) - 1) < 0.05
    assert abs(w.mean()) < 0.01


def test_he_normal_draws_the_same_numbers_as_before():
    """Moving it into init.py must not change any model built from a seed."""
    shape = (7, 3, 3, 3)
    old = (np.random.default_rng(5).standard_normal(shape) * np.sqrt(2.0 / 27)).astype(np.float32)
    np.testing.assert_array_equal(he_normal(shape, np.random.default_rng(5)), old)
    conv = Conv2d(3, 7, 3, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(conv.params["weight"], old)


def test_init_is_passed_in():
    rng = np.random.default_rng(0)
    fc = Linear(400, 300, init=normal(0.01), rng=rng)
    assert abs(fc.params["weight"].std() - 0.01) < 5e-4
    assert not Conv2d(3, 4, 3, init=zeros).params["weight"].any()
    calls = []

    def custom(shape, rng, dtype):
        calls.append((shape, dtype))
        return np.full(shape, 0.5, dtype=dtype)

    conv = Conv2d(4, 6, (3, 2), groups=2, init=custom, dtype=np.float64)
    assert calls == [((6, 2, 3, 2), np.float64)]
    assert conv.params["weight"].dtype == np.float64 and (conv.params["weight"] == 0.5).all()
    assert not conv.params["bias"].any()


def test_xavier_uniform_bounds():
    w = xavier_uniform((200, 100), np.random.default_rng(0))
    bound = np.sqrt(6 / 300)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.var() / (2 / 300) - 1) < 0.05


@pytest.mark.parametrize("initialiser", [he_normal, normal(0.1), zeros, xavier_uniform])
def test_under_shapes_only_no_array_is_made(initialiser):
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    with shapes_only():
        w = initialiser((4096, 9216), rng, np.float32)
    assert w.shape == (4096, 9216) and w.strides == (0, 0) and w.dtype == np.float32
    assert rng.bit_generator.state == state              # nothing drawn


def test_a_custom_init_is_not_called_under_shapes_only():
    def boom(shape, rng, dtype):
        raise AssertionError("called")

    with shapes_only():
        fc = Linear(4096, 4096, init=boom)
    assert fc.params["weight"].strides == (0, 0)


@pytest.mark.parametrize("bad, error, match", [
    (3, TypeError, r"Linear: init must be an initialiser.*got 3"),
    (lambda shape, rng, dtype: np.zeros((2, 2)), ValueError,
     r"Linear: init .* returned shape \(2, 2\), expected \(5, 4\)"),
])
def test_bad_init_names_the_value(bad, error, match):
    with pytest.raises(error, match=match):
        Linear(4, 5, init=bad)


@pytest.mark.parametrize("std, error", [(-0.1, ValueError), ("0.1", TypeError), (float("nan"), ValueError)])
def test_normal_checks_its_std(std, error):
    with pytest.raises(error, match="std"):
        normal(std)


def test_old_import_path_still_works():
    from convscope.layers.conv import he_normal as old_name
    assert old_name is he_normal


def test_make_weight_casts_to_the_dtype():
    w = make_weight(lambda shape, rng, dtype: np.ones(shape), (2, 3), None, np.float32, "Test")
    assert w.dtype == np.float32


def test_the_docstring_examples_run():
    failures, tried = doctest.testmod(init)
    assert tried and not failures
