"""The in-memory dataset: uint8 images (N, C, H, W) and int64 labels (N,), for both splits."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .errors import DataFormatError

__all__ = ["Dataset"]


@dataclass(eq=False, repr=False)   # arrays have no single truth value: compare by identity
class Dataset:
    """A train / test split of images with integer class labels.

    ``train_images`` and ``test_images`` are uint8 arrays (N, C, H, W) with the same
    (C, H, W); ``train_labels`` and ``test_labels`` are int64 arrays (N,) whose values
    lie in ``range(len(class_names))``, with at least two class names (a classifier of one
    class learns nothing). Everything is checked on construction and a problem raises
    :class:`DataFormatError`.
    """

    name: str
    train_images: np.ndarray   # (N_train, C, H, W) uint8
    train_labels: np.ndarray   # (N_train,) int64
    test_images: np.ndarray    # (N_test, C, H, W) uint8
    test_labels: np.ndarray    # (N_test,) int64
    class_names: list[str]

    def __post_init__(self) -> None:
        self.class_names = [str(c) for c in self.class_names]
        if not self.class_names:
            raise DataFormatError(f"dataset {self.name!r} has no class names")
        if len(self.class_names) < 2:
            raise DataFormatError(f"dataset {self.name!r} has one class ({self.class_names[0][:40]!r}); a "
                                  f"classifier needs at least two classes")
        for split in ("train", "test"):
            self._check_split(split)
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise DataFormatError(
                f"dataset {self.name!r}: training images are {_shape_text(self.train_images.shape[1:])} "
                f"but test images are {_shape_text(self.test_images.shape[1:])}; both splits need one shape")

    def _check_split(self, split: str) -> None:
        images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
        where = f"dataset {self.name!r}: {split}"
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            raise DataFormatError(f"{where}_images must be a uint8 array (N, C, H, W), "
                                  f"got {_describe(images)}")
        if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.ndim != 1:
            raise DataFormatError(f"{where}_labels must be an int64 array (N,), got {_describe(labels)}")
        if len(images) != len(labels):
            raise DataFormatError(f"{where} split has {len(images)} images but {len(labels)} labels")
        if len(images) == 0:
            raise DataFormatError(f"{where} split has no images")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= self.num_classes:
            bad = low if low < 0 else high
            raise DataFormatError(f"{where} label {bad} is outside 0..{self.num_classes - 1} "
                                  f"(the dataset has {self.num_classes} class names)")

    def __repr__(self) -> str:
        """One line, e.g. ``Dataset('mnist': 60,000 train / 10,000 test images of 1x28x28, 10 classes)``."""
        return (f"Dataset({self.name!r}: {len(self.train_images):,} train / {len(self.test_images):,} test "
                f"images of {_shape_text(self.input_shape)}, {self.num_classes} classes)")

    @property
    def num_classes(self) -> int:
        """How many classes there are: ``len(class_names)``."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape (C, H, W) of one image."""
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)

    def limit(self, n: int) -> "Dataset":
        """A dataset with only the first ``n`` training images (all of them if there are fewer).

        The test split is unchanged; the arrays are views, not copies.
        """
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"limit must be a positive integer, got {n!r}")
        return dataclasses.replace(self, train_images=self.train_images[:n],
                                   train_labels=self.train_labels[:n])


def _shape_text(shape: tuple) -> str:
    return "x".join(str(int(s)) for s in shape)


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"a {type(value).__name__}"
