"""CIFAR-10 "python version" batches: pickled dicts, read by a small pickle machine that runs no code.

A batch is a dict with ``data`` (N, 3072) uint8 (1024 red, then green, then blue values per
image, each a 32x32 row-major plane) and ``labels`` (N ints), plus ``batch_label`` and
``filenames``; ``batches.meta`` holds ``label_names``. The official files were written by
Python 2's cPickle (protocol 2): their strings are byte strings, read here as ``bytes``
(``encoding='bytes'`` semantics), and their array is rebuilt by
``numpy.core.multiarray._reconstruct`` and a ``BUILD`` with the raw bytes.

The pickle is never given to :mod:`pickle`: :func:`convscope.io.pickle_machine.unpickle`
walks its opcodes (executing nothing) under this module's grammar, which allows only what
such a batch contains: dicts with str/bytes/int keys, lists, tuples, ints, strings, and
uint8 arrays whose bytes are in the file, as protocol 2 to 5 from Python 2 or 3 and NumPy 1
or 2 write them. The globals it accepts are names, never called. Its work is linear in the
file size (see :mod:`convscope.io.pickle_machine`), and an array's size is the length of
the bytes it is built from. Anything else is a one-line :class:`DataFormatError`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..io.pickle_machine import Global, Grammar, PickleRefused, unpickle
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
        raise PickleRefused(f"an array's data is a {type(raw).__name__}, not bytes")
    if (not isinstance(shape, tuple) or len(shape) > 32
            or not all(type(s) is int and s >= 0 for s in shape)):
        raise PickleRefused("an array's shape is not a tuple of non-negative ints")
    size = math.prod(shape)
    if size != len(raw):
        raise PickleRefused(f"an array declares shape {shape} ({size} bytes) but carries {len(raw)} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape, order="F" if fortran else "C").copy()


def _call(func: Global, args: tuple):
    """What calling the allowed global ``func`` with ``args`` gives, computed without calling it."""
    role = func.role
    if role == "encode" and len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
        try:
            return args[0].encode("latin-1")
        except UnicodeEncodeError:
            raise PickleRefused("a latin1 byte string holds characters beyond latin1", corrupt=True) from None
    if role == "encode":
        codec = args[1] if len(args) == 2 and isinstance(args[1], str) else "?"
        raise PickleRefused(f"its pickle asks for _codecs.encode with codec {codec[:40]!r}; CIFAR-10 batches "
                            f"encode byte strings as latin1 only")
    if role == "bytes" and args == ():
        return b""
    if role == "reconstruct" and len(args) == 3:
        cls, shape, code = args
        if isinstance(cls, Global) and cls.role == "ndarray" and shape == (0,) and _text(code) == "b":
            return _PendingArray()
    if role == "dtype" and 1 <= len(args) <= 3:
        name = _text(args[0])
        if name in _UINT8_NAMES:
            return _Dtype()
        raise PickleRefused(f"its pickle holds a NumPy array of dtype {(name or '?')[:20]!r}; CIFAR-10 data is uint8")
    if role == "frombuffer" and len(args) == 4 and isinstance(args[1], _Dtype) and args[3] in ("C", "F"):
        return _uint8_array(args[0], args[2], args[3] == "F")
    raise PickleRefused(f"its pickle calls {func.name} with arguments CIFAR-10 batches never use")


def _build(target, state):
    """BUILD on a dtype (its state is checked and dropped) or on a pending array (its shape and bytes)."""
    if isinstance(target, _Dtype):
        if not isinstance(state, tuple) or len(state) not in (8, 9):
            raise PickleRefused("a NumPy dtype has a state CIFAR-10 batches never write")
        return target
    if isinstance(target, _PendingArray) and target.array is None:
        if isinstance(state, tuple) and len(state) == 5 and type(state[0]) is int:
            state = state[1:]                          # (version, shape, dtype, fortran, data)
        if (not isinstance(state, tuple) or len(state) != 4 or not isinstance(state[1], _Dtype)
                or state[2] not in (False, True, 0, 1)):
            raise PickleRefused("a NumPy array has a state CIFAR-10 batches never write")
        target.array = _uint8_array(state[3], state[0], bool(state[2]))
        return target.array
    return None


def _unfinished(obj) -> bool:
    return (isinstance(obj, _PendingArray) and obj.array is None) or isinstance(obj, _Dtype)


_GRAMMAR = Grammar(what="a CIFAR-10 batch", allowed=_ALLOWED, globals=_GLOBALS, call=_call, build=_build,
                   unfinished=_unfinished, max_depth=MAX_DEPTH, max_memo=_MAX_MEMO)


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
        obj = unpickle(data, _GRAMMAR)
    except FileNotFoundError:
        raise DataFormatError(f"CIFAR-10 file not found: {path}") from None
    except OSError as err:
        raise DataFormatError(f"cannot read CIFAR-10 file {path}: {err.strerror or err}") from None
    except MemoryError:
        raise DataFormatError(f"CIFAR-10 file {path} is too large to load in memory") from None
    except PickleRefused as err:
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
