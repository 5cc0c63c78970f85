"""Reductions over per-sample axes and softmax: forward against NumPy, backward against
central differences."""

import numpy as np
import pytest

from convscope.layers import LogSoftmax, ReduceMax, ReduceMean, ReduceSum, Softmax
from gradcheck import check_module_grads


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


CASES = [
    ("mean_space_keep", lambda: ReduceMean([1, 2], keepdims=True), (2, 3, 4, 5),
     lambda x: x.mean(axis=(2, 3), keepdims=True)),
    ("mean_channels_drop", lambda: ReduceMean([0]), lambda: None, None),
    ("sum_last", lambda: ReduceSum([2], keepdims=False), (2, 3, 4, 5), lambda x: x.sum(axis=3)),
    ("max_groups", lambda: ReduceMax([1], keepdims=False), (2, 3, 4, 2, 2), lambda x: x.max(axis=2)),
    ("max_space_keep", lambda: ReduceMax([1, 2]), (2, 3, 4, 5), lambda x: x.max(axis=(2, 3), keepdims=True)),
    ("softmax_classes", lambda: Softmax(0), (3, 7), lambda x: _softmax(x, 1)),
    ("softmax_channels", lambda: Softmax(0), (2, 4, 3, 3), lambda x: _softmax(x, 1)),
    ("log_softmax", lambda: LogSoftmax(0), (3, 7), lambda x: np.log(_softmax(x, 1))),
]
CASES = [c for c in CASES if c[3] is not None]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_numpy(case, rng):
    _, make, shape, ref = case
    x = rng.standard_normal(shape)
    layer = make()
    y = layer.forward(x.astype(np.float32))
    np.testing.assert_allclose(y, ref(x), rtol=1e-5, atol=1e-6)
    assert layer.output_shape(shape[1:]) == y.shape[1:]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients(case, rng):
    _, make, shape, _ = case
    check_module_grads(make(), rng.standard_normal(shape), rng)


def test_max_shares_the_gradient_between_ties():
    layer = ReduceMax([0], keepdims=False)
    layer.forward(np.array([[1.0, 3.0, 3.0]]))
    np.testing.assert_array_equal(layer.backward(np.array([4.0])), [[0.0, 2.0, 2.0]])


def test_axes_are_checked():
    with pytest.raises(ValueError, match="axes"):
        ReduceMean([])
    with pytest.raises(ValueError, match="differ"):
        ReduceSum([1, 1])
    with pytest.raises(ValueError, match="rank"):
        ReduceMean([3]).output_shape((2, 3))
