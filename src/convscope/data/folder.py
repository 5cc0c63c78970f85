"""Image folders: one sub-folder of PNG / JPEG files per class, read with Pillow.

Two layouts are accepted:

- ``DIR/train/CLASS/*.png`` and ``DIR/test/CLASS/*.png``: the split is given;
- ``DIR/CLASS/*.png``: a deterministic holdout, every ``HOLDOUT_EVERY``-th file of each class
  (sorted by name) goes to the test split.

Class names are the sorted sub-folder names. All images must share one size; they are read
as grayscale ("L", one channel) when every file is grayscale, else as RGB (three channels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import DataFormatError

__all__ = ["IMAGE_SUFFIXES", "HOLDOUT_EVERY", "is_image_folder", "load_image_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
HOLDOUT_EVERY = 6          # every 6th image of a class is a test image: a 5:1 train / test split
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def _pillow():
    """Pillow's Image module, imported only when an image folder is read."""
    try:
        from PIL import Image
    except ImportError:
        raise DataFormatError('reading an image folder needs Pillow: '
                              'pip install "convscope[pictures]"') from None
    return Image


def _visible_dirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def is_image_folder(directory: Path) -> bool:
    """Whether ``directory`` looks like an image folder (either layout)."""
    subdirs = _visible_dirs(directory)
    names = {p.name for p in subdirs}
    if "train" in names or "test" in names:
        return True
    return any(_image_files(d) for d in subdirs)


def _class_files(directory: Path) -> dict[str, list[Path]]:
    """class name -> its sorted image files, for the class sub-folders of ``directory``."""
    classes = {d.name: _image_files(d) for d in _visible_dirs(directory)}
    if not classes:
        raise DataFormatError(f"no class folders in {directory}: expected one sub-folder of PNG/JPEG "
                              f"images per class")
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise DataFormatError(f"class folder {directory / empty[0]} has no PNG/JPEG images; "
                              f"add images or remove the folder")
    return classes


def _split_files(directory: Path) -> tuple[list[str], list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Class names and the (file, label) pairs of the training and test splits."""
    names = {p.name for p in _visible_dirs(directory)}
    if "train" in names or "test" in names:
        if not {"train", "test"} <= names:
            have, lack = ("train", "test") if "train" in names else ("test", "train")
            raise DataFormatError(f"image folder {directory} has {have}/ but no {lack}/; add {lack}/ with "
                                  f"the same class folders, or put the class folders directly in {directory}")
        train = _class_files(directory / "train")
        test = {d.name: _image_files(d) for d in _visible_dirs(directory / "test")}
        unknown = sorted(set(test) - set(train))
        if unknown:
            raise DataFormatError(f"class folder {directory / 'test' / unknown[0]} has no counterpart in "
                                  f"{directory / 'train'}; the test classes must be training classes")
        classes = sorted(train)
        pairs_train = [(f, i) for i, c in enumerate(classes) for f in train[c]]
        pairs_test = [(f, i) for i, c in enumerate(classes) for f in test.get(c, [])]
    else:
        files = _class_files(directory)
        classes = sorted(files)
        pairs_train, pairs_test = [], []
        for i, c in enumerate(classes):
            for k, f in enumerate(files[c]):
                (pairs_test if k % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 else pairs_train).append((f, i))
    if not pairs_test:
        raise DataFormatError(f"image folder {directory} gives no test images: the holdout takes every "
                              f"{HOLDOUT_EVERY}th image of a class, so give a class at least {HOLDOUT_EVERY} "
                              f"images, or use train/ and test/ sub-folders")
    return classes, pairs_train, pairs_test


def _survey(files: list[Path]) -> tuple[tuple[int, int], bool]:
    """The common (width, height) of ``files`` and whether all are grayscale; reads headers only."""
    image_module = _pillow()
    size, first, gray = None, None, True
    for path in files:
        try:
            with image_module.open(path) as img:
                this_size, mode = img.size, img.mode
        except (OSError, ValueError) as err:     # UnidentifiedImageError is an OSError
            raise DataFormatError(f"cannot read image {path}: {err}") from None
        if size is None:
            size, first = this_size, path
        elif this_size != size:
            raise DataFormatError(f"image {path} is {this_size[0]}x{this_size[1]} but {first} is "
                                  f"{size[0]}x{size[1]}; all images must share one size (resize them first)")
        gray = gray and mode in _GRAY_MODES
    return size, gray


def _read_images(pairs: list[tuple[Path, int]], size: tuple[int, int],
                 gray: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, C, H, W) uint8 and labels (N,) int64 for the (file, label) pairs."""
    image_module = _pillow()
    width, height = size
    channels, mode = (1, "L") if gray else (3, "RGB")
    images = np.empty((len(pairs), channels, height, width), dtype=np.uint8)
    for k, (path, _) in enumerate(pairs):
        try:
            with image_module.open(path) as img:
                pixels = np.asarray(img.convert(mode), dtype=np.uint8)     # (H, W) or (H, W, 3)
        except (OSError, ValueError) as err:
            raise DataFormatError(f"cannot read image {path}: {err}") from None
        images[k] = pixels[None] if gray else pixels.transpose(2, 0, 1)
    labels = np.array([label for _, label in pairs], dtype=np.int64)
    return images, labels


def load_image_folder(directory: Path, name: str | None = None) -> Dataset:
    """The dataset in an image folder (see the module docstring for the two layouts)."""
    directory = Path(directory)
    _pillow()                                    # fail early, before walking the folders
    classes, pairs_train, pairs_test = _split_files(directory)
    size, gray = _survey([f for f, _ in pairs_train + pairs_test])
    train_images, train_labels = _read_images(pairs_train, size, gray)
    test_images, test_labels = _read_images(pairs_test, size, gray)
    return Dataset(name=name or directory.resolve().name, train_images=train_images,
                   train_labels=train_labels, test_images=test_images, test_labels=test_labels,
                   class_names=classes)
