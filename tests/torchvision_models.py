"""torchvision's model definitions without torchvision's compiled ops, for reference networks in tests.

torchvision 0.28.0 installs beside the CPU build of torch 2.13.0, but ``import torchvision`` fails
(its C++ operators, e.g. ``torchvision::nms``, do not load against that build). The model
definitions are pure Python, so this module registers empty stand-ins for the ``torchvision`` and
``torchvision.models`` packages (their ``__init__`` files are what import the operators) and
imports the architecture modules directly. Tests call :func:`torchvision_model` and skip cleanly
when torch or torchvision is missing::

    net = torchvision_model("resnet18", num_classes=10)     # a torch.nn.Module, random weights
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import pytest

__all__ = ["torchvision_model", "torchvision_module"]

# Architecture name -> the torchvision.models module that defines it.
_MODULES = {"alexnet": "alexnet", "googlenet": "googlenet", "inception_v3": "inception", "squeezenet1_0": "squeezenet",
            "squeezenet1_1": "squeezenet", "mobilenet_v2": "mobilenetv2", "mobilenet_v3_small": "mobilenetv3",
            "mobilenet_v3_large": "mobilenetv3", "densenet121": "densenet", "efficientnet_b0": "efficientnet",
            "mnasnet0_5": "mnasnet", "shufflenet_v2_x0_5": "shufflenetv2", "regnet_x_400mf": "regnet",
            "regnet_y_400mf": "regnet", "convnext_tiny": "convnext", "resnext50_32x4d": "resnet",
            "wide_resnet50_2": "resnet"}
_MODULES.update({f"vgg{d}{bn}": "vgg" for d in (11, 13, 16, 19) for bn in ("", "_bn")})
_MODULES.update({f"resnet{d}": "resnet" for d in (18, 34, 50, 101, 152)})


def torchvision_module(name: str):
    """The module ``torchvision.models.<name>``, imported without torchvision's package __init__."""
    pytest.importorskip("torch")
    spec = importlib.util.find_spec("torchvision") if "torchvision" not in sys.modules else None
    if "torchvision" not in sys.modules:
        if spec is None or spec.origin is None:
            pytest.skip("torchvision is not installed")
        root = Path(spec.origin).parent
        for package, path in (("torchvision", root), ("torchvision.models", root / "models")):
            stand_in = types.ModuleType(package)
            stand_in.__path__ = [str(path)]
            sys.modules[package] = stand_in
    return importlib.import_module(f"torchvision.models.{name}")


def torchvision_model(arch: str, **kwargs):
    """``torchvision.models.<arch>(**kwargs)`` with random weights (never downloaded), in eval mode."""
    if arch not in _MODULES:
        raise ValueError(f"unknown torchvision architecture {arch!r}; known: {', '.join(sorted(_MODULES))}")
    module = torchvision_module(_MODULES[arch])
    return getattr(module, arch)(weights=None, **kwargs).eval()
