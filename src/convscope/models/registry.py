"""Model registry: builders by name, so ``convscope train --model NAME`` finds them.

A builder is ``fn(num_classes=10, in_channels=1, input_size=(H, W), rng=None) -> Module``.
It looks at the input size to pick the full-size network or its documented small-input
variant. :func:`build_model` validates the arguments and records the config on the model
(``model.config``), so a checkpoint can rebuild the same architecture from its file alone.

Names are lower-case and matched case-insensitively: ``build_model("VGG16_BN")`` builds
``vgg16_bn``. :func:`resolve_model_name` checks a name early (a CLI flag, an API argument)
and suggests the closest known one.

``"graph"`` is registered but not listed by :func:`available_models` (the zoo): it builds
any DAG of layers from a JSON spec, ``build_model("graph", ..., graph=spec)``, which is how a
checkpoint of an imported ONNX network is rebuilt (:mod:`convscope.models.graph`).
"""

from __future__ import annotations

import difflib
from typing import Callable

import numpy as np

from ..layers import Module
from .graph import graph as graph_model

__all__ = ["register", "build_model", "available_models", "model_description", "resolve_model_name"]

_REGISTRY: dict[str, tuple[Callable[..., Module], str]] = {}
_UNLISTED: set[str] = set()          # built from a spec rather than by name alone: not in the zoo


def register(name: str, description: str, *, listed: bool = True):
    """Decorator adding a builder to the registry under ``name`` (lower-case); ``listed=False``
    keeps it out of :func:`available_models` (builders that need a spec, such as "graph")."""
    if not isinstance(name, str) or not name or name != name.lower():
        raise ValueError(f"model names are non-empty lower-case strings, got {name!r}")

    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = (fn, description)
        if not listed:
            _UNLISTED.add(name)
        return fn
    return wrap


def available_models() -> list[str]:
    """The zoo: every registered name that builds from its arguments alone."""
    return sorted(set(_REGISTRY) - _UNLISTED)


def resolve_model_name(name: str) -> str:
    """The registered name that ``name`` means, matched case-insensitively.

    >>> resolve_model_name("VGG16_BN")
    'vgg16_bn'
    >>> resolve_model_name("ResNet-50")
    Traceback (most recent call last):
    ValueError: unknown model 'ResNet-50'; did you mean 'resnet50'? known models: alexnet, ...

    TypeError for a non-string; ValueError for an unknown name, suggesting the closest
    known name (``difflib.get_close_matches``) and listing them all.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {name!r}")
    key = name.lower()
    if key in _REGISTRY:
        return key
    close = difflib.get_close_matches(key, available_models(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    raise ValueError(f"unknown model {name!r}{hint} known models: {', '.join(available_models())}")


def model_description(name: str) -> str:
    """The one-line description of model ``name`` (any case)."""
    return _REGISTRY[resolve_model_name(name)][1]


def build_model(name: str, num_classes: int = 10, in_channels: int = 1, input_size=(28, 28),
                rng: np.random.Generator | None = None, **options) -> Module:
    """Build model ``name`` for (in_channels, *input_size) inputs and ``num_classes`` classes.

    ``name`` is matched case-insensitively; ``model.config["name"]`` is the registered
    (lower-case) name. Raises ValueError for an unknown name (suggesting the closest, listing
    the known ones) or for an input the architecture cannot take (naming the shape).
    """
    name = resolve_model_name(name)
    for what, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{what} must be a positive int, got {value!r}")
    if isinstance(input_size, (int, np.integer)):
        input_size = (int(input_size), int(input_size))
    input_size = tuple(int(s) for s in input_size)
    if len(input_size) != 2 or min(input_size) < 1:
        raise ValueError(f"input_size must be (H, W) with positive sizes, got {input_size!r}")
    builder, _ = _REGISTRY[name]
    model = builder(num_classes=int(num_classes), in_channels=int(in_channels),
                    input_size=input_size, rng=rng, **options)
    shape = (int(in_channels),) + input_size
    try:
        out = model.output_shape(shape)
    except ValueError as err:
        raise ValueError(f"model {name!r} cannot take inputs of shape {shape}: {err}") from None
    if out != (num_classes,):
        raise ValueError(f"model {name!r} gives outputs of shape {out} for inputs {shape}, "
                         f"expected ({num_classes},)")
    model.config = {"name": name, "num_classes": int(num_classes), "in_channels": int(in_channels),
                    "input_size": list(input_size), "options": dict(options)}
    return model


register("graph", "any DAG of layers, built from a JSON spec (graph=...): imported ONNX networks",
         listed=False)(graph_model)
