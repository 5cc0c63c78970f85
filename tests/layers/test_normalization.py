"""Batch normalisation and local response normalisation: gradient checks (through the batch
statistics in training), running statistics, PyTorch."""

import numpy as np
import pytest

from convscope.layers import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from gradcheck import assert_matches, check_module_grads, chwn


def randomise(bn, rng, dtype=np.float64):
    """Non-trivial gamma, beta and running statistics, so no term of the formulas hides."""
    c = bn.num_features
    bn.params["weight"] = (1 + 0.5 * rng.standard_normal(c)).astype(dtype)
    bn.params["bias"] = rng.standard_normal(c).astype(dtype)
    bn.buffers["running_mean"] = rng.standard_normal(c).astype(dtype)
    bn.buffers["running_var"] = rng.uniform(0.5, 2.0, c).astype(dtype)
    return bn


BN_CASES = [(BatchNorm1d, (6, 4)), (BatchNorm1d, (2, 3)), (BatchNorm2d, (3, 3, 4, 5)),
            (BatchNorm2d, (1, 2, 3, 3))]


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("kind, shape", BN_CASES)
def test_batchnorm_gradients(rng, kind, shape, mode):
    bn = randomise(kind(shape[1], dtype=np.float64), rng)
    bn.train(mode == "train")
    x = 2 * rng.standard_normal(shape) + 1
    check_module_grads(bn, chwn(x) if x.ndim == 4 else x, rng)


@pytest.mark.parametrize("kind, shape", BN_CASES)
def test_batchnorm_train_forward_and_running_stats(rng, kind, shape):
    """Per-channel batch mean and (biased) variance normalise; the running variance takes the
    unbiased one: running = 0.9 running + 0.1 batch."""
    bn = randomise(kind(shape[1], eps=1e-3, dtype=np.float64), rng)
    rm, rv = bn.buffers["running_mean"].copy(), bn.buffers["running_var"].copy()
    x = 3 * rng.standard_normal(shape) - 2
    y = bn(x)
    for c in range(shape[1]):
        xc = np.take(x, c, axis=1)
        mean, var, m = xc.mean(), ((xc - xc.mean()) ** 2).mean(), xc.size
        want = (xc - mean) / np.sqrt(var + 1e-3) * bn.params["weight"][c] + bn.params["bias"][c]
        np.testing.assert_allclose(np.take(y, c, axis=1), want, rtol=1e-12, atol=1e-12)
        assert bn.buffers["running_mean"][c] == pytest.approx(0.9 * rm[c] + 0.1 * mean, rel=1e-12)
        assert bn.buffers["running_var"][c] == pytest.approx(0.9 * rv[c] + 0.1 * var * m / (m - 1), rel=1e-12)


def test_batchnorm_eval_uses_running_stats(rng):
    bn = randomise(BatchNorm2d(3, dtype=np.float64), rng).eval()
    before = {k: v.copy() for k, v in bn.buffers.items()}
    x = rng.standard_normal((2, 3, 4, 4))
    y = bn(x)
    b = lambda v: v.reshape(1, -1, 1, 1)  # noqa: E731
    want = (x - b(before["running_mean"])) / np.sqrt(b(before["running_var"]) + bn.eps) \
        * b(bn.params["weight"]) + b(bn.params["bias"])
    np.testing.assert_allclose(y, want, rtol=1e-12)
    for k in before:                                     # evaluation leaves the statistics alone
        np.testing.assert_array_equal(bn.buffers[k], before[k])


def test_batchnorm_train_needs_more_than_one_value_per_channel():
    with pytest.raises(ValueError, match=r"\(1, 4\)"):
        BatchNorm1d(4)(np.ones((1, 4), dtype=np.float32))


# -- local response normalisation ------------------------------------------------------------
def lrn_reference(x, size, alpha, beta, k):
    """b_c = a_c / (k + alpha / n * sum_{c' = c - n//2}^{c + (n-1)//2} a_c'^2) ^ beta."""
    out = np.zeros_like(x)
    c_total = x.shape[1]
    for c in range(c_total):
        lo, hi = max(0, c - size // 2), min(c_total - 1, c + (size - 1) // 2)
        s = k + alpha / size * sum(x[:, j] ** 2 for j in range(lo, hi + 1))
        out[:, c] = x[:, c] / s ** beta
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_lrn_forward_matches_loop_reference(rng, size):
    x = rng.standard_normal((2, 5, 3, 2))
    y = LocalResponseNorm(size, alpha=0.7, beta=0.75, k=1.5)(chwn(x))
    np.testing.assert_allclose(y, lrn_reference(x, size, 0.7, 0.75, 1.5), rtol=1e-12)


@pytest.mark.parametrize("beta", [0.75, 0.6])        # AlexNet's (square roots) and np.power
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
def test_lrn_gradients(rng, size, beta):
    """A large alpha makes the cross-channel term of the derivative matter (AlexNet's 1e-4
    would hide a wrong window in it below the tolerance)."""
    layer = LocalResponseNorm(size, alpha=1.0, beta=beta, k=2.0)
    check_module_grads(layer, chwn(rng.standard_normal((2, 5, 3, 4))), rng)


# -- PyTorch as a second opinion --------------------------------------------------------------
def torch_dtype(torch, dtype):
    return getattr(torch, np.dtype(dtype).name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batchnorm2d_matches_torch(torch, rng, mode, dtype):
    bn = randomise(BatchNorm2d(3, momentum=0.2, dtype=dtype), rng, dtype)
    tbn = torch.nn.BatchNorm2d(3, momentum=0.2, dtype=torch_dtype(torch, dtype))
    with torch.no_grad():
        tbn.weight.copy_(torch.from_numpy(bn.params["weight"]))
        tbn.bias.copy_(torch.from_numpy(bn.params["bias"]))
        tbn.running_mean.copy_(torch.from_numpy(bn.buffers["running_mean"]))
        tbn.running_var.copy_(torch.from_numpy(bn.buffers["running_var"]))
    bn.train(mode == "train")
    tbn.train(mode == "train")

    x = chwn((2 * rng.standard_normal((4, 3, 5, 3)) + 1).astype(dtype))
    y = bn(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = bn.backward(dy)
    tx = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    ty = tbn(tx)
    ty.backward(torch.from_numpy(dy))

    pairs = [(y, ty), (dx, tx.grad), (bn.grads["weight"], tbn.weight.grad),
             (bn.grads["bias"], tbn.bias.grad),
             (bn.buffers["running_mean"], tbn.running_mean), (bn.buffers["running_var"], tbn.running_var)]
    for ours, theirs in pairs:
        assert ours.dtype == dtype
        assert_matches(ours, theirs.detach().numpy(), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size, alpha, beta, k", [(5, 1e-4, 0.75, 2.0),     # AlexNet's
                                                  (3, 0.5, 0.75, 1.0), (4, 1.0, 0.6, 2.0),
                                                  (2, 0.3, 1.2, 1.5)])
def test_lrn_matches_torch(torch, rng, size, alpha, beta, k, dtype):
    layer = LocalResponseNorm(size, alpha, beta, k)
    x = chwn(rng.standard_normal((2, 6, 4, 3)).astype(dtype))
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    tx = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    ty = torch.nn.LocalResponseNorm(size, alpha, beta, k)(tx)
    ty.backward(torch.from_numpy(dy))
    assert y.dtype == dx.dtype == dtype
    assert_matches(y, ty.detach().numpy(), dtype)
    assert_matches(dx, tx.grad.numpy(), dtype)
