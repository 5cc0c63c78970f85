"""The preprocessing and classes that go with imported weights.

``imagenet``: torchvision's ImageNet evaluation transform (``Resize(256)``: shorter side to
256, bilinear with antialiasing; ``CenterCrop(224)``; ``ToTensor``; ``Normalize`` with the
ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225)) and its 1000 class names
(torchvision's ``_IMAGENET_CATEGORIES``, shipped as ``convscope/data/imagenet_classes.txt``).

GoogLeNet's pretrained weights expect ``transform_input=True``: torchvision re-maps each
ImageNet-normalised channel to ``x * std / 0.5 + (mean - 0.5) / 0.5`` before the first
convolution, which is ``(pixel - 0.5) / 0.5``: the same as normalising with mean 0.5 and std
0.5. Its preset carries that normaliser, so the plain zoo GoogLeNet sees exactly what
torchvision's sees (checked in ``tests/interop``).

``none``: mean 0 and std 1 on the 0..1 pixel scale (``ToTensor`` alone), classes "0".."K-1",
no resize or crop: the weights' own input size, 224 x 224.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from ..data import Normalizer

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "IMAGENET_PREPROCESS", "IMAGENET_INPUT_SHAPE", "PRESETS",
           "imagenet_class_names", "imagenet_preset", "plain_preset"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_PREPROCESS = {"resize": 256, "crop": True}       # Resize(256) + CenterCrop(224)
IMAGENET_INPUT_SHAPE = (3, 224, 224)
PRESETS = ("imagenet", "none")
_TRANSFORM_INPUT = ("googlenet",)                          # pretrained with transform_input=True


@lru_cache(maxsize=1)
def _class_names() -> tuple[str, ...]:
    text = resources.files("convscope.data").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(line for line in text.splitlines() if line)
    if len(names) != 1000:
        raise RuntimeError(f"convscope/data/imagenet_classes.txt has {len(names)} names, not 1000 "
                           f"(a damaged installation)")
    return names


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names in torchvision's order ("tench", "goldfish", ...)."""
    return list(_class_names())


def imagenet_preset(model_name: str) -> dict:
    """torchvision's ImageNet preprocessing for ``model_name`` (any name; "googlenet" gets its
    transform_input normaliser): ``normalizer``, ``class_names`` (1000), ``preprocess``
    ({"resize": 256, "crop": True}) and ``input_shape`` (3, 224, 224).

    >>> p = imagenet_preset("resnet50")
    >>> p["class_names"][:2], p["input_shape"], p["preprocess"]
    (['tench', 'goldfish'], (3, 224, 224), {'resize': 256, 'crop': True})
    >>> imagenet_preset("GoogLeNet")["normalizer"].mean.tolist()
    [0.5, 0.5, 0.5]
    """
    if not isinstance(model_name, str):
        raise TypeError(f"model_name must be a string, got {model_name!r}")
    if model_name.lower() in _TRANSFORM_INPUT:
        normalizer = Normalizer([0.5] * 3, [0.5] * 3)
    else:
        normalizer = Normalizer(IMAGENET_MEAN, IMAGENET_STD)
    return {"normalizer": normalizer, "class_names": imagenet_class_names(),
            "preprocess": dict(IMAGENET_PREPROCESS), "input_shape": IMAGENET_INPUT_SHAPE}


def plain_preset(num_classes: int, input_shape=IMAGENET_INPUT_SHAPE) -> dict:
    """``--preset none``: mean 0 / std 1 on the 0..1 scale, classes "0".."K-1", no resize or crop
    (``preprocess`` {}: an image file is stretched to the input size, an array must have it)."""
    channels = input_shape[0]
    return {"normalizer": Normalizer([0.0] * channels, [1.0] * channels),
            "class_names": [str(k) for k in range(num_classes)],
            "preprocess": {}, "input_shape": tuple(input_shape)}
