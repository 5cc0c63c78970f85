"""2-D convolution (notes §1.1) with the backward of §1.3.1, as im2col + one GEMM."""

from __future__ import annotations

import numpy as np

from ..validation import check_int
from ._windows import col2im, conv_out_size, im2col
from .base import Module, as_pair, check_positive, default_rng
from .init import he_normal, make_weight

__all__ = ["Conv2d", "he_normal"]      # he_normal lives in .init; re-exported for old imports


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
        """x: (N, C, H, W) -> (N, F, OH, OW)."""
        if x.ndim != 4:
            raise ValueError(f"Conv2d expects a 4-D (N, C, H, W) input, got shape {x.shape}")
        _, oh, ow = self.output_shape(x.shape[1:])
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        cols = im2col(x, kh, kw, sh, sw, ph, pw, oh, ow)            # (C*KH*KW, OH*OW*N)
        out = self._gemm(self.params["weight"].reshape(self.out_channels, -1), cols)  # (F, OH*OW*N)
        if "bias" in self.params:
            out += self.params["bias"].reshape(-1, 1)
        self._cache = (x.shape, cols, oh, ow)
        return out.reshape(self.out_channels, oh, ow, x.shape[0]).transpose(3, 0, 1, 2)

    def _gemm(self, w2: np.ndarray, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        """Group-wise W (F, C/g*KH*KW) @ b, or W^T @ b; one GEMM when groups == 1.

        b: (C*KH*KW, M) columns, or (F, M) output gradients when ``transpose``.
        """
        g, m = self.groups, b.shape[1]
        if g == 1:
            return (w2.T if transpose else w2) @ b
        wg = w2.reshape(g, -1, w2.shape[1])
        out = np.matmul(wg.transpose(0, 2, 1) if transpose else wg, b.reshape(g, -1, m))
        return out.reshape(-1, m)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """dy: (N, F, OH, OW) -> dx: (N, C, H, W); fills grads for weight and bias.

        dy is read as (F, OH*OW*N): free when it has the CHWN memory that forward produced.

        Notes §1.3.1: df/dG_c[x, y] = sum_{i,j} df/dL[i, j] I_c[i + x, j + y], the correlation
        of the upstream gradient with the input, i.e. dW = dY @ cols^T. The input gradient
        df/dI_c[x, y] = sum_{i,j} df/dL[i, j] G_c[x - i, y - j] is the full convolution of dY
        with the flipped filter; here it is the equivalent W^T @ dY followed by col2im.
        """
        x_shape, cols, oh, ow = self._cache
        w = self.params["weight"]
        f, g = self.out_channels, self.groups
        dyt = dy.transpose(1, 2, 3, 0).reshape(f, -1)                 # (F, OH*OW*N)
        if "bias" in self.params:
            self.grads["bias"] = dyt.sum(axis=1).astype(w.dtype, copy=False)
        if g == 1:
            # (cols @ dY^T)^T: the same product, measured 10-20% faster in OpenBLAS.
            self.grads["weight"] = (cols @ dyt.T).T.reshape(w.shape).astype(w.dtype, copy=False)
        else:
            m = cols.shape[1]
            dw = np.matmul(dyt.reshape(g, f // g, m), cols.reshape(g, -1, m).transpose(0, 2, 1))
            self.grads["weight"] = dw.reshape(w.shape).astype(w.dtype, copy=False)
        if not self.need_input_grad:
            return None
        # W^T (C/g*KH*KW, F/g) @ dY (F/g, M) per group: the columns' gradient.
        dcols = self._gemm(w.reshape(f, -1), dyt, transpose=True)        # (C*KH*KW, OH*OW*N)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return col2im(dcols, x_shape, kh, kw, sh, sw, ph, pw, oh, ow)
