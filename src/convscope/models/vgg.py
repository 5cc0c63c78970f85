"""VGG (Simonyan & Zisserman 2014, notes §2.3): only 3x3 convolutions, stacked between pools.

Configurations A, B, D, E of the paper are ``vgg11``, ``vgg13``, ``vgg16``, ``vgg19``: five
stages of 3x3/1 convolutions (padding 1, each + ReLU) with (1, 1, 2, 2, 2), (2, 2, 2, 2, 2),
(2, 2, 3, 3, 3) or (2, 2, 4, 4, 4) convolutions of widths 64-128-256-512-512, a 2x2/2
max-pool after every stage, then fc 4096 -> 4096 -> classes with ReLU and dropout 0.5.
At 3x224x224 with 1000 classes vgg16 has 138,357,544 parameters (torchvision's count; at
224 the map is 7x7, where torchvision's adaptive 7x7 pool is the identity and is left out).
The ``_bn`` models add BatchNorm2d after every convolution (before the ReLU), as torchvision.
Weights are He-initialised except fc8's, N(0, 0.001) (``models._small.OUTPUT_INIT``).

Small variant (max(H, W) <= 64): the same stages and conv counts with widths 16-32-64-128-128
and pools after stages 1-3 only (28 -> 14 -> 7 -> 3; 32 -> 16 -> 8 -> 4), so stages 4 and 5
work on the 3x3 map; then fc 256 -> 256 -> classes with dropout.

Options of every builder: ``small`` (None: by input size; True/False: force a variant) and
``dropout`` (p after fc6 and fc7, default 0.5).

Layers: ``features.conv1_1, [bn1_1,] relu1_1, ..., pool1, ..., conv5_k, relu5_k, pool5``,
``flatten``, ``classifier.fc6, relu6, drop6, fc7, relu7, drop7, fc8``.
"""

from __future__ import annotations

from ..layers import BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
from ..validation import check_probability
from ._small import OUTPUT_INIT, flat_features, use_small_variant
from .registry import register

__all__ = ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]

# Convolutions per stage: the paper's configurations A (11 weight layers), B (13), D (16), E (19).
CONFIGS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
_FULL = dict(widths=(64, 128, 256, 512, 512), pools=(1, 2, 3, 4, 5), fc=(4096, 4096))
_SMALL = dict(widths=(16, 32, 64, 128, 128), pools=(1, 2, 3), fc=(256, 256))


def _vgg(depth, batch_norm, num_classes, in_channels, input_size, rng, small, dropout) -> Sequential:
    name = f"vgg{depth}" + ("_bn" if batch_norm else "")
    p = check_probability(dropout, f"{name}: dropout")
    cfg = _SMALL if use_small_variant(name, input_size, small) else _FULL
    layers, c = [], in_channels
    for stage, (n_convs, width) in enumerate(zip(CONFIGS[depth], cfg["widths"]), start=1):
        for k in range(1, n_convs + 1):
            tag = f"{stage}_{k}"
            layers.append((f"conv{tag}", Conv2d(c, width, 3, padding=1, rng=rng)))
            if batch_norm:
                layers.append((f"bn{tag}", BatchNorm2d(width)))
            layers.append((f"relu{tag}", ReLU()))
            c = width
        if stage in cfg["pools"]:
            layers.append((f"pool{stage}", MaxPool2d(2)))
    features = Sequential(*layers)
    n_flat = flat_features(name, features, in_channels, input_size)     # 512*7*7 at 224
    fc6, fc7 = cfg["fc"]
    classifier = Sequential(
        ("fc6", Linear(n_flat, fc6, rng=rng)), ("relu6", ReLU()), ("drop6", Dropout(p, rng=rng)),
        ("fc7", Linear(fc6, fc7, rng=rng)), ("relu7", ReLU()), ("drop7", Dropout(p, rng=rng)),
        ("fc8", Linear(fc7, num_classes, init=OUTPUT_INIT, rng=rng)),     # N(0, 0.001)
    )
    return Sequential(("features", features), ("flatten", Flatten()), ("classifier", classifier))


def _description(depth: int, batch_norm: bool, count: str) -> str:
    cfg = "ABDE"[list(CONFIGS).index(depth)]
    bn = " with batch norm" if batch_norm else ""
    return (f"VGG-{depth} (configuration {cfg}){bn}, 3x3 convs, fc 4096-4096 ({count} parameters "
            f"at 3x224x224/1000); small inputs: widths 16-32-64-128-128, 3 pools, fc 256-256")


def _builder(depth: int, batch_norm: bool, count: str):
    """Register the builder of VGG-``depth`` (with batch norm if ``batch_norm``) under its name."""
    name = f"vgg{depth}" + ("_bn" if batch_norm else "")

    def build(num_classes=10, in_channels=1, input_size=(28, 28), rng=None, *, small=None, dropout=0.5):
        return _vgg(depth, batch_norm, num_classes, in_channels, input_size, rng, small, dropout)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{_description(depth, batch_norm, count)}. Options as in the module docstring."
    return register(name, _description(depth, batch_norm, count))(build)


vgg11 = _builder(11, False, "132,863,336")
vgg13 = _builder(13, False, "133,047,848")
vgg16 = _builder(16, False, "138,357,544")
vgg19 = _builder(19, False, "143,667,240")
vgg11_bn = _builder(11, True, "132,868,840")
vgg13_bn = _builder(13, True, "133,053,736")
vgg16_bn = _builder(16, True, "138,365,992")
vgg19_bn = _builder(19, True, "143,678,248")
