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


def load_with_data(checkpoint: str, data: str | None = None) -> tuple[Classifier, Dataset, str]:
    """The classifier in ``checkpoint`` and the dataset ``data`` (default: the one it was trained
    on), checked to fit each other; returns (classifier, dataset, the dataset's spec)."""
    from ..data import load_dataset

    clf = Classifier.from_checkpoint(checkpoint)
    spec = data or clf.meta.get("data") or "mnist"
    dataset = load_dataset(spec)
    check_fits(clf, dataset, spec)
    return clf, dataset, spec
