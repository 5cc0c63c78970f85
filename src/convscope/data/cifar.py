"""CIFAR-10 "python version" batches: pickled dicts read with an unpickler that loads no code.

A batch is a dict with ``data`` (N, 3072) uint8 (1024 red, then green, then blue values per
image, each a 32x32 row-major plane) and ``labels`` (N ints); ``batches.meta`` holds
``label_names``. The files were written by Python 2, so keys may arrive as bytes or str.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import DataFormatError

__all__ = ["CIFAR_FILES", "CIFAR_SUBDIR", "cifar_root", "load_cifar_dir", "read_cifar_pickle"]

CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch", "batches.meta")
CIFAR_SUBDIR = "cifar-10-batches-py"   # the folder the official archive unpacks to
_SIDE, _CHANNELS = 32, 3


def _numpy_reconstructors() -> dict[tuple[str, str], object]:
    """The only globals a pickled CIFAR batch needs: what rebuilds a NumPy array, and bytes."""
    try:
        from numpy._core import multiarray, numeric          # NumPy >= 2
    except ImportError:                                      # NumPy 1.x
        from numpy.core import multiarray, numeric
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("_codecs", "encode"): codecs.encode}         # bytes pickled by Python 3, protocol < 3
    # A pickle names the module of the NumPy that wrote it: numpy.core before 2.0, numpy._core after.
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer   # protocol 5
    return allowed


class _ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allowed NumPy constructors."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Refuses every global except the NumPy array constructors, so a pickle cannot run code."""

    def find_class(self, module: str, name: str):
        obj = _numpy_reconstructors().get((module, name))
        if obj is None:
            raise _ForbiddenGlobal(f"{module}.{name}")
        return obj


def read_cifar_pickle(path: Path) -> dict[str, object]:
    """The dict pickled in ``path``, keys decoded to str, through the restricted unpickler."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataFormatError(f"CIFAR-10 file not found: {path}") from None
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except _ForbiddenGlobal as err:
        raise DataFormatError(f"refusing to load {path}: its pickle asks for {err}, which a CIFAR-10 "
                              f"batch never contains (only NumPy arrays are allowed)") from None
    except pickle.UnpicklingError as err:
        raise DataFormatError(f"corrupt CIFAR-10 file {path}: {err}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise DataFormatError(f"corrupt CIFAR-10 file {path}: {type(err).__name__}: {err}") from None
    if not isinstance(obj, dict):
        raise DataFormatError(f"CIFAR-10 file {path} holds a {type(obj).__name__}, expected a dict")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one batch file."""
    batch = read_cifar_pickle(path)
    if "data" not in batch or "labels" not in batch:
        raise DataFormatError(f"CIFAR-10 batch {path} lacks 'data' or 'labels' (keys: {sorted(batch)})")
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CHANNELS * _SIDE * _SIDE:
        raise DataFormatError(f"CIFAR-10 batch {path}: 'data' must be uint8 (N, 3072), got {data.dtype} "
                              f"{data.shape}")
    try:
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataFormatError(f"CIFAR-10 batch {path}: 'labels' must be a list of integers") from None
    if labels.shape != (len(data),):
        raise DataFormatError(f"CIFAR-10 batch {path} has {len(data)} images but {labels.size} labels")
    return data.reshape(-1, _CHANNELS, _SIDE, _SIDE), labels     # (N, 3, 32, 32)


def _read_class_names(path: Path) -> list[str]:
    meta = read_cifar_pickle(path)
    names = meta.get("label_names")
    if not isinstance(names, (list, tuple)) or not names:
        raise DataFormatError(f"CIFAR-10 meta file {path} has no 'label_names' list")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


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
    train = [_read_batch(root / f) for f in CIFAR_FILES[:5]]
    test_images, test_labels = _read_batch(root / "test_batch")
    return Dataset(name=name or directory.resolve().name,
                   train_images=np.concatenate([images for images, _ in train]),
                   train_labels=np.concatenate([labels for _, labels in train]),
                   test_images=test_images, test_labels=test_labels,
                   class_names=_read_class_names(root / "batches.meta"))
