"""What a layer learned and how it responds (notes §3, issue #5 techniques 1 and 2).

- :func:`filter_grid`: the filters of a convolution as images. The notes warn that this
  "only works in the first layer": there a filter lives in pixel space (edge and blob
  detectors, Krizhevsky et al. 2012, Fig. 3); deeper filters act on feature maps and show
  little to the eye.
- :func:`feature_maps`: the activations of any named layer for a batch of images.
- :func:`sparsity`: the fraction of exactly-zero activations per layer, which the notes say
  grows with depth (Zeiler & Fergus 2014 visualise the same effect).

Every function takes images ``x`` (N, C, H, W) already in model space (normalised), runs
the model in evaluation mode and in batches of at most ``batch_size`` images, so memory
stays bounded by one batch's activations plus the result. Layers are addressed by the
dotted names of ``model.named_modules()`` ("conv1", "layer2.1.relu2"); no model structure
is assumed.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..layers import Conv2d, Module, ReLU
from .checks import check_images, check_int
from .probe import (_Stop, evaluation_mode, find_layer, layer_output, layers_of_type,
                    leaf_layer_names, probe)

__all__ = ["FilterGrid", "filter_grid", "feature_maps", "SparsityRow", "sparsity"]


# -- argument checks shared by features, neighbors and dissect --------------------------
def _check_layer(model: Module, layer) -> str:
    """A layer name that exists in ``model`` (ValueError listing the names otherwise)."""
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a dotted layer name (str), got {layer!r}")
    find_layer(model, layer)
    return layer


def _batches(model: Module, x: np.ndarray, layer: str,
             batch_size: int) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, output of ``layer`` for x[rows]) batch by batch, in evaluation mode."""
    with evaluation_mode(model):
        for start in range(0, len(x), batch_size):
            rows = slice(start, min(start + batch_size, len(x)))
            yield rows, layer_output(model, x[rows], layer)


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


def _unit_range(tiles: np.ndarray) -> np.ndarray:
    """Scale each tile (first axis) to [0, 1] independently; constant tiles become 0.5."""
    flat = tiles.reshape(len(tiles), -1)
    low = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - low
    scaled = np.where(span > 0, (flat - low) / np.where(span > 0, span, 1.0), 0.5)
    return scaled.reshape(tiles.shape)


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


def filter_grid(model: Module, layer: str | None = None, pad: int = 1) -> FilterGrid:
    """The filters of ``layer`` (default: the first Conv2d in forward order) as images.

    The weight (F, C, KH, KW) is shown as it is for C == 1 (grayscale) or C == 3 (RGB, the
    channels taken as red, green, blue); for any other C (a deeper layer, or a two-channel
    input) each filter is shown as the mean over its C input channels, a grayscale summary
    that loses what the channels do separately. See :class:`FilterGrid` for the layout.
    Raises ValueError naming the layer when it has no 4-D ``weight``.
    """
    pad = check_int(pad, "pad", minimum=0)
    if layer is None:
        convs = layers_of_type(model, Conv2d)
        if not convs:
            raise ValueError("the model has no Conv2d layer; pass layer= naming one with a 4-D weight")
        layer = convs[0]
    module = find_layer(model, _check_layer(model, layer))
    weight = module.params.get("weight")
    if weight is None or weight.ndim != 4:
        got = "no weight" if weight is None else f"a weight of shape {weight.shape}"
        raise ValueError(f"layer {layer!r} ({type(module).__name__}) has {got}; "
                         f"filter_grid needs a convolution with a 4-D (F, C, KH, KW) weight")
    w = np.asarray(weight, dtype=np.float64)
    if w.shape[1] == 3:
        tiles = _unit_range(w.transpose(0, 2, 3, 1))         # (F, KH, KW, 3)
    elif w.shape[1] == 1:
        tiles = _unit_range(w[:, 0])                          # (F, KH, KW)
    else:
        tiles = _unit_range(w.mean(axis=1))                   # (F, KH, KW), channel mean
    return FilterGrid(layer, np.array(weight), tiles, _tile(tiles, pad))


# -- 2. activations --------------------------------------------------------------------
def feature_maps(model: Module, x: np.ndarray, layer: str, batch_size: int = 128) -> np.ndarray:
    """The output of ``layer`` for images x (N, C, H, W): (N, C', H', W') for a convolution
    or pool, (N, F) for a fully-connected layer; the forward pass stops at ``layer``."""
    x = check_images(x)
    layer = _check_layer(model, layer)
    batch_size = check_int(batch_size, "batch_size")
    out = None
    for rows, y in _batches(model, x, layer, batch_size):
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


def _completion_order(model: Module) -> dict[str, int]:
    """For every module name, the depth-first position at which its forward has finished:
    a container finishes with its last descendant."""
    names = [name for name, _ in model.named_modules()]
    order = {}
    for i, name in enumerate(names):
        order[name] = i
        prefix = name.rsplit(".", 1)[0] if "." in name else ""
        while True:                              # every ancestor finishes no earlier
            order[prefix] = i
            if not prefix:
                break
            prefix = prefix.rsplit(".", 1)[0] if "." in prefix else ""
    return order


def _probe_outputs(model: Module, x: np.ndarray, layers: list[str]) -> list[np.ndarray]:
    """Outputs of several layers from one forward pass, stopped after the last of them."""
    order = _completion_order(model)
    last = max(layers, key=lambda name: order[name])
    with ExitStack() as stack:
        probes = [stack.enter_context(probe(model, name)) for name in layers]
        probes[layers.index(last)].stop_after_forward = True
        try:
            model.forward(x)
        except _Stop:
            pass
        if any(p.output is None for p in probes):   # a model that runs out of name order
            probes[layers.index(last)].stop_after_forward = False
            model.forward(x)
        return [p.output for p in probes]


def sparsity(model: Module, x: np.ndarray, layers: list[str] | None = None,
             batch_size: int = 128) -> list[SparsityRow]:
    """Fraction of exactly-zero activations of each layer over images x (N, C, H, W).

    ``layers`` defaults to every leaf ReLU (:class:`convscope.layers.ReLU`) in forward
    order, or every leaf layer when the model has no ReLU. All layers are measured in one
    forward pass per batch (several probes at once). Returns one :class:`SparsityRow` per
    layer, in the order given; the notes' claim is that the fraction grows with depth.
    """
    x = check_images(x)
    batch_size = check_int(batch_size, "batch_size")
    if layers is None:
        layers = layers_of_type(model, ReLU) or leaf_layer_names(model)
    if isinstance(layers, str) or not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError(f"layers must be a non-empty list of layer names, got {layers!r}")
    layers = [_check_layer(model, name) for name in layers]
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers must not repeat a name, got {layers!r}")
    zeros = np.zeros(len(layers), dtype=np.int64)
    shapes: list[tuple[int, ...]] = []
    with evaluation_mode(model):
        for start in range(0, len(x), batch_size):
            outputs = _probe_outputs(model, x[start:start + batch_size], list(layers))
            shapes = [tuple(int(s) for s in out.shape[1:]) for out in outputs]
            zeros += [out.size - np.count_nonzero(out) for out in outputs]
    rows = []
    for name, shape, count in zip(layers, shapes, zeros):
        total = len(x) * int(np.prod(shape))
        rows.append(SparsityRow(name, type(find_layer(model, name)).__name__, shape,
                                float(count) / total))
    return rows
