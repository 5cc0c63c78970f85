"""The training loop: minibatch SGD-family training with a schedule, evaluation each epoch,
per-epoch resumable checkpoints, and a stop (before anything is saved) if the loss diverges.

Randomness is derived from the seed per epoch (``default_rng([seed, epoch, stream])``) for
shuffling, augmentation and dropout masks, so a run resumed at epoch k draws exactly what
an uninterrupted run draws, with no generator state to carry across the checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ..data import Dataset, Normalizer, channel_stats, iterate_batches
from ..data.augment import Augment
from ..layers import AuxiliaryClassifier, Module, SoftmaxCrossEntropy
from ..optim import SCHEDULES, make_optimizer, make_schedule
from ..progress import Progress
from .checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from .metrics import accuracy, confusion_matrix, per_class_accuracy

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "predict", "evaluate"]

# Streams of the per-epoch generators (see the module docstring).
_SHUFFLE, _AUGMENT, _DROPOUT, _PCA_FIT = 0, 1, 2, 3


class TrainingDiverged(ArithmeticError):
    """The loss became NaN or infinite; training stopped before saving anything."""


@dataclass
class TrainConfig:
    """Hyper-parameters of a run. The defaults are the LeNet-5 / MNIST recipe of the README:
    Nesterov SGD with a short warm-up and a cosine decay, which reaches >= 99.0% test accuracy.
    """

    epochs: int = 12
    batch_size: int = 128
    lr: float = 0.05                 # peak learning rate, reached after the warm-up
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.5       # linear ramp: avoids early instability at lr 0.05
    label_smoothing: float = 0.0
    translate: int = 0               # augmentation: random shifts of up to this many pixels
    hflip: bool = False              # augmentation: random horizontal reflection (not for digits)
    pca_color: float = 0.0           # augmentation: AlexNet's PCA colour jitter std (0.1 in the paper)
    limit: int | None = None         # trained on the first `limit` training images only (recorded)
    seed: int = 0
    eval_batch_size: int = 500

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.weight_decay < 0 or self.warmup_epochs < 0:
            raise ValueError(f"weight_decay and warmup_epochs must be non-negative, got "
                             f"{self.weight_decay!r} and {self.warmup_epochs!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def predict(model: Module, images: np.ndarray, normalizer: Normalizer, batch_size: int = 500) -> np.ndarray:
    """Logits (N, K) for uint8 images (N, C, H, W), in evaluation mode, batch by batch."""
    was_training = model.training
    model.eval()
    try:
        outs = [model.forward(normalizer(images[idx])) for idx in iterate_batches(len(images), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0, 0), dtype=np.float32)


def evaluate(model: Module, images: np.ndarray, labels: np.ndarray, normalizer: Normalizer,
             num_classes: int, batch_size: int = 500) -> dict:
    """Test accuracy, confusion matrix (rows = true class) and per-class accuracy."""
    pred = predict(model, images, normalizer, batch_size).argmax(axis=1)
    cm = confusion_matrix(labels, pred, num_classes)
    return {"test_accuracy": accuracy(labels, pred), "confusion_matrix": cm,
            "per_class_accuracy": per_class_accuracy(cm)}


class Trainer:
    """Train ``model`` on ``dataset`` with ``config``, writing into ``out_dir``.

    Files: ``checkpoint.npz`` (weights, optimizer state, history; rewritten atomically after
    every epoch, for ``resume``), and at the end ``model.npz`` (weights and config) and
    ``metrics.json``. Training batches are augmented as the config says (translations,
    reflections, PCA colour; see :mod:`convscope.data.augment`). ``data_spec`` is recorded so a
    checkpoint says what it was trained on. A model with :class:`AuxiliaryClassifier` layers
    (GoogLeNet with ``aux_logits``) is trained on the main loss plus weight x each side
    loss, and ``train_loss`` reports that total.
    """

    def __init__(self, model: Module, dataset: Dataset, config: TrainConfig, out_dir=None, *,
                 data_spec: str = "", progress: bool = True) -> None:
        config.validate()
        if not hasattr(model, "config"):
            raise ValueError("model has no .config; build it with convscope.models.build_model")
        self.model, self.dataset, self.config = model, dataset, config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.data_spec = data_spec or dataset.name
        self.progress = progress
        augment = Augment(config.translate, config.hflip, config.pca_color)
        if config.pca_color and dataset.input_shape[0] != 3:
            raise ValueError(f"PCA colour augmentation needs RGB data; {dataset.name!r} has "
                             f"{dataset.input_shape[0]} channel(s)")
        self.augment = augment.fit(dataset.train_images, self._epoch_rng(0, _PCA_FIT)) \
            if augment.active else None
        self.normalizer = Normalizer(*channel_stats(dataset.train_images))
        self.optimizer = make_optimizer(config.optimizer, model, config.lr,
                                        momentum=config.momentum, weight_decay=config.weight_decay)
        steps_per_epoch = -(-len(dataset.train_images) // config.batch_size)
        self.steps_per_epoch = steps_per_epoch
        self.schedule = make_schedule(config.schedule, config.lr, config.epochs * steps_per_epoch,
                                      warmup_steps=int(config.warmup_epochs * steps_per_epoch))
        self.loss_fn = SoftmaxCrossEntropy(config.label_smoothing)
        # GoogLeNet's side classifiers: each adds weight * its own cross-entropy to the loss.
        self.aux_losses = [(m, SoftmaxCrossEntropy(config.label_smoothing))
                           for _, m in model.named_modules() if isinstance(m, AuxiliaryClassifier)]
        self.history: list[dict] = []
        self.start_epoch = 0

    # -- resuming -----------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir, dataset: Dataset, **kwargs) -> "Trainer":
        """A trainer continuing the run saved in ``run_dir/checkpoint.npz``."""
        model, meta = load_checkpoint(Path(run_dir) / "checkpoint.npz")
        config = TrainConfig.from_dict(meta["train"])
        trainer = cls(model, dataset, config, run_dir, data_spec=meta.get("data", ""), **kwargs)
        trainer.normalizer = Normalizer.from_dict(meta["normalizer"])
        trainer.optimizer.load_state_dict(meta["optim_state"])
        trainer.history = list(meta["history"])
        trainer.start_epoch = len(trainer.history)
        return trainer

    # -- the loop -----------------------------------------------------------------------
    def _epoch_rng(self, epoch: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, epoch, stream])

    def _reseed_dropout(self, epoch: int) -> None:
        for i, (_, module) in enumerate(self.model.named_modules()):
            if isinstance(getattr(module, "rng", None), np.random.Generator):
                module.rng = np.random.default_rng([self.config.seed, epoch, _DROPOUT, i])

    def train_epoch(self, epoch: int, bar: Progress | None = None) -> dict:
        """One pass over the training split; returns loss, accuracy and seconds."""
        cfg, ds, model = self.config, self.dataset, self.model
        model.train()
        self._reseed_dropout(epoch)
        aug_rng = self._epoch_rng(epoch, _AUGMENT)
        n = len(ds.train_images)
        total_loss, correct, seen = 0.0, 0, 0
        if bar is None:
            bar = Progress(self.steps_per_epoch, enabled=False)
        start = time.perf_counter()
        for step, idx in enumerate(iterate_batches(n, cfg.batch_size, self._epoch_rng(epoch, _SHUFFLE))):
            images = ds.train_images[idx]
            if self.augment is not None:
                images = self.augment(images, aug_rng)
            x, y = self.normalizer(images), ds.train_labels[idx]
            with np.errstate(over="ignore", invalid="ignore"):     # a diverging loss is reported below
                logits = model.forward(x)
                loss = self.loss_fn.forward(logits, y)
                for aux, aux_loss in self.aux_losses:
                    loss += aux.weight * aux_loss.forward(aux.logits, y)
            if not math.isfinite(loss):
                bar.close()
                raise TrainingDiverged(
                    f"training stopped: the loss became {loss} at epoch {epoch + 1}, batch {step + 1}; "
                    f"no checkpoint was written over; try a lower learning rate (--lr, now {cfg.lr})")
            for aux, aux_loss in self.aux_losses:
                aux.logits_grad = aux.weight * aux_loss.backward()
            model.backward(self.loss_fn.backward())
            self.optimizer.lr = self.schedule(epoch * self.steps_per_epoch + step)
            self.optimizer.step()
            total_loss += loss * len(idx)
            correct += int((logits.argmax(axis=1) == y).sum())
            seen += len(idx)
            bar.update(1, units=len(idx), loss=total_loss / seen, acc=correct / seen)
        seconds = time.perf_counter() - start
        return {"epoch": epoch + 1, "train_loss": total_loss / seen, "train_accuracy": correct / seen,
                "seconds": seconds, "images_per_second": seen / seconds}

    def fit(self) -> dict:
        """Train for the remaining epochs; returns the metrics written to metrics.json."""
        cfg, model = self.config, self.model
        model.set_input_grad(False)          # nobody needs dLoss/dImage while training
        result = None
        try:
            for epoch in range(self.start_epoch, cfg.epochs):
                bar = Progress(self.steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", unit="img",
                               unit_scale=cfg.batch_size, enabled=self.progress)
                entry = self.train_epoch(epoch, bar)
                result = self._test()
                entry["test_accuracy"] = result["test_accuracy"]
                bar.close(test_acc=entry["test_accuracy"])
                self.history.append(entry)
                if self.out_dir is not None:
                    self._save(self.out_dir / "checkpoint.npz", with_optimizer=True)
        finally:
            model.set_input_grad(True)
        metrics = self.metrics(result if result is not None else self._test())
        if self.out_dir is not None:
            self._save(self.out_dir / "model.npz", with_optimizer=False)
            atomic_write_text(self.out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        return metrics

    def _test(self) -> dict:
        ds = self.dataset
        return evaluate(self.model, ds.test_images, ds.test_labels, self.normalizer,
                        ds.num_classes, self.config.eval_batch_size)

    def metrics(self, result: dict) -> dict:
        ds = self.dataset
        return {
            "model": self.model.config["name"], "data": self.data_spec,
            "test_accuracy": result["test_accuracy"],
            "per_class_accuracy": [None if np.isnan(a) else float(a) for a in result["per_class_accuracy"]],
            "confusion_matrix": result["confusion_matrix"].tolist(),
            "class_names": list(ds.class_names), "input_shape": list(ds.input_shape),
            "num_parameters": self.model.num_parameters(), "train_images": len(ds.train_images),
            "config": asdict(self.config), "history": self.history,
        }

    def _save(self, path: Path, with_optimizer: bool) -> None:
        meta = {"data": self.data_spec, "normalizer": self.normalizer.to_dict(),
                "class_names": list(self.dataset.class_names),
                "input_shape": list(self.dataset.input_shape),
                "train": asdict(self.config), "history": self.history}
        save_checkpoint(path, self.model, meta,
                        self.optimizer.state_dict() if with_optimizer else None)
