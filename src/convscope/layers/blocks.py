"""Composite blocks of notes §2.4-2.5: Inception modules and residual blocks.

Every block is built from the existing containers (:class:`Concat`, :class:`Residual`,
:class:`Sequential`), so its backward is the composition of its layers' backward passes
and nothing here needs a hand-written derivative except :class:`ZeroPadShortcut`.

Sub-modules get readable names. An Inception module's branches are ``branch1`` (1x1),
``branch2`` (3x3), ``branch3`` (5x5) and ``branch4`` (pool), each a flat list such as
``reduce, reduce_bn, reduce_relu, conv, bn, relu``. A residual block lists its body's
layers directly (``conv1, bn1, relu1, conv2, bn2``), then ``shortcut`` and the ReLU after
the addition, so a ResNet's layers read ``layer1.0.conv1`` rather than
``layer1.0.body.conv1``; parameter names match torchvision's except that the projection
is ``shortcut.conv`` / ``shortcut.bn`` where torchvision has ``downsample.0`` / ``.1``.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_int
from ._windows import chwn_empty
from .activations import ReLU
from .base import Module
from .containers import Concat, Identity, Residual, Sequential
from .conv import Conv2d
from .normalization import BatchNorm2d
from .pooling import MaxPool2d

__all__ = ["conv_bn_relu", "InceptionNaive", "Inception", "ZeroPadShortcut", "BasicBlock",
           "Bottleneck", "SHORTCUTS"]

SHORTCUTS = ("projection", "zero_pad")


def _check_widths(kind: str, **widths) -> None:
    """Every keyword an int >= 1; the error names ``kind``, the keyword and its value."""
    for name, value in widths.items():
        check_int(value, f"{kind}: {name}", minimum=1)


def conv_bn_relu(prefix: str, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, *, batch_norm: bool = True, bn_eps: float = 1e-5, rng=None,
                 dtype=np.float32) -> list[tuple[str, Module]]:
    """(name, layer) pairs for conv -> [batch norm] -> ReLU, named ``{prefix}``,
    ``{prefix}_bn``, ``{prefix}_relu`` (just ``conv, bn, relu`` when ``prefix`` is "conv").

    With batch norm the convolution has no bias (the norm's shift replaces it), as in
    torchvision's BasicConv2d and ResNets.
    """
    bn_name, relu_name = ("bn", "relu") if prefix == "conv" else (f"{prefix}_bn", f"{prefix}_relu")
    layers = [(prefix, Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                              bias=not batch_norm, rng=rng, dtype=dtype))]
    if batch_norm:
        layers.append((bn_name, BatchNorm2d(out_channels, eps=bn_eps, dtype=dtype)))
    return layers + [(relu_name, ReLU())]


class InceptionNaive(Concat):
    """The naive Inception module (notes §2.4, Figure 11a): 1x1, 3x3 and 5x5 convolutions
    (each + ReLU) and a 3x3/1 max-pool side by side on the same input, concatenated.

    x: (N, C, H, W) -> (N, c1 + c3 + c5 + P, H, W), where P = ``pool_proj`` when given (a
    1x1 convolution + ReLU after the pool) and P = C otherwise: the pool passes all C
    channels through, which is why stacking naive modules blows up the width.
    """

    def __init__(self, in_channels: int, c1: int, c3: int, c5: int, pool_proj: int | None = None,
                 *, rng=None, dtype=np.float32) -> None:
        _check_widths("InceptionNaive", in_channels=in_channels, c1=c1, c3=c3, c5=c5,
                      **({} if pool_proj is None else {"pool_proj": pool_proj}))
        kw = dict(batch_norm=False, rng=rng, dtype=dtype)
        pool = [("pool", MaxPool2d(3, stride=1, padding=1))]
        if pool_proj is not None:
            pool += conv_bn_relu("conv", in_channels, pool_proj, 1, **kw)
        super().__init__(
            ("branch1", Sequential(*conv_bn_relu("conv", in_channels, c1, 1, **kw))),
            ("branch2", Sequential(*conv_bn_relu("conv", in_channels, c3, 3, padding=1, **kw))),
            ("branch3", Sequential(*conv_bn_relu("conv", in_channels, c5, 5, padding=2, **kw))),
            ("branch4", Sequential(*pool)),
        )
        self.out_channels = c1 + c3 + c5 + (in_channels if pool_proj is None else pool_proj)


class Inception(Concat):
    """Inception module with dimension reductions (notes §2.4, Figure 11b; Szegedy et al.).

    Branches, concatenated along channels: ``branch1`` 1x1 conv (``ch1x1``); ``branch2``
    1x1 reduction to ``ch3x3red`` then 3x3 conv (``ch3x3``); ``branch3`` 1x1 reduction to
    ``ch5x5red`` then a ``branch3_kernel`` conv (``ch5x5``); ``branch4`` 3x3/1 max-pool then
    1x1 projection (``pool_proj``). Every conv is followed by ReLU, and with ``batch_norm``
    by batch norm first (torchvision's BasicConv2d: conv without bias, BN with ``bn_eps``).

    x: (N, C, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W). The 1x1 reductions are
    what make the 3x3 and 5x5 convolutions affordable. torchvision's GoogLeNet uses a 3x3
    kernel in the "5x5" branch (``branch3_kernel=3``), a slip kept for weight compatibility.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, *, batch_norm: bool = False, bn_eps: float = 1e-5,
                 branch3_kernel: int = 5, rng=None, dtype=np.float32) -> None:
        _check_widths("Inception", in_channels=in_channels, ch1x1=ch1x1, ch3x3red=ch3x3red,
                      ch3x3=ch3x3, ch5x5red=ch5x5red, ch5x5=ch5x5, pool_proj=pool_proj)
        if branch3_kernel not in (3, 5):
            raise ValueError(f"Inception: branch3_kernel must be 3 or 5, got {branch3_kernel!r}")
        kw = dict(batch_norm=batch_norm, bn_eps=bn_eps, rng=rng, dtype=dtype)
        k3 = branch3_kernel
        super().__init__(
            ("branch1", Sequential(*conv_bn_relu("conv", in_channels, ch1x1, 1, **kw))),
            ("branch2", Sequential(*conv_bn_relu("reduce", in_channels, ch3x3red, 1, **kw),
                                   *conv_bn_relu("conv", ch3x3red, ch3x3, 3, padding=1, **kw))),
            ("branch3", Sequential(*conv_bn_relu("reduce", in_channels, ch5x5red, 1, **kw),
                                   *conv_bn_relu("conv", ch5x5red, ch5x5, k3, padding=k3 // 2, **kw))),
            ("branch4", Sequential(("pool", MaxPool2d(3, stride=1, padding=1)),
                                   *conv_bn_relu("conv", in_channels, pool_proj, 1, **kw))),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj


class ZeroPadShortcut(Module):
    """He et al.'s parameter-free shortcut "option A": subsample by ``stride`` and pad the
    extra channels with zeros.

    x: (N, C, H, W) -> y: (N, out_channels, ceil(H/s), ceil(W/s)) with
    y[:, :C] = x[:, :, ::s, ::s] and y[:, C:] = 0, the same spatial size as a 3x3 conv
    with stride s and padding 1. Backward is the adjoint: dx[:, :, ::s, ::s] = dy[:, :C],
    zero at the skipped pixels; the padded channels' gradient is dropped.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        _check_widths("ZeroPadShortcut", in_channels=in_channels, out_channels=out_channels,
                      stride=stride)
        if out_channels < in_channels:
            raise ValueError(f"ZeroPadShortcut: out_channels={out_channels} must be at least "
                             f"in_channels={in_channels} (it only adds channels)")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.stride = int(stride)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"ZeroPadShortcut expects inputs of shape ({self.in_channels}, H, W), "
                             f"got {tuple(input_shape)}")
        _, h, w = input_shape
        s = self.stride
        return (self.out_channels, (h - 1) // s + 1, (w - 1) // s + 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> (N, out_channels, OH, OW), in CHWN memory like a conv's output."""
        if x.ndim != 4:
            raise ValueError(f"ZeroPadShortcut expects a 4-D (N, C, H, W) input, got shape {x.shape}")
        _, oh, ow = self.output_shape(x.shape[1:])
        s = self.stride
        y = chwn_empty((x.shape[0], self.out_channels, oh, ow), x.dtype, zero=True)
        y[:, :self.in_channels] = x[:, :, ::s, ::s]
        self._shape = x.shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if not self.need_input_grad:
            return None
        s = self.stride
        dx = chwn_empty(self._shape, dy.dtype, zero=True)
        dx[:, :, ::s, ::s] = dy[:, :self.in_channels]
        return dx


def _shortcut(kind: str, in_channels: int, out_channels: int, stride: int, rng, dtype) -> Module:
    """Identity where the shape is kept; otherwise a projection (1x1 conv with stride + BN,
    He et al.'s option B, torchvision's choice) or a :class:`ZeroPadShortcut` (option A)."""
    if kind not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {kind!r}")
    if stride == 1 and in_channels == out_channels:
        return Identity()
    if kind == "zero_pad":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    conv = Conv2d(in_channels, out_channels, 1, stride, bias=False, rng=rng, dtype=dtype)
    return Sequential(("conv", conv), ("bn", BatchNorm2d(out_channels, dtype=dtype)))


class _Block(Residual):
    """A residual block whose body's layers are listed as its own children (readable names)."""

    def __init__(self, body: Sequential, shortcut: Module, post_name: str) -> None:
        super().__init__(body, shortcut, ReLU())
        self._post_name = post_name

    def children(self):
        return self.body.children() + [("shortcut", self.shortcut), (self._post_name, self.post)]


class BasicBlock(_Block):
    """ResNet's basic block (He et al., Figure 12 of the notes): y = ReLU(F(x) + shortcut(x))
    with F = conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN.

    x: (N, in_channels, H, W) -> (N, out_channels, ceil(H/stride), ceil(W/stride)). Layers:
    ``conv1, bn1, relu1, conv2, bn2, shortcut, relu2`` (``relu2`` follows the addition).
    ``shortcut``: "projection" or "zero_pad", used only where the shape changes.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *,
                 shortcut: str = "projection", rng=None, dtype=np.float32) -> None:
        _check_widths("BasicBlock", in_channels=in_channels, out_channels=out_channels, stride=stride)
        body = Sequential(
            ("conv1", Conv2d(in_channels, out_channels, 3, stride, 1, bias=False, rng=rng, dtype=dtype)),
            ("bn1", BatchNorm2d(out_channels, dtype=dtype)),
            ("relu1", ReLU()),
            ("conv2", Conv2d(out_channels, out_channels, 3, 1, 1, bias=False, rng=rng, dtype=dtype)),
            ("bn2", BatchNorm2d(out_channels, dtype=dtype)),
        )
        shortcut_path = _shortcut(shortcut, in_channels, out_channels, stride, rng, dtype)
        super().__init__(body, shortcut_path, "relu2")
        self.out_channels = out_channels


class Bottleneck(_Block):
    """ResNet's bottleneck block, torchvision's "v1.5" (the stride on the 3x3 conv):
    1x1 conv to ``width`` -> BN -> ReLU -> 3x3 conv (stride) -> BN -> ReLU -> 1x1 conv to
    ``width * expansion`` -> BN, plus the shortcut, then ReLU.

    x: (N, in_channels, H, W) -> (N, width * expansion, ceil(H/stride), ceil(W/stride)).
    Layers: ``conv1, bn1, relu1, conv2, bn2, relu2, conv3, bn3, shortcut, relu3``.
    """

    def __init__(self, in_channels: int, width: int, stride: int = 1, expansion: int = 4, *,
                 shortcut: str = "projection", rng=None, dtype=np.float32) -> None:
        _check_widths("Bottleneck", in_channels=in_channels, width=width, stride=stride,
                      expansion=expansion)
        out = width * expansion
        body = Sequential(
            ("conv1", Conv2d(in_channels, width, 1, bias=False, rng=rng, dtype=dtype)),
            ("bn1", BatchNorm2d(width, dtype=dtype)),
            ("relu1", ReLU()),
            ("conv2", Conv2d(width, width, 3, stride, 1, bias=False, rng=rng, dtype=dtype)),
            ("bn2", BatchNorm2d(width, dtype=dtype)),
            ("relu2", ReLU()),
            ("conv3", Conv2d(width, out, 1, bias=False, rng=rng, dtype=dtype)),
            ("bn3", BatchNorm2d(out, dtype=dtype)),
        )
        super().__init__(body, _shortcut(shortcut, in_channels, out, stride, rng, dtype), "relu3")
        self.out_channels = out
