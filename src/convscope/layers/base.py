"""The one contract every layer follows.

A layer is a :class:`Module`. ``forward(x)`` computes the output and caches exactly what
``backward`` needs; ``backward(dy)`` takes dLoss/dOutput, fills ``grads`` (same keys as
``params``, the gradient of *that* call, not accumulated) and returns dLoss/dInput.

``params`` holds the arrays forward reads (looked up on every call, so replacing an entry
with a new array of the same shape is honoured); ``buffers`` holds state that is not
learned (BatchNorm's running statistics). Containers expose their children through
:meth:`Module.children`, which gives every parameter a dotted name such as
``"features.conv1.weight"``, the same names PyTorch's ``state_dict`` uses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

import numpy as np

__all__ = ["Module", "as_pair", "check_positive", "default_rng", "shapes_only", "init_param"]


def default_rng(rng: np.random.Generator | None) -> np.random.Generator:
    """Return ``rng``, or a freshly seeded generator when it is None (never global state)."""
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def as_pair(value, name: str) -> tuple[int, int]:
    """Turn an int or an (h, w) pair into a pair of ints, naming ``name`` in errors."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def check_positive(value, name: str, allow_zero: bool = False) -> None:
    """Raise ValueError unless every entry of ``value`` is > 0 (>= 0 with ``allow_zero``)."""
    values = value if isinstance(value, tuple) else (value,)
    low = 0 if allow_zero else 1
    if any(v < low for v in values):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


# True inside a ``with shapes_only():`` block (a context variable: scoped to the block and
# to the thread, never a module-wide switch).
_SHAPES_ONLY: ContextVar[bool] = ContextVar("convscope_shapes_only", default=False)


@contextmanager
def shapes_only():
    """Build layers with zero-memory placeholder parameters, to count and shape-check them.

    Inside the block :func:`init_param` hands out read-only ``np.broadcast_to`` views of one
    zero instead of initialising, so building VGG-19 at 3x224x224 is instant and takes no
    memory. ``num_parameters()`` and ``output_shape()`` work on such a model; ``forward``
    and training are not meant to.
    """
    token = _SHAPES_ONLY.set(True)
    try:
        yield
    finally:
        _SHAPES_ONLY.reset(token)


def init_param(shape: tuple[int, ...], dtype, make: Callable[[], np.ndarray]) -> np.ndarray:
    """``make()``, a parameter's initial value; under :func:`shapes_only` a placeholder of
    the same shape and dtype, without calling ``make``."""
    if _SHAPES_ONLY.get():
        return np.broadcast_to(np.zeros((), dtype=dtype), tuple(shape))
    return make()


class Module(ABC):
    """Base class: parameters, buffers, train/eval mode and dotted names.

    Subclasses implement ``forward``, ``backward`` and ``output_shape``; containers also
    override ``children``. ``need_input_grad`` lets a trainer skip the input gradient of a
    model's first layer (``backward`` then returns None).
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True
        self.need_input_grad = True

    # -- the layer contract -------------------------------------------------------------
    @abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the output and cache what backward needs."""

    @abstractmethod
    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """Fill ``grads`` and return dLoss/dInput for the last forward call."""

    @abstractmethod
    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one sample's output (no batch axis) for one sample's input shape.

        Raises ValueError, naming the shape received, when the input does not fit.
        """

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- structure --------------------------------------------------------------------
    def children(self) -> list[tuple[str, "Module"]]:
        """Named direct sub-modules; leaves have none."""
        return []

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """Every module in the tree, depth first, with its dotted name ("" for the root)."""
        yield prefix, self
        for name, child in self.children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def get_module(self, name: str) -> "Module":
        """The sub-module with dotted ``name``; ValueError listing the known names if absent."""
        for module_name, module in self.named_modules():
            if module_name == name:
                return module
        known = [n for n, _ in self.named_modules() if n]
        raise ValueError(f"no layer named {name!r}; known layers: {', '.join(known)}")

    def parameter_slots(self) -> list[tuple[str, "Module", str]]:
        """(dotted name, owning module, key) for every parameter, in a stable order."""
        slots = []
        for prefix, module in self.named_modules():
            for key in module.params:
                slots.append((f"{prefix}.{key}" if prefix else key, module, key))
        return slots

    def named_parameters(self) -> dict[str, np.ndarray]:
        return {name: module.params[key] for name, module, key in self.parameter_slots()}

    def named_grads(self) -> dict[str, np.ndarray]:
        return {name: module.grads[key] for name, module, key in self.parameter_slots()
                if key in module.grads}

    def named_buffers(self) -> dict[str, np.ndarray]:
        out = {}
        for prefix, module in self.named_modules():
            for key, value in module.buffers.items():
                out[f"{prefix}.{key}" if prefix else key] = value
        return out

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.named_parameters().values()))

    # -- modes and state ----------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for _, module in self.named_modules():
            module.training = bool(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def set_input_grad(self, flag: bool) -> None:
        """Whether backward computes dLoss/dInput; containers pass it to their entry layer."""
        self.need_input_grad = bool(flag)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by dotted name (PyTorch's naming)."""
        return {**self.named_parameters(), **self.named_buffers()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into this model's parameters and buffers; names and shapes must match."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"state does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
        for prefix, module in self.named_modules():
            for store in (module.params, module.buffers):
                for key in store:
                    name = f"{prefix}.{key}" if prefix else key
                    value = np.asarray(state[name])
                    if value.shape != store[key].shape:
                        raise ValueError(
                            f"{name}: shape {value.shape} in the state, {store[key].shape} in the model")
                    store[key] = value.astype(store[key].dtype, copy=True)

    def to(self, dtype) -> "Module":
        """Cast every floating parameter and buffer to ``dtype`` (float64 for gradient checks)."""
        dtype = np.dtype(dtype)
        for _, module in self.named_modules():
            for store in (module.params, module.buffers):
                for key, value in store.items():
                    if np.issubdtype(value.dtype, np.floating):
                        store[key] = value.astype(dtype)
        return self

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        kids = self.children()
        if not kids:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in kids:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)
