"""From results to pictures: every scaling and resizing step for display, in one place.

Techniques return unscaled arrays; what is shown is decided here, explicitly:

- :func:`to_pixels`: model-space images back to pixel values in [0, 1] (the normaliser's
  inverse), so an image is drawn in its own colours: grayscale as gray, RGB as RGB;
- :func:`image_layout`: (N, C, H, W) -> (N, H, W) for one channel, (N, H, W, 3) for three,
  the channel mean otherwise (what ``imshow`` takes);
- :func:`to_display`: each image min-max scaled to [0, 1] on its own (for arrays whose
  values have no pixel meaning: projections, filters); NaNs become 0;
- :func:`normalize_map`: an attribution map (N, H, W) scaled by its maximum |value|;
- :func:`resize_bilinear`: maps resized to the input (Grad-CAM's upsampling).

NumPy only: nothing here needs matplotlib.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_pixels", "image_layout", "to_display", "scale_each", "normalize_map", "resize_bilinear"]


def to_pixels(x: np.ndarray, normalizer=None) -> np.ndarray:
    """Model-space images x (N, C, H, W) -> pixel values in [0, 1], float32 (N, C, H, W).

    With a :class:`~convscope.data.Normalizer` (x = (p / 255 - mean) / std) this is
    p / 255 = x * std + mean, clipped to [0, 1]; without one, each image min-max scaled.
    NaNs become 0.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"to_pixels expects images (N, C, H, W), got shape {x.shape}")
    if normalizer is None:
        return scale_each(x).astype(np.float32)
    mean = np.asarray(normalizer.mean, dtype=np.float64).reshape(1, -1, 1, 1)
    std = np.asarray(normalizer.std, dtype=np.float64).reshape(1, -1, 1, 1)
    if mean.shape[1] != x.shape[1]:
        raise ValueError(f"the normalizer has statistics for {mean.shape[1]} channel(s), the images have "
                         f"{x.shape[1]}")
    return np.clip(np.nan_to_num(x * std + mean, nan=0.0), 0.0, 1.0).astype(np.float32)


def image_layout(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W) when C is 1, (N, H, W, 3) when C is 3, else the channel mean
    (N, H, W). Arrays that are already (N, H, W) come back unchanged."""
    images = np.asarray(images)
    if images.ndim == 3:
        return images
    if images.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W) or maps (N, H, W), got shape {images.shape}")
    if images.shape[1] == 1:
        return images[:, 0]
    if images.shape[1] == 3:
        return np.moveaxis(images, 1, -1)
    return images.mean(axis=1)


def scale_each(a: np.ndarray, constant: float = 0.0) -> np.ndarray:
    """Each item of ``a`` (first axis) min-max scaled to [0, 1] on its own, float64; an item
    holding one value everywhere becomes ``constant``; NaNs become 0."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if a.size == 0:
        return a
    axes = tuple(range(1, a.ndim))
    lo, hi = a.min(axis=axes, keepdims=True), a.max(axis=axes, keepdims=True)
    span = hi - lo
    return np.where(span > 0, (a - lo) / np.where(span > 0, span, 1.0), constant)


def to_display(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) arrays -> (N, H, W) or (N, H, W, 3), each scaled to [0, 1]
    on its own (a constant image shows as 0). For arrays without a pixel meaning; pictures
    of inputs go through :func:`to_pixels` instead."""
    return scale_each(image_layout(np.asarray(images, dtype=np.float64)))


def normalize_map(m: np.ndarray, mode: str = "abs") -> np.ndarray:
    """A map scaled for display, (N, H, W), from a raw map (N, H, W) or (N, C, H, W).

    "abs": |m| divided by its maximum per image, in [0, 1]; channels collapse by max |.|
    (Simonyan et al.'s rule). "signed": m divided by max |m| per image, in [-1, 1], keeping
    the sign (positive evidence for the class, negative against); channels collapse by sum
    (the signed total over a pixel's channels). An all-zero image stays zero; NaNs become 0.
    """
    if not isinstance(m, np.ndarray) or not np.issubdtype(m.dtype, np.floating):
        got = f"dtype {m.dtype}" if isinstance(m, np.ndarray) else type(m).__name__
        raise TypeError(f"normalize_map expects a float array, got {got}")
    if m.ndim not in (3, 4):
        raise ValueError(f"normalize_map expects a map (N, H, W) or (N, C, H, W), got shape {m.shape}")
    m = np.nan_to_num(m, nan=0.0)
    if mode == "abs":
        out = np.abs(m).max(axis=1) if m.ndim == 4 else np.abs(m)          # (N, H, W)
    elif mode == "signed":
        out = m.sum(axis=1) if m.ndim == 4 else m.copy()                    # (N, H, W)
    else:
        raise ValueError(f"mode must be 'abs' or 'signed', got {mode!r}")
    scale = np.abs(out).max(axis=(1, 2), keepdims=True)                     # (N, 1, 1)
    return np.divide(out, scale, out=np.zeros_like(out), where=scale > 0)


def resize_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Maps (N, h, w) resized to (N, H, W) by bilinear interpolation with half-pixel centres
    (PyTorch's ``interpolate(mode="bilinear", align_corners=False)``), as two small matrices."""
    if maps.ndim != 3:
        raise ValueError(f"resize_bilinear expects maps (N, h, w), got shape {maps.shape}")
    dtype = np.result_type(maps.dtype, np.float32)
    rows = _interpolation_matrix(maps.shape[1], size[0]).astype(dtype)    # (H, h)
    cols = _interpolation_matrix(maps.shape[2], size[1]).astype(dtype)    # (W, w)
    # rows @ map @ cols^T per image: two batched GEMMs (a three-operand einsum loops naively,
    # measured 20x slower for 64 maps of 10 x 10 -> 28 x 28)
    return np.matmul(np.matmul(rows, maps.astype(dtype, copy=False)), cols.T).astype(maps.dtype, copy=False)


def _interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of 1-D linear interpolation weights, half-pixel centred."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)  # source coordinate
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (src - lo)[:, None]
    grid = np.arange(n_in)[None, :]
    return (1 - frac) * (grid == lo[:, None]) + frac * (grid == hi[:, None])
