"""Image folders: one sub-folder of PNG / JPEG files per class, read with Pillow.

Two layouts are accepted:

- ``DIR/train/CLASS/*.png`` and ``DIR/test/CLASS/*.png``: the split is given;
- ``DIR/CLASS/*.png``: a deterministic holdout, every ``HOLDOUT_EVERY``-th file of each class
  (sorted by name: the 6th, 12th, ...) goes to the test split, the others to training.

Class names are the sorted sub-folder names; there must be at least two. Training images
come class by class, each class's files sorted by name. Test images are interleaved round
robin over the classes (the first test file of each class in class order, then the second
of each, ...), so the first test images, the ones tools show by default, cover several classes.

Every file is read by :func:`convscope.data.read_image` (bounded before decoding; 16-bit,
palette and alpha images as documented there). All images must share one size; they are
read as one channel when every file is grayscale, else as RGB (three channels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import DataFormatError
from ..validation import check_int
from .geometry import center_crop, resize_shorter
from .images import image_shape, pillow, read_image

__all__ = ["IMAGE_SUFFIXES", "HOLDOUT_EVERY", "is_image_folder", "load_image_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
HOLDOUT_EVERY = 6          # every 6th image of a class is a test image: a 5:1 train / test split


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
    if len(classes) < 2:
        raise DataFormatError(f"image folder {directory} has one class folder ({next(iter(classes))}); a "
                              f"classifier needs at least two classes: add a sub-folder of images per class")
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise DataFormatError(f"class folder {directory / empty[0]} has no PNG/JPEG images; "
                              f"add images or remove the folder")
    return classes


def _held_out(k: int) -> bool:
    """Whether a class's k-th file (0-based, sorted by name) is a test image in the holdout layout."""
    return k % HOLDOUT_EVERY == HOLDOUT_EVERY - 1


def _round_robin(per_class: list[list]) -> list:
    """The items of all classes interleaved: each class's first item in class order, then each second, ..."""
    longest = max(map(len, per_class), default=0)
    return [items[k] for k in range(longest) for items in per_class if k < len(items)]


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
        pairs_test = _round_robin([[(f, i) for f in test.get(c, [])] for i, c in enumerate(classes)])
    else:
        files = _class_files(directory)
        classes = sorted(files)
        pairs_train = [(f, i) for i, c in enumerate(classes) for k, f in enumerate(files[c]) if not _held_out(k)]
        pairs_test = _round_robin([[(f, i) for k, f in enumerate(files[c]) if _held_out(k)]
                                   for i, c in enumerate(classes)])
    if not pairs_test:
        raise DataFormatError(f"image folder {directory} gives no test images: the holdout takes every "
                              f"{HOLDOUT_EVERY}th image of a class, so give a class at least {HOLDOUT_EVERY} "
                              f"images, or use train/ and test/ sub-folders")
    return classes, pairs_train, pairs_test


def _survey(files: list[Path], same_size: bool = True) -> tuple[int, int, int]:
    """(C, H, W) for ``files``: C = 1 if every file is grayscale, else 3; reads headers only.
    With ``same_size`` every file must have the first one's size (H, W are the first file's)."""
    channels, first, size = 1, None, None
    for path in files:
        c, h, w = image_shape(path)
        if first is None:
            first, size = path, (h, w)
        elif same_size and (h, w) != size:
            raise DataFormatError(f"image {path} is {w}x{h} but {first} is {size[1]}x{size[0]}; all images "
                                  f"must share one size (resize them first)")
        channels = max(channels, c)
    return channels, size[0], size[1]


def _read_images(pairs: list[tuple[Path, int]], shape: tuple[int, int, int],
                 square: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, C, H, W) uint8 and labels (N,) int64 for the (file, label) pairs; with ``square``
    each image is resized (shorter side) and centre-cropped to square x square first."""
    images = np.empty((len(pairs), *shape), dtype=np.uint8)
    for k, (path, _) in enumerate(pairs):
        pixels = read_image(path, channels=shape[0])               # (C, H, W)
        if square is not None:
            pixels = center_crop(resize_shorter(pixels, square), (square, square))
        if pixels.shape != shape:                                   # the file changed since the survey
            raise DataFormatError(f"image {path} is {pixels.shape[2]}x{pixels.shape[1]}, not "
                                  f"{shape[2]}x{shape[1]} like the others; all images must share one size")
        images[k] = pixels
    return images, np.array([label for _, label in pairs], dtype=np.int64)


def load_image_folder(directory: Path, name: str | None = None, *, square: int | None = None) -> Dataset:
    """The dataset in an image folder (see the module docstring for the two layouts).

    ``square``: photos of any size are accepted, each resized so its shorter side is ``square``
    and centre-cropped to ``square x square`` (for fine-tuning at 224, 256 leaves room for
    random crops, as torchvision's ImageNet recipe does); without it all images must share one size.
    """
    directory = Path(directory)
    pillow()                                    # fail early, before walking the folders
    classes, pairs_train, pairs_test = _split_files(directory)
    if square is None:
        shape = _survey([f for f, _ in pairs_train + pairs_test])
    else:
        check_int(square, "square", minimum=1, maximum=4096)
        shape = (_survey([f for f, _ in pairs_train + pairs_test], same_size=False)[0], square, square)
    try:
        train_images, train_labels = _read_images(pairs_train, shape, square)
        test_images, test_labels = _read_images(pairs_test, shape, square)
    except MemoryError:
        raise DataFormatError(f"image folder {directory}: {len(pairs_train) + len(pairs_test)} images of "
                              f"{'x'.join(map(str, shape))} are too many to load in memory") from None
    return Dataset(name=name or directory.resolve().name, train_images=train_images,
                   train_labels=train_labels, test_images=test_images, test_labels=test_labels,
                   class_names=classes)
