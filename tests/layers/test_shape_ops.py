"""Reshape, transpose, slice, pad and concatenation, per sample: forward against NumPy on the
batched array, backward (the adjoint) against central differences."""

import numpy as np
import pytest

from convscope.layers import Cat, Pad, Reshape, Slice, Transpose
from gradcheck import check_module_grads
from multigrad import check_multi_input_grads

# (id, layer, input shape with batch, NumPy reference on the batched array)
CASES = [
    ("reshape_shuffle", lambda: Reshape([2, 3, 4, 5]), (2, 6, 4, 5), lambda x: x.reshape(2, 2, 3, 4, 5)),
    ("reshape_infer", lambda: Reshape([-1, 5]), (3, 6, 4, 5), lambda x: x.reshape(3, -1, 5)),
    ("transpose_channels_last", lambda: Transpose([1, 2, 0]), (2, 3, 4, 5), lambda x: x.transpose(0, 2, 3, 1)),
    ("transpose_5d", lambda: Transpose([1, 0, 2, 3]), (2, 2, 3, 2, 2), lambda x: x.transpose(0, 2, 1, 3, 4)),
    ("slice_channels", lambda: Slice([0], [2], [5], [1]), (2, 6, 3, 3), lambda x: x[:, 2:5]),
    ("slice_strided", lambda: Slice([1, 2], [0, 1], [2 ** 31 - 1, 4], [2, 2]), (2, 3, 5, 6),
     lambda x: x[:, :, 0::2, 1:4:2]),
    ("slice_negative_step", lambda: Slice([0], [-1], [-(2 ** 31)], [-1]), (2, 4, 3), lambda x: x[:, ::-1]),
    ("slice_from_end", lambda: Slice([2], [-3], [-1], [1]), (2, 2, 3, 6), lambda x: x[:, :, :, -3:-1]),
    ("pad_spatial", lambda: Pad([[0, 0], [1, 2], [0, 1]], 0.0), (2, 3, 4, 4),
     lambda x: np.pad(x, [(0, 0), (0, 0), (1, 2), (0, 1)])),
    ("pad_channels", lambda: Pad([[0, 3], [0, 0], [0, 0]], 1.5), (2, 2, 3, 3),
     lambda x: np.pad(x, [(0, 0), (0, 3), (0, 0), (0, 0)], constant_values=1.5)),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_numpy_and_output_shape(case, rng):
    _, make, shape, ref = case
    x = rng.standard_normal(shape).astype(np.float32)
    layer = make()
    y = layer.forward(x)
    np.testing.assert_array_equal(y, ref(x))
    assert layer.output_shape(shape[1:]) == y.shape[1:]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients(case, rng):
    _, make, shape, _ = case
    check_module_grads(make(), rng.standard_normal(shape), rng)


def test_cat_forward_shape_and_gradients(rng):
    xs = [rng.standard_normal((2, c, 3, 4)) for c in (1, 3, 2)]
    layer = Cat(0)
    y = layer.forward(tuple(x.astype(np.float32) for x in xs))
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=1).astype(np.float32))
    assert layer.output_shape(tuple(x.shape[1:] for x in xs)) == (6, 3, 4)
    check_multi_input_grads(Cat(0), xs, rng)
    check_multi_input_grads(Cat(2), [rng.standard_normal((2, 3, 4, 2)), rng.standard_normal((2, 3, 4, 1))], rng)


@pytest.mark.parametrize("make,shape,match", [
    (lambda: Reshape([5, 5]), (3, 4), "cannot make"),
    (lambda: Transpose([1, 0]), (3, 4, 5), "rank"),
    (lambda: Slice([0], [5], [9], [1]), (3, 4), "nothing"),
    (lambda: Pad([[1, 1]]), (3, 4), "rank"),
    (lambda: Cat(1), ((2, 3), (3, 3)), "agree"),
])
def test_shapes_that_do_not_fit_are_refused(make, shape, match):
    with pytest.raises(ValueError, match=match):
        make().output_shape(shape)


@pytest.mark.parametrize("make,match", [
    (lambda: Reshape([-1, -1]), "one -1"), (lambda: Reshape([0, 3]), "no 0"),
    (lambda: Transpose([0, 0]), "permutation"), (lambda: Slice([0], [0], [1], [0]), "non-zero"),
    (lambda: Pad([[-1, 0]]), "entry"), (lambda: Cat(-1), "axis"),
])
def test_arguments_are_checked(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()
