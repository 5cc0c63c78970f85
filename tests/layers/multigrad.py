"""Gradient check for layers that read several tensors (convscope.layers.MultiInput).

The same central differences as :func:`gradcheck.check_module_grads`, perturbing each input
in turn: ``backward(R)`` must return dL/dx_i for L = sum(forward(xs) * R).
"""

from __future__ import annotations

import numpy as np

from gradcheck import TOL, numerical_grad, rel_error


def check_multi_input_grads(layer, xs: list[np.ndarray], rng: np.random.Generator, tol: float = TOL) -> list[float]:
    """Relative error of each input's gradient; asserts each is below ``tol``."""
    layer.to(np.float64)
    xs = [np.array(x, dtype=np.float64) for x in xs]
    y = layer.forward(tuple(xs))
    r = rng.standard_normal(y.shape)
    grads = layer.backward(r.copy())
    assert len(grads) == len(xs)

    def loss() -> float:
        return float(np.sum(layer.forward(tuple(xs)) * r))

    errors = []
    for x, g in zip(xs, grads):
        assert g.shape == x.shape, f"gradient {g.shape} for an input {x.shape}"
        num = numerical_grad(loss, x)
        assert np.any(num), "numeric gradient is identically zero: the check cannot fail"
        errors.append(rel_error(g, num))
    assert all(e < tol for e in errors), f"relative gradient errors {errors} above {tol}"
    return errors
