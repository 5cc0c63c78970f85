"""The pickle of a PyTorch state_dict: a grammar of tensors and plain containers, and the arrays it describes.

``torch.save`` pickles each tensor as ``torch._utils._rebuild_tensor_v2(storage, offset,
shape, strides, requires_grad, hooks)``, the storage being a *persistent id*
``("storage", torch.FloatStorage, key, location, numel)`` that points outside the pickle
(a zip member, or bytes after the pickles in the legacy format). :func:`grammar` is what
:class:`~convscope.io.pickle_machine.PickleMachine` may build from such a pickle: dicts
(``collections.OrderedDict``), lists, tuples, numbers, strings, :class:`Tensor` views and
their storages, nothing else. Each view is checked against its storage's declared size, and
each storage's declared size against what the file holds for it (the ``size_of`` callback),
when the pickle is read. :func:`materialize` then reads only the storages the chosen tensors
use, each once, within a byte budget, and turns each view into a NumPy array.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..io.pickle_machine import Global, Grammar, PickleRefused
from .errors import WeightsError

__all__ = ["Tensor", "Storage", "Storages", "grammar", "Reader", "materialize", "short"]

_MAX_DIMS = 32
_KEY = re.compile(r"[0-9A-Za-z_.-]{1,64}\Z")
_ALLOWED = ("only tensors, their storages and plain containers (dicts, lists, tuples, numbers, strings) "
            "are allowed")

# torch storage type -> NumPy dtype of its elements (bfloat16 arrives as uint16 bit patterns).
_STORAGES = {"FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "BFloat16Storage": "bf16",
             "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
             "ByteStorage": "u1", "BoolStorage": "b1"}
_GLOBALS = {"collections.OrderedDict": "ordered_dict", "torch._utils._rebuild_tensor_v2": "tensor",
            "torch._utils._rebuild_parameter": "parameter",
            "torch._utils._rebuild_parameter_with_state": "parameter_with_state",
            **{f"torch.{name}": f"storage:{name}" for name in _STORAGES}}


class Storage:
    """A storage a persistent id names: ``key``, element ``kind`` (a :data:`_STORAGES` name), ``numel``."""

    def __init__(self, key: str, kind: str, numel: int):
        self.key, self.kind, self.numel = key, kind, numel

    @property
    def itemsize(self) -> int:
        return 2 if self.kind == "BFloat16Storage" else np.dtype(_STORAGES[self.kind]).itemsize

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize


class Tensor:
    """A tensor the pickle describes: a view (``offset``, ``shape``, ``strides`` in elements) of a
    storage, not yet read. :func:`materialize` turns it into a NumPy array."""

    def __init__(self, storage: Storage, offset: int, shape: tuple[int, ...], strides: tuple[int, ...]):
        self.storage, self.offset, self.shape, self.strides = storage, offset, shape, strides

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def _ints(value, what: str) -> tuple[int, ...]:
    if (not isinstance(value, tuple) or len(value) > _MAX_DIMS
            or not all(type(v) is int and v >= 0 for v in value)):
        raise PickleRefused(f"a tensor's {what} is not a tuple of at most {_MAX_DIMS} non-negative ints")
    return value


def _tensor(storage, offset, size, stride) -> Tensor:
    """The view checked against its storage: every element it reaches lies inside it."""
    if not isinstance(storage, Storage):
        raise PickleRefused(f"a tensor is built on a {type(storage).__name__}, not on a storage")
    if type(offset) is not int or offset < 0:
        raise PickleRefused(f"a tensor's storage offset is {offset!r}, not a non-negative int")
    shape, strides = _ints(size, "shape"), _ints(stride, "strides")
    if len(shape) != len(strides):
        raise PickleRefused(f"a tensor has shape {shape} but strides {strides}")
    reach = offset + sum((n - 1) * s for n, s in zip(shape, strides)) + 1 if math.prod(shape) else offset
    if reach > storage.numel:
        raise PickleRefused(f"a tensor of shape {shape} at offset {offset} reaches element {reach - 1} of a "
                            f"storage of {storage.numel} elements")
    return Tensor(storage, offset, shape, strides)


def _no_hooks(hooks) -> None:
    if not (isinstance(hooks, dict) and not hooks):
        raise PickleRefused("a tensor carries backward hooks (code), which a state_dict never has")


def _call(func: Global, args: tuple):
    """What calling an allowed global gives, computed without calling it."""
    role = func.role
    if role == "ordered_dict" and args == ():
        return {}                                         # dicts keep their order
    if role == "tensor" and len(args) in (6, 7):
        storage, offset, size, stride, requires_grad, hooks = args[:6]
        _no_hooks(hooks)
        if not isinstance(requires_grad, bool) or (len(args) == 7 and args[6] not in (None, {})):
            raise PickleRefused("a tensor has a requires_grad flag or metadata a state_dict never has")
        return _tensor(storage, offset, size, stride)
    if role in ("parameter", "parameter_with_state") and len(args) == (3 if role == "parameter" else 4):
        if not isinstance(args[0], Tensor) or not isinstance(args[1], bool):
            raise PickleRefused("a parameter is built from something other than a tensor")
        _no_hooks(args[2])
        if role == "parameter_with_state" and args[3] not in (None, {}):
            raise PickleRefused("a parameter carries Python state, which a state_dict never has")
        return args[0]
    raise PickleRefused(f"its pickle calls {func.name} with arguments a state_dict never uses")


def _build(target, state):
    """OrderedDict's BUILD sets its ``_metadata`` (module versions): kept out, the dict stays."""
    if isinstance(target, dict) and isinstance(state, dict) and set(state) <= {"_metadata"}:
        return target
    return None


class Storages:
    """The storages a pickle names, each once: ``persistent_load`` for the grammar."""

    def __init__(self, size_of, path: Path):
        self.size_of, self.path, self.seen = size_of, path, {}

    def __call__(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise PickleRefused(f"its pickle refers to outside data {short(pid)}, not to a tensor storage")
        kind, key, location, numel = pid[1:5]
        if not (isinstance(kind, Global) and kind.role.startswith("storage:")):
            raise PickleRefused("a storage's type is not a torch storage type")
        if len(pid) == 6 and pid[5] is not None:
            raise PickleRefused("a legacy storage view (view_metadata), which state_dicts never hold")
        if not (isinstance(key, str) and _KEY.match(key)) or not isinstance(location, str):
            raise PickleRefused(f"a storage has the key {short(key)}; keys are short strings of letters "
                                f"and digits")
        if type(numel) is not int or numel < 0:
            raise PickleRefused(f"a storage declares {short(numel)} elements")
        storage = Storage(key, kind.role.split(":", 1)[1], numel)
        known = self.seen.get(key)
        if known is not None:
            if (known.kind, known.numel) != (storage.kind, storage.numel):
                raise PickleRefused(f"storage {key} is declared twice with different types or sizes")
            return known
        available = self.size_of(key, storage)          # raises if the file cannot hold it
        if storage.nbytes != available:
            raise PickleRefused(f"storage {key} declares {numel} elements ({storage.nbytes} bytes) but the "
                                f"file holds {available} bytes for it")
        self.seen[key] = storage
        return storage


def grammar(storages: "Storages | None") -> Grammar:
    """The grammar of a state_dict pickle; without ``storages``, of plain data only (the legacy header)."""
    return Grammar(what="a PyTorch state_dict", allowed=_ALLOWED, globals=_GLOBALS if storages else {},
                   call=_call, build=_build, persistent_load=storages,
                   unfinished=lambda obj: isinstance(obj, Storage))


def short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."



class Reader:
    """Reads storages on demand, each once, within a byte budget; closes the file when done."""

    def __init__(self, source, max_bytes: int):
        self.source, self.budget, self.cache = source, max_bytes, {}

    def storage(self, storage: Storage) -> np.ndarray:
        if storage.key not in self.cache:
            self.spend(storage.nbytes)
            raw = self.source.storage_bytes(storage)
            self.cache[storage.key] = raw.view(_numpy_dtype(storage.kind, self.source.byteorder))
        return self.cache[storage.key]

    def spend(self, nbytes: int) -> None:
        if nbytes > self.budget:
            raise WeightsError(f"'{self.source.path}': its tensors need more than the limit of bytes "
                               f"(max_bytes) to read")
        self.budget -= nbytes

    def close(self) -> None:
        self.source.f.close()


def _numpy_dtype(kind: str, byteorder: str) -> np.dtype:
    code = "u2" if kind == "BFloat16Storage" else _STORAGES[kind]
    return np.dtype(code).newbyteorder("<" if byteorder == "little" else ">")


def materialize(obj, reader: Reader):
    """``obj`` with every :class:`Tensor` replaced by a NumPy array (a copy in native byte order;
    bfloat16 as float32). Closes the reader's file."""
    try:
        return _replace(obj, reader)
    finally:
        reader.close()


def _replace(obj, reader):
    if isinstance(obj, Tensor):
        return _array(obj, reader)
    if isinstance(obj, dict):
        return {k: _replace(v, reader) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_replace(v, reader) for v in obj)
    return obj


def _array(t: Tensor, reader: Reader) -> np.ndarray:
    flat = reader.storage(t.storage)                                       # (numel,) file dtype
    itemsize = flat.dtype.itemsize
    contiguous = tuple(math.prod(t.shape[i + 1:]) for i in range(len(t.shape)))
    native = flat.dtype.newbyteorder("=")
    if (t.offset == 0 and t.numel == t.storage.numel and (t.strides == contiguous or t.numel <= 1)
            and flat.dtype == native and t.storage.kind != "BFloat16Storage"):
        return flat.reshape(t.shape)                                       # the storage itself
    reader.spend(t.numel * (4 if t.storage.kind == "BFloat16Storage" else itemsize))
    view = np.lib.stride_tricks.as_strided(flat[t.offset:], shape=t.shape,
                                           strides=tuple(s * itemsize for s in t.strides), writeable=False)
    out = np.array(view, dtype=native)
    if t.storage.kind == "BFloat16Storage":                                # the top half of a float32
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out
