"""The one gradient-check helper every layer test uses (style.md: "Gradient checks everywhere").

Central differences in float64 against a module's hand-written backward, on the random
projection loss L = sum(y * R): its gradient with respect to y is R, so ``backward(R)`` must
equal dL/dx and fill ``grads`` with dL/dparam. Errors are compared with a norm-based relative
error over the whole array, |a - b| / max(|a| + |b|, tiny).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

EPS = 1e-6          # central-difference step: truncation ~eps^2, round-off ~1e-16 / eps
TOL = 1e-6          # largest relative error accepted between analytic and numeric gradients
TINY = 1e-12        # floor of the denominator, so two zero gradients compare equal


def rel_error(a: np.ndarray, b: np.ndarray, tiny: float = TINY) -> float:
    """Norm-based relative error |a - b| / max(|a| + |b|, tiny) over whole arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), tiny))


def numerical_grad(loss: Callable[[], float], x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """dloss/dx by central differences, perturbing ``x`` in place (any strides) and restoring it."""
    grad = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        plus = loss()
        x[idx] = old - eps
        minus = loss()
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def chwn(x: np.ndarray) -> np.ndarray:
    """The same (N, C, H, W) values in (C, H, W, N) memory: the engine's internal layout."""
    out = np.empty(x.shape[1:] + x.shape[:1], dtype=x.dtype).transpose(3, 0, 1, 2)
    out[...] = x
    return out


def check_module_grads(module, x: np.ndarray, rng: np.random.Generator, *,
                       before_forward: Callable[[], None] | None = None,
                       tol: float = TOL, eps: float = EPS) -> dict[str, float]:
    """Check ``module.backward`` against central differences for x and every parameter.

    module: any layer or container, already in the mode (train/eval) to check; it is cast
    to float64. x: float64 input (any strides; perturbed in place and restored).
    before_forward: called before every forward, e.g. to rewind a dropout generator so
    every evaluation draws the same mask. Returns the relative error per name ("input" and
    the dotted parameter names) and asserts each is below ``tol``.
    """
    module.to(np.float64)
    assert x.dtype == np.float64
    prepare = before_forward or (lambda: None)

    prepare()
    y = module.forward(x)
    r = rng.standard_normal(y.shape)                  # the projection R: dL/dy
    dx = module.backward(r.copy())
    analytic = {"input": np.array(dx, dtype=np.float64)}
    grads = module.named_grads()
    params = module.named_parameters()
    assert set(grads) == set(params), f"grads {sorted(grads)} != params {sorted(params)}"
    for name, g in grads.items():
        assert g.shape == params[name].shape, f"{name}: grad {g.shape} vs param {params[name].shape}"
        analytic[name] = np.array(g, dtype=np.float64)

    def loss() -> float:
        prepare()
        return float(np.sum(module.forward(x) * r))

    numeric = {"input": numerical_grad(loss, x, eps)}
    for name, p in params.items():
        numeric[name] = numerical_grad(loss, p, eps)

    # A check where both gradients vanish would pass whatever backward did.
    flat = [name for name, g in numeric.items() if not np.any(g)]
    assert not flat, f"numeric gradient is identically zero for {flat}: the check cannot fail"
    errors = {name: rel_error(analytic[name], numeric[name]) for name in analytic}
    bad = {name: err for name, err in errors.items() if not err < tol}
    assert not bad, f"relative gradient errors above {tol}: {bad}"
    return errors


def assert_matches(ours: np.ndarray, theirs: np.ndarray, dtype) -> None:
    """Agreement with a second implementation (PyTorch): float64 to ~1e-10, float32 to
    single precision's ~1e-4, both relative to the array's scale."""
    rtol = 1e-10 if np.dtype(dtype) == np.float64 else 1e-4
    theirs = np.asarray(theirs)
    assert ours.shape == theirs.shape, f"shapes differ: {ours.shape} vs {theirs.shape}"
    scale = max(float(np.abs(theirs).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0.1 * rtol * scale)
