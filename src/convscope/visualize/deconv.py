"""Reconstruction by deconvolution (notes §3): Zeiler & Fergus's deconvnet.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks" (ECCV 2014), §2.1:
to see what excites one activation of a layer, keep it, set every other activation of the
layer to zero, and send that map back to pixel space through a "deconvnet" attached to the
network: max-unpooling that puts each value at the location the forward pass's max came
from (the recorded *switches*), rectification of the signal going back, and filtering with
the transposed filters.

In convscope that *is* the model's own backward pass with the ReLUs switched to the
"deconvnet" rule (:class:`~convscope.layers.ReLU`): MaxPool2d.backward routes to the
recorded arg-max (the switches), Conv2d.backward correlates with the flipped filters (the
transposed convolution), and ReLU.backward becomes max(dy, 0). The probe seeds that
backward at any named layer of any model (:func:`~convscope.visualize.probe.backprop_from`),
so nothing here depends on how the model is built.

Because every backward step only spreads a value over the inputs its forward window read,
the projection of one activation is zero outside that activation's receptive field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_int
from .core import batch_limit, batches, check_layer, last_conv, resolve
from .probe import backprop_from, evaluation_mode, layer_output

__all__ = ["DeconvResult", "deconv"]


@dataclass
class DeconvResult:
    """Deconvnet projections of N images at one layer.

    ``projections`` (N, C, H, W): the pixel-space projections, signed and unscaled (the
    model-space input's shape and dtype; render with a symmetric colour map or rescale per
    image, :func:`~convscope.visualize.display.to_display`).
    ``units`` (N,): the channel (conv layer) or feature (linear layer) of the strongest kept
    activation. ``positions`` (N, 2): its (row, col) in the layer's output map, or None for
    a layer whose output has no spatial axes. ``activations`` (N,): its value.
    """

    layer: str
    projections: np.ndarray
    units: np.ndarray
    positions: np.ndarray | None
    activations: np.ndarray


def _check_selection(layer: str, out_shape: tuple[int, ...], unit, top: int) -> None:
    """Unit and top against the layer's output (C, H, W) or (F,)."""
    if len(out_shape) not in (1, 3):
        raise ValueError(f"deconv needs a layer whose output is (C, H, W) or (features,); layer "
                         f"{layer!r} gives {out_shape}")
    if unit is not None:
        unit = check_int(unit, "unit", minimum=0)
        if unit >= out_shape[0]:
            kind = "channels" if len(out_shape) == 3 else "features"
            raise ValueError(f"unit {unit} is out of range: layer {layer!r} has {out_shape[0]} {kind} "
                             f"(0..{out_shape[0] - 1})")
    candidates = int(np.prod(out_shape[1:])) if unit is not None else int(np.prod(out_shape))
    if top > candidates:
        what = f"unit {unit} of layer {layer!r}" if unit is not None else f"layer {layer!r}"
        raise ValueError(f"top={top} is more than the {candidates} activation(s) of {what}")


def _select(out: np.ndarray, unit: int | None, top: int):
    """Mask of the kept activations of each image, and (unit, flat spatial index, value) of
    the strongest, for a layer output ``out`` (n, C, H, W) or (n, F)."""
    n, c = out.shape[:2]
    spatial = int(np.prod(out.shape[2:]))                  # H*W, or 1 for a linear layer
    flat = out.reshape(n, c * spatial)
    if unit is None:
        offset, scores = 0, flat
    else:
        offset, scores = unit * spatial, flat[:, unit * spatial:(unit + 1) * spatial]
    if top == 1:
        order = np.argmax(scores, axis=1)[:, None]                               # (n, 1)
    else:
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top]              # (n, top), strongest first
    kept = order + offset                                                        # flat indices into (C*H*W)
    mask = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(mask, kept, True, axis=1)
    best = kept[:, 0]
    value = flat[np.arange(n), best]
    return mask.reshape(out.shape), best // spatial, best % spatial, value


def deconv(model, x, layer: str | None = None, unit: int | None = None, top: int = 1,
           batch_size: int = 64) -> DeconvResult:
    """Zeiler & Fergus deconvnet projections of one activation per image at ``layer``.

    ``model`` a Classifier with raw images x, or a Module with model-space images x
    (N, C, H, W); ``layer`` a dotted name (see ``convscope summary``; "" is the logits;
    default: the last convolution). For each image the strongest activation of channel
    ``unit`` (or of the whole layer when ``unit`` is None) is kept at its value and every
    other activation of the layer is set to zero; that map is projected back to pixels by the model's backward
    pass with the "deconvnet" ReLU rule, in evaluation mode. ``top`` > 1 keeps the ``top``
    strongest activations of the channel (or of the layer, possibly in several channels)
    together, in one projection; ``units``, ``positions`` and ``activations`` then describe
    the strongest of them. A linear layer's "channel" is one feature, so there ``top`` must
    be 1 when ``unit`` is given. Images go through in batches of ``batch_size``.
    """
    model, x, _ = resolve(model, x)
    layer = last_conv(model) if layer is None else check_layer(model, layer)
    top = check_int(top, "top", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    batch_size = batch_limit(x.shape[1:], batch_size)
    n = x.shape[0]
    projections = np.empty_like(x)
    units = np.empty(n, dtype=np.int64)
    flat_pos = np.empty(n, dtype=np.int64)
    activations = np.empty(n, dtype=x.dtype)
    with evaluation_mode(model):
        out_shape = layer_output(model, x[:1], layer).shape[1:]
        _check_selection(layer, out_shape, unit, top)
        for part in batches(n, batch_size):
            chosen = {}

            def seed(out: np.ndarray) -> np.ndarray:
                mask, chosen["unit"], chosen["pos"], chosen["value"] = _select(out, unit, top)
                return np.where(mask, out, 0).astype(out.dtype, copy=False)

            dx, _ = backprop_from(model, x[part], layer, seed, rule="deconvnet")
            projections[part] = dx
            units[part], flat_pos[part], activations[part] = chosen["unit"], chosen["pos"], chosen["value"]
    positions = None
    if len(out_shape) == 3:
        positions = np.stack(np.divmod(flat_pos, out_shape[2]), axis=1)       # (N, 2) (row, col)
    return DeconvResult(layer, projections, units, positions, activations)
