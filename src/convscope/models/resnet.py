"""ResNets (He et al. 2016, notes §2.5): the ImageNet family and the CIFAR family.

``resnet18/34/50/101/152`` follow torchvision: a 7x7/2 conv (no bias) + BN + ReLU and a
3x3/2 max-pool, four stages of basic (18, 34) or bottleneck (50, 101, 152) blocks with
widths 64-128-256-512 (bottleneck outputs 4x that) and strides 1-2-2-2, global average
pooling and one FC layer. A projection shortcut (1x1 conv with the stride + BN) is used
where a block changes the shape, identity elsewhere; the bottleneck puts its stride on the
3x3 conv ("v1.5"). At 3x224x224 with 1000 classes: 11,689,512 / 21,797,672 / 25,557,032 /
44,549,160 / 60,192,808 parameters.

Their small variant (max(H, W) <= 64) keeps the depth, the blocks and the stem's max-pool
but has a 3x3/1 stem conv instead of the 7x7/2 one and base width 16 instead of 64 (stages
16-32-64-128; bottleneck outputs 64-128-256-512): stages see 14, 7, 4, 2 pixels of a 28x28
input (16, 8, 4, 2 of 32x32), so an MNIST epoch stays affordable on a CPU. (A CIFAR-style
stem without the pool, ``make_resnet(..., stem="cifar")``, costs 3-4x more per image.)

``resnet20/32/44/56/110`` are §4.2's CIFAR networks, 6n + 2 layers: a 3x3 conv to 16
channels, three stages of n basic blocks with 16-32-64 channels and strides 1-2-2, global
average pooling and FC. They take 28x28 and 32x32 inputs as they are (one layout for every
size). Shortcuts default to the paper's option A, a parameter-free :class:`ZeroPadShortcut`
(subsample, pad channels with zeros; its backward is exact), which gives the paper's 0.27M
parameters for resnet20 (269,722 with 10 classes); ``shortcut="projection"`` gives option B.

Every builder comes from one factory and a row of :data:`IMAGENET_DEPTHS` or
:data:`CIFAR_DEPTHS` (as VGG's from its configurations): a new depth is one new row.
Weights are He-initialised except the output layer ``fc``'s, N(0, 0.001)
(``models._small.OUTPUT_INIT``).

Options: ``small`` (None: by input size; True/False: force; ImageNet family only), ``width``
(base width of the first stage), ``shortcut`` ("projection" or "zero_pad").
Layers: ``conv1, bn1, relu1, [maxpool,] layer1.0.conv1, layer1.0.bn1, ..., layer1.0.shortcut,
layer1.0.relu2, ..., avgpool, fc``.
"""

from __future__ import annotations

from typing import NamedTuple

from ..layers import (BasicBlock, BatchNorm2d, Bottleneck, Conv2d, GlobalAvgPool2d, Linear,
                      MaxPool2d, ReLU, Sequential)
from ..validation import check_int
from ._small import OUTPUT_INIT, use_small_variant
from .registry import register

__all__ = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "make_resnet"]


class ImageNetDepth(NamedTuple):
    block: type                         # BasicBlock or Bottleneck
    blocks_per_stage: tuple[int, ...]   # He et al. Table 1
    parameters: str                     # torchvision's count at 3x224x224 with 1000 classes


IMAGENET_DEPTHS = {
    18: ImageNetDepth(BasicBlock, (2, 2, 2, 2), "11,689,512"),
    34: ImageNetDepth(BasicBlock, (3, 4, 6, 3), "21,797,672"),
    50: ImageNetDepth(Bottleneck, (3, 4, 6, 3), "25,557,032"),
    101: ImageNetDepth(Bottleneck, (3, 4, 23, 3), "44,549,160"),
    152: ImageNetDepth(Bottleneck, (3, 8, 36, 3), "60,192,808"),
}
# CIFAR networks (§4.2), 6n + 2 layers: depth -> what the description adds (Table 6's count
# is quoted for resnet20 only).
CIFAR_DEPTHS = {20: " (269,722 parameters with 10 classes)", 32: "", 44: "", 56: "", 110: ""}
# Stems: conv kernel, conv stride, whether a 3x3/2 max-pool follows.
STEMS = {"imagenet": (7, 2, True), "small": (3, 1, True), "cifar": (3, 1, False)}


def make_resnet(block, blocks_per_stage, widths, num_classes: int, in_channels: int, *,
                stem: str = "imagenet", shortcut: str = "projection", rng=None) -> Sequential:
    """Stem, one stage per entry of ``blocks_per_stage`` (stride 1 for the first stage, 2
    after), global average pooling, FC.

    block: :class:`BasicBlock` or :class:`Bottleneck`; widths: each stage's width (a
    bottleneck's output is 4x its width). stem: one of :data:`STEMS`, "imagenet" (7x7/2
    conv, 3x3/2 max-pool), "small" (3x3/1 conv, 3x3/2 max-pool) or "cifar" (3x3/1 conv).
    The stem conv has ``widths[0]`` filters.
    """
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {tuple(STEMS)}, got {stem!r}")
    kernel, stride, maxpool = STEMS[stem]
    layers = [("conv1", Conv2d(in_channels, widths[0], kernel, stride, kernel // 2, bias=False, rng=rng)),
              ("bn1", BatchNorm2d(widths[0])), ("relu1", ReLU())]
    if maxpool:
        layers.append(("maxpool", MaxPool2d(3, stride=2, padding=1)))
    c = widths[0]
    for s, (n_blocks, width) in enumerate(zip(blocks_per_stage, widths)):
        stage = []
        for b in range(n_blocks):
            stride = 2 if s > 0 and b == 0 else 1
            unit = block(c, width, stride, shortcut=shortcut, rng=rng)
            stage.append((str(b), unit))
            c = unit.out_channels
        layers.append((f"layer{s + 1}", Sequential(*stage)))
    layers += [("avgpool", GlobalAvgPool2d()), ("fc", Linear(c, num_classes, init=OUTPUT_INIT, rng=rng))]
    return Sequential(*layers)


def _imagenet_builder(depth: int):
    """Register the builder of ResNet-``depth`` from its row of :data:`IMAGENET_DEPTHS`."""
    name, row = f"resnet{depth}", IMAGENET_DEPTHS[depth]
    blocks = "basic blocks" if row.block is BasicBlock else "bottlenecks"
    kind = "basic" if row.block is BasicBlock else "bottleneck"

    def build(num_classes=10, in_channels=1, input_size=(28, 28), rng=None, *, small=None,
              width=None, shortcut="projection"):
        is_small = use_small_variant(name, input_size, small)
        base = check_int(width if width is not None else (16 if is_small else 64), f"{name}: width",
                         minimum=1)
        widths = tuple(base * 2 ** i for i in range(4))
        return make_resnet(row.block, row.blocks_per_stage, widths, num_classes, in_channels,
                           stem="small" if is_small else "imagenet", shortcut=shortcut, rng=rng)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (f"ResNet-{depth} ({blocks} {'-'.join(map(str, row.blocks_per_stage))}); "
                     f"variants and options in the module docstring.")
    return register(name, f"ResNet-{depth}, torchvision layout, {kind} blocks ({row.parameters} "
                          f"parameters at 3x224x224/1000); small inputs: 3x3/1 stem conv, "
                          f"widths 16-32-64-128")(build)


def _cifar_builder(depth: int):
    """Register the builder of the CIFAR ResNet-``depth`` (n = (depth - 2) / 6 blocks a stage)."""
    name, n = f"resnet{depth}", (depth - 2) // 6

    def build(num_classes=10, in_channels=1, input_size=(28, 28), rng=None, *, width=None,
              shortcut="zero_pad"):
        base = check_int(width if width is not None else 16, f"{name}: width", minimum=1)
        return make_resnet(BasicBlock, (n, n, n), (base, 2 * base, 4 * base), num_classes, in_channels,
                           stem="cifar", shortcut=shortcut, rng=rng)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"ResNet-{depth} (n = {n}), He et al. §4.2; options in the module docstring."
    return register(name, f"ResNet-{depth}, He et al. §4.2 CIFAR network ({n} basic blocks per stage, "
                          f"16-32-64), zero-padding shortcuts (option A){CIFAR_DEPTHS[depth]}")(build)


resnet18 = _imagenet_builder(18)
resnet34 = _imagenet_builder(34)
resnet50 = _imagenet_builder(50)
resnet101 = _imagenet_builder(101)
resnet152 = _imagenet_builder(152)
resnet20 = _cifar_builder(20)
resnet32 = _cifar_builder(32)
resnet44 = _cifar_builder(44)
resnet56 = _cifar_builder(56)
resnet110 = _cifar_builder(110)
