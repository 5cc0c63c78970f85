"""What several subcommands share: a checkpoint with the data it is to be used on."""

from __future__ import annotations

from dataclasses import dataclass

from ..data import Dataset, Normalizer
from ..layers import Module

__all__ = ["Run", "load_run"]


@dataclass
class Run:
    model: Module
    meta: dict                  # the checkpoint's config (see convscope.training.checkpoint)
    data: Dataset
    data_spec: str
    normalizer: Normalizer
    class_names: list[str]


def load_run(checkpoint: str, data: str | None = None) -> Run:
    """Load ``checkpoint`` and the dataset (``data`` or the one it was trained on), checking
    that the data fit the model: same image shape, no more classes than it predicts."""
    from ..data import load_dataset
    from ..training import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    spec = data or meta.get("data") or "mnist"
    dataset = load_dataset(spec)
    want = tuple(meta["input_shape"])
    if dataset.input_shape != want:
        raise ValueError(f"the data in {spec!r} are {'x'.join(map(str, dataset.input_shape))} images but "
                         f"the checkpoint's model takes {'x'.join(map(str, want))}; use data of that shape")
    classes = list(meta.get("class_names") or dataset.class_names)
    if dataset.num_classes > len(classes):
        raise ValueError(f"the data in {spec!r} have {dataset.num_classes} classes but the checkpoint's "
                         f"model predicts {len(classes)}")
    return Run(model, meta, dataset, spec, Normalizer.from_dict(meta["normalizer"]), classes)
