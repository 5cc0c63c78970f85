"""One unit of one layer, explained: where it looks and the sum behind its value.

- :func:`receptive_box`: the box of input pixels a unit sees, from the receptive field,
  jump and start that :func:`convscope.summary.summarize` computes (notes §2):
  unit (i, j) of a layer is centred on input pixel ``start + (i, j) * jump`` and sees
  ``receptive_field`` pixels around it per axis.
- :func:`conv_sum`: the notes' sum for one Conv2d output,
  ``L[c, i, j] = sum_{k, a, b} I_k[i*s + a - p, j*s + b - p] G_{c,k}[a, b] + bias_c``, spelled
  out: the input window (C_in/groups, KH, KW), the kernel, their products, the bias and the
  total, checked against the activation the layer computed.
- :func:`pool_window`: a max-pool's window and its arg-max (the "switch" the backward pass
  routes to, first maximum in row-major order on ties), or an average pool's mean.
- :func:`linear_sum`: a fully connected unit as weights . input + bias, with the largest
  contributions.

Every function takes one image's layer input (no batch axis) and returns plain Python
numbers and lists, ready for JSON.
"""

from __future__ import annotations

import numpy as np

from ..layers import AvgPool2d, Conv2d, Linear, MaxPool2d

__all__ = ["receptive_box", "conv_sum", "pool_window", "linear_sum", "explain_unit"]

TOP_CONTRIBUTIONS = 16      # how many of a fully connected unit's products are listed


def _tolerance(products: np.ndarray, bias: float) -> float:
    """How far a float32 layer's value may sit from the float64 sum: relative to the size
    of the terms, since float32 accumulation errs by about eps * sum |terms|."""
    return 1e-4 * (float(np.abs(products).sum()) + abs(bias)) + 1e-6


def receptive_box(row, position, image_size: tuple[int, int]) -> dict:
    """The input pixels unit ``position`` ((i, j), or None for a layer without spatial axes)
    of summary row ``row`` sees: inclusive ``top``, ``left``, ``bottom``, ``right`` (may
    reach past the image into the padding), the same box ``clipped`` to the image, its
    ``size`` (h, w), the layer's ``jump`` and the unit's ``centre`` (input coordinates,
    pixel centres at integers)."""
    h, w = image_size
    whole = position is None or len(row.output_shape) != 3
    if whole:
        top, left, bottom, right = 0, 0, h - 1, w - 1
        size, centre = [h, w], [(h - 1) / 2, (w - 1) / 2]
    else:
        (rh, rw), (jh, jw), (sh, sw) = row.receptive_field, row.jump, row.start
        i, j = position
        centre = [sh + i * jh, sw + j * jw]
        top, left = int(round(centre[0] - (rh - 1) / 2)), int(round(centre[1] - (rw - 1) / 2))
        bottom, right = top + rh - 1, left + rw - 1
        size = [rh, rw]
    clipped = [max(top, 0), max(left, 0), min(bottom, h - 1), min(right, w - 1)]
    return {"top": top, "left": left, "bottom": bottom, "right": right,
            "clipped": {"top": clipped[0], "left": clipped[1], "bottom": clipped[2], "right": clipped[3]},
            "size": size, "jump": list(row.jump), "centre": centre, "whole": whole}


def _window(x: np.ndarray, channels: slice, top: int, left: int, kh: int, kw: int,
            fill: float) -> tuple[np.ndarray, np.ndarray]:
    """x[channels, top:top+kh, left:left+kw] (x (C, H, W)) in float64, positions outside the
    input set to ``fill``; and the (kh, kw) mask of those outside (padding) positions."""
    c = len(range(*channels.indices(x.shape[0])))
    window = np.full((c, kh, kw), fill, dtype=np.float64)
    rows, cols = np.arange(top, top + kh), np.arange(left, left + kw)
    rin = (rows >= 0) & (rows < x.shape[1])
    cin = (cols >= 0) & (cols < x.shape[2])
    window[:, rin[:, None] & cin[None, :]] = \
        x[channels][:, rows[rin]][:, :, cols[cin]].reshape(c, -1).astype(np.float64)
    return window, ~(rin[:, None] & cin[None, :])


def conv_sum(conv: Conv2d, x: np.ndarray, value: float, channel: int, i: int, j: int) -> dict:
    """The notes' sum behind output (channel, i, j) of ``conv`` for its input x (C, H, W).

    Output group g = channel // (F / groups) sees input channels g*C/groups .. (g+1)*C/groups - 1
    only. Returns the ``window`` (C/groups, KH, KW) of the zero-padded input, the ``kernel``
    (the filter, same shape), ``products`` (window * kernel), per-input-channel
    ``channel_sums``, ``bias``, ``sum`` (of products, plus bias) and ``matches``: whether the
    sum equals ``value``, the activation the layer computed, to float32 accuracy.
    """
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    per_group_in = conv.in_channels // conv.groups
    group = channel // (conv.out_channels // conv.groups)
    first = group * per_group_in
    top, left = i * sh - ph, j * sw - pw
    window, padded = _window(x, slice(first, first + per_group_in), top, left, kh, kw, 0.0)
    kernel = np.asarray(conv.params["weight"][channel], dtype=np.float64)     # (C/groups, KH, KW)
    products = window * kernel
    bias = float(conv.params["bias"][channel]) if "bias" in conv.params else 0.0
    total = float(products.sum()) + bias
    return {"kind": "conv", "input_channels": [first, first + per_group_in - 1], "group": group,
            "groups": conv.groups, "rows": [top, top + kh - 1], "cols": [left, left + kw - 1],
            "stride": [sh, sw], "padding": [ph, pw], "padded": padded.tolist(),
            "window": window.tolist(), "kernel": kernel.tolist(), "products": products.tolist(),
            "channel_sums": products.sum(axis=(1, 2)).tolist(), "bias": bias, "sum": total,
            "value": float(value), "matches": bool(abs(total - value) <= _tolerance(products, bias))}


def pool_window(pool, x: np.ndarray, value: float, channel: int, i: int, j: int) -> dict:
    """The window behind output (channel, i, j) of a MaxPool2d or AvgPool2d, input x (C, H, W).

    Max-pool: padding (and a ceil-mode overhang) counts as -inf; ``argmax`` is the (row, col)
    of the first maximum in row-major window order, in input coordinates: where the
    backward pass sends the gradient. Average pool: the mean, with PyTorch's divisor rules.
    ``matches`` checks the recomputed value against the layer's.
    """
    (kh, kw), (sh, sw), (ph, pw) = pool.kernel_size, pool.stride, pool.padding
    top, left = i * sh - ph, j * sw - pw
    is_max = isinstance(pool, MaxPool2d)
    window, outside = _window(x, slice(channel, channel + 1), top, left, kh, kw, -np.inf if is_max else 0.0)
    window = window[0]                                                         # (KH, KW)
    out = {"kind": "maxpool" if is_max else "avgpool", "rows": [top, top + kh - 1],
           "cols": [left, left + kw - 1], "stride": [sh, sw], "padding": [ph, pw],
           "padded": outside.tolist(), "value": float(value),
           "window": np.where(np.isfinite(window), window, None).tolist()}
    if is_max:
        a, b = np.unravel_index(int(np.argmax(window)), window.shape)
        best = float(window[a, b])
        out.update(argmax=[top + int(a), left + int(b)], argmax_in_window=[int(a), int(b)], max=best,
                   matches=bool(abs(best - value) <= 1e-6 * max(1.0, abs(best))))
        return out
    rows, cols = np.arange(top, top + kh), np.arange(left, left + kw)
    in_padded = (((rows >= -ph) & (rows < x.shape[1] + ph))[:, None] & ((cols >= -pw) & (cols < x.shape[2] + pw))[None])
    count = int(in_padded.sum()) if pool.count_include_pad else int((~outside).sum())
    mean = float(window.sum()) / max(count, 1)
    out.update(count=count, mean=mean, matches=bool(abs(mean - value) <= _tolerance(window, 0.0)))
    return out


def linear_sum(linear: Linear, x: np.ndarray, value: float, unit: int) -> dict:
    """Fully connected unit ``unit`` for input x (in_features,): weights . x + bias, with the
    ``TOP_CONTRIBUTIONS`` largest products by magnitude (``top``: input index, input value,
    weight, product)."""
    xs = np.asarray(x, dtype=np.float64).reshape(-1)
    weights = np.asarray(linear.params["weight"][unit], dtype=np.float64)
    products = xs * weights
    bias = float(linear.params["bias"][unit]) if "bias" in linear.params else 0.0
    total = float(products.sum()) + bias
    order = np.argsort(-np.abs(products), kind="stable")[:TOP_CONTRIBUTIONS]
    return {"kind": "linear", "inputs": int(xs.size), "bias": bias, "sum": total, "value": float(value),
            "positive": float(products[products > 0].sum()), "negative": float(products[products < 0].sum()),
            "top": [{"index": int(k), "input": float(xs[k]), "weight": float(weights[k]),
                     "product": float(products[k])} for k in order],
            "matches": bool(abs(total - value) <= _tolerance(products, bias))}


def explain_unit(module, x: np.ndarray, y: np.ndarray, index: tuple[int, ...]) -> dict | None:
    """What :func:`conv_sum`, :func:`pool_window` or :func:`linear_sum` say about output
    ``index`` ((c, i, j) or (f,)) of ``module`` with input x (or a tuple of inputs, for a
    graph node reading several tensors) and output y, one image each; for a layer that acts
    per position (same input and output shapes) the input value(s) beside the output; None
    when nothing more can be said."""
    value = float(y[index])
    if isinstance(x, tuple):                      # a node reading several tensors (Add, Mul, Cat, ...)
        if all(t.shape == y.shape for t in x):
            return {"kind": "elementwise", "inputs": [float(t[index]) for t in x], "value": value}
        return None
    if isinstance(module, Conv2d) and len(index) == 3:
        return conv_sum(module, x, value, *index)
    if isinstance(module, (MaxPool2d, AvgPool2d)) and len(index) == 3:
        return pool_window(module, x, value, *index)
    if isinstance(module, Linear) and len(index) == 1 and x.ndim == 1:
        return linear_sum(module, x, value, index[0])
    if x.shape == y.shape:
        return {"kind": "elementwise", "input": float(x[index]), "value": value}
    return None
