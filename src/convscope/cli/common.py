"""What several subcommands share: a checkpoint's classifier with the data it is to be used on."""

from __future__ import annotations

from ..classifier import Classifier
from ..data import Dataset

__all__ = ["load_with_data", "check_fits"]


def check_fits(clf: Classifier, dataset: Dataset, spec: str) -> None:
    """ValueError unless ``dataset`` fits ``clf``: the same image shape, no more classes than it predicts."""
    if dataset.input_shape != clf.input_shape:
        raise ValueError(f"the data in {spec!r} are {'x'.join(map(str, dataset.input_shape))} images but "
                         f"the checkpoint's model takes {'x'.join(map(str, clf.input_shape))}; use data of that shape")
    if dataset.num_classes > clf.num_classes:
        raise ValueError(f"the data in {spec!r} have {dataset.num_classes} classes but the checkpoint's "
                         f"model predicts {clf.num_classes}")


def _cropped(dataset: Dataset, size: tuple[int, int]) -> Dataset:
    """``dataset`` with both splits centre-cropped to ``size`` when they are larger (views, no copies)."""
    import dataclasses

    from ..data.augment import center_crops
    if dataset.input_shape[1:] == tuple(size) or min(dataset.input_shape[1] - size[0],
                                                       dataset.input_shape[2] - size[1]) < 0:
        return dataset
    return dataclasses.replace(dataset, train_images=center_crops(dataset.train_images, size),
                               test_images=center_crops(dataset.test_images, size))


def load_with_data(checkpoint: str, data: str | None = None) -> tuple[Classifier, Dataset, str]:
    """The classifier in ``checkpoint`` and the dataset ``data`` (default: the one it was trained
    on), checked to fit each other; returns (classifier, dataset, the dataset's spec)."""
    from ..data import load_dataset

    clf = Classifier.from_checkpoint(checkpoint)
    spec = data or clf.meta.get("data") or "mnist"
    if clf.transform:            # a preset (an imported network): photos resized and centre-cropped as it says
        dataset = _cropped(load_dataset(spec, square=clf.transform["resize"]), clf.input_shape[1:])
    else:
        dataset = load_dataset(spec)
    check_fits(clf, dataset, spec)
    return clf, dataset, spec
