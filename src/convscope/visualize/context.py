"""What the CLI and the report hand each technique: a classifier, its data and the user's choices.

A :class:`Context` is a :class:`~convscope.Classifier` (``convscope.load``) with the dataset
whose test images are explained and the values of ``convscope visualize``'s flags. Its
checks name the flag, the value and the valid range, so a mistake is one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..classifier import Classifier
from ..data import Dataset

__all__ = ["Context", "Output", "default_images"]


def default_images(labels: np.ndarray, count: int = 4) -> list[int]:
    """The first test image of each of the first ``count`` classes met in the test split, in
    split order: varied classes even when the split is ordered by class. (On MNIST's test
    split, whose first four digits are 7, 2, 1, 0, that is images 0, 1, 2, 3.)"""
    _, first = np.unique(np.asarray(labels), return_index=True)
    return sorted(int(i) for i in first)[:count]


@dataclass
class Context:
    """What every technique needs. ``images``: indices into the test split to explain;
    ``layer``, ``unit``, ``target``, ``seed``, ``sample``, ``steps``: the flags' values."""

    clf: Classifier
    data: Dataset
    images: list[int]
    layer: str | None = None
    unit: int | None = None
    target: int | None = None
    seed: int = 0
    sample: int = 1000                 # test images used for statistics (sparsity, dissection)
    steps: int | None = None           # optimisation steps of actmax / inversion (None: their defaults)
    progress: bool = True

    @property
    def model(self):
        return self.clf.model

    def raw(self, indices=None) -> np.ndarray:
        """Test images ``indices`` (default: the chosen ones) as stored: uint8 (N, C, H, W)."""
        return self.data.test_images[np.asarray(self.images if indices is None else indices)]

    def pictures(self, indices=None) -> np.ndarray:
        """Test images ``indices`` as pixel values in [0, 1], (N, C, H, W): for display."""
        return self.clf.pixels(self.raw(indices)).astype(np.float32) / 255.0

    def sample_indices(self) -> np.ndarray:
        return np.arange(min(self.sample, len(self.data.test_images)))

    def label(self, k: int) -> str:
        return self.clf.class_names[k] if 0 <= k < self.clf.num_classes else str(k)

    def true_label(self, index: int) -> str:
        return self.label(int(self.data.test_labels[index]))

    def steps_option(self) -> dict:
        return {} if self.steps is None else {"steps": self.steps}

    def check_unit(self, layer: str, count: int, kind: str) -> int | None:
        """``unit`` if it indexes one of the ``count`` ``kind`` (channels, features, filters,
        classes) of ``layer``; ValueError naming --unit and the range otherwise."""
        if self.unit is not None and not 0 <= self.unit < count:
            where = "the logits have" if layer == "" else f"layer {layer!r} has"
            raise ValueError(f"--unit {self.unit} is out of range: {where} {count} {kind} (0..{count - 1})")
        return self.unit


@dataclass
class Output:
    """Figures (file stem -> matplotlib Figure) and JSON-able numbers of one technique."""

    figures: dict = field(default_factory=dict)
    numbers: dict = field(default_factory=dict)
    caption: str = ""
