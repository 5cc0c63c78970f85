"""2-D convolution (notes §1.1) with the backward of §1.3.1, as im2col + GEMM."""

from __future__ import annotations

import numpy as np

from ..validation import check_int
from ._windows import as_chwn, col2im, col2im_rows, conv_out_size, im2col_rows, pad_spatial, unpad
from .base import Module, as_pair, check_positive, default_rng
from .init import he_normal, make_weight

__all__ = ["Conv2d", "he_normal"]      # he_normal lives in .init; re-exported for old imports

# Column matrices up to CACHE_BYTES are built whole and kept from forward to backward; larger
# ones are built in chunks of output rows of about CHUNK_BYTES (benchmarks/bench_zoo.py).
CACHE_BYTES = 4 * 2**20
CHUNK_BYTES = 4 * 2**20
CHUNK_COLUMNS = 8192          # and at least this many columns: narrower GEMMs ran slower


class Conv2d(Module):
    """Convolve F filters of shape (C/groups, KH, KW) over an (N, C, H, W) input.

    Output (N, F, OH, OW) with OH = (H + 2*ph - KH) // sh + 1 (likewise OW), computed as the
    notes' sum L[i, j] = sum_{a, b, c} I_c[i*s + a, j*s + b] G_c[a, b] + bias, the
    cross-correlation that every deep-learning library calls convolution.

    ``groups`` splits the C input and F output channels into that many independent halves,
    quarters, ... (AlexNet's two-GPU split): output group g sees only input group g.
    Parameters: ``weight`` (F, C/groups, KH, KW) and ``bias`` (F,), PyTorch's layout.
    ``init`` draws the weight (see :mod:`convscope.layers.init`; default He normal with
    fan_in = C/groups * KH * KW); the bias starts at zero.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 groups: int = 1, bias: bool = True, *, init=he_normal,
                 rng: np.random.Generator | None = None, dtype=np.float32) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("groups", groups)):
            check_int(value, f"Conv2d: {name}", minimum=1)
        self.kernel_size = as_pair(kernel_size, "Conv2d: kernel_size")
        self.stride = as_pair(stride, "Conv2d: stride")
        self.padding = as_pair(padding, "Conv2d: padding")
        check_positive(self.kernel_size, "Conv2d: kernel_size")
        check_positive(self.stride, "Conv2d: stride")
        check_positive(self.padding, "Conv2d: padding", allow_zero=True)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        kh, kw = self.kernel_size
        rng = default_rng(rng)
        self.params["weight"] = make_weight(init, (out_channels, in_channels // groups, kh, kw), rng,
                                            dtype, "Conv2d")
        if bias:
            self.params["bias"] = np.zeros(out_channels, dtype=dtype)
        self._cache = None

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if "bias" in self.params else ", bias=False")

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"Conv2d expects inputs of shape ({self.in_channels}, H, W), "
                             f"got {tuple(input_shape)}")
        _, h, w = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (self.out_channels, conv_out_size(h, kh, sh, ph, "Conv2d height"),
                conv_out_size(w, kw, sw, pw, "Conv2d width"))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> (N, F, OH, OW), the output in (F, OH, OW, N) memory.

        Three ways to the same GEMM ``W (F, C*KH*KW) @ cols (C*KH*KW, OH*OW*N)``: a 1x1
        stride-1 convolution reads x's own (C, H*W*N) memory as the columns (no copy); a column
        matrix up to ``CACHE_BYTES`` is built once and kept for backward; a larger one (VGG's at
        224 px is 924 MB) is built and multiplied in chunks of output rows of about
        ``CHUNK_BYTES`` in one reused buffer, which stays in cache, and backward rebuilds each
        chunk instead of keeping them.
        """
        if x.ndim != 4:
            raise ValueError(f"Conv2d expects a 4-D (N, C, H, W) input, got shape {x.shape}")
        _, oh, ow = self.output_shape(x.shape[1:])
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        n, f = x.shape[0], self.out_channels
        w2 = self.params["weight"].reshape(f, -1)
        xp = as_chwn(pad_spatial(x, ph, pw))                          # (C, Hp, Wp, N)
        k = self.in_channels * kh * kw                                  # rows of the column matrix
        row_bytes = k * ow * n * x.dtype.itemsize                       # the columns of one output row
        if self._pointwise:
            cols, rows = xp.reshape(xp.shape[0], -1), oh               # x itself is the column matrix
        elif row_bytes * oh <= CACHE_BYTES:
            cols, rows = im2col_rows(xp, kh, kw, sh, sw, 0, oh, ow), oh
        else:
            cols, rows = None, max(1, CHUNK_BYTES // row_bytes, -(-CHUNK_COLUMNS // (ow * n)))
        if cols is not None:
            out = self._gemm(w2, cols).reshape(f, oh, ow, n)
        else:
            out = np.empty((f, oh, ow, n), dtype=np.result_type(x.dtype, w2.dtype))
            buf = np.empty(k * rows * ow * n, dtype=x.dtype)
            for y0 in range(0, oh, rows):
                r = min(rows, oh - y0)
                chunk = im2col_rows(xp, kh, kw, sh, sw, y0, r, ow, out=buf)
                self._gemm(w2, chunk, out=out[:, y0:y0 + r].reshape(f, -1))
        if "bias" in self.params:
            out += self.params["bias"].reshape(-1, 1, 1, 1)
        self._cache = (x.shape, xp if cols is None else None, cols, rows, oh, ow)
        return out.transpose(3, 0, 1, 2)

    @property
    def _pointwise(self) -> bool:
        """A 1x1, stride-1, unpadded convolution: its input's (C, H*W*N) memory is the column matrix."""
        return self.kernel_size == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)

    def _gemm(self, w2: np.ndarray, b: np.ndarray, transpose: bool = False,
              out: np.ndarray | None = None) -> np.ndarray:
        """Group-wise W (F, C/g*KH*KW) @ b, or W^T @ b; one GEMM when groups == 1.

        b: (C*KH*KW, M) columns, or (F, M) output gradients when ``transpose``. ``out``, an
        array of the result's shape, receives it.
        """
        g, m = self.groups, b.shape[1]
        if g == 1:
            return np.matmul(w2.T if transpose else w2, b, out=out)
        wg = w2.reshape(g, -1, w2.shape[1])
        res = np.matmul(wg.transpose(0, 2, 1) if transpose else wg, b.reshape(g, -1, m)).reshape(-1, m)
        if out is None:
            return res
        out[...] = res
        return out

    def _weight_grad(self, cols: np.ndarray, dyt: np.ndarray) -> np.ndarray:
        """dW (F, C/g*KH*KW) = dY (F, M) @ cols^T, per group."""
        g, f, m = self.groups, self.out_channels, cols.shape[1]
        if g == 1:
            return (cols @ dyt.T).T        # (cols @ dY^T)^T: the same product, measured 10-20% faster
        return np.matmul(dyt.reshape(g, f // g, m), cols.reshape(g, -1, m).transpose(0, 2, 1)).reshape(f, -1)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """dy: (N, F, OH, OW) -> dx: (N, C, H, W); fills grads for weight and bias.

        dy is read as (F, OH*OW*N): free when it has the CHWN memory that forward produced.
        With ``need_param_grad`` False (attribution) the weight gradient is skipped.

        Notes §1.3.1: df/dG_c[x, y] = sum_{i,j} df/dL[i, j] I_c[i + x, j + y], the correlation
        of the upstream gradient with the input, i.e. dW = dY @ cols^T. The input gradient
        df/dI_c[x, y] = sum_{i,j} df/dL[i, j] G_c[x - i, y - j] is the full convolution of dY
        with the flipped filter; here it is the equivalent W^T @ dY followed by col2im.
        """
        x_shape, xp, cols, rows, oh, ow = self._cache
        w = self.params["weight"]
        f = self.out_channels
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        dyt = as_chwn(dy)                                              # (F, OH, OW, N)
        dy2 = dyt.reshape(f, -1)
        params = self.need_param_grad
        if params and "bias" in self.params:
            self.grads["bias"] = dy2.sum(axis=1).astype(w.dtype, copy=False)
        if cols is not None:                                           # one chunk: the whole matrix
            if params:
                self.grads["weight"] = self._weight_grad(cols, dy2).reshape(w.shape).astype(w.dtype, copy=False)
            if not self.need_input_grad:
                return None
            # W^T (C/g*KH*KW, F/g) @ dY (F/g, M) per group: the columns' gradient.
            dcols = self._gemm(w.reshape(f, -1), dy2, transpose=True)   # (C*KH*KW, OH*OW*N)
            if self._pointwise:                                        # the columns are x's memory
                return dcols.reshape(x_shape[1], x_shape[2], x_shape[3], x_shape[0]).transpose(3, 0, 1, 2)
            return col2im(dcols, x_shape, kh, kw, sh, sw, ph, pw, oh, ow)
        if not (params or self.need_input_grad):
            return None
        w2 = w.reshape(f, -1)
        dw = np.zeros(w2.shape, dtype=w.dtype) if params else None
        dxp = np.zeros(xp.shape, dtype=dy.dtype) if self.need_input_grad else None
        buf = np.empty(self.in_channels * kh * kw * rows * ow * x_shape[0], dtype=xp.dtype) if params else None
        for y0 in range(0, oh, rows):
            r = min(rows, oh - y0)
            dyc = dyt[:, y0:y0 + r].reshape(f, -1)
            if params:                                     # the input gradient needs no columns
                chunk = im2col_rows(xp, kh, kw, sh, sw, y0, r, ow, out=buf)
                dw += self._weight_grad(chunk, dyc)
            if dxp is not None:
                col2im_rows(self._gemm(w2, dyc, transpose=True), dxp, kh, kw, sh, sw, y0, r, ow)
        if params:
            self.grads["weight"] = dw.reshape(w.shape)
        return None if dxp is None else unpad(dxp, x_shape, ph, pw)
