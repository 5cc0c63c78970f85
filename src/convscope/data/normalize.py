"""Per-channel standardisation: the statistics of a training set, and the transform that applies them."""

from __future__ import annotations

import numpy as np

__all__ = ["channel_stats", "Normalizer"]

_LEVELS = 256          # the values a uint8 pixel can take
_CHUNK = 4096          # images per histogram chunk: bounds the temporary int64 copy


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of uint8 images (N, C, H, W), in [0, 1] units.

    Returns two float32 arrays (C,). The statistics come from a 256-bin histogram per channel,
    accumulated over chunks of images, so they are exact (up to the final float32 rounding)
    and no float copy of the dataset is made. The standard deviation is the population one
    (ddof=0).
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"channel_stats expects uint8 images (N, C, H, W), got {got}")
    n, c = images.shape[:2]
    if images.size == 0:
        raise ValueError(f"channel_stats needs at least one pixel, got images of shape {images.shape}")
    counts = np.zeros((c, _LEVELS), dtype=np.int64)          # counts[ch, v]: pixels of value v
    for start in range(0, n, _CHUNK):
        chunk = images[start:start + _CHUNK]
        for ch in range(c):
            counts[ch] += np.bincount(chunk[:, ch].ravel(), minlength=_LEVELS)
    values = np.arange(_LEVELS, dtype=np.float64) / 255.0    # (256,) pixel values in [0, 1]
    total = counts.sum(axis=1).astype(np.float64)            # (C,)
    mean = counts @ values / total                           # (C,)
    var = (counts * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / total
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


class Normalizer:
    """``x -> (x / 255 - mean) / std`` per channel, for images (N, C, H, W) on the 0..255 scale.

    ``mean`` and ``std`` are sequences of C numbers in [0, 1] units (as from
    :func:`channel_stats`); every ``std`` must be positive. The output is float32.
    """

    def __init__(self, mean, std) -> None:
        mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        std = np.asarray(std, dtype=np.float32).reshape(-1)
        if mean.size == 0 or mean.shape != std.shape:
            raise ValueError(f"mean and std need one value per channel each, got {mean.size} and {std.size}")
        for name, values in (("mean", mean), ("std", std)):
            if not np.all(np.isfinite(values)):
                raise ValueError(f"{name} must be finite, got {values.tolist()}")
        if np.any(std <= 0):
            ch = int(np.argmin(std))
            raise ValueError(f"std must be positive for every channel, got std[{ch}] = {float(std[ch])} "
                             f"(a channel that holds one value everywhere cannot be standardised)")
        self.mean, self.std = mean, std

    @property
    def channels(self) -> int:
        """The number of channels C the statistics are for."""
        return int(self.mean.size)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Standardised float32 images (N, C, H, W) from uint8 (or real-valued 0..255) images (N, C, H, W)."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1] != self.channels:
            raise ValueError(f"expected images (N, {self.channels}, H, W), got shape {images.shape}")
        if not (images.dtype == np.uint8 or np.issubdtype(images.dtype, np.floating)):
            raise ValueError(f"expected uint8 images, got dtype {images.dtype}")
        scale = (1.0 / (255.0 * self.std)).reshape(1, -1, 1, 1)   # (1, C, 1, 1)
        shift = (self.mean / self.std).reshape(1, -1, 1, 1)        # (1, C, 1, 1)
        out = images.astype(np.float32)                            # (N, C, H, W), a fresh copy
        out *= scale
        out -= shift
        return out

    def to_dict(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}`` as plain floats, ready for JSON."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        """The normalizer ``to_dict`` described."""
        if not isinstance(d, dict) or "mean" not in d or "std" not in d:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"a normalizer needs a dict with 'mean' and 'std', got {got}")
        return cls(d["mean"], d["std"])

    def __repr__(self) -> str:
        return f"Normalizer(mean={self.mean.tolist()}, std={self.std.tolist()})"
