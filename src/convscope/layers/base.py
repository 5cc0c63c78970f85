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

import functools
import inspect
from abc import ABC, abstractmethod
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

import numpy as np

from ..validation import is_int

__all__ = ["Module", "HookHandle", "as_pair", "check_positive", "default_rng", "shapes_only", "init_param"]


def default_rng(rng: np.random.Generator | None) -> np.random.Generator:
    """Return ``rng``, or a freshly seeded generator when it is None (never global state)."""
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def as_pair(value, name: str) -> tuple[int, int]:
    """Turn an int or an (h, w) pair into a pair of ints, naming ``name`` in errors."""
    pair = (value, value) if is_int(value) else value
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(is_int(v) for v in pair)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def check_positive(value, name: str, allow_zero: bool = False) -> None:
    """Raise ValueError unless every entry of an int pair from :func:`as_pair` is > 0 (>= 0
    with ``allow_zero``); single arguments go through :func:`convscope.validation.check_int`."""
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


class HookHandle:
    """What :meth:`Module.register_forward_hook` returns: ``remove()`` takes the hook off
    (a second call does nothing); as a context manager it removes the hook on exit."""

    __slots__ = ("_hooks",)

    def __init__(self, hooks: dict) -> None:
        self._hooks = hooks

    def remove(self) -> None:
        self._hooks.pop(self, None)

    def __enter__(self) -> "HookHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _with_forward_hooks(forward: Callable) -> Callable:
    """Wrap a subclass's ``forward`` so that the instance's forward hooks run after it.

    With no hook registered the cost is one attribute check (and the wrapper's call). The
    hooks run once, in the wrapper of the class's own ``forward`` (``type(self).forward``),
    so a ``forward`` that calls ``super().forward(x)`` does not run them twice.
    """
    def run_hooks(self, x, out):
        for hook in tuple(self._forward_hooks.values()):     # a hook may remove itself
            replaced = hook(self, x, out)
            if replaced is not None:
                out = replaced
        return out

    if list(inspect.signature(forward).parameters) == ["self", "x"]:    # the layer contract
        def hooked(self, x):
            out = forward(self, x)
            if self._forward_hooks and type(self).forward is hooked:
                out = run_hooks(self, x, out)
            return out
    else:                                                  # a forward with more arguments
        def hooked(self, x, *args, **kwargs):
            out = forward(self, x, *args, **kwargs)
            if self._forward_hooks and type(self).forward is hooked:
                out = run_hooks(self, x, out)
            return out

    return functools.wraps(forward)(hooked)


class Module(ABC):
    """Base class: parameters, buffers, train/eval mode and dotted names.

    Subclasses implement ``forward``, ``backward`` and ``output_shape``; containers also
    override ``children``. ``need_input_grad`` lets a trainer skip the input gradient of a
    model's first layer (``backward`` then returns None).

    Forward hooks (:meth:`register_forward_hook`) observe or replace a module's output
    however it is called: ``module(x)``, ``module.forward(x)`` or by a container.
    """

    # Whether backward fills ``grads``; attribution methods switch it off for the whole model
    # (set_param_grad) since they need input gradients only.
    need_param_grad = True

    # Forward hooks of this instance, {handle: hook} in registration order; None until the
    # first is registered. Never pickled, copied or saved (see __getstate__).
    _forward_hooks: dict | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _with_forward_hooks(cls.__dict__["forward"])

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

    # -- hooks --------------------------------------------------------------------------
    def register_forward_hook(self, hook: Callable[["Module", np.ndarray, np.ndarray], np.ndarray | None]
                              ) -> HookHandle:
        """Call ``hook(module, input, output)`` after every forward of this module.

        ``input`` is the array ``forward`` received and ``output`` the one it returned; a hook
        that returns an array replaces the output (what the next layer sees), None keeps it.
        Hooks run in registration order, each seeing the previous one's output, whether the
        module is called as ``module(x)``, ``module.forward(x)`` or by a container. A hook
        may raise to end the forward pass early. Backward is untouched: it uses what the
        layer cached, i.e. the gradient of the original output.

        Hooks belong to this instance only; copies, pickles and ``state_dict`` leave them
        out. Returns a :class:`HookHandle`; ``handle.remove()`` takes the hook off.

        >>> import numpy as np
        >>> from convscope.layers import ReLU, Sequential
        >>> relu = ReLU()
        >>> model = Sequential(relu)
        >>> with relu.register_forward_hook(lambda m, x, y: 2 * y):
        ...     model.forward(np.ones((1, 2))).tolist()
        [[2.0, 2.0]]
        >>> model.forward(np.ones((1, 2))).tolist()
        [[1.0, 1.0]]
        """
        if not callable(hook):
            raise TypeError(f"register_forward_hook: hook must be callable, got {hook!r}")
        if self._forward_hooks is None:
            self._forward_hooks = {}
        handle = HookHandle(self._forward_hooks)
        self._forward_hooks[handle] = hook
        return handle

    def __getstate__(self) -> dict:
        """The instance's state for pickle and copy, without its forward hooks."""
        state = self.__dict__.copy()
        state.pop("_forward_hooks", None)
        return state

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

    def set_param_grad(self, flag: bool) -> None:
        """Whether backward computes parameter gradients, for this module and all below it.

        Off, a backward pass returns input gradients only and leaves ``grads`` as they were:
        what saliency methods need, at the cost of the input gradient alone (VGG-16's fc6
        weight gradient is 411 MB).
        """
        for _, module in self.named_modules():
            module.need_param_grad = bool(flag)

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
