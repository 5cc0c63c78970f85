"""Containers that compose layers and route gradients through them.

- :class:`Sequential` chains children; backward runs them in reverse.
- :class:`Residual` computes y = F(x) + shortcut(x) (notes §2.5, Figure 12); its backward
  sums the two paths' input gradients: dY/dx = dF/dx + 1 for the identity shortcut.
- :class:`Concat` runs branches on the same input and concatenates their outputs along
  channels (an Inception module, notes §2.4); backward splits dy by branch and sums the
  branches' input gradients.
- :class:`AuxiliaryClassifier` is the identity on the main path with a side classifier
  that runs in training only (GoogLeNet's auxiliary losses); backward adds the side
  classifier's input gradient to the main one.
"""

from __future__ import annotations

import numpy as np

from ._windows import chwn_empty
from .base import Module

__all__ = ["Sequential", "Residual", "Concat", "Identity", "AuxiliaryClassifier"]


def _named(items, kind: str) -> list[tuple[str, Module]]:
    """Accept modules, (name, module) pairs or a dict; name unnamed ones "0", "1", ..."""
    if len(items) == 1 and isinstance(items[0], dict):
        items = tuple(items[0].items())
    named = []
    for i, item in enumerate(items):
        name, module = item if isinstance(item, tuple) else (str(i), item)
        if not isinstance(module, Module):
            raise TypeError(f"{kind}: entry {name!r} is a {type(module).__name__}, not a layer")
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{kind}: layer names must be non-empty strings without '.', got {name!r}")
        named.append((name, module))
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"{kind}: layer names must be unique, got {names}")
    return named


class Identity(Module):
    """y = x. The identity shortcut of a residual block."""

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


class Sequential(Module):
    """Run layers one after the other.

    ``Sequential(conv, relu)`` names the layers "0", "1"; ``Sequential(("conv1", conv),
    ("relu1", relu))`` or ``Sequential({"conv1": conv, ...})`` gives them readable names,
    which become the dotted names of their parameters ("conv1.weight").
    """

    def __init__(self, *layers) -> None:
        super().__init__()
        self._layers = _named(layers, "Sequential")

    def children(self):
        return list(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, key):
        if isinstance(key, str):
            for name, module in self._layers:
                if name == key:
                    return module
            raise KeyError(key)
        return self._layers[key][1]

    def append(self, name: str, module: Module) -> None:
        self._layers = _named(tuple(self._layers) + ((name, module),), "Sequential")

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for name, module in self._layers:
            try:
                shape = module.output_shape(shape)
            except ValueError as err:
                raise ValueError(f"layer {name!r}: {err}") from None
        return shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        for _, module in self._layers:
            x = module.forward(x)
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        for _, module in reversed(self._layers):
            dy = module.backward(dy)
        return dy

    def set_input_grad(self, flag: bool) -> None:
        """Only the first layer sees the container's input; the others always need theirs."""
        super().set_input_grad(flag)
        for i, (_, module) in enumerate(self._layers):
            module.set_input_grad(flag if i == 0 else True)


class Residual(Module):
    """y = body(x) + shortcut(x), with an optional ``post`` layer (ResNet's final ReLU).

    ``shortcut`` defaults to the identity; pass a projection (a 1x1 strided conv, usually
    with batch norm) where body changes the shape.
    """

    def __init__(self, body: Module, shortcut: Module | None = None, post: Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else Identity()
        self.post = post

    def children(self):
        kids = [("body", self.body), ("shortcut", self.shortcut)]
        return kids + ([("post", self.post)] if self.post is not None else [])

    def output_shape(self, input_shape):
        a = self.body.output_shape(input_shape)
        b = self.shortcut.output_shape(input_shape)
        if a != b:
            raise ValueError(f"residual paths disagree: body gives {a}, shortcut gives {b} "
                             f"for input {tuple(input_shape)}")
        return self.post.output_shape(a) if self.post is not None else a

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = self.body.forward(x) + self.shortcut.forward(x)
        return self.post.forward(y) if self.post is not None else y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self.post is not None:
            dy = self.post.backward(dy)
        dx_body = self.body.backward(dy)
        dx_short = self.shortcut.backward(dy)
        if not self.need_input_grad:
            return None
        return dx_body + dx_short

    def set_input_grad(self, flag: bool) -> None:
        super().set_input_grad(flag)
        self.body.set_input_grad(flag)
        self.shortcut.set_input_grad(flag)


class Concat(Module):
    """Run every branch on x and concatenate the outputs along channels (axis 1).

    Backward gives each branch its slice of dy and sums the branches' input gradients.
    """

    def __init__(self, *branches) -> None:
        super().__init__()
        self._branches = _named(branches, "Concat")

    def children(self):
        return list(self._branches)

    def output_shape(self, input_shape):
        shapes = []
        for name, branch in self._branches:
            try:
                shapes.append(branch.output_shape(input_shape))
            except ValueError as err:
                raise ValueError(f"branch {name!r}: {err}") from None
        if len({s[1:] for s in shapes}) != 1:
            raise ValueError(f"Concat branches give different spatial shapes: {shapes}")
        return (sum(s[0] for s in shapes),) + shapes[0][1:]

    def forward(self, x: np.ndarray) -> np.ndarray:
        outs = [branch.forward(x) for _, branch in self._branches]
        self._sizes = [o.shape[1] for o in outs]
        if outs[0].ndim != 4:
            return np.concatenate(outs, axis=1)
        n, _, h, w = outs[0].shape                       # 4-D maps: keep the CHWN memory convs read fastest
        y = chwn_empty((n, sum(self._sizes), h, w), np.result_type(*outs))
        start = 0
        for o in outs:
            y[:, start:start + o.shape[1]] = o
            start += o.shape[1]
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx, start = None, 0
        for (_, branch), size in zip(self._branches, self._sizes):
            d = branch.backward(dy[:, start:start + size])
            start += size
            if d is not None:
                dx = d if dx is None else dx + d
        return dx if self.need_input_grad else None

    def set_input_grad(self, flag: bool) -> None:
        super().set_input_grad(flag)
        for _, branch in self._branches:
            branch.set_input_grad(flag)


class AuxiliaryClassifier(Module):
    """A training-only side classifier on an intermediate map (GoogLeNet's auxiliary heads).

    forward(x) returns x unchanged. In training mode it also runs ``head`` and keeps the
    side logits in ``self.logits`` (N, K); in evaluation mode the head does not run. The
    total loss is L = L_main + weight * L_aux(logits), so the trainer sets ``logits_grad``
    to weight * dL_aux/dlogits, and backward returns dy + head.backward(logits_grad): the
    two paths' input gradients add, as at any fork. With no ``logits_grad`` set (a loop
    that ignores the side loss) backward is the identity. Parameters: ``head.*``.
    """

    def __init__(self, head: Module, weight: float = 0.3) -> None:
        super().__init__()
        if not isinstance(head, Module):
            raise TypeError(f"AuxiliaryClassifier: head must be a layer, got {type(head).__name__}")
        if not weight > 0:
            raise ValueError(f"AuxiliaryClassifier: weight must be positive, got {weight!r}")
        self.head, self.weight = head, float(weight)
        self.logits: np.ndarray | None = None
        self.logits_grad: np.ndarray | None = None

    def children(self):
        return [("head", self.head)]

    def extra_repr(self) -> str:
        return f"weight={self.weight}"

    def output_shape(self, input_shape):
        self.head.output_shape(input_shape)             # the head must accept the map
        return tuple(input_shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> x; sets ``logits`` (N, K) in training, None in evaluation."""
        self.logits = self.head.forward(x) if self.training else None
        self.logits_grad = None
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self.logits is None or self.logits_grad is None:
            return dy if self.need_input_grad else None
        dx_head = self.head.backward(self.logits_grad)
        if not self.need_input_grad:
            return None
        return dy + dx_head

    def set_input_grad(self, flag: bool) -> None:
        super().set_input_grad(flag)
        self.head.set_input_grad(flag)
