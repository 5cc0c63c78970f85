"""Occlusion sensitivity (notes §3; Zeiler & Fergus 2014, "Visualizing and understanding
convolutional networks", §4.2): how much the class probability drops when a window of the
image is blanked out. A perturbation method: forward passes only, no gradient.

Conventions as in :mod:`~convscope.visualize.saliency` (Classifier and raw images, or Module
and model-space floats; ``target`` None / int / int array (N,); batches of ``batch_size``
images), except the score: the softmax probability of the target class, as Zeiler & Fergus
used.
"""

from __future__ import annotations

import numpy as np

from ..layers import softmax
from ..layers.base import as_pair
from ..validation import check_int, check_real
from .core import accumulate, batch_limit, batches, check_classes, check_target, predict, resolve
from .probe import evaluation_mode

__all__ = ["occlusion", "default_window"]


def _positive_pair(value, name: str) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each at least 1; the error names ``name`` and the value."""
    pair = as_pair(value, name)
    if min(pair) < 1:
        raise ValueError(f"{name} must be an int or a pair of ints >= 1, got {value!r}")
    return pair


def _window_starts(size: int, window: int, stride: int) -> list[int]:
    """Window offsets 0, stride, ... plus a last one flush with the edge, so every pixel is covered."""
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:
        starts.append(size - window)
    return starts


def default_window(size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """(window, stride) scaled to an (H, W) input: a window of 1/14 of each side (at least 4
    px), slid by half of it: 4 / 2 px at MNIST's 28 (and CIFAR's 32), 16 / 8 px at 224 (27 x 27
    positions, the resolution of a 14 x 14 Grad-CAM map refined by the overlap)."""
    window = tuple(max(4, int(s) // 14) for s in size)
    return window, tuple(max(1, w // 2) for w in window)


def occlusion(model, x, target=None, window=None, stride=None, fill: float = 0.0,
              batch_size: int = 64) -> np.ndarray:
    """Occlusion sensitivity (Zeiler & Fergus 2014), (N, H, W), signed.

    For every position of a ``window`` (int or (h, w); default :func:`default_window`, 1/14
    of the image) slid by ``stride`` (default: half the window) over the image,
    the window in all channels is set to ``fill`` (model space: 0 is the mean image) and the
    drop p(target | x) - p(target | occluded x) of the softmax probability is recorded; each
    pixel gets the mean drop over the windows covering it. Positive where hiding the pixel
    hurts the class, negative where it helps. The occluded copies are run in batches of
    ``batch_size``.
    """
    model, x, _ = resolve(model, x)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    batch_size = batch_limit(x.shape[1:], batch_size, forward_only=True)
    auto_window, auto_stride = default_window(x.shape[2:])
    window = auto_window if window is None else _positive_pair(window, "window")
    stride = auto_stride if stride is None else _positive_pair(stride, "stride")
    fill = check_real(fill, "fill")
    n, _, h, w = x.shape
    if window[0] > h or window[1] > w:
        raise ValueError(f"window {window} is larger than the images ({h}, {w})")
    corners = np.array([(top, left) for top in _window_starts(h, window[0], stride[0])
                        for left in _window_starts(w, window[1], stride[1])])      # (P, 2)
    coverage = np.zeros((h, w))
    for top, left in corners:
        coverage[top:top + window[0], left:left + window[1]] += 1
    targets = check_target(target, n)
    total = np.zeros((n, h * w), dtype=np.float64)
    image_of, corner_of = np.repeat(np.arange(n), len(corners)), np.tile(np.arange(len(corners)), n)
    with evaluation_mode(model):
        logits = predict(model, x, batch_size)                                     # (N, K)
        targets = logits.argmax(axis=1) if targets is None else targets
        check_classes(logits, targets)
        clean = softmax(logits)[np.arange(n), targets]                             # (N,)
        for s in batches(len(image_of), batch_size):
            rows = image_of[s]
            mask = np.zeros((len(rows), h, w), dtype=bool)                         # (B, H, W)
            for j, (top, left) in enumerate(corners[corner_of[s]]):
                mask[j, top:top + window[0], left:left + window[1]] = True
            occluded = np.where(mask[:, None], x.dtype.type(fill), x[rows])        # (B, C, H, W)
            prob = softmax(model.forward(occluded))[np.arange(len(rows)), targets[rows]]
            drop = (clean[rows] - prob).astype(np.float64)
            accumulate(total, rows, drop[:, None] * mask.reshape(len(rows), -1))
    return (total.reshape(n, h, w) / coverage).astype(x.dtype)
