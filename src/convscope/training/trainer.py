"""The training loop: minibatch SGD-family training with a schedule, evaluation each epoch,
per-epoch resumable checkpoints, and a stop (before anything is saved) if the loss diverges.

Randomness is derived from the seed per epoch (``default_rng([seed, epoch, stream])``) for
shuffling, augmentation and dropout masks, so a run resumed at epoch k draws exactly what
an uninterrupted run draws, with no generator state to carry across the checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from ..data import Dataset, Normalizer, channel_stats, iterate_batches
from ..data.augment import Augment, center_crops, random_resized_crop
from ..io import atomic_write_json
from ..layers import AuxiliaryClassifier, Module, SoftmaxCrossEntropy
from ..optim import make_optimizer, make_schedule
from ..progress import Progress
from .checkpoint import check_resumable, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .metrics import accuracy, confusion_matrix, per_class_accuracy
from .distributed import Single, average_gradients, shard, synchronise, world
from .rundir import RunLock

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "TrainingInterrupted", "predict", "evaluate"]

# Streams of the per-epoch generators (see the module docstring).
_SHUFFLE, _AUGMENT, _DROPOUT, _PCA_FIT = 0, 1, 2, 3


class TrainingDiverged(ArithmeticError):
    """The loss (or a weight) became NaN or infinite; training stopped and saved nothing more.

    The message says what the run directory holds now (the last finished epoch's
    checkpoint, or nothing).
    """


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training. ``str(err)`` says what was saved and how to continue."""


def predict(model: Module, images: np.ndarray, normalizer: Normalizer | None, batch_size: int = 500) -> np.ndarray:
    """Logits (N, K) for uint8 images (N, C, H, W), in evaluation mode, batch by batch.

    With ``normalizer=None`` the images are taken as already in model space (float).
    """
    was_training = model.training
    model.eval()
    prepare = normalizer if normalizer is not None else (lambda x: x)
    try:
        outs = [model.forward(prepare(images[idx])) for idx in iterate_batches(len(images), batch_size)]
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
    """Train ``model`` on ``dataset`` with ``config``, writing into ``out_dir`` (None: nothing written).

    Files: ``checkpoint.npz`` (weights, optimizer state, history; rewritten atomically after
    every epoch, for ``resume``), and at the end ``model.npz`` (weights and config) and
    ``metrics.json``. ``config.limit`` / ``config.test_limit`` keep the first images of each
    split (recorded in metrics.json as ``train_images`` / ``test_images``). Training batches
    are augmented as the config says (translations, reflections, PCA colour; see
    :mod:`convscope.data.augment`). ``data_spec`` is recorded so a checkpoint says what it was
    trained on. A model with :class:`AuxiliaryClassifier` layers (GoogLeNet with
    ``aux_logits``) is trained on the main loss plus weight x each side loss, and
    ``train_loss`` reports that total.

    ``replaces``: run files already in ``out_dir`` that belong to an earlier run being
    overwritten; they are removed when this run writes its first checkpoint, so the
    directory never holds two runs' files side by side.

    Fine-tuning: ``normalizer`` (a pretrained model's) replaces the statistics of the data;
    images larger than the model's input are cropped to it, at random (RandomResizedCrop) for
    training and centrally for testing; ``config.freeze`` names the last layer whose weights
    (and batch-norm statistics) stay as they are. ``meta`` is recorded in the checkpoints
    (e.g. ``preprocess`` and ``init``).

    ``comm``: the MPI world (default: :func:`~convscope.training.distributed.world`, which is a
    single process unless started by ``mpiexec``); see :mod:`convscope.training.distributed` for
    what data-parallel training does. Only rank 0 writes files or shows progress.
    """

    def __init__(self, model: Module, dataset: Dataset, config: TrainConfig, out_dir=None, *,
                 data_spec: str = "", progress: bool = True, replaces: tuple[str, ...] = (),
                 normalizer: Normalizer | None = None, meta: dict | None = None, comm: Single | None = None) -> None:
        config = config.resolved()
        if not hasattr(model, "config"):
            raise ValueError("model has no .config; build it with convscope.models.build_model")
        if config.limit is not None:
            dataset = dataset.limit(config.limit)
        if config.test_limit is not None:
            dataset = dataclasses.replace(dataset, test_images=dataset.test_images[:config.test_limit],
                                          test_labels=dataset.test_labels[:config.test_limit])
        self.model, self.dataset, self.config = model, dataset, config
        self.comm = comm if comm is not None else world()
        if config.batch_size < self.comm.size:
            raise ValueError(f"batch_size {config.batch_size} is smaller than the {self.comm.size} ranks; "
                             f"--batch-size is the global batch, split over the ranks")
        self.out_dir = Path(out_dir) if out_dir is not None and self.comm.rank == 0 else None
        self.data_spec = data_spec or dataset.name
        self.progress = progress and self.comm.rank == 0
        self.replaces = tuple(replaces)
        _, h, w = dataset.input_shape
        size = tuple(model.config.get("input_size", (h, w)))
        self.crop = None if size == (h, w) else size           # (H, W) the images are cropped to
        if self.crop is not None and (size[0] > h or size[1] > w):
            raise ValueError(f"the data are {h}x{w} images but the model takes {size[0]}x{size[1]}; "
                             f"use data at least that large")
        if config.translate > min(h, w) // 2:
            raise ValueError(f"translate {config.translate} is too large for {h}x{w} images: shifts of more "
                             f"than half the image ({min(h, w) // 2} pixels) leave little of it")
        augment = Augment(config.translate, config.hflip, config.pca_color)
        if config.pca_color and dataset.input_shape[0] != 3:
            raise ValueError(f"PCA colour augmentation needs RGB data; {dataset.name!r} has "
                             f"{dataset.input_shape[0]} channel(s)")
        self.augment = augment.fit(dataset.train_images, self._epoch_rng(0, _PCA_FIT)) \
            if augment.active else None
        self.normalizer = normalizer if normalizer is not None else Normalizer(*channel_stats(dataset.train_images))
        self.meta = dict(meta or {})
        outputs = model.output_shape(self.input_shape)[0]
        if outputs < dataset.num_classes:
            raise ValueError(f"the model predicts {outputs} classes but {dataset.name!r} has {dataset.num_classes}")
        # The model's classes: the data's, then (a head wider than the data) "k" for the others.
        self.class_names = list(dataset.class_names) + [str(k) for k in range(dataset.num_classes, outputs)]
        self.frozen_modules = self._frozen(config.freeze)
        self.optimizer = make_optimizer(config.optimizer, model, config.lr,
                                        momentum=config.momentum, weight_decay=config.weight_decay)
        self.optimizer.frozen = {f"{prefix}.{key}" if prefix else key
                                 for prefix, module in self.frozen_modules for key in module.params}
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
        self.saved_epoch: int | None = None      # the epoch checkpoint.npz holds, once this run wrote one

    # -- resuming -----------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir, dataset: Dataset, **kwargs) -> "Trainer":
        """A trainer continuing the run saved in ``run_dir/checkpoint.npz``.

        ``dataset`` is the full dataset; the saved ``limit`` / ``test_limit`` are applied again.
        """
        path = Path(run_dir) / "checkpoint.npz"
        model, meta = load_checkpoint(path)
        check_resumable(meta, path)
        config = TrainConfig.from_dict(meta["train"])
        kept = {key: meta[key] for key in ("preprocess", "init") if key in meta}
        trainer = cls(model, dataset, config, run_dir, data_spec=meta.get("data", ""),
                      normalizer=Normalizer.from_dict(meta["normalizer"]), meta=kept, **kwargs)
        trainer.optimizer.load_state_dict(meta["optim_state"])
        trainer.history = list(meta["history"])
        trainer.start_epoch = trainer.saved_epoch = len(trainer.history)
        return trainer

    def _frozen(self, name: str | None) -> list[tuple[str, Module]]:
        """(name, module) of the leaf layers up to and including ``name`` (in forward order)."""
        if name is None:
            return []
        self.model.get_module(name)                            # unknown names list the known ones
        leaves = [(n, m) for n, m in self.model.named_modules() if n and not m.children()]
        last = max(i for i, (n, _) in enumerate(leaves) if n == name or n.startswith(name + "."))
        return leaves[:last + 1]

    # -- the loop -----------------------------------------------------------------------
    def _epoch_rng(self, epoch: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, epoch, stream])

    def _rank_rng(self, *key: int) -> np.random.Generator:
        """A generator of (seed, *key), and of this rank too when there are several."""
        rank = (self.comm.rank,) if self.comm.size > 1 else ()
        return np.random.default_rng([self.config.seed, *key, *rank])

    def _reseed_dropout(self, epoch: int) -> None:
        for i, (_, module) in enumerate(self.model.named_modules()):
            if isinstance(getattr(module, "rng", None), np.random.Generator):
                module.rng = self._rank_rng(epoch, _DROPOUT, i)

    def _all_reduce(self, loss_sum: float, correct: int, n: int) -> tuple[float, int, int]:
        return average_gradients(self.model, self.comm, loss_sum, correct, n)

    def _synchronise(self) -> None:
        synchronise(self.model, self.comm)

    def train_epoch(self, epoch: int, bar: Progress | None = None) -> dict:
        """One pass over the training split; returns loss, accuracy and seconds."""
        cfg, ds, model = self.config, self.dataset, self.model
        model.train()
        for _, module in self.frozen_modules:                  # frozen layers keep their BN statistics
            module.eval()
        self._reseed_dropout(epoch)
        aug_rng = self._rank_rng(epoch, _AUGMENT)
        rank, size = self.comm.rank, self.comm.size
        n = len(ds.train_images)
        total_loss, correct, seen = 0.0, 0, 0
        if bar is None:
            bar = Progress(self.steps_per_epoch, enabled=False)
        start = time.perf_counter()
        for step, batch in enumerate(iterate_batches(n, cfg.batch_size, self._epoch_rng(epoch, _SHUFFLE))):
            idx = batch if size == 1 else shard(batch, rank, size)     # this rank's part of the global batch
            loss, right = 0.0, 0
            if len(idx):
                images = ds.train_images[idx]
                if self.crop is not None:
                    images = random_resized_crop(images, self.crop, aug_rng)
                if self.augment is not None:
                    images = self.augment(images, aug_rng)
                x, y = self.normalizer(images), ds.train_labels[idx]
                # A diverging loss and blown-up weights are reported below and before saving.
                with np.errstate(over="ignore", invalid="ignore"):
                    logits = model.forward(x)
                    loss = self.loss_fn.forward(logits, y)
                    for aux, aux_loss in self.aux_losses:
                        loss += aux.weight * aux_loss.forward(aux.logits, y)
                    for aux, aux_loss in self.aux_losses:
                        aux.logits_grad = aux.weight * aux_loss.backward()
                    model.backward(self.loss_fn.backward())
                right = int((logits.argmax(axis=1) == y).sum())
            batch_loss, right, count = self._all_reduce(loss * len(idx), right, len(idx))
            if not math.isfinite(batch_loss):
                bar.close()
                raise TrainingDiverged(self._diverged(f"the loss became {batch_loss / count} at epoch {epoch + 1}, "
                                                      f"batch {step + 1}"))
            with np.errstate(over="ignore", invalid="ignore"):
                self.optimizer.lr = self.schedule(epoch * self.steps_per_epoch + step)
                self.optimizer.step()
            total_loss += batch_loss
            correct += right
            seen += count
            bar.update(1, units=count, loss=total_loss / seen, acc=correct / seen)
        seconds = time.perf_counter() - start
        return {"epoch": epoch + 1, "train_loss": total_loss / seen, "train_accuracy": correct / seen,
                "seconds": seconds, "images_per_second": seen / seconds}

    def fit(self) -> dict:
        """Train for the remaining epochs; returns the metrics written to metrics.json.

        Raises :class:`TrainingDiverged` (NaN/inf loss or weights) and
        :class:`TrainingInterrupted` (Ctrl-C), each saying what the run directory holds.
        """
        if self.out_dir is None:
            return self._fit()
        with RunLock(self.out_dir):
            return self._fit()

    def _fit(self) -> dict:
        cfg, model = self.config, self.model
        model.set_input_grad(False)          # nobody needs dLoss/dImage while training
        result, epoch, durations = None, self.start_epoch, []
        self.comm.broadcast(list(model.named_parameters().values()))     # rank 0's initial weights
        try:
            for epoch in range(self.start_epoch, cfg.epochs):
                began = time.perf_counter()
                bar = Progress(self.steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", unit="img",
                               unit_scale=cfg.batch_size, enabled=self.progress)
                if durations:                # the run's ETA: the mean epoch so far, for those after this one
                    bar.after = float(np.mean(durations)) * (cfg.epochs - epoch - 1)
                entry = self.train_epoch(epoch, bar)
                self._synchronise()
                bar.phase(f"evaluating on {len(self.dataset.test_images):,} test images")
                result = self._test()
                entry["test_accuracy"] = result["test_accuracy"]
                bar.close(test_acc=entry["test_accuracy"])
                self.history.append(entry)
                durations.append(time.perf_counter() - began)
                self._check_finite(epoch)
                if self.out_dir is not None:
                    self._save(self.out_dir / "checkpoint.npz", with_optimizer=True)
                    self.saved_epoch = epoch + 1
                    self._remove_replaced()
            metrics = self.metrics(result if result is not None else self._test())
            if self.out_dir is not None:
                self._save(self.out_dir / "model.npz", with_optimizer=False)
                atomic_write_json(self.out_dir / "metrics.json", metrics)
        except KeyboardInterrupt:
            raise TrainingInterrupted(self._interrupted(epoch)) from None
        finally:
            model.set_input_grad(True)
        return metrics

    # -- what the directory holds -------------------------------------------------------------
    def _held(self) -> str:
        if self.out_dir is None:
            return "nothing was written (no run directory)"
        if self.saved_epoch is None:
            if self.replaces:
                return f"nothing was written; '{self.out_dir}' still holds the earlier run, unchanged"
            return "nothing was saved"
        return f"'{self.out_dir / 'checkpoint.npz'}' holds epoch {self.saved_epoch} of {self.config.epochs}"

    def _diverged(self, what: str) -> str:
        return (f"training stopped: {what}; {self._held()}; try a lower learning rate "
                f"(--lr, now {self.config.lr:g})")

    def _interrupted(self, epoch: int) -> str:
        text = f"interrupted during epoch {epoch + 1} of {self.config.epochs}; {self._held()}"
        if self.out_dir is not None and self.saved_epoch is not None and self.saved_epoch < self.config.epochs:
            text += f"; continue with: convscope train --resume {self.out_dir}"
        return text

    def _check_finite(self, epoch: int) -> None:
        """Refuse to save weights that hold NaN or inf (a step that blew up after the last loss)."""
        for name, value in self.model.state_dict().items():
            if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                raise TrainingDiverged(self._diverged(f"weight {name} became non-finite in epoch {epoch + 1}"))

    def _remove_replaced(self) -> None:
        """After this run's first checkpoint, an overwritten run's other files go (no mixing)."""
        for name in self.replaces:
            if name != "checkpoint.npz":
                (self.out_dir / name).unlink(missing_ok=True)
        self.replaces = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) the model takes (the data's, or the crop's when fine-tuning on larger images)."""
        c, h, w = self.dataset.input_shape
        return (c, h, w) if self.crop is None else (c, *self.crop)

    def _test(self) -> dict:
        ds = self.dataset
        with np.errstate(over="ignore", invalid="ignore"):       # weights that blew up are reported when saved
            images = ds.test_images if self.crop is None else center_crops(ds.test_images, self.crop)
            k = len(self.class_names)
            if self.comm.size == 1:
                return evaluate(self.model, images, ds.test_labels, self.normalizer, k, self.config.eval_batch_size)
            part = shard(np.arange(len(images)), self.comm.rank, self.comm.size)   # each rank tests a shard
            local = evaluate(self.model, images[part], ds.test_labels[part], self.normalizer, k,
                             self.config.eval_batch_size)["confusion_matrix"]
            cm = self.comm.allreduce_sum(local.astype(np.float64)).round().astype(np.int64)
            return {"test_accuracy": float(np.trace(cm) / cm.sum()), "confusion_matrix": cm,
                    "per_class_accuracy": per_class_accuracy(cm)}

    def metrics(self, result: dict) -> dict:
        ds = self.dataset
        return {
            "model": self.model.config["name"], "data": self.data_spec,
            "test_accuracy": result["test_accuracy"],
            "per_class_accuracy": [None if np.isnan(a) else float(a) for a in result["per_class_accuracy"]],
            "confusion_matrix": result["confusion_matrix"].tolist(),
            "class_names": self.class_names, "input_shape": list(self.input_shape),
            "num_parameters": self.model.num_parameters(), "train_images": len(ds.train_images),
            "test_images": len(ds.test_images), "config": self.config.to_dict(), "history": self.history,
        }

    def _save(self, path: Path, with_optimizer: bool) -> None:
        meta = {**self.meta, "data": self.data_spec, "normalizer": self.normalizer.to_dict(),
                "class_names": self.class_names, "input_shape": list(self.input_shape),
                "train": self.config.to_dict(), "history": self.history}
        save_checkpoint(path, self.model, meta,
                        self.optimizer.state_dict() if with_optimizer else None)

