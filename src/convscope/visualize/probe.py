"""The gradient plumbing every technique shares: one layer's output on the way forward, and
the gradient that reaches it (or one we inject) on the way back.

A :class:`Probe` attaches to one module *instance*, found by the dotted name that
``convscope summary`` prints, so it works for plain stacks, residual and Inception models
alike without knowing how the model is built.

- **Forward**: a forward hook (:meth:`Module.register_forward_hook`) records the layer's
  output, and may end the pass there (the hook raises; nothing after the layer runs).
- **Backward**: a Probe is a tiny identity :class:`~convscope.layers.Module` whose
  ``backward`` records the gradient arriving at the layer's output (dLoss/dOutput) and can
  replace it by a *seed*. Modules offer forward hooks only, and containers call their
  children's ``backward`` directly from what forward cached, so the one place that gradient
  can be seen is the layer's own ``backward``: while the probe is attached, that one
  instance's ``backward`` runs the probe's first (:func:`_backward_through`, the only
  instance attribute this module sets, removed on exit).

Starting backpropagation at an inner layer (:func:`backprop_from`): run the whole forward
pass, backpropagate a *zero* gradient from the logits and, when it reaches the probed layer,
replace it by the seed. Every layer's backward sends a zero upstream gradient to a zero
downstream one, under the true gradient and under the deconvnet and guided ReLU rules alike
(those rules are not linear in the upstream gradient, but they map 0 to 0). So the layers
above contribute nothing and paths that bypass the probed layer (residual shortcuts) carry
zeros (in evaluation mode, where auxiliary heads add nothing): what arrives at the input is
the chosen rule's backward of the seed from that layer, under the true gradient exactly
d(sum(seed * layer output))/d(input).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Iterator

import numpy as np

from ..layers import Module, ReLU
from .core import batches, check_layer, find_layer, one_hot

__all__ = ["Probe", "probe", "layer_output", "layer_outputs", "layer_batches", "output_shape_of",
           "backprop_from", "backward_to", "logit_gradient", "relu_rule", "evaluation_mode", "input_gradient"]

class _Stop(Exception):
    """Raised by a forward hook to end a forward pass early, once the outputs wanted are known."""


class Probe(Module):
    """What one layer saw: ``output`` of the last forward, ``grad`` (dLoss/dOutput) of the last
    backward. ``seed``, when set, replaces the incoming gradient: an array shaped like the
    output, or a function of the output. ``stop_after_forward`` ends a forward pass at the layer,
    ``stop_after_backward`` a backward pass once the gradient has reached it (:func:`backward_to`).

    As a module it is the identity; its ``backward`` is where the gradient is read and seeded.
    """

    def __init__(self, name: str, module: Module) -> None:
        super().__init__()
        self.name, self.module = name, module
        self.output: np.ndarray | None = None
        self.grad: np.ndarray | None = None
        self.seed = None
        self.stop_after_forward = False
        self.stop_after_backward = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.output = x
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.grad = dy
        if self.stop_after_backward:
            raise _Stop
        if self.seed is None:
            return dy
        seed = self.seed(self.output) if callable(self.seed) else self.seed
        seed = np.asarray(seed, dtype=self.output.dtype)
        if seed.shape != self.output.shape:
            raise ValueError(f"the seed for layer {self.name or '(logits)'!r} must have the layer output's "
                             f"shape {self.output.shape}, got {seed.shape}")
        return seed

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)

    def _on_forward(self, module: Module, x: np.ndarray, y: np.ndarray) -> None:
        """The forward hook: record the output (returns None: the output is kept as it is)."""
        self.forward(y)
        if self.stop_after_forward:
            raise _Stop


@contextmanager
def _backward_through(module: Module, tap: Module) -> Iterator[None]:
    """Inside the block ``module.backward(dy)`` is ``module``'s own backward of ``tap.backward(dy)``."""
    own, saved = module.backward, module.__dict__.get("backward")

    def backward(dy):
        return own(tap.backward(dy))

    module.backward = backward
    try:
        yield
    finally:
        if saved is None:
            del module.backward                   # back to the class's method
        else:
            module.backward = saved               # an enclosing probe's, on the same layer


@contextmanager
def probe(model: Module, name: str) -> Iterator[Probe]:
    """Attach a :class:`Probe` to layer ``name`` of ``model`` for the duration of the block."""
    module = find_layer(model, name)
    p = Probe(name, module)
    with module.register_forward_hook(p._on_forward), _backward_through(module, p):
        yield p


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
    """Eval mode (running BN statistics, no dropout), input gradients on and parameter
    gradients off (every technique here differentiates with respect to an input or a layer's
    output only, so backward skips the weight gradients: VGG-16's fc6 one alone is 411 MB),
    all restored after."""
    was_training = model.training
    flags = [(m, m.need_input_grad, m.need_param_grad) for _, m in model.named_modules()]
    model.eval()
    model.set_input_grad(True)
    model.set_param_grad(False)
    try:
        yield model
    finally:
        model.train(was_training)
        for m, input_flag, param_flag in flags:
            m.need_input_grad, m.need_param_grad = input_flag, param_flag


def backward_to(model: Module, dy: np.ndarray, p: Probe) -> np.ndarray:
    """Backpropagate dy (dLoss/dLogits) only until it reaches probe ``p``'s layer; returns the
    gradient there (also in ``p.grad``). The layers below never run their backward: the whole
    gradient at a layer's output has arrived when its own backward is called (residual and
    Inception containers sum their branches first), so nothing further down is needed.
    ValueError if the layer is not on the backward path."""
    p.grad, p.stop_after_backward = None, True
    try:
        model.backward(dy)
    except _Stop:
        pass
    finally:
        p.stop_after_backward = False
    if p.grad is None:
        raise ValueError(f"the gradient never reached layer {p.name!r}; choose a layer on the main path")
    return p.grad


def layer_output(model: Module, x: np.ndarray, name: str) -> np.ndarray:
    """The output of layer ``name`` for inputs x (N, C, H, W), skipping the layers after it."""
    return layer_outputs(model, x, [name])[0]


def layer_outputs(model: Module, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    """The outputs of several layers from one forward pass, ended as soon as all have run.

    Each output is copied when it is recorded, so a later layer cannot change it.
    """
    outputs: dict[str, np.ndarray] = {}

    def recorder(name: str):
        def hook(module, inputs, y):
            if name not in outputs:
                outputs[name] = np.array(y) if len(names) > 1 else np.ascontiguousarray(y)
                if len(outputs) == len(names):
                    raise _Stop
        return hook

    with ExitStack() as stack:
        for name in names:
            stack.enter_context(find_layer(model, name).register_forward_hook(recorder(name)))
        try:
            model.forward(x)
        except _Stop:
            pass
    missing = [name for name in names if name not in outputs]
    if missing:
        raise ValueError(f"layer {missing[0]!r} did not run in the forward pass; choose a layer on the main path")
    return [outputs[name] for name in names]


def layer_batches(model: Module, x: np.ndarray, layer: str, batch_size: int) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, output of ``layer`` for x[rows]) batch by batch, in evaluation mode."""
    with evaluation_mode(model):
        for rows in batches(len(x), batch_size):
            yield rows, layer_output(model, x[rows], layer)


def output_shape_of(model: Module, layer: str, input_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """The shape of one image's output at ``layer`` (no batch axis), from one zero image."""
    check_layer(model, layer)
    with evaluation_mode(model):
        return tuple(layer_output(model, np.zeros((1, *input_shape), dtype=np.float32), layer).shape[1:])


def backprop_from(model: Module, x: np.ndarray, layer: str, seed, rule: str = "gradient"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(the backward of ``seed`` from layer ``layer`` down to the input x, that layer's output).

    x (N, C, H, W); ``seed`` an array shaped like the layer's output or a function of that
    output (e.g. a one-hot mask of one unit). ``rule`` switches the ReLUs' backward (see
    :class:`~convscope.layers.ReLU`): "gradient" gives d sum(seed * output) / dx (saliency),
    "deconvnet" Zeiler & Fergus's projection, "guided" guided backpropagation. ``layer`` ""
    means the model's output (logits). Call inside :func:`evaluation_mode`.
    """
    with relu_rule(model, rule), probe(model, layer) as p:
        p.seed = seed
        logits = model.forward(x)
        dx = model.backward(np.zeros_like(logits))
    if dx is None:
        raise ValueError("the model returned no input gradient; call model.set_input_grad(True)")
    return np.ascontiguousarray(dx), np.ascontiguousarray(p.output)


input_gradient = backprop_from
"""The old name of :func:`backprop_from`, kept for callers of ``convscope.visualize.input_gradient``
(not to be confused with :func:`~convscope.visualize.input_gradients`, the saliency method)."""


def logit_gradient(model: Module, x: np.ndarray, targets: np.ndarray | None,
                   rule: str = "gradient") -> tuple[np.ndarray, np.ndarray]:
    """(d score / dx (B, C, H, W), logits (B, K)) for one batch, the score being each row's
    target logit (its predicted class where ``targets`` is None). Call inside
    :func:`evaluation_mode`."""
    return backprop_from(model, x, "", lambda logits: one_hot(logits, targets), rule)
