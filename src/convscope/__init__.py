"""convscope: a CNN engine written from first principles in NumPy, and tools to look inside it.

The front door::

    import convscope
    clf = convscope.train("lenet5", data="mnist", epochs=1, limit=3000, out="runs/x")
    clf.predict(images)                      # (N, K) class probabilities for raw images
    clf = convscope.load("runs/x")           # a run directory or a checkpoint file
    convscope.visualize.grad_cam(clf, images)

Sub-packages: ``layers`` (the engine), ``models`` (the zoo), ``data``, ``optim``,
``training``, ``visualize`` (notes §3), ``summary``.
"""

from __future__ import annotations

import importlib

from . import layers
from .classifier import Classifier, load
from .training.api import train

__version__ = "0.1.0"
__all__ = ["train", "load", "Classifier", "layers", "models", "data", "optim", "training", "visualize",
           "summary", "__version__"]

_SUBMODULES = {"models", "data", "optim", "training", "visualize", "summary", "io", "validation", "interop", "onnx",
               "explore"}


def __getattr__(name: str):
    """Sub-packages load on first use (``convscope.visualize`` needs no import of its own)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'convscope' has no attribute {name!r}")
