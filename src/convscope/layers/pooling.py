"""Spatial and cross-channel pooling (notes §1.2) with the backward of §1.3.2.

Spatial pools sweep a (KH, KW) window with a stride that defaults to the window size, as
in the notes. Both loop over the KH*KW window offsets only; each offset is one strided
slice of the (padded) input, so overlapping windows (AlexNet's 3x3/2) need no special case.
``ceil_mode`` keeps a last, partial window as PyTorch does (GoogLeNet's pools): the input is
padded at the bottom and right by the window's overhang, which never counts as a pixel.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_int
from ._windows import chwn_empty, conv_out_size, offsets, pad_spatial
from .base import Module, as_pair, check_positive

__all__ = ["MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "CrossChannelPool"]


class _Pool2d(Module):
    """Window geometry shared by the spatial pools."""

    def __init__(self, kernel_size, stride=None, padding=0, *, ceil_mode: bool = False) -> None:
        super().__init__()
        kind = type(self).__name__
        self.kernel_size = as_pair(kernel_size, f"{kind}: kernel_size")
        self.stride = self.kernel_size if stride is None else as_pair(stride, f"{kind}: stride")
        self.padding = as_pair(padding, f"{kind}: padding")
        check_positive(self.kernel_size, f"{kind}: kernel_size")
        check_positive(self.stride, f"{kind}: stride")
        check_positive(self.padding, f"{kind}: padding", allow_zero=True)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{kind}: padding {self.padding} must be at most half the "
                             f"kernel size {self.kernel_size}")
        self.ceil_mode = bool(ceil_mode)
        self._cache = None

    def extra_repr(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", padding={self.padding}" if self.padding != (0, 0) else ""
        return s + (", ceil_mode=True" if self.ceil_mode else "")

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} expects (C, H, W) inputs, got {tuple(input_shape)}")
        c, h, w = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        what = type(self).__name__
        return (c, conv_out_size(h, kh, sh, ph, f"{what} height", self.ceil_mode),
                conv_out_size(w, kw, sw, pw, f"{what} width", self.ceil_mode))

    def _crop(self, dxp: np.ndarray, x_shape) -> np.ndarray:
        """Drop the padding (and any ceil-mode overhang) from a gradient of the padded input."""
        (ph, pw), (h, w) = self.padding, x_shape[2:]
        return dxp[:, :, ph:ph + h, pw:pw + w]

    def _geometry(self, x: np.ndarray):
        """The window offsets, and the (rows, columns) overhang past the padded input."""
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} expects a 4-D (N, C, H, W) input, got shape {x.shape}")
        _, oh, ow = self.output_shape(x.shape[1:])
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        extra = (max(0, (oh - 1) * sh + kh - x.shape[2] - 2 * ph),
                 max(0, (ow - 1) * sw + kw - x.shape[3] - 2 * pw))
        return list(offsets(kh, kw, sh, sw, oh, ow)), extra


class MaxPool2d(_Pool2d):
    """Max over each window: (N, C, H, W) -> (N, C, OH, OW). Padding counts as -inf."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        windows, extra = self._geometry(x)
        ph, pw = self.padding
        xp = pad_spatial(x, ph, pw, -np.inf, extra)
        best = idx = None
        for k, (_, _, rows, cols) in enumerate(windows):
            v = xp[:, :, rows, cols]
            if best is None:
                best = chwn_empty(v.shape, v.dtype)
                best[...] = v
                if self.training:
                    idx = np.zeros_like(best, dtype=_index_dtype(windows))
                continue
            if idx is not None:
                # Strict '>' keeps the first maximum on ties. Offsets come in increasing order,
                # so "idx = k where v wins" is max(idx, k * wins): branch-free, unlike np.where.
                wins = v > best
                np.maximum(idx, wins * idx.dtype.type(k), out=idx)
            np.maximum(best, v, out=best)
        # Evaluation keeps the maximum only (a third of the passes); a backward then finds the
        # arg-max from the padded input, with the same first-maximum rule.
        self._cache = (x.shape, xp.shape, xp if idx is None else None, best, idx, windows)
        return best

    def _argmax(self) -> np.ndarray:
        _, _, xp, best, idx, windows = self._cache
        if idx is not None:
            return idx
        dtype = _index_dtype(windows)
        idx = np.full(best.shape, len(windows), dtype=dtype)
        for k, (_, _, rows, cols) in enumerate(windows):
            hit = xp[:, :, rows, cols] == best
            np.minimum(idx, np.where(hit, dtype.type(k), dtype.type(len(windows))), out=idx)
        x_shape, xp_shape = self._cache[:2]
        self._cache = (x_shape, xp_shape, None, best, idx, windows)     # found once per forward
        return idx

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Notes §1.3.2: dL/dI_j = 1(I_j = max), so each window's gradient goes to its arg-max.

        On ties only the first maximum (in row-major window order) receives it.
        """
        x_shape, xp_shape, _, _, _, windows = self._cache
        idx = self._argmax()
        dxp = chwn_empty(xp_shape, dy.dtype, zero=True)
        # Windows that tile the input without overlap each own their pixels: assign, not add.
        tiles = self.stride == self.kernel_size
        for k, (_, _, rows, cols) in enumerate(windows):
            if tiles:
                np.multiply(dy, idx == k, out=dxp[:, :, rows, cols])
            else:
                dxp[:, :, rows, cols] += dy * (idx == k)     # multiply by a mask: no branches
        return self._crop(dxp, x_shape)


def _index_dtype(windows) -> np.dtype:
    return np.dtype(np.uint8 if len(windows) < 255 else np.int32)


class AvgPool2d(_Pool2d):
    """Mean over each window: (N, C, H, W) -> (N, C, OH, OW).

    With ``count_include_pad`` (the default, as in PyTorch) padded zeros count in the
    divisor; otherwise each window divides by the number of real pixels it covers. A
    ``ceil_mode`` window's overhang past the padding never counts.
    """

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True, *,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def _divisor(self, shape, dtype, windows, extra):
        """Per-output-position divisor, (OH, OW) or a scalar."""
        kh, kw = self.kernel_size
        ph, pw = self.padding
        if extra == (0, 0) and (self.count_include_pad or (ph == 0 and pw == 0)):
            return dtype.type(kh * kw)
        h, w = shape[2:]
        # Ones where a pixel counts, zeros elsewhere, laid out like the padded input.
        if self.count_include_pad:
            ones = pad_spatial(np.ones((1, 1, h + 2 * ph, w + 2 * pw), dtype), 0, 0, 0.0, extra)
        else:
            ones = pad_spatial(np.ones((1, 1, h, w), dtype), ph, pw, 0.0, extra)
        return sum(ones[0, 0, rows, cols] for _, _, rows, cols in windows)

    def forward(self, x: np.ndarray) -> np.ndarray:
        windows, extra = self._geometry(x)
        ph, pw = self.padding
        xp = pad_spatial(x, ph, pw, 0.0, extra)
        total = None
        for _, _, rows, cols in windows:
            v = xp[:, :, rows, cols]
            if total is None:
                total = chwn_empty(v.shape, v.dtype)
                total[...] = v
            else:
                total += v
        div = self._divisor(x.shape, x.dtype, windows, extra)
        self._cache = (x.shape, xp.shape, div, windows)
        return total / div

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Each input in a window receives dy / (window count): the mean's derivative."""
        x_shape, xp_shape, div, windows = self._cache
        share = dy / div
        dxp = chwn_empty(xp_shape, dy.dtype, zero=True)
        for _, _, rows, cols in windows:
            dxp[:, :, rows, cols] += share
        return self._crop(dxp, x_shape)


class GlobalAvgPool2d(Module):
    """Mean over all of H and W: (N, C, H, W) -> (N, C). GoogLeNet's and ResNet's head."""

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"GlobalAvgPool2d expects (C, H, W) inputs, got {tuple(input_shape)}")
        return (input_shape[0],)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4:
            raise ValueError(f"GlobalAvgPool2d expects a 4-D (N, C, H, W) input, got shape {x.shape}")
        self._shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Each of the H*W inputs receives dy / (H*W)."""
        n, c, h, w = self._shape
        dx = chwn_empty(self._shape, dy.dtype)          # the memory layout the convolutions read fastest
        dx[...] = (dy / (h * w))[:, :, None, None]
        return dx


class CrossChannelPool(Module):
    """Pool across groups of ``pool_size`` adjacent channels (notes §1.2, Figure 9; maxout).

    (N, C, H, W) -> (N, C / pool_size, H, W). With filters that detect one pattern in
    several orientations, max-pooling across them responds to the pattern in any of them.
    """

    def __init__(self, pool_size: int, mode: str = "max") -> None:
        super().__init__()
        check_int(pool_size, "CrossChannelPool: pool_size", minimum=1)
        if mode not in ("max", "avg"):
            raise ValueError(f"CrossChannelPool: mode must be 'max' or 'avg', got {mode!r}")
        self.pool_size, self.mode = int(pool_size), mode

    def extra_repr(self) -> str:
        return f"pool_size={self.pool_size}, mode={self.mode!r}"

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] % self.pool_size:
            raise ValueError(f"CrossChannelPool(pool_size={self.pool_size}) needs (C, H, W) inputs "
                             f"with C divisible by {self.pool_size}, got {tuple(input_shape)}")
        c, h, w = input_shape
        return (c // self.pool_size, h, w)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4:
            raise ValueError(f"CrossChannelPool expects a 4-D (N, C, H, W) input, got shape {x.shape}")
        c, h, w = self.output_shape(x.shape[1:])
        g = x.reshape(x.shape[0], c, self.pool_size, h, w)
        self._shape = x.shape
        if self.mode == "avg":
            return g.mean(axis=2)
        self._argmax = g.argmax(axis=2)          # first maximum on ties
        return np.take_along_axis(g, self._argmax[:, :, None], axis=2)[:, :, 0]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """avg: each channel of a group gets dy / pool_size; max: the group's arg-max gets dy."""
        n, c, h, w = self._shape
        p = self.pool_size
        if self.mode == "avg":
            dx = np.empty((n, c // p, p, h, w), dtype=dy.dtype)
            dx[...] = (dy / p)[:, :, None]                  # a writable array, not a broadcast view
            return dx.reshape(self._shape)
        dx = (np.arange(p).reshape(1, 1, p, 1, 1) == self._argmax[:, :, None]) * dy[:, :, None]
        return dx.reshape(self._shape)
