"""Looking at one layer of any model: its output on the way forward, and the gradient that
reaches it (or one we inject) on the way back.

A probe temporarily wraps the ``forward`` and ``backward`` of one module *instance*, found by
the dotted name that ``convscope summary`` prints, so it works for plain stacks, residual and
Inception models alike without knowing how the model is built.

Starting backpropagation at an inner layer: run the whole forward pass, then backpropagate a
*zero* gradient from the logits and, when it reaches the probed layer, replace it with the
seed. Every layer is linear in its upstream gradient, so the layers above contribute nothing
and paths that bypass the probed layer (residual shortcuts) carry zeros: what arrives at the
input is exactly d(sum(seed * layer output))/d(input).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from ..layers import Module, ReLU

__all__ = ["Probe", "probe", "relu_rule", "layer_output", "input_gradient", "evaluation_mode",
           "leaf_layer_names", "layers_of_type", "feature_layer", "find_layer"]


class _Stop(Exception):
    """Raised by a probe to end a forward pass early, once the layer's output is known."""


class Probe:
    """What one module saw: ``output`` of the last forward, ``grad`` (dLoss/dOutput) of the
    last backward. ``seed``, when set, replaces the incoming gradient: an array shaped like
    the output, or a function of the output."""

    def __init__(self, name: str, module: Module) -> None:
        self.name, self.module = name, module
        self.output: np.ndarray | None = None
        self.grad: np.ndarray | None = None
        self.seed: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None
        self.stop_after_forward = False


def _training_only(model: Module) -> tuple[str, ...]:
    """Name prefixes of the auxiliary classifiers' heads, which run in training only."""
    from ..layers import AuxiliaryClassifier
    return tuple(f"{name}." for name, m in model.named_modules() if isinstance(m, AuxiliaryClassifier))


def find_layer(model: Module, name: str) -> Module:
    """The module called ``name`` ("" is the whole model); ValueError listing names if unknown,
    or if it sits in a training-only auxiliary classifier (nothing runs there in evaluation)."""
    if name == "":
        return model
    module = model.get_module(name)
    if name.startswith(_training_only(model)):
        raise ValueError(f"layer {name!r} belongs to a training-only auxiliary classifier, which does "
                         f"not run when a model is examined; choose a layer on the main path")
    return module


def leaf_layer_names(model: Module) -> list[str]:
    """Dotted names of the leaf layers that run in evaluation, in forward order: the rows of
    ``convscope summary`` less any auxiliary classifier's head."""
    skip = _training_only(model)
    return [name for name, module in model.named_modules()
            if name and not module.children() and not name.startswith(skip)]


@contextmanager
def probe(model: Module, name: str) -> Iterator[Probe]:
    """Attach a :class:`Probe` to layer ``name`` of ``model`` for the duration of the block."""
    module = find_layer(model, name)
    p = Probe(name, module)
    original_forward, original_backward = module.forward, module.backward

    def forward(x):
        p.output = original_forward(x)
        if p.stop_after_forward:
            raise _Stop
        return p.output

    def backward(dy):
        p.grad = dy
        if p.seed is not None:
            dy = p.seed(p.output) if callable(p.seed) else p.seed
        return original_backward(np.asarray(dy, dtype=p.output.dtype))

    module.forward, module.backward = forward, backward
    try:
        yield p
    finally:
        del module.forward, module.backward           # back to the class's methods


@contextmanager
def relu_rule(model: Module, rule: str) -> Iterator[None]:
    """Set every ReLU's backward rule ("gradient", "deconvnet", "guided") inside the block."""
    if rule not in ReLU.RULES:
        raise ValueError(f"rule must be one of {', '.join(ReLU.RULES)}, got {rule!r}")
    relus = [m for _, m in model.named_modules() if isinstance(m, ReLU)]
    saved = [m.backward_rule for m in relus]
    for m in relus:
        m.backward_rule = rule
    try:
        yield
    finally:
        for m, r in zip(relus, saved):
            m.backward_rule = r


@contextmanager
def evaluation_mode(model: Module) -> Iterator[Module]:
    """Eval mode (running BN statistics, no dropout) and input gradients on, restored after."""
    was_training = model.training
    input_grads = [(m, m.need_input_grad) for _, m in model.named_modules()]
    model.eval()
    model.set_input_grad(True)
    try:
        yield model
    finally:
        model.train(was_training)
        for m, flag in input_grads:
            m.need_input_grad = flag


def layer_output(model: Module, x: np.ndarray, name: str) -> np.ndarray:
    """The output of layer ``name`` for inputs x (N, C, H, W), skipping the layers after it."""
    with probe(model, name) as p:
        p.stop_after_forward = True
        try:
            out = model.forward(x)
        except _Stop:
            out = p.output
    return np.ascontiguousarray(out)


def input_gradient(model: Module, x: np.ndarray, name: str,
                   seed: np.ndarray | Callable[[np.ndarray], np.ndarray],
                   rule: str = "gradient") -> tuple[np.ndarray, np.ndarray]:
    """(d sum(seed * output of layer ``name``) / dx, that output) for inputs x (N, C, H, W).

    ``seed`` is an array shaped like the layer's output or a function of that output (e.g.
    a one-hot mask of one unit). ``rule`` switches the ReLUs' backward (see
    :class:`~convscope.layers.ReLU`): "gradient" gives saliency, "deconvnet" Zeiler & Fergus's
    projection, "guided" guided backpropagation. ``name`` "" means the model's output (logits).
    """
    with relu_rule(model, rule), probe(model, name) as p:
        p.seed = seed
        logits = model.forward(x)
        dx = model.backward(np.zeros_like(logits))
    if dx is None:
        raise ValueError("the model returned no input gradient; call model.set_input_grad(True)")
    return np.ascontiguousarray(dx), np.ascontiguousarray(p.output)


def layers_of_type(model: Module, kinds) -> list[str]:
    """Dotted names of the leaf layers that are instances of ``kinds``, in forward order."""
    return [name for name in leaf_layer_names(model) if isinstance(model.get_module(name), kinds)]


def feature_layer(model: Module) -> str:
    """The layer whose output is the feature space before the first fully-connected layer
    (notes §3): the leaf just before the first Linear in forward order, e.g. "flatten" in
    LeNet-5 or the global average pool of a ResNet."""
    from ..layers import Linear
    names = leaf_layer_names(model)
    for previous, name in zip(names, names[1:]):
        if isinstance(model.get_module(name), Linear):
            return previous
    raise ValueError("the model has no fully-connected layer after another layer; choose one with --layer")
