"""Layer norm, ONNX's LRN window and the channels-last linear layer: forward against a
reference (PyTorch where it is installed), backward against central differences."""

import numpy as np
import pytest

from convscope.layers import LayerNorm, LinearND, LocalResponseNorm, OnnxLocalResponseNorm
from gradcheck import assert_matches, check_module_grads


def with_params(layer, rng):
    for key, value in layer.params.items():
        layer.params[key] = (rng.standard_normal(value.shape) * 0.5 + (1.0 if key == "weight" else 0.0)).astype(
            value.dtype)
    return layer


@pytest.mark.parametrize("normalized,shape", [((5,), (2, 3, 4, 5)), ((4, 5), (2, 3, 4, 5)), ((6,), (3, 6))])
@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_gradients(normalized, shape, bias, rng):
    check_module_grads(with_params(LayerNorm(list(normalized), eps=1e-3, bias=bias), rng),
                       rng.standard_normal(shape), rng)


def test_layer_norm_matches_torch(rng, torch):
    x = rng.standard_normal((2, 4, 4, 6)).astype(np.float32)
    ours = with_params(LayerNorm([6], eps=1e-6), rng)
    ref = torch.nn.LayerNorm(6, eps=1e-6)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ours.params["weight"]))
        ref.bias.copy_(torch.from_numpy(ours.params["bias"]))
    assert_matches(ours.forward(x), ref(torch.from_numpy(x)).detach().numpy(), np.float32)


@pytest.mark.parametrize("size", [2, 3, 4])
def test_onnx_lrn_gradients(size, rng):
    check_module_grads(OnnxLocalResponseNorm(size, alpha=0.5, beta=0.75, k=1.5), rng.standard_normal((2, 6, 3, 3)),
                       rng)


def test_onnx_lrn_window_leans_up_for_even_sizes(rng):
    """ONNX: channels c - (n-1)//2 .. c + n//2; PyTorch (LocalResponseNorm): c - n//2 .. c + (n-1)//2."""
    x = rng.standard_normal((1, 6, 2, 2))
    n, alpha, beta, k = 4, 0.3, 0.75, 1.0
    sq = np.pad(x * x, [(0, 0), (3, 3), (0, 0), (0, 0)])
    onnx_sum = np.stack([sq[:, 3 + c - 1:3 + c + 3].sum(axis=1) for c in range(6)], axis=1)
    ref = x / (k + alpha / n * onnx_sum) ** beta
    np.testing.assert_allclose(OnnxLocalResponseNorm(n, alpha, beta, k).forward(x), ref, rtol=1e-12)
    odd = rng.standard_normal((1, 5, 2, 2))
    np.testing.assert_allclose(OnnxLocalResponseNorm(5).forward(odd), LocalResponseNorm(5).forward(odd))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_nd_gradients(shape, bias, rng):
    layer = with_params(LinearND(5, 4, bias=bias, rng=rng), rng)
    check_module_grads(layer, rng.standard_normal(shape), rng)
    assert layer.output_shape(shape[1:]) == shape[1:-1] + (4,)


def test_linear_nd_is_linear_at_every_position(rng):
    layer = with_params(LinearND(5, 4, rng=rng), rng)
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    w, b = layer.params["weight"], layer.params["bias"]
    np.testing.assert_allclose(layer.forward(x), x @ w.T + b, rtol=1e-6)


@pytest.mark.parametrize("make,match", [(lambda: LayerNorm([]), "normalized_shape"),
                                        (lambda: LayerNorm([3], eps=0.0), "eps"),
                                        (lambda: LinearND(0, 3), "in_features")])
def test_arguments_are_checked(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()
