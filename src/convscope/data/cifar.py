"""CIFAR-10 "python version" batches: pickled dicts, read by a small pickle machine that runs no code.

A batch is a dict with ``data`` (N, 3072) uint8 (1024 red, then green, then blue values per
image, each a 32x32 row-major plane) and ``labels`` (N ints), plus ``batch_label`` and
``filenames``; ``batches.meta`` holds ``label_names``. The official files were written by
Python 2's cPickle (protocol 2): their strings are byte strings, read here as ``bytes``
(``encoding='bytes'`` semantics), and their array is rebuilt by
``numpy.core.multiarray._reconstruct`` and a ``BUILD`` with the raw bytes.

The pickle is never given to :mod:`pickle`. :class:`_CifarPickleMachine` walks its opcodes
(parsed by :func:`pickletools.genops`, which executes nothing) and supports only what such a
batch contains: dicts with str/bytes/int keys, lists, tuples, ints, strings, and uint8
arrays whose bytes are in the file, as protocol 2 to 5 from Python 2 or 3 and NumPy 1 or 2
write them. The globals it accepts are names, never called. Its work is linear in the file
size: at most one stack entry, one memo entry and one tree node per opcode, nesting at most
``MAX_DEPTH`` deep, dict keys only scalars (no tuple is ever hashed), and an array's size is
the length of the bytes it is built from. Anything else is a one-line :class:`DataFormatError`.
"""

from __future__ import annotations

import math
import os
import pickletools
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import DataFormatError

__all__ = ["CIFAR_FILES", "CIFAR_SUBDIR", "MAX_DEPTH", "cifar_root", "load_cifar_dir", "read_cifar_batch",
           "read_cifar_pickle"]

CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch", "batches.meta")
CIFAR_SUBDIR = "cifar-10-batches-py"   # the folder the official archive unpacks to
_SIDE, _CHANNELS = 32, 3
MAX_DEPTH = 64                          # a real batch nests 3 deep (dict > tuple > tuple)
_MAX_FILE_BYTES = 256 * 2 ** 20         # a real batch is 31 MB; reading one needs ~4x its size
_MAX_MEMO = 2 ** 20                     # a real batch stores ~20,000 memo entries
_ALLOWED = "only dicts, lists, ints, strings and uint8 NumPy arrays are allowed"

# The globals a CIFAR-10 pickle names; each only as an argument or callee the machine knows.
# NumPy names its pickles' module numpy.core before 2.0 and numpy._core after; Python 3 writes
# bytes as _codecs.encode(text, "latin1") below protocol 3, and b"" as __builtin__.bytes().
_GLOBALS = {"numpy.ndarray": "ndarray", "numpy.dtype": "dtype", "_codecs.encode": "encode",
            "__builtin__.bytes": "bytes", "builtins.bytes": "bytes"}
for _package in ("numpy.core", "numpy._core"):
    _GLOBALS[f"{_package}.multiarray._reconstruct"] = "reconstruct"
    _GLOBALS[f"{_package}.numeric._frombuffer"] = "frombuffer"
_UINT8_NAMES = ("u1", "|u1", "uint8")


class _Refused(Exception):
    """The pickle does something a CIFAR-10 batch never does (``corrupt``: it is not even a pickle)."""

    def __init__(self, reason: str, corrupt: bool = False):
        super().__init__(reason)
        self.corrupt = corrupt


class _Global:
    """A global the pickle named: a name, never imported or called."""

    def __init__(self, role: str, name: str):
        self.role, self.name = role, name


class _Dtype:
    """``numpy.dtype('u1')`` as a pickle describes it (uint8 is the only dtype accepted)."""


class _PendingArray:
    """``_reconstruct(ndarray, (0,), b'b')``: an array whose shape and bytes the next BUILD sets."""

    def __init__(self):
        self.array: np.ndarray | None = None


def _text(value) -> str | None:
    """``value`` as str if it is str or latin-1 bytes (Python 2 strings arrive as bytes), else None."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return value if isinstance(value, str) else None


def _uint8_array(raw, shape, fortran: bool) -> np.ndarray:
    """A fresh uint8 array of ``shape`` from the bytes ``raw``, whose length must be its size exactly."""
    if not isinstance(raw, (bytes, bytearray)):
        raise _Refused(f"an array's data is a {type(raw).__name__}, not bytes")
    if (not isinstance(shape, tuple) or len(shape) > 32
            or not all(type(s) is int and s >= 0 for s in shape)):
        raise _Refused("an array's shape is not a tuple of non-negative ints")
    size = math.prod(shape)
    if size != len(raw):
        raise _Refused(f"an array declares shape {shape} ({size} bytes) but carries {len(raw)} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape, order="F" if fortran else "C").copy()


class _CifarPickleMachine:
    """The pickle virtual machine, cut down to the opcodes and globals a CIFAR-10 batch uses."""

    def __init__(self):
        self.stack: list = []
        self.marks: list[int] = []            # stack lengths at each MARK
        self.memo: dict[int, object] = {}

    def run(self, data: bytes) -> object:
        """The object pickled in ``data``; raises :class:`_Refused` for anything else."""
        ops, result, end = 0, None, 0
        try:
            for op, arg, pos in pickletools.genops(data):
                ops += 1
                if op.name == "STOP":
                    result, end = self._pop(), pos + 1
                    continue
                handler = _HANDLERS.get(op.name)
                if handler is None:
                    raise _Refused(f"it uses the pickle opcode {op.name} (at byte {pos}), which a CIFAR-10 "
                                   f"batch never contains")
                handler(self, arg)
        except (ValueError, EOFError) as err:     # what genops raises for a truncated or unknown opcode
            raise _Refused(str(err).splitlines()[0] if str(err) else "unreadable pickle", corrupt=True) from None
        if self.stack or self.marks:
            raise _Refused("its pickle stops with objects left on the stack", corrupt=True)
        if end != len(data):
            raise _Refused(f"{len(data) - end} bytes follow the end of its pickle", corrupt=True)
        _check_tree(result, budget=ops)
        return result

    # --- the stack -----------------------------------------------------------------------------
    def _pop(self):
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise _Refused("its pickle pops an empty stack", corrupt=True)
        return self.stack.pop()

    def _pop_mark(self) -> list:
        if not self.marks:
            raise _Refused("its pickle closes a MARK it never opened", corrupt=True)
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def _top(self, kind: type, what: str):
        if len(self.stack) <= (self.marks[-1] if self.marks else 0) or not isinstance(self.stack[-1], kind):
            raise _Refused(f"its pickle applies {what} to something that is not a {kind.__name__}", corrupt=True)
        return self.stack[-1]

    def _proto(self, protocol: int):
        if not 2 <= protocol <= 5:
            raise _Refused(f"it is a pickle of protocol {protocol}; CIFAR-10 batches use protocols 2 to 5")

    def _mark(self, _):
        if len(self.marks) >= MAX_DEPTH:
            raise _Refused(f"its pickle nests deeper than {MAX_DEPTH} levels")
        self.marks.append(len(self.stack))

    def _push(self, value):
        self.stack.append(value)

    # --- the memo ------------------------------------------------------------------------------
    def _put(self, index):
        if len(self.memo) >= _MAX_MEMO:
            raise _Refused(f"its pickle stores more than {_MAX_MEMO} memo entries")
        if not self.stack:
            raise _Refused("its pickle memoizes an empty stack", corrupt=True)
        self.memo[len(self.memo) if index is None else index] = self.stack[-1]

    def _get(self, index):
        if index not in self.memo:
            raise _Refused(f"its pickle refers to memo entry {index}, which it never stored", corrupt=True)
        self.stack.append(self.memo[index])

    # --- containers ----------------------------------------------------------------------------
    def _tuple(self, n):
        items = self._pop_mark() if n is None else [self._pop() for _ in range(n)][::-1]
        self.stack.append(tuple(items))

    def _append(self, many):
        items = self._pop_mark() if many else [self._pop()]
        self._top(list, "APPEND").extend(items)

    def _setitems(self, many):
        items = self._pop_mark() if many else [self._pop() for _ in range(2)][::-1]
        if len(items) % 2:
            raise _Refused("its pickle sets a dict item without a value", corrupt=True)
        target = self._top(dict, "SETITEM")
        for key, value in zip(items[::2], items[1::2]):
            if type(key) not in (str, bytes, int):
                raise _Refused(f"a dict key is a {type(key).__name__} (only str, bytes or int keys are allowed)")
            target[key] = value

    # --- globals, calls and BUILD --------------------------------------------------------------
    def _global(self, name: str):
        role = _GLOBALS.get(name)
        if role is None:
            raise _Refused(f"its pickle asks for {ascii(name[:80])[1:-1]}, which a CIFAR-10 batch never contains "
                           f"({_ALLOWED})")
        self.stack.append(_Global(role, name))

    def _stack_global(self, _):
        name, module = self._pop(), self._pop()
        if not isinstance(module, str) or not isinstance(name, str):
            raise _Refused("its pickle names a global with something other than strings", corrupt=True)
        self._global(f"{module}.{name}")

    def _reduce(self, _):
        args, func = self._pop(), self._pop()
        if not isinstance(func, _Global) or not isinstance(args, tuple):
            raise _Refused(f"its pickle calls a {type(func).__name__}, which a CIFAR-10 batch never does")
        self.stack.append(_call(func, args))

    def _build(self, _):
        state = self._pop()
        target = self._top(object, "BUILD")
        if isinstance(target, _Dtype):
            if not isinstance(state, tuple) or len(state) not in (8, 9):
                raise _Refused("a NumPy dtype has a state CIFAR-10 batches never write")
        elif isinstance(target, _PendingArray) and target.array is None:
            if isinstance(state, tuple) and len(state) == 5 and type(state[0]) is int:
                state = state[1:]                          # (version, shape, dtype, fortran, data)
            if (not isinstance(state, tuple) or len(state) != 4 or not isinstance(state[1], _Dtype)
                    or state[2] not in (False, True, 0, 1)):
                raise _Refused("a NumPy array has a state CIFAR-10 batches never write")
            target.array = self.stack[-1] = _uint8_array(state[3], state[0], bool(state[2]))
        else:
            raise _Refused(f"its pickle sets the state of a {type(target).__name__}, which a CIFAR-10 batch "
                           f"never does")


def _call(func: _Global, args: tuple):
    """What calling the allowed global ``func`` with ``args`` gives, computed without calling it."""
    role = func.role
    if role == "encode" and len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
        try:
            return args[0].encode("latin-1")
        except UnicodeEncodeError:
            raise _Refused("a latin1 byte string holds characters beyond latin1", corrupt=True) from None
    if role == "encode":
        codec = args[1] if len(args) == 2 and isinstance(args[1], str) else "?"
        raise _Refused(f"its pickle asks for _codecs.encode with codec {codec[:40]!r}; CIFAR-10 batches "
                       f"encode byte strings as latin1 only")
    if role == "bytes" and args == ():
        return b""
    if role == "reconstruct" and len(args) == 3:
        cls, shape, code = args
        if isinstance(cls, _Global) and cls.role == "ndarray" and shape == (0,) and _text(code) == "b":
            return _PendingArray()
    if role == "dtype" and 1 <= len(args) <= 3:
        name = _text(args[0])
        if name in _UINT8_NAMES:
            return _Dtype()
        raise _Refused(f"its pickle holds a NumPy array of dtype {(name or '?')[:20]!r}; CIFAR-10 data is uint8")
    if role == "frombuffer" and len(args) == 4 and isinstance(args[1], _Dtype) and args[3] in ("C", "F"):
        return _uint8_array(args[0], args[2], args[3] == "F")
    raise _Refused(f"its pickle calls {func.name} with arguments CIFAR-10 batches never use")


_HANDLERS = {
    "PROTO": _CifarPickleMachine._proto,
    "FRAME": lambda m, _: None,                               # (STOP is handled in run)
    "MARK": _CifarPickleMachine._mark,
    "NONE": lambda m, _: m._push(None), "NEWTRUE": lambda m, _: m._push(True),
    "NEWFALSE": lambda m, _: m._push(False), "EMPTY_DICT": lambda m, _: m._push({}),
    "EMPTY_LIST": lambda m, _: m._push([]), "EMPTY_TUPLE": lambda m, _: m._push(()),
    "TUPLE": lambda m, _: m._tuple(None), "TUPLE1": lambda m, _: m._tuple(1),
    "TUPLE2": lambda m, _: m._tuple(2), "TUPLE3": lambda m, _: m._tuple(3),
    "APPEND": lambda m, _: m._append(False), "APPENDS": lambda m, _: m._append(True),
    "SETITEM": lambda m, _: m._setitems(False), "SETITEMS": lambda m, _: m._setitems(True),
    "BINPUT": _CifarPickleMachine._put, "LONG_BINPUT": _CifarPickleMachine._put,
    "MEMOIZE": _CifarPickleMachine._put,                      # arg None: the next free index
    "BINGET": _CifarPickleMachine._get, "LONG_BINGET": _CifarPickleMachine._get,
    "GLOBAL": lambda m, arg: m._global(".".join(arg.split(" ", 1))),
    "STACK_GLOBAL": _CifarPickleMachine._stack_global,
    "REDUCE": _CifarPickleMachine._reduce,
    "BUILD": _CifarPickleMachine._build,
    # Python 2 byte strings (genops hands them over as latin-1 text) become bytes.
    "SHORT_BINSTRING": lambda m, arg: m._push(arg.encode("latin-1")),
    "BINSTRING": lambda m, arg: m._push(arg.encode("latin-1")),
}
for _name in ("BININT", "BININT1", "BININT2", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
              "SHORT_BINBYTES", "BINBYTES", "BINBYTES8", "BYTEARRAY8"):
    _HANDLERS[_name] = _CifarPickleMachine._push
_HANDLERS["LONG1"] = lambda m, arg: m._push(arg)              # at most 255 bytes: a bounded int


def _check_tree(root, budget: int) -> None:
    """Refuse deep nesting, unfinished objects, and sharing that makes the tree bigger than the pickle.

    Each node of a real batch comes from its own opcode, so a tree with more nodes than the
    pickle has opcodes reuses containers through the memo (a "billion laughs" pickle).
    """
    todo, nodes = [(root, 1)], 0
    while todo:
        obj, depth = todo.pop()
        nodes += 1
        if nodes > budget:
            raise _Refused("its pickle reuses containers so that its object tree outgrows the file")
        if depth > MAX_DEPTH:
            raise _Refused(f"its pickle nests deeper than {MAX_DEPTH} levels")
        if isinstance(obj, (list, tuple)):
            todo.extend((child, depth + 1) for child in obj)
        elif isinstance(obj, dict):
            todo.extend((child, depth + 1) for child in obj.values())
        elif (isinstance(obj, _PendingArray) and obj.array is None) or isinstance(obj, (_Global, _Dtype)):
            raise _Refused(f"its pickle leaves an unfinished NumPy object in the batch ({_ALLOWED})")


def _resolve(value):
    return value.array if isinstance(value, _PendingArray) else value


def read_cifar_pickle(path) -> dict[str, object]:
    """The dict pickled in ``path``, keys decoded to str, read without running any code.

    Python 2 byte strings come back as ``bytes``; the one array is a fresh uint8 ndarray.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > _MAX_FILE_BYTES:
                raise DataFormatError(f"CIFAR-10 file {path} is {size} bytes; a CIFAR-10 batch is about 31 MB "
                                      f"(at most {_MAX_FILE_BYTES} bytes are read)")
            data = f.read(size + 1)                  # what stat promised (a device promises 0)
        obj = _CifarPickleMachine().run(data)
    except FileNotFoundError:
        raise DataFormatError(f"CIFAR-10 file not found: {path}") from None
    except OSError as err:
        raise DataFormatError(f"cannot read CIFAR-10 file {path}: {err.strerror or err}") from None
    except MemoryError:
        raise DataFormatError(f"CIFAR-10 file {path} is too large to load in memory") from None
    except _Refused as err:
        if err.corrupt:
            raise DataFormatError(f"corrupt CIFAR-10 file {path}: {err}; download it again") from None
        raise DataFormatError(f"refusing to load {path}: {err}") from None
    if not isinstance(obj, dict):
        raise DataFormatError(f"CIFAR-10 file {path} holds a {type(obj).__name__}, expected a dict")
    return {(k.decode("latin-1") if isinstance(k, bytes) else str(k)): _resolve(v) for k, v in obj.items()}


def read_cifar_batch(path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 in 0..num_classes-1 of one batch file."""
    path = Path(path)
    batch = read_cifar_pickle(path)
    if "data" not in batch or "labels" not in batch:
        keys = [k[:20] for k in sorted(batch)[:10]]
        raise DataFormatError(f"CIFAR-10 batch {path} lacks 'data' or 'labels' (keys: {keys})")
    data, labels = batch["data"], batch["labels"]
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != _CHANNELS * _SIDE * _SIDE):
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else f"a {type(data).__name__}"
        raise DataFormatError(f"CIFAR-10 batch {path}: 'data' must be uint8 (N, 3072), got {got}")
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise DataFormatError(f"CIFAR-10 batch {path}: 'labels' must be a list of integers")
    if len(labels) != len(data):
        raise DataFormatError(f"CIFAR-10 batch {path} has {len(data)} images but {len(labels)} labels")
    bad = next((v for v in labels if not 0 <= v < num_classes), None)
    if bad is not None:
        shown = bad if abs(bad) < 10 ** 6 else "out of range"
        raise DataFormatError(f"CIFAR-10 batch {path} has label {shown}; labels must lie in "
                              f"0..{num_classes - 1} (one per class name)")
    return data.reshape(-1, _CHANNELS, _SIDE, _SIDE), np.array(labels, dtype=np.int64)   # (N, 3, 32, 32)


def _read_class_names(path: Path) -> list[str]:
    names = read_cifar_pickle(path).get("label_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataFormatError(f"CIFAR-10 meta file {path} has no 'label_names' list of strings")
    try:
        return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]
    except UnicodeDecodeError:
        raise DataFormatError(f"CIFAR-10 meta file {path}: a label name is not UTF-8 text") from None


def cifar_root(directory: Path) -> Path | None:
    """Where the CIFAR-10 files of ``directory`` live (itself or its cifar-10-batches-py), else None."""
    for root in (directory, directory / CIFAR_SUBDIR):
        if any((root / f).is_file() for f in CIFAR_FILES):
            return root
    return None


def load_cifar_dir(directory: Path, name: str | None = None) -> Dataset:
    """The CIFAR-10 dataset in ``directory`` (or in its ``cifar-10-batches-py`` sub-folder)."""
    directory = Path(directory)
    root = cifar_root(directory) or directory
    missing = [f for f in CIFAR_FILES if not (root / f).is_file()]
    if missing:
        raise DataFormatError(f"CIFAR-10 data in {root} is incomplete: missing {', '.join(missing)}")
    class_names = _read_class_names(root / "batches.meta")
    try:
        train = [read_cifar_batch(root / f, len(class_names)) for f in CIFAR_FILES[:5]]
        test_images, test_labels = read_cifar_batch(root / "test_batch", len(class_names))
        train_images = np.concatenate([images for images, _ in train])
    except MemoryError:
        raise DataFormatError(f"CIFAR-10 data in {root} is too large to load in memory") from None
    return Dataset(name=name or directory.resolve().name, train_images=train_images,
                   train_labels=np.concatenate([labels for _, labels in train]),
                   test_images=test_images, test_labels=test_labels, class_names=class_names)
