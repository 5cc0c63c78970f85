"""What the perturbation methods and metrics share: baselines ("what removed means"), the batch
budget, the noise tunnel around any gradient method, and RISE.

- :func:`baseline_images`: a baseline (N, C, H, W) in model space from a spec: None or "mean"
  (model-space zeros: the training mean image for standardised inputs), "black" (pixel value 0
  through the Classifier's normaliser), "blur" (each image blurred by a Gaussian), a number or
  an array.
- :func:`batch_budget`: images per pass: ``batch_size``, or by default about 2^19 input values
  (3 photos at 224 x 224, 668 MNIST digits).
- :func:`noise_tunnel`: SmoothGrad (Smilkov et al. 2017), SmoothGrad^2 and VarGrad
  (Adebayo et al. 2018) around any function that attributes a batch.
- :func:`rise`: Petsiuk, Das & Saenko 2018, randomised input sampling.

Randomness only ever comes from the ``rng`` (:class:`numpy.random.Generator`) passed in.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..layers import softmax
from ..layers.base import default_rng
from ..validation import check_int, check_real, is_int
from .core import accumulate, batches
from .display import resize_bilinear

__all__ = ["resolve_rng", "baseline_images", "gaussian_blur", "batch_budget", "NOISE_TUNNELS", "noise_tunnel", "rise"]

_VALUES_PER_BATCH = 2 ** 19     # input values per pass (2 MiB of float32): 668 MNIST digits, 3 RGB photos


def resolve_rng(rng: np.random.Generator | None, seed: int | None) -> np.random.Generator:
    """The generator to draw from: ``rng``, or one seeded with ``seed``; a fresh one when both
    are None. ValueError when both are given."""
    if rng is not None and seed is not None:
        raise ValueError("pass rng or seed, not both")
    if seed is not None:
        if not is_int(seed):
            raise TypeError(f"seed must be an int, got {seed!r}")
        return np.random.default_rng(int(seed))
    return default_rng(rng)


def batch_budget(x: np.ndarray, batch_size: int | None) -> int:
    """Images per pass for x (N, C, H, W): ``batch_size`` as given, or with None as many as
    hold about 2^19 input values (668 MNIST digits, 170 CIFAR images, 3 photos at 224 x 224;
    at least 1). Larger passes run NumPy's layers faster; the caches of one pass grow with it
    (ResNet-50 keeps a few hundred MB per 224 px image for a backward pass)."""
    if batch_size is not None:
        return check_int(batch_size, "batch_size", minimum=1)
    return max(1, _VALUES_PER_BATCH // max(1, int(np.prod(x.shape[1:]))))


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """x (N, C, H, W) blurred by a separable Gaussian of std ``sigma`` pixels (kernel radius
    3 sigma, reflected edges), same dtype. sigma = 0 returns a copy."""
    sigma = check_real(sigma, "blur_sigma", minimum=0.0)
    if sigma == 0:
        return x.copy()
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = x.astype(np.float64)
    for axis in (2, 3):
        r = min(radius, out.shape[axis] - 1)
        k = taps[radius - r:radius + r + 1] / taps[radius - r:radius + r + 1].sum()
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode="reflect") if r else out
        size = out.shape[axis]
        out = sum(k[i] * np.take(padded, np.arange(i, i + size), axis=axis) for i in range(len(k)))
    return out.astype(x.dtype)


def baseline_images(spec, x: np.ndarray, clf=None, *, blur_sigma: float | None = None) -> np.ndarray:
    """The baseline (N, C, H, W) for x in model space (x's dtype).

    ``spec``: None or "mean" (zeros in model space), "black" (pixel value 0, i.e.
    (0 - mean) / std per channel; needs a Classifier ``clf``), "blur" (x blurred by a Gaussian
    of ``blur_sigma`` pixels, default a 56th of the longer side, at least 1: 4 px at 224, as
    Petsiuk et al.'s insertion canvas), a number (model space) or an array broadcasting to x.
    """
    if spec is None or (isinstance(spec, str) and spec == "mean"):
        return np.zeros_like(x)
    if isinstance(spec, str):
        if spec == "black":
            if clf is None:
                raise ValueError("baseline 'black' needs a Classifier (its normaliser says what black is in "
                                 "model space); with a bare Module pass a model-space number or array")
            mean = np.asarray(clf.normalizer.mean, dtype=np.float64).reshape(1, -1, 1, 1)
            std = np.asarray(clf.normalizer.std, dtype=np.float64).reshape(1, -1, 1, 1)
            return np.broadcast_to((-mean / std).astype(x.dtype), x.shape).copy()
        if spec == "blur":
            sigma = max(1.0, max(x.shape[2:]) / 56) if blur_sigma is None else blur_sigma
            return gaussian_blur(x, sigma)
        raise ValueError(f"baseline must be None, 'mean', 'black', 'blur', a number or an array, got {spec!r}")
    if isinstance(spec, bool) or not isinstance(spec, (int, float, np.integer, np.floating, np.ndarray)):
        raise TypeError(f"baseline must be None, 'mean', 'black', 'blur', a number or an array, "
                        f"got {type(spec).__name__}")
    b = np.asarray(spec)
    if not np.issubdtype(b.dtype, np.number):
        raise TypeError(f"baseline must hold numbers, got dtype {b.dtype}")
    try:
        return np.broadcast_to(b.astype(x.dtype), x.shape).copy()
    except ValueError:
        raise ValueError(f"baseline of shape {b.shape} does not broadcast to the images' shape {x.shape}") from None


# -- noise tunnel ---------------------------------------------------------------------------------

NOISE_TUNNELS = ("smoothgrad", "smoothgrad_sq", "vargrad")

AttributeBatch = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""fn(x (B, C, H, W), targets (B,), rows (B,) the original images' indices) -> (B, C, H, W)."""


def noise_tunnel(fn: AttributeBatch, x: np.ndarray, targets: np.ndarray, kind: str = "smoothgrad",
                 samples: int = 25, noise: float = 0.15, rng: np.random.Generator | None = None,
                 batch_size: int = 64) -> np.ndarray:
    """``fn`` averaged over ``samples`` noisy copies of each image, (N, C, H, W) float64.

    Copies get x + N(0, sigma^2) with sigma = ``noise`` x (max - min) of each model-space image
    (Smilkov et al.'s noise level; 10-20% works well), drawn copy after copy in image order, so
    a seeded ``rng`` gives the same result whatever ``batch_size`` is. ``kind``:

    - "smoothgrad": the mean E[a] (Smilkov et al. 2017), signed like the method;
    - "smoothgrad_sq": the mean square E[a^2] (Hooker et al. 2019), non-negative;
    - "vargrad": the variance E[a^2] - E[a]^2 (Adebayo et al. 2018), non-negative.

    Each copy keeps its image's target class.
    """
    if kind not in NOISE_TUNNELS:
        raise ValueError(f"noise_tunnel must be one of {', '.join(NOISE_TUNNELS)}, got {kind!r}")
    samples = check_int(samples, "samples", minimum=1)
    noise = check_real(noise, "noise", minimum=0.0)
    if rng is None or not isinstance(rng, np.random.Generator):
        raise TypeError(f"noise_tunnel needs an explicit numpy.random.Generator, got {type(rng).__name__}")
    n = len(x)
    sigma = noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))             # (N,)
    first = np.zeros((n,) + x.shape[1:], dtype=np.float64)                       # sum of a
    second = np.zeros_like(first) if kind != "smoothgrad" else None              # sum of a^2
    image_of = np.repeat(np.arange(n), samples)                                  # (N*samples,)
    for s in batches(len(image_of), batch_size):
        rows = image_of[s]
        eps = rng.standard_normal((len(rows),) + x.shape[1:])                    # (B, C, H, W)
        noisy = (x[rows] + sigma[rows, None, None, None] * eps).astype(x.dtype)
        a = np.asarray(fn(noisy, targets[rows], rows), dtype=np.float64)
        accumulate(first, rows, a)
        if second is not None:
            accumulate(second, rows, a * a)
    mean = first / samples
    if kind == "smoothgrad":
        return mean
    if kind == "smoothgrad_sq":
        return second / samples
    return np.maximum(second / samples - mean * mean, 0.0)


# -- RISE -----------------------------------------------------------------------------------------

def _rise_masks(grids: np.ndarray, shifts: np.ndarray, size: tuple[int, int], cell: tuple[int, int]
                ) -> np.ndarray:
    """Masks (M, H, W) float32: each binary grid (M, s, s) upsampled bilinearly to
    ((s + 1) * cell) and cropped at its random shift (M, 2), Petsiuk et al.'s smooth masks."""
    s = grids.shape[1]
    up = resize_bilinear(grids.astype(np.float32), ((s + 1) * cell[0], (s + 1) * cell[1]))
    h, w = size
    rows = shifts[:, 0, None] + np.arange(h)                                     # (M, H)
    cols = shifts[:, 1, None] + np.arange(w)                                     # (M, W)
    return up[np.arange(len(up))[:, None, None], rows[:, :, None], cols[:, None, :]]


def rise(model, x: np.ndarray, targets: np.ndarray, *, masks: int = 2000, cells: int = 7, p: float = 0.5,
         baseline: np.ndarray | None = None, rng: np.random.Generator | None = None,
         batch_size: int = 64) -> np.ndarray:
    """RISE (Petsiuk et al. 2018), (N, H, W) float64, non-negative: the importance of a pixel is
    the class probability expected over random masks that keep it,
    S(x)[i] = 1 / (M p) sum_m P(target | x . mask_m) mask_m[i] (eq. 6).

    ``masks`` M random masks: binary ``cells`` x ``cells`` grids keeping each cell with
    probability ``p``, upsampled bilinearly to (cells + 1) cell sizes and shifted at random by
    up to one cell. A masked image is baseline + mask (x - baseline) (``baseline`` (N, C, H, W),
    default model-space zeros; x . mask in the paper's pixel space with a black baseline). The
    masks are drawn once, from ``rng``, and shared by every image; they are built ``batch_size``
    at a time and each image's copies run in passes of ``batch_size``, so memory stays bounded.
    Call inside :func:`~convscope.visualize.probe.evaluation_mode`.
    """
    masks = check_int(masks, "masks", minimum=1)
    cells = check_int(cells, "cells", minimum=1)
    p = check_real(p, "p", minimum=0.0, maximum=1.0)
    if p == 0:
        raise ValueError("p must be above 0 (the probability that a mask keeps a cell), got 0")
    if rng is None or not isinstance(rng, np.random.Generator):
        raise TypeError(f"rise needs an explicit numpy.random.Generator, got {type(rng).__name__}")
    n, _, h, w = x.shape
    base = np.zeros_like(x) if baseline is None else baseline
    cell = (-(-h // cells), -(-w // cells))                                      # ceil(H / s), ceil(W / s)
    grids = rng.random((masks, cells, cells)) < p                                # (M, s, s)
    shifts = np.stack([rng.integers(0, cell[0], masks), rng.integers(0, cell[1], masks)], axis=1)
    total = np.zeros((n, h * w), dtype=np.float64)
    for chunk in batches(masks, batch_size):
        m = _rise_masks(grids[chunk], shifts[chunk], (h, w), cell)              # (B, H, W)
        flat = m.reshape(len(m), -1).astype(np.float64)
        for i in range(n):
            copies = base[i] + m[:, None] * (x[i] - base[i])                     # (B, C, H, W)
            prob = softmax(model.forward(copies.astype(x.dtype)))[:, targets[i]]  # (B,)
            total[i] += prob.astype(np.float64) @ flat
    return (total / (masks * p)).reshape(n, h, w)
