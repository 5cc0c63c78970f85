"""ROAD's noisy linear imputation (Rong, Leemann, Borisov, Kasneci & Kasneci 2022, "A consistent
and efficient evaluation strategy for attribution methods", §4): removed pixels are filled
from their neighbours, so that the shape of the removed region does not leak the attribution
to the model ("remove and debias"), and a little noise is added.

Each removed pixel takes the weighted mean of its 8 neighbours inside the image (weight 1/6
for the 4 direct ones, 1/12 for the diagonals, the paper's code); neighbours that are removed
too are unknowns, so the fill solves a sparse linear system per image and channel:
D_i u_i - sum_{j removed} w_ij u_j = sum_{j kept} w_ij x_j (D_i the sum of the weights of i's
neighbours in the image). The matrix is symmetric positive definite when some pixel is kept;
it is solved here matrix-free by Jacobi-preconditioned conjugate gradients on every image and
channel at once (NumPy only; the reference implementation uses a sparse direct solver).
Gaussian noise of std ``noise`` is then added to the filled pixels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NEIGHBOURS", "noisy_linear_imputation"]

# (row offset, column offset, weight): the reference implementation's 8-neighbourhood.
NEIGHBOURS = ((1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12),
              (0, -1, 1 / 6), (-1, -1, 1 / 12), (1, 0, 1 / 6), (-1, 0, 1 / 6))


def _neighbour_sum(v: np.ndarray) -> np.ndarray:
    """S(v)[i] = sum_o w_o v[i + o] over the 8 neighbours, zero outside the image; v (..., H, W)."""
    out = np.zeros_like(v)
    h, w = v.shape[-2:]
    for dr, dc, weight in NEIGHBOURS:
        rs_out, rs_in = slice(max(0, -dr), h - max(0, dr)), slice(max(0, dr), h - max(0, -dr))
        cs_out, cs_in = slice(max(0, -dc), w - max(0, dc)), slice(max(0, dc), w - max(0, -dc))
        out[..., rs_out, cs_out] += weight * v[..., rs_in, cs_in]
    return out


def noisy_linear_imputation(x: np.ndarray, removed: np.ndarray, noise, rng: np.random.Generator, *,
                            tol: float = 1e-6, max_iter: int | None = None) -> np.ndarray:
    """x (B, C, H, W) with the pixels where ``removed`` (B, H, W) is True replaced by the linear
    imputation plus N(0, noise^2) (``noise`` a number or per-channel stds (C,)); float64.

    Conjugate gradients stop when every system's residual is below ``tol`` times its
    right-hand side's norm, or after ``max_iter`` (default 4 (H + W) + 50) iterations. An image
    with every pixel removed has no data to impute from: its pixels become 0 (plus noise).
    """
    if removed.shape != (x.shape[0],) + x.shape[2:]:
        raise ValueError(f"removed must have shape {(x.shape[0],) + x.shape[2:]} for images {x.shape}, "
                         f"got {removed.shape}")
    x64 = x.astype(np.float64)
    hole = removed[:, None].astype(np.float64)                                   # (B, 1, H, W)
    known = 1.0 - hole
    diag = _neighbour_sum(np.ones(x.shape[2:]))[None, None] * hole + known       # D (1 where kept)
    rhs = _neighbour_sum(x64 * known) * hole                                     # (B, C, H, W)

    def apply(u):                                                                # A u on the holes
        return (diag * u - _neighbour_sum(u)) * hole

    u = np.zeros_like(rhs)
    r = rhs.copy()
    z = r / diag
    p = z.copy()
    rz = (r * z).sum(axis=(2, 3), keepdims=True)
    scale = np.sqrt((rhs * rhs).sum(axis=(2, 3), keepdims=True))
    limit = max_iter if max_iter is not None else 4 * sum(x.shape[2:]) + 50
    for _ in range(limit):
        if np.all(np.sqrt((r * r).sum(axis=(2, 3), keepdims=True)) <= tol * np.maximum(scale, 1e-300)):
            break
        ap = apply(p)
        pap = (p * ap).sum(axis=(2, 3), keepdims=True)
        step = np.divide(rz, pap, out=np.zeros_like(rz), where=pap > 0)
        u += step * p
        r -= step * ap
        z = r / diag
        rz_new = (r * z).sum(axis=(2, 3), keepdims=True)
        p = z + np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0) * p
        rz = rz_new
    std = np.asarray(noise, dtype=np.float64).reshape(1, -1, 1, 1)
    jitter = rng.standard_normal(x.shape) * std
    return x64 * known + (u + jitter) * hole
