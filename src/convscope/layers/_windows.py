"""Sliding-window plumbing shared by convolution and pooling.

Everything here loops over *kernel offsets* (KH * KW iterations), never over batch
elements or pixels: for an offset (i, j) the inputs that meet kernel tap (i, j) form one
strided slice of the padded input, rows ``i : i + sh*OH : sh`` and columns
``j : j + sw*OW : sw``.

Memory layout. Tensors are NCHW to the user, but the convolution and pooling layers keep
their outputs in (C, H, W, N) memory, handed out as transposed NCHW views (cuda-convnet's
layout). With the batch innermost, a window slice is a run of OW*N contiguous floats
rather than OW, which made im2col 1.9x and col2im 3.2x faster than with NCHW memory for
LeNet's second convolution (benchmarks/README.md has the figures). Element-wise layers
keep whatever layout they receive (NumPy's order='K'), so the layout flows through.

im2col (:func:`im2col_rows`, for all output rows or a chunk of them) fills a column buffer
laid out (C, KH, KW, rows, OW, N) slice by slice (measured ~4x faster than one transposed copy
of a 6-D strided view), so that a convolution is one GEMM ``W (F, C*KH*KW) @ cols
(C*KH*KW, rows*OW*N)`` whose result is already (F, rows, OW, N). col2im (:func:`col2im_rows`,
:func:`col2im`) is the adjoint: the same slices, accumulated with ``+=``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["conv_out_size", "offsets", "pad_spatial", "chwn_empty", "as_chwn", "im2col_rows", "col2im_rows",
           "col2im", "unpad"]


def conv_out_size(size: int, kernel: int, stride: int, padding: int, what: str,
                  ceil_mode: bool = False) -> int:
    """Output length of a window sweep; ValueError if the padded input is smaller than the window.

    ``ceil_mode`` (pools, as in PyTorch) rounds the number of strides up, so a last, partial
    window is kept, provided it starts inside the input or its left padding.
    """
    padded = size + 2 * padding
    if padded < kernel:
        raise ValueError(
            f"{what}: input of size {size} (padded to {padded}) is smaller than the window {kernel}")
    if not ceil_mode:
        return (padded - kernel) // stride + 1
    out = -(-(padded - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out


def offsets(kh: int, kw: int, sh: int, sw: int, oh: int, ow: int):
    """Yield (i, j, rows, cols): each kernel offset and the strided slices it reads."""
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


def pad_spatial(x: np.ndarray, ph: int, pw: int, value: float = 0.0,
                extra: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Pad the H and W axes of an (N, C, H, W) array by (ph, pw) on each side, in CHWN memory.

    ``extra`` adds (rows, columns) more at the bottom and right only: the overhang of a
    ``ceil_mode`` pool's last window.
    """
    eh, ew = extra
    if ph == pw == eh == ew == 0:
        return x
    n, c, h, w = x.shape
    out = np.full((c, h + 2 * ph + eh, w + 2 * pw + ew, n), value, dtype=x.dtype).transpose(3, 0, 1, 2)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def chwn_empty(shape: tuple[int, int, int, int], dtype, zero: bool = False) -> np.ndarray:
    """An (N, C, H, W) array whose memory is laid out (C, H, W, N)."""
    n, c, h, w = shape
    make = np.zeros if zero else np.empty
    return make((c, h, w, n), dtype=dtype).transpose(3, 0, 1, 2)


def as_chwn(x: np.ndarray) -> np.ndarray:
    """x (N, C, H, W) as the (C, H, W, N) array of its memory: a view when x is already CHWN,
    else one transposing copy (an input batch in NCHW memory)."""
    t = x.transpose(1, 2, 3, 0)
    return t if t.flags.c_contiguous else np.ascontiguousarray(t)


def im2col_rows(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, y0: int, rows: int, ow: int,
                out: np.ndarray | None = None) -> np.ndarray:
    """The columns of output rows ``y0 .. y0 + rows - 1`` only: shape (C*KH*KW, rows*OW*N).

    xp: the padded input in (C, Hp, Wp, N) memory. ``out``, a flat buffer of at least that
    many elements, is filled instead of a new array (a convolution reuses one buffer for every
    chunk of rows, so the columns stay in cache between im2col and the GEMM that reads them).
    """
    c, n = xp.shape[0], xp.shape[3]
    size = c * kh * kw * rows * ow * n
    cols = (np.empty(size, dtype=xp.dtype) if out is None else out[:size]).reshape(c, kh, kw, rows, ow, n)
    top = y0 * sh
    for i, j, r, cc in offsets(kh, kw, sh, sw, rows, ow):
        cols[:, i, j] = xp[:, top + r.start:top + r.stop:sh, cc]
    return cols.reshape(c * kh * kw, rows * ow * n)


def col2im_rows(dcols: np.ndarray, dxp: np.ndarray, kh: int, kw: int, sh: int, sw: int, y0: int,
                rows: int, ow: int) -> None:
    """Adjoint of :func:`im2col_rows`: add the columns of output rows ``y0 ..`` onto dxp
    (C, Hp, Wp, N), the gradient of the padded input, in place."""
    c, n = dxp.shape[0], dxp.shape[3]
    d6 = dcols.reshape(c, kh, kw, rows, ow, n)
    top = y0 * sh
    for i, j, r, cc in offsets(kh, kw, sh, sw, rows, ow):
        dxp[:, top + r.start:top + r.stop:sh, cc] += d6[:, i, j]


def col2im(dcols: np.ndarray, x_shape: tuple[int, int, int, int], kh: int, kw: int,
           sh: int, sw: int, ph: int, pw: int, oh: int, ow: int) -> np.ndarray:
    """Adjoint of the whole column matrix (:func:`im2col_rows` of every output row): sum every
    column entry back onto the input pixel it came from.

    dcols: (C*KH*KW, OH*OW*N). Returns dx of shape (N, C, H, W), in CHWN memory. Each
    kernel offset adds one strided slice, so overlapping windows accumulate correctly
    without ``np.add.at``.
    """
    n, c, h, w = x_shape
    dxp = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=dcols.dtype)
    col2im_rows(dcols, dxp, kh, kw, sh, sw, 0, oh, ow)
    return unpad(dxp, x_shape, ph, pw)


def unpad(dxp: np.ndarray, x_shape: tuple[int, int, int, int], ph: int, pw: int) -> np.ndarray:
    """The gradient of a padded input, dxp (C, Hp, Wp, N), cropped to the (N, C, H, W) input."""
    h, w = x_shape[2:]
    return dxp[:, ph:ph + h, pw:pw + w].transpose(3, 0, 1, 2)
