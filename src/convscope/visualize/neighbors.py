"""Nearest neighbours in feature space versus pixel space (notes §3).

The notes: look at "the feature map before a fully connected layer by conducting a nearest
neighbor search in feature space"; in pixel space "an elephant on the left side of the image
would not be a neighbor of an elephant on the right side of the image, but in a
translation-invariant feature space these pictures might be neighbors" (Krizhevsky et al.
2012, §6.1, Fig. 4 do the same search with the last hidden layer).

- :func:`nearest_neighbors`: the k nearest training images of each query, in the feature
  space of a layer and in pixel space, and how often they share the query's label.
- :func:`translation_example`: how far an image moves from its shifted copy, in pixels and in
  features, each relative to the typical distance between two different images.

Default layer: the output of the leaf layer just before the first ``Linear`` in forward order
(:func:`~convscope.visualize.probe.feature_layer`): "flatten" in LeNet-5, the global average
pool of a ResNet. Images are raw images with a Classifier, or (N, C, H, W) floats in model
space (normalised) with a Module; pixel distances are taken in model space, features are
flattened to vectors. Distances are Euclidean, computed in float64 as
||a||^2 + ||b||^2 - 2 a.b with one matrix product per batch of ``batch_size`` training images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_bool, check_float_images, check_int, check_real
from .core import batch_limit, check_layer, feature_layer, model_space, resolve
from .features import feature_maps
from .probe import layer_batches

__all__ = ["NeighborResult", "nearest_neighbors", "TranslationResult", "translation_example",
           "shift_images"]


@dataclass
class NeighborResult:
    """The k nearest training images of Q queries, nearest first.

    ``feature_indices`` / ``pixel_indices``: (Q, k) rows of the training set;
    ``feature_distances`` / ``pixel_distances``: (Q, k) Euclidean distances (float64), each
    row ascending, equal distances by training index (which of several images tied at the
    k-th place is kept is not specified). An image's distance to itself comes out near, not
    exactly, 0 (about 1e-5 in feature space): rounding in the expansion, and a layer's output
    can change in the last bits with the batch it is computed in.
    ``feature_agreement`` / ``pixel_agreement``: the fraction of the k neighbours whose label
    equals the query's, averaged over queries; None when no query labels were given.
    """

    layer: str
    k: int
    feature_indices: np.ndarray
    feature_distances: np.ndarray
    pixel_indices: np.ndarray
    pixel_distances: np.ndarray
    feature_agreement: float | None
    pixel_agreement: float | None


def _flat64(a: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, D) float64."""
    return np.asarray(a, dtype=np.float64).reshape(len(a), -1)


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)) between rows of a and b (float64),
    ||a||^2 + ||b||^2 - 2 a b^T in one GEMM, clipped at 0 against rounding."""
    d2 = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0, out=d2)


def _labels(y, n: int, name: str) -> np.ndarray:
    """Integer labels (n,); ValueError naming ``name`` otherwise."""
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be {n} integer labels (shape ({n},)), "
                         f"got {y.dtype} array of shape {y.shape}")
    return y


def _keep_k(dist: np.ndarray, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest entries of each row of dist (Q, M >= k), with their indices, unsorted."""
    if dist.shape[1] > k:
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        dist, index = np.take_along_axis(dist, part, 1), np.take_along_axis(index, part, 1)
    return dist, index


def _sorted(dist: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row ordered by distance, ties by training index; distances square-rooted."""
    order = np.lexsort((index, dist), axis=1)
    return np.sqrt(np.take_along_axis(dist, order, 1)), np.take_along_axis(index, order, 1)


def _same_images(q: np.ndarray, t: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """(Q, B) mask of query/training pairs that are identical images. Candidates are pairs
    whose squared pixel distance is within rounding of 0; each is confirmed exactly."""
    scale = (q * q).sum(axis=1)[:, None] + (t * t).sum(axis=1)[None, :]
    mask = d2 <= 1e-9 * np.maximum(scale, 1.0)
    for i, j in zip(*np.nonzero(mask)):
        mask[i, j] = np.array_equal(q[i], t[j])
    return mask


def nearest_neighbors(model, train_x, train_y, query_x, query_y=None, layer: str | None = None,
                      k: int = 5, batch_size: int = 128, exclude_self: bool = False) -> NeighborResult:
    """The k nearest training images of each query, in feature space and in pixel space.

    train_x (N, C, H, W) with labels train_y (N,); query_x (Q, C, H, W) with optional labels
    query_y (Q,). ``layer`` defaults to the feature space before the first fully-connected
    layer (see the module docstring). A query that is itself in the training set is its own
    nearest neighbour at distance 0 unless ``exclude_self`` is True, which drops, for each
    query, the training images identical to it (pixel for pixel) from both searches.
    Training images are processed ``batch_size`` at a time, keeping a running top-k
    (np.argpartition), so memory is O(Q * (k + batch_size) + Q * D) for D-dim features.
    """
    model, query_x, clf = resolve(model, query_x, name="query_x")
    train_x = model_space(clf, train_x, "train_x")
    if train_x.shape[1:] != query_x.shape[1:]:
        raise ValueError(f"train_x and query_x must hold images of one shape, got "
                         f"{train_x.shape[1:]} and {query_x.shape[1:]}")
    train_y = _labels(train_y, len(train_x), "train_y")
    if query_y is not None:
        query_y = _labels(query_y, len(query_x), "query_y")
    k = check_int(k, "k", minimum=1, maximum=len(train_x))
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    batch_size = batch_limit(query_x.shape[1:], batch_size, forward_only=True)
    exclude_self = check_bool(exclude_self, "exclude_self")
    layer = feature_layer(model) if layer is None else check_layer(model, layer)

    q_feat = _flat64(feature_maps(model, query_x, layer, batch_size))    # (Q, D)
    q_pix = _flat64(query_x)                                              # (Q, C*H*W)
    n_q = len(query_x)
    best = {kind: (np.full((n_q, 0), np.inf), np.zeros((n_q, 0), dtype=np.int64))
            for kind in ("feature", "pixel")}
    for rows, out in layer_batches(model, train_x, layer, batch_size):
        t_pix = _flat64(train_x[rows])
        d2 = {"feature": _sq_distances(q_feat, _flat64(out)), "pixel": _sq_distances(q_pix, t_pix)}
        if exclude_self:
            same = _same_images(q_pix, t_pix, d2["pixel"])
            for kind in d2:
                d2[kind][same] = np.inf
        index = np.broadcast_to(np.arange(rows.start, rows.stop), (n_q, rows.stop - rows.start))
        for kind, (dist, idx) in best.items():
            best[kind] = _keep_k(np.concatenate([dist, d2[kind]], axis=1),
                                 np.concatenate([idx, index], axis=1), k)
    if np.isinf(best["pixel"][0]).any():
        raise ValueError(f"k={k} neighbours asked for, but after exclude_self some queries have "
                         f"fewer than {k} training images left")
    f_dist, f_idx = _sorted(*best["feature"])
    p_dist, p_idx = _sorted(*best["pixel"])
    agree = (None, None)
    if query_y is not None:
        agree = tuple(float((train_y[idx] == query_y[:, None]).mean()) for idx in (f_idx, p_idx))
    return NeighborResult(layer, k, f_idx, f_dist, p_idx, p_dist, *agree)


# -- the translation example ---------------------------------------------------------------
@dataclass
class TranslationResult:
    """Each image against its shifted copy, in pixel space and in the feature space of ``layer``.

    ``pixel_distances`` / ``feature_distances``: (N,) Euclidean distance between image n and
    its copy shifted by ``shift`` = (down, right) pixels. ``pixel_scale`` / ``feature_scale``:
    the median distance between two different reference images in that space.
    ``pixel_relative`` / ``feature_relative``: (N,) the distances divided by the scale (1 means
    "as far as a typical other image"), with their medians in ``*_relative_median``.
    """

    layer: str
    shift: tuple[int, int]
    pixel_distances: np.ndarray
    feature_distances: np.ndarray
    pixel_scale: float
    feature_scale: float
    pixel_relative: np.ndarray
    feature_relative: np.ndarray
    pixel_relative_median: float
    feature_relative_median: float


def _check_shift(shift, height: int, width: int) -> tuple[int, int]:
    """An int (a horizontal shift) or a (down, right) pair, smaller than the image."""
    pair = (0, shift) if isinstance(shift, (int, np.integer)) and not isinstance(shift, bool) else shift
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in pair)):
        raise TypeError(f"shift must be an int (pixels to the right) or a (down, right) pair of ints, "
                        f"got {shift!r}")
    dy, dx = int(pair[0]), int(pair[1])
    if abs(dy) >= height or abs(dx) >= width:
        raise ValueError(f"shift must be smaller than the image ({height}x{width}), got {shift!r}")
    return dy, dx


def shift_images(x: np.ndarray, shift, fill: float | None = None) -> np.ndarray:
    """Copies of images x (N, C, H, W) moved ``shift`` pixels: an int moves them right (left if
    negative), a pair (down, right) moves them in both directions. Uncovered pixels take
    ``fill``, by default each image's minimum (its background, in model space)."""
    x = check_float_images(x, "x")
    dy, dx = _check_shift(shift, x.shape[2], x.shape[3])
    if fill is None:
        out = np.broadcast_to(x.min(axis=(1, 2, 3), keepdims=True), x.shape).copy()
    else:
        out = np.full_like(x, check_real(fill, "fill"))
    h, w = x.shape[2:]
    src_y, dst_y = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
    src_x, dst_x = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
    out[:, :, dst_y, dst_x] = x[:, :, src_y, src_x]
    return out


def _median_pairwise(a: np.ndarray, batch_size: int) -> float:
    """Median Euclidean distance over all pairs i < j of the rows of a (R, D); the R(R-1)/2
    distances are kept, so R should be a few hundred to a few thousand."""
    parts = []
    for start in range(0, len(a), batch_size):
        d2 = _sq_distances(a[start:start + batch_size], a)                   # (B, R)
        rows, cols = np.nonzero(np.arange(len(a))[None, :] > np.arange(start, start + len(d2))[:, None])
        parts.append(d2[rows, cols])
    return float(np.sqrt(np.median(np.concatenate(parts))))


def translation_example(model, images, shift, layer: str | None = None, reference=None,
                        fill: float | None = None, batch_size: int = 128) -> TranslationResult:
    """How far images move when shifted, in pixel space and in feature space.

    ``images`` (and ``reference``) are raw images with a Classifier, model-space (N, C, H, W)
    floats with a Module; ``fill`` and the distances are in model space.

    Each image is compared with its copy shifted by ``shift`` (see :func:`shift_images`;
    background ``fill`` defaults to each image's minimum). Both distances are divided by the
    median distance between two different images of ``reference`` (default: ``images``,
    which then needs N >= 2), so the two spaces become comparable. The notes' claim: relative
    to other images, a shifted copy is far in pixel space but near in a translation-invariant
    feature space. ``layer`` defaults as in :func:`nearest_neighbors`.
    """
    model, images, clf = resolve(model, images, name="images")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    batch_size = batch_limit(images.shape[1:], batch_size, forward_only=True)
    layer = feature_layer(model) if layer is None else check_layer(model, layer)
    reference = images if reference is None else model_space(clf, reference, "reference")
    if reference.shape[1:] != images.shape[1:]:
        raise ValueError(f"reference images must have the shape of images, {images.shape[1:]}, "
                         f"got {reference.shape[1:]}")
    if len(reference) < 2:
        raise ValueError(f"the typical distance needs at least 2 reference images, got {len(reference)}")
    shifted = shift_images(images, shift, fill)
    dy, dx = _check_shift(shift, *images.shape[2:])
    feats = [_flat64(feature_maps(model, a, layer, batch_size)) for a in (images, shifted)]
    pixel = np.linalg.norm(_flat64(images) - _flat64(shifted), axis=1)
    feature = np.linalg.norm(feats[0] - feats[1], axis=1)
    ref_feats = feats[0] if reference is images else _flat64(feature_maps(model, reference, layer, batch_size))
    pixel_scale = _median_pairwise(_flat64(reference), batch_size)
    feature_scale = _median_pairwise(ref_feats, batch_size)
    for name, scale in (("pixel", pixel_scale), ("feature", feature_scale)):
        if not scale > 0:
            raise ValueError(f"the reference images are all identical in {name} space "
                             f"(median distance {scale}); pass more varied reference images")
    pixel_rel, feature_rel = pixel / pixel_scale, feature / feature_scale
    return TranslationResult(layer, (dy, dx), pixel, feature, pixel_scale, feature_scale,
                             pixel_rel, feature_rel, float(np.median(pixel_rel)),
                             float(np.median(feature_rel)))
