"""``load_dataset``: an embedded name or a directory, whose format is detected from its files."""

from __future__ import annotations

import os
from pathlib import Path

from .cifar import CIFAR_SUBDIR, cifar_root, load_cifar_dir
from .dataset import Dataset
from .embedded import EMBEDDED, load_embedded
from .errors import DataFormatError
from .folder import is_image_folder, load_image_folder
from .idx import IDX_FILES, find_idx_files, load_idx_dir

__all__ = ["load_dataset"]

_KINDS = "use 'mnist' or a directory of IDX / CIFAR-10 / image-folder data"


def load_dataset(spec: str | os.PathLike, *, square: int | None = None) -> Dataset:
    """The dataset named by ``spec``: an embedded name (``EMBEDDED``, e.g. "mnist") or a directory.

    A string that is not an embedded name, and any path object, is a directory, read as
    (checked in this order):

    - IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
      ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or ``.gz``;
    - CIFAR-10 python batches (``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
      ``batches.meta``), in the directory or its ``cifar-10-batches-py`` sub-folder;
    - an image folder: one sub-folder of PNG / JPEG images per class, optionally under
      ``train/`` and ``test/``.

    ``square``: an image folder's photos may have any size; each is resized (shorter side) and
    centre-cropped to ``square x square`` (see :func:`load_image_folder`). Other formats ignore it.

    The dataset is named after the directory. Raises :class:`DataFormatError` for a missing
    directory, an incomplete or corrupt dataset, or a directory matching no format.
    """
    if isinstance(spec, str) and spec in EMBEDDED:
        return load_embedded(spec)
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"load_dataset expects a dataset name or a directory path, got {type(spec).__name__}")
    directory = Path(spec)
    if not directory.exists():
        raise DataFormatError(f"data directory not found: {directory} ({_KINDS})")
    if not directory.is_dir():
        raise DataFormatError(f"not a directory: {directory} ({_KINDS})")
    if any(path is not None for path in find_idx_files(directory).values()):
        return load_idx_dir(directory)
    if cifar_root(directory) is not None:
        return load_cifar_dir(directory)
    if is_image_folder(directory):
        return load_image_folder(directory, square=square)
    idx_names = ", ".join(f"{base}[.gz]" for base in IDX_FILES.values())
    raise DataFormatError(
        f"no dataset found in {directory}: expected IDX files ({idx_names}), CIFAR-10 python batches "
        f"(data_batch_1..5, test_batch, batches.meta, here or in {CIFAR_SUBDIR}/), or an image folder "
        f"(one sub-folder of PNG/JPEG images per class, optionally under train/ and test/)")
