"""Image priors shared by activation maximisation and code inversion (notes §3).

An image found by gradient steps on the input alone is high-frequency noise that drives the
unit but looks like nothing. The priors that make it look like an image, one implementation
each, used by :mod:`~convscope.visualize.actmax` and :mod:`~convscope.visualize.inversion`:

* :func:`total_variation` — Mahendran & Vedaldi's TV^beta penalty and its gradient
  ("Understanding Deep Image Representations by Inverting Them", CVPR 2015, eq. 6);
* :func:`gaussian_blur` — periodic separable Gaussian blur (Yosinski et al., "Understanding
  Neural Networks Through Deep Visualization", ICML DL workshop 2015);
* :func:`random_shift` and :func:`roll` — jitter: shift the image a few pixels before each
  step and shift the gradient back (Mordvintsev et al.'s DeepDream, Yosinski et al.);
* :func:`random_zoom` and :class:`Zoom` — scale robustness: zoom the image by a random
  factor about its centre before each step and send the gradient back through the zoom's
  adjoint (Olah et al., "Feature Visualization", Distill 2017: jitter, scale and rotation
  make 224 px visualisations look like images rather than high-frequency patterns);
* :func:`pixel_bounds` — the model-space values that real pixels in [0, 1] can take;
* :class:`Adam` — the per-pixel Adam step (Kingma & Ba 2015) both searches take, the
  update being :func:`convscope.optim.adam_step`, the one the model optimiser uses.

Images are model-space arrays (N, C, H, W). Blur and jitter treat the image as a torus, so
both keep every pixel and the blur keeps the mean exactly.
"""

from __future__ import annotations

import math

import numpy as np

from ..optim import adam_step
from ..validation import check_float_images, check_real

__all__ = ["total_variation", "gaussian_blur", "gaussian_kernel", "random_shift", "roll",
           "random_zoom", "Zoom", "pixel_bounds", "Adam"]


def total_variation(x: np.ndarray, beta: float = 2.0, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """TV^beta of each image and its gradient, for x (N, C, H, W) -> ((N,), (N, C, H, W)).

    Mahendran & Vedaldi (2015), eq. 6: with dh = x[i+1, j] - x[i, j], dw = x[i, j+1] - x[i, j]
    over the (H-1) x (W-1) pixels that have both neighbours, summed over channels::

        TV(x) = sum_c,i,j (dh^2 + dw^2)^(beta / 2)

    beta = 2 (the default) is the sum of squared neighbour differences; 1 <= beta < 2 favours
    sharper edges and adds ``eps`` inside the power so the gradient is finite where dh = dw = 0.
    The gradient is d TV / dx, ready to add (times a weight) to a loss gradient.
    """
    x = check_float_images(x, "total_variation: x")
    beta = check_real(beta, "total_variation: beta", minimum=1.0)
    corner = x[:, :, :-1, :-1]
    dh = x[:, :, 1:, :-1] - corner                         # (N, C, H-1, W-1)
    dw = x[:, :, :-1, 1:] - corner
    s = dh * dh + dw * dw
    if beta == 2.0:
        value, scale = s, np.asarray(2.0, dtype=x.dtype)
    else:
        s = s + x.dtype.type(eps)
        value = s ** (beta / 2)
        scale = beta * s ** (beta / 2 - 1)                  # d s^(b/2) / d dh = b s^(b/2-1) dh
    gh, gw = scale * dh, scale * dw
    grad = np.zeros_like(x)
    grad[:, :, 1:, :-1] += gh
    grad[:, :, :-1, 1:] += gw
    grad[:, :, :-1, :-1] -= gh + gw
    return value.sum(axis=(1, 2, 3)), grad


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The normalised 1-D Gaussian taps exp(-t^2 / 2 sigma^2), t = -r..r with r = ceil(3 sigma)."""
    sigma = check_real(sigma, "blur sigma", minimum=0.0, strict=True)
    radius = max(1, math.ceil(3 * sigma))                  # 3 sigma holds 99.7 % of the mass
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-t * t / (2 * sigma * sigma))
    return k / k.sum()


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of x (N, C, H, W) along H then W, with periodic borders.

    Each axis is a weighted sum of rolled copies (one per tap, 2r + 1 with r = ceil(3 sigma)),
    so the weights summing to one and the rolls being permutations keep each image's mean
    exactly. Returns a new array of x's dtype; sigma = 0 returns a copy.
    """
    x = check_float_images(x, "gaussian_blur: x")
    if check_real(sigma, "blur sigma", minimum=0.0) == 0.0:
        return x.copy()
    k = gaussian_kernel(sigma).astype(x.dtype)
    radius = len(k) // 2
    out = x
    for axis in (2, 3):
        acc = np.zeros_like(x)
        for tap, weight in zip(range(-radius, radius + 1), k):
            acc += weight * np.roll(out, tap, axis=axis)
        out = acc
    return out


def random_shift(rng: np.random.Generator, max_shift: int) -> tuple[int, int]:
    """A (rows, cols) shift, each uniform in [-max_shift, max_shift], drawn from ``rng``."""
    dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
    return int(dy), int(dx)


def roll(x: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """x (..., H, W) shifted periodically by (rows, cols); roll(roll(x, s), -s) is x."""
    return np.roll(x, shift, axis=(-2, -1))


def random_zoom(rng: np.random.Generator, max_scale: float) -> float:
    """A zoom factor drawn log-uniformly from [1 / max_scale, max_scale] (1.0 when max_scale is 1)."""
    if max_scale == 1.0:
        return 1.0
    return float(np.exp(rng.uniform(-np.log(max_scale), np.log(max_scale))))


class Zoom:
    """Bilinear zoom by ``factor`` about the image centre, keeping the size (H, W): a linear map
    ``y = A x B^T`` per channel with sparse interpolation matrices A (H, H) and B (W, W)
    (edges clamped), so its adjoint, for the gradient, is ``A^T g B``. factor > 1 magnifies."""

    def __init__(self, size: tuple[int, int], factor: float) -> None:
        self.a, self.b = (self._matrix(int(n), float(factor)) for n in size)

    @staticmethod
    def _matrix(n: int, factor: float) -> np.ndarray:
        centre = (n - 1) / 2.0
        src = np.clip((np.arange(n) - centre) / factor + centre, 0, n - 1)     # where each output reads
        low = np.floor(src).astype(np.int64)
        high = np.minimum(low + 1, n - 1)
        frac = (src - low).astype(np.float32)
        m, rows = np.zeros((n, n), dtype=np.float32), np.arange(n)
        m[rows, low] += 1 - frac                           # two taps per row (one index each per
        m[rows, high] += frac                              # assignment: low == high at the edge adds up)
        return m

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) zoomed, same shape."""
        return np.matmul(np.matmul(self.a, x), self.b.T).astype(x.dtype, copy=False)

    def adjoint(self, g: np.ndarray) -> np.ndarray:
        """The gradient at the unzoomed image for a gradient g at the zoomed one."""
        return np.matmul(np.matmul(self.a.T, g), self.b).astype(g.dtype, copy=False)


def pixel_bounds(normalizer, channels: int, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """(low, high), each (C, 1, 1): the model-space images of pixel values 0 and 1.

    With a :class:`~convscope.data.Normalizer` (x -> (x/255 - mean) / std) they are
    (0 - mean) / std and (1 - mean) / std per channel; with None, [0, 1] (inputs taken as
    unnormalised pixels scaled to [0, 1]).
    """
    if normalizer is None:
        mean, std = np.zeros(channels), np.ones(channels)
    else:
        if not (hasattr(normalizer, "mean") and hasattr(normalizer, "std")):
            raise TypeError(f"normalizer must be a convscope.data.Normalizer (with .mean and .std) "
                            f"or None, got {type(normalizer).__name__}")
        mean = np.asarray(normalizer.mean, dtype=np.float64).reshape(-1)
        std = np.asarray(normalizer.std, dtype=np.float64).reshape(-1)
        if mean.size != channels or std.size != channels:
            raise ValueError(f"normalizer has statistics for {mean.size} channel(s), but the images "
                             f"have {channels}")
    low = ((0.0 - mean) / std).astype(dtype).reshape(channels, 1, 1)
    high = ((1.0 - mean) / std).astype(dtype).reshape(channels, 1, 1)
    return low, high


class Adam:
    """Kingma & Ba's step on one array of pixels, elementwise, so each image in a batch takes
    its own step. ``step(x, grad)`` moves x in place *down* the gradient by about ``lr`` per
    pixel (pass -grad to ascend); the moments start at zero and are bias-corrected."""

    def __init__(self, shape: tuple[int, ...], lr: float, betas=(0.9, 0.999), eps: float = 1e-8,
                 dtype=np.float32) -> None:
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        self.m = np.zeros(shape, dtype=dtype)
        self.v = np.zeros(shape, dtype=dtype)
        self.t = 0

    def step(self, x: np.ndarray, grad: np.ndarray) -> None:
        self.t += 1
        adam_step(x, grad, self.m, self.v, self.t, self.lr, self.betas, self.eps)
