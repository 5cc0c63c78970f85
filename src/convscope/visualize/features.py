"""What a layer learned and how it responds (notes §3: filters, activations).

- :func:`filter_grid`: the filters of a convolution as images. The notes warn that this
  "only works in the first layer": there a filter lives in pixel space (edge and blob
  detectors, Krizhevsky et al. 2012, Fig. 3); deeper filters act on feature maps and show
  little to the eye.
- :func:`feature_maps`: the activations of any named layer for a batch of images.
- :func:`sparsity`: the fraction of exactly-zero activations per layer, which the notes say
  grows with depth (Zeiler & Fergus 2014 visualise the same effect).

Every function takes a Classifier with raw images, or a Module with images ``x`` (N, C, H, W)
already in model space (:func:`~convscope.visualize.core.resolve`), runs the model in
evaluation mode and in batches of at most ``batch_size`` images, so memory stays bounded by
one batch's activations plus the result. Layers are addressed by the dotted names of
``model.named_modules()`` ("conv1", "layer2.1.relu2"); no model structure is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..layers import ReLU
from ..validation import check_int
from .core import (batch_limit, batches, check_layer, find_layer, first_conv, layers_of_type,
                   leaf_layer_names, resolve)
from .display import scale_each
from .probe import evaluation_mode, layer_batches, layer_outputs

__all__ = ["FilterGrid", "filter_grid", "feature_maps", "SparsityRow", "sparsity"]


# -- 1. filters ----------------------------------------------------------------------
@dataclass
class FilterGrid:
    """The filters of one layer, raw and ready to display.

    ``weights``: (F, C, KH, KW) as stored. ``tiles``: (F, KH, KW) grayscale, or
    (F, KH, KW, 3) RGB when C == 3, each filter min-max scaled to [0, 1] on its own (a
    constant filter shows as 0.5). ``grid``: one image (rows*KH + (rows-1)*pad,
    cols*KW + (cols-1)*pad) [, 3] with cols = ceil(sqrt(F)), rows = ceil(F / cols), the
    tiles in row-major order, separators and unused cells at 1.0 (white).
    """

    layer: str
    weights: np.ndarray
    tiles: np.ndarray
    grid: np.ndarray


def _tile(tiles: np.ndarray, pad: int) -> np.ndarray:
    """Tiles (F, KH, KW[, 3]) in [0, 1] -> one image with ``pad``-pixel white separators."""
    f, kh, kw = tiles.shape[:3]
    cols = int(np.ceil(np.sqrt(f)))
    rows = int(np.ceil(f / cols))
    grid = np.ones((rows * kh + (rows - 1) * pad, cols * kw + (cols - 1) * pad) + tiles.shape[3:])
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        top, left = r * (kh + pad), c * (kw + pad)
        grid[top:top + kh, left:left + kw] = tile
    return grid


def filter_grid(model, layer: str | None = None, pad: int = 1) -> FilterGrid:
    """The filters of ``layer`` (default: the first Conv2d in forward order) as images.

    The weight (F, C, KH, KW) is shown as it is for C == 1 (grayscale) or C == 3 (RGB, the
    channels taken as red, green, blue); for any other C (a deeper layer, or a two-channel
    input) each filter is shown as the mean over its C input channels, a grayscale summary
    that loses what the channels do separately. See :class:`FilterGrid` for the layout.
    Raises ValueError naming the layer when it has no 4-D ``weight``.
    """
    model, _, _ = resolve(model, images_needed=False)
    pad = check_int(pad, "pad", minimum=0)
    layer = first_conv(model) if layer is None else check_layer(model, layer)
    module = find_layer(model, layer)
    weight = module.params.get("weight")
    if weight is None or weight.ndim != 4:
        got = "no weight" if weight is None else f"a weight of shape {weight.shape}"
        raise ValueError(f"layer {layer!r} ({type(module).__name__}) has {got}; "
                         f"filter_grid needs a convolution with a 4-D (F, C, KH, KW) weight")
    w = np.asarray(weight, dtype=np.float64)
    if w.shape[1] == 3:
        tiles = _scale_filters(w.transpose(0, 2, 3, 1))         # (F, KH, KW, 3)
    elif w.shape[1] == 1:
        tiles = _scale_filters(w[:, 0])                          # (F, KH, KW)
    else:
        tiles = _scale_filters(w.mean(axis=1))                   # (F, KH, KW), channel mean
    return FilterGrid(layer, np.array(weight), tiles, _tile(tiles, pad))


def _scale_filters(w: np.ndarray) -> np.ndarray:
    """Each filter (first axis) scaled to [0, 1] on its own; a constant filter shows as 0.5."""
    return scale_each(w, constant=0.5)


# -- 2. activations --------------------------------------------------------------------
def feature_maps(model, x, layer: str | None = None, batch_size: int = 128) -> np.ndarray:
    """The output of ``layer`` (default: the first convolution) for images x (N, C, H, W):
    (N, C', H', W') for a convolution or pool, (N, F) for a fully-connected layer; the
    forward pass stops at ``layer``."""
    model, x, _ = resolve(model, x)
    layer = first_conv(model) if layer is None else check_layer(model, layer)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    batch_size = batch_limit(x.shape[1:], batch_size, forward_only=True)
    out = None
    for rows, y in layer_batches(model, x, layer, batch_size):
        if out is None:
            out = np.empty((len(x),) + y.shape[1:], dtype=y.dtype)
        out[rows] = y
    return out


@dataclass
class SparsityRow:
    """One layer's sparsity: ``fraction_zero`` of the activations (over all images and all
    output positions) that are exactly 0; ``shape`` is one image's output shape."""

    layer: str
    type: str
    shape: tuple[int, ...]
    fraction_zero: float


def sparsity(model, x, layers: list[str] | None = None, batch_size: int = 128) -> list[SparsityRow]:
    """Fraction of exactly-zero activations of each layer over images x (N, C, H, W).

    ``layers`` defaults to every leaf ReLU (:class:`convscope.layers.ReLU`) in forward
    order, or every leaf layer when the model has no ReLU. All layers are measured in one
    forward pass per batch (a forward hook on each, the pass ended once all have run).
    Returns one :class:`SparsityRow` per layer, in the order given; the notes' claim is
    that the fraction grows with depth.
    """
    model, x, _ = resolve(model, x)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    batch_size = batch_limit(x.shape[1:], batch_size, forward_only=True)
    if layers is None:
        layers = layers_of_type(model, ReLU) or leaf_layer_names(model)
    if isinstance(layers, str) or not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError(f"layers must be a non-empty list of layer names, got {layers!r}")
    layers = [check_layer(model, name) for name in layers]
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers must not repeat a name, got {layers!r}")
    zeros = np.zeros(len(layers), dtype=np.int64)
    shapes: list[tuple[int, ...]] = []
    with evaluation_mode(model):
        for rows in batches(len(x), batch_size):
            outputs = layer_outputs(model, x[rows], list(layers))
            shapes = [tuple(int(s) for s in out.shape[1:]) for out in outputs]
            zeros += [out.size - np.count_nonzero(out) for out in outputs]
    rows = []
    for name, shape, count in zip(layers, shapes, zeros):
        total = len(x) * int(np.prod(shape))
        rows.append(SparsityRow(name, type(find_layer(model, name)).__name__, shape,
                                float(count) / total))
    return rows
