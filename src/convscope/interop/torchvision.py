"""torchvision's state_dict names and layouts onto the zoo's, for AlexNet, VGG, GoogLeNet and ResNet.

The zoo builds torchvision's architectures layer for layer (same convolutions, pools with
the same ``ceil_mode``, BN with the same eps: 1e-5, or 1e-3 in GoogLeNet's BasicConv2d; the
3x3 kernel torchvision keeps in GoogLeNet's "5x5" branch), so importing is renaming: every
array keeps its layout (convolutions (F, C, KH, KW), linear layers (out, in), as in PyTorch).
At 224 x 224 the adaptive average pools before AlexNet's and VGG's classifiers are the
identity, which is why the zoo leaves them out and why imported models take 224 x 224 inputs.

- AlexNet: ``features.{0,3,6,8,10}`` -> ``features.conv1..5``, ``classifier.{1,4,6}`` -> ``fc6..8``;
- VGG: ``features.i`` counted through the configuration (conv, [bn,] relu, ..., pool) ->
  ``features.conv<stage>_<k>`` / ``bn<stage>_<k>``, ``classifier.{0,3,6}`` -> ``fc6..8``;
- GoogLeNet: ``conv1.conv`` / ``conv1.bn`` -> ``conv1`` / ``conv1_bn``; in each Inception
  module ``branch2.0`` / ``branch2.1`` -> ``branch2.reduce`` / ``branch2.conv`` (``bn`` ->
  ``reduce_bn`` / ``bn``; branch 3 alike), ``branch4.1`` -> ``branch4``. The auxiliary
  classifiers ``aux1`` / ``aux2`` (in the file when torchvision was built with
  ``aux_logits=True``, as its pretrained file is) run in training only and are dropped;
- ResNet: the same names, except ``downsample.0`` / ``.1`` -> ``shortcut.conv`` / ``shortcut.bn``.

BatchNorm's ``num_batches_tracked`` (a step counter, unused in evaluation) is ignored.
"""

from __future__ import annotations

import re

import numpy as np

from ..layers import Module, shapes_only
from ..models import build_model, resolve_model_name
from ..models.vgg import CONFIGS
from .errors import WeightsError

__all__ = ["TORCHVISION_MODELS", "head_key", "torchvision_names", "build_from_state_dict"]

TORCHVISION_MODELS = ("alexnet", *(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
                      "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
IMPORT_SIZE = (224, 224)           # the size torchvision's ImageNet weights were made for
_IGNORED = re.compile(r"(^|\.)num_batches_tracked$")
_DROPPED = {"googlenet": re.compile(r"^aux[12]\.")}


def head_key(name: str) -> str:
    """The torchvision name of the output layer's weight (num_classes x features)."""
    return "fc.weight" if name == "googlenet" or name.startswith("resnet") else "classifier.6.weight"


def _alexnet_modules(name: str) -> dict[str, str]:
    table = {f"features.conv{k}": f"features.{i}" for k, i in enumerate((0, 3, 6, 8, 10), start=1)}
    table.update({f"classifier.fc{k}": f"classifier.{i}" for k, i in zip((6, 7, 8), (1, 4, 6))})
    return table


def _vgg_modules(name: str) -> dict[str, str]:
    depth, batch_norm = int(name[3:5]), name.endswith("_bn")
    table, index = {}, 0
    for stage, convs in enumerate(CONFIGS[depth], start=1):
        for k in range(1, convs + 1):
            table[f"features.conv{stage}_{k}"] = f"features.{index}"
            index += 1
            if batch_norm:
                table[f"features.bn{stage}_{k}"] = f"features.{index}"
                index += 1
            index += 1                                        # the ReLU
        index += 1                                            # the max-pool
    table.update({f"classifier.fc{k}": f"classifier.{i}" for k, i in zip((6, 7, 8), (0, 3, 6))})
    return table


# GoogLeNet's module renames, zoo -> torchvision, applied to the module path of each key.
_GOOGLENET = [(re.compile(p), r) for p, r in (
    (r"^conv(\d)$", r"conv\1.conv"), (r"^conv(\d)_bn$", r"conv\1.bn"),
    (r"^(inception\w+)\.(branch[23])\.reduce$", r"\1.\2.0.conv"),
    (r"^(inception\w+)\.(branch[23])\.reduce_bn$", r"\1.\2.0.bn"),
    (r"^(inception\w+)\.(branch[23])\.(conv|bn)$", r"\1.\2.1.\3"),
    (r"^(inception\w+)\.branch4\.(conv|bn)$", r"\1.branch4.1.\2"),
    (r"^(aux\d)\.head\.(conv|bn)$", r"\1.conv.\2"), (r"^(aux\d)\.head\.(fc\d)$", r"\1.\2"),
)]


def _googlenet_module(path: str) -> str:
    for pattern, replacement in _GOOGLENET:
        if pattern.match(path):
            return pattern.sub(replacement, path)
    return path                                               # inception*.branch1.*, fc


def _resnet_module(path: str) -> str:
    return path.replace(".shortcut.conv", ".downsample.0").replace(".shortcut.bn", ".downsample.1")


def torchvision_names(name: str, zoo_keys) -> dict[str, str]:
    """zoo state_dict key -> torchvision's key for the same array, for model ``name``."""
    if name == "alexnet" or name.startswith("vgg"):
        table = (_alexnet_modules if name == "alexnet" else _vgg_modules)(name)
        rename = lambda path: table.get(path, path)           # noqa: E731
    elif name == "googlenet":
        rename = _googlenet_module
    else:
        rename = _resnet_module
    out = {}
    for key in zoo_keys:
        path, _, param = key.rpartition(".")
        out[key] = f"{rename(path)}.{param}"
    return out


def _check_name(model: str) -> str:
    try:
        name = resolve_model_name(model)
    except ValueError as err:
        raise WeightsError(f"--model: {err}") from None
    if name not in TORCHVISION_MODELS:
        raise WeightsError(f"model {name!r} has no torchvision counterpart to import; importable models: "
                           f"{', '.join(TORCHVISION_MODELS)}")
    return name


def build_from_state_dict(state: dict[str, np.ndarray], model: str, num_classes: int | None = None, *,
                          source: str = "the weights") -> Module:
    """The zoo ``model`` (at 3 x 224 x 224, in eval mode) holding the torchvision ``state``.

    ``num_classes`` None is read from the output layer's weight. WeightsError (one line,
    naming ``source`` and torchvision's key) for a missing, unexpected, mis-shaped or
    non-numeric array.
    """
    name = _check_name(model)
    dropped = _DROPPED.get(name)
    state = {k: v for k, v in state.items() if not _IGNORED.search(k) and not (dropped and dropped.match(k))}
    head = head_key(name)
    if head not in state:
        raise WeightsError(f"{source} has no '{head}' (the output layer of torchvision's {name}): not a "
                           f"{name} state_dict?")
    if num_classes is None:
        if state[head].ndim != 2 or state[head].shape[0] < 1:
            raise WeightsError(f"{source}: '{head}' has shape {state[head].shape}; an output layer's weight "
                               f"is (classes, features)")
        num_classes = int(state[head].shape[0])
    with shapes_only():                                       # names and shapes only, no memory
        skeleton = build_model(name, num_classes=num_classes, in_channels=3, input_size=IMPORT_SIZE)
    expected = skeleton.state_dict()
    names = torchvision_names(name, expected)
    for key, tv in names.items():
        if tv not in state:
            raise WeightsError(f"{source} has no '{tv}', which torchvision's {name} has (the zoo's '{key}'): "
                               f"not a {name} state_dict, or a different variant?")
    known = set(names.values())
    extra = next((k for k in state if k not in known), None)
    if extra is not None:
        raise WeightsError(f"{source} holds '{extra}', which is not a weight of torchvision's {name} "
                           f"(a different architecture?)")
    weights = {}
    for key, tv in names.items():
        value, want = state[tv], expected[key]
        if value.shape != want.shape:
            hint = " (--num-classes sets the number of classes)" if tv == head or tv == head[:-6] + "bias" else ""
            raise WeightsError(f"{source}: '{tv}' has shape {tuple(value.shape)} but torchvision's {name} "
                               f"needs {tuple(want.shape)} there{hint}")
        if value.dtype.kind != "f":
            raise WeightsError(f"{source}: '{tv}' holds {value.dtype} values; a weight must be floating point")
        weights[key] = value
    with shapes_only():                                       # placeholders, all replaced just below
        network = build_model(name, num_classes=num_classes, in_channels=3, input_size=IMPORT_SIZE)
    network.load_state_dict(weights)
    return network.eval()
