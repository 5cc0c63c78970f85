"""What the CLI and the report hand each technique: a classifier, its images and the user's choices.

A :class:`Context` is a :class:`~convscope.Classifier` (``convscope.load``) with the images to
explain, a dataset when there is one, and the values of ``convscope visualize``'s flags.
The images are indices into the dataset's test split, or image files (photos of any size,
read and resized by the classifier). The dataset may be a :class:`DataSource` that loads it
on first use, so techniques that explain single images (saliency, deconv, inversion, ...)
never load one; those that need one (neighbours, dissection) say so in one line when there
is none. Every check names the flag, the value and the valid range; :func:`check_methods` and
:func:`check_metrics` check ``--methods`` and ``--metrics`` before any work is done.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..classifier import Classifier
from ..data import Dataset
from .core import is_large
from .faithfulness import METRICS
from .methods import METHODS

__all__ = ["Context", "Output", "DataSource", "default_images", "check_methods", "check_metrics", "RANDOM",
           "CURVE_METRICS"]

RANDOM = "random"              # the baseline "method": a map of uniform noise drawn from --seed
CURVE_METRICS = ("deletion", "insertion", "road_morf", "road_lerf", "road")     # the metrics with curves


def default_images(labels: np.ndarray, count: int = 4) -> list[int]:
    """The first test image of each of the first ``count`` classes met in the test split, in
    split order: varied classes even when the split is ordered by class. (On MNIST's test
    split, whose first four digits are 7, 2, 1, 0, that is images 0, 1, 2, 3.)"""
    _, first = np.unique(np.asarray(labels), return_index=True)
    return sorted(int(i) for i in first)[:count]


def _check_names(names, flag: str, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"{flag} must be a list of {what} names, got {names!r}")
    names = tuple(names)
    if not names:
        raise ValueError(f"{flag} needs at least one {what}; known: {', '.join(known)}")
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"{flag} names {name!r} twice")
    return names


def check_methods(names) -> tuple[str, ...] | None:
    """``names`` (attribution methods: names of :data:`~convscope.visualize.methods.METHODS`, or
    "random" for the baseline map) as a tuple; None stays None (each technique's default set).
    ValueError naming an unknown one and listing the known ones."""
    if names is None:
        return None
    known = tuple(METHODS) + (RANDOM,)
    names = _check_names(names, "--methods", known, "method")
    for name in names:
        if name not in known:
            raise ValueError(f"--methods: unknown method {name!r}; known methods: {', '.join(known)}")
    return names


def check_metrics(names) -> tuple[str, ...] | None:
    """``names`` (faithfulness metrics with curves, :data:`CURVE_METRICS`) as a tuple; None stays
    None (deletion, insertion, road). ValueError naming an unknown one."""
    if names is None:
        return None
    names = _check_names(names, "--metrics", CURVE_METRICS, "metric")
    for name in names:
        if name in METRICS and name not in CURVE_METRICS:
            raise ValueError(f"--metrics: {name!r} has no curve to draw; choose from {', '.join(CURVE_METRICS)} "
                             f"(convscope.visualize.faithfulness scores {name} in Python)")
        if name not in CURVE_METRICS:
            raise ValueError(f"--metrics: unknown metric {name!r}; known metrics: {', '.join(CURVE_METRICS)}")
    return names


class DataSource:
    """A dataset loaded on first use by ``load()`` and kept; ``load`` None means there is none,
    and asking for it raises a ValueError saying ``missing`` (what to pass instead)."""

    def __init__(self, load: Callable[[], Dataset] | None, missing: str = "no dataset was given (--data)"):
        self._load, self.missing, self._dataset = load, missing, None

    @property
    def available(self) -> bool:
        return self._load is not None

    def get(self, purpose: str = "this") -> Dataset:
        if self._dataset is None:
            if self._load is None:
                raise ValueError(f"{purpose} needs a dataset, but {self.missing}")
            self._dataset = self._load()
        return self._dataset


@dataclass
class Context:
    """What every technique needs. ``data``: a Dataset, or a :class:`DataSource`. ``images``:
    test-split indices (ints) or image files (paths) to explain; ``layer``, ``unit``,
    ``target``, ``seed``, ``sample``, ``steps``, ``methods``, ``metrics``: the flags' values."""

    clf: Classifier
    data: Dataset | DataSource | None
    images: list
    layer: str | None = None
    unit: int | None = None
    target: int | None = None
    seed: int = 0
    sample: int = 1000                 # test images used for statistics (sparsity, dissection)
    steps: int | None = None           # optimisation steps of actmax / inversion (None: their defaults)
    progress: bool = True
    methods: tuple[str, ...] | None = None     # attribution methods of saliency / faithfulness (None: their defaults)
    metrics: tuple[str, ...] | None = None     # faithfulness metrics (None: deletion, insertion, road)
    source: DataSource = field(init=False, repr=False)

    def __post_init__(self):
        if isinstance(self.data, DataSource):
            self.source = self.data
        else:
            self.source = DataSource(None if self.data is None else (lambda d=self.data: d))
        self.images = list(self.images)
        files = [isinstance(i, (str, os.PathLike)) for i in self.images]
        if any(files) and not all(files):
            raise ValueError("--images takes test-split indices or image files, not both")
        self.methods = check_methods(self.methods)
        self.metrics = check_metrics(self.metrics)

    @property
    def model(self):
        return self.clf.model

    @property
    def from_files(self) -> bool:
        """Whether the images are files (photos) rather than test-split indices."""
        return bool(self.images) and isinstance(self.images[0], (str, os.PathLike))

    @property
    def has_data(self) -> bool:
        return self.source.available

    def dataset(self, purpose: str = "this") -> Dataset:
        """The dataset, loaded now if it was not yet; ValueError naming ``purpose`` if there is none."""
        return self.source.get(purpose)

    @property
    def large(self) -> bool:
        """Photo-sized inputs (ImageNet's 224 px): techniques use their settings for photos."""
        return is_large(self.clf.input_shape)

    def raw(self, indices=None) -> np.ndarray | list:
        """The chosen images as a Classifier takes them: test images ``indices`` (default: the
        chosen ones) as stored, uint8 (N, C, H, W), or the list of chosen image files."""
        if indices is None and self.from_files:
            return [str(p) for p in self.images]
        data = self.dataset("reading test images")
        return data.test_images[np.asarray(self.images if indices is None else indices)]

    def pictures(self, indices=None) -> np.ndarray:
        """The images ``indices`` (default: the chosen ones) as pixel values in [0, 1],
        (N, C, H, W) at the model's input size: for display."""
        return self.clf.pixels(self.raw(indices)).astype(np.float32) / 255.0

    def sample_indices(self) -> np.ndarray:
        return np.arange(min(self.sample, len(self.dataset("a sample of test images").test_images)))

    def label(self, k: int) -> str:
        """The model's name for class ``k``."""
        return self.clf.class_names[k] if 0 <= k < self.clf.num_classes else str(k)

    def data_label(self, k: int) -> str:
        """The dataset's name for its label ``k`` (the model's when they share the classes)."""
        names = self.dataset("naming its labels").class_names
        return names[k] if 0 <= k < len(names) else str(k)

    def true_labels(self) -> np.ndarray | None:
        """The chosen test images' labels (N,), or None for image files (no label known)."""
        if self.from_files:
            return None
        return self.dataset("true labels").test_labels[np.asarray(self.images)]

    def same_classes(self) -> bool:
        """Whether the dataset's labels are the model's classes (so the two can be compared)."""
        if not self.has_data:
            return False
        names = list(self.dataset().class_names)
        return names == self.clf.class_names[:len(names)]

    def name(self, image) -> str:
        """How an image is called in titles: "#3" for a test image, the file name for a photo."""
        return Path(image).name if isinstance(image, (str, os.PathLike)) else f"#{image}"

    def true_label(self, image) -> str | None:
        """The true class of a test image (the dataset's name for it); None for a photo."""
        if isinstance(image, (str, os.PathLike)):
            return None
        return self.data_label(int(self.dataset("true labels").test_labels[image]))

    def title(self, image) -> str:
        """"#3 (true 7)" for a test image, the file name for a photo."""
        true = self.true_label(image)
        return self.name(image) + ("" if true is None else f" (true {true})")

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
