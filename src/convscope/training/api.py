"""``convscope.train``: the whole of ``convscope train`` as one Python call returning a Classifier.

Every option of the command has a keyword of the same name (underscores for dashes), the
same defaults and the same checks; with ``out=`` the same run directory is written. The
command line is argument parsing over this function.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

from .config import TrainConfig
from .rundir import check_run_dir, holds_run

__all__ = ["train", "RUN_OPTIONS"]

# The options that define a run; with ``resume`` they come from its checkpoint instead.
RUN_OPTIONS = ("model", "data", "epochs", "batch_size", "lr", "optimizer", "schedule", "weight_decay",
               "label_smoothing", "translate", "hflip", "pca_color", "seed", "limit", "test_limit", "aux_logits")
_CONFIG_FIELDS = {f.name for f in fields(TrainConfig)}


def train(model: str | None = None, data: str | None = None, *, epochs: int | None = None,
          batch_size: int | None = None, lr: float | None = None, optimizer: str | None = None,
          schedule: str | None = None, weight_decay: float | None = None, label_smoothing: float | None = None,
          translate: int | None = None, hflip: bool | None = None, pca_color: float | None = None,
          seed: int | None = None, limit: int | None = None, test_limit: int | None = None,
          aux_logits: bool | None = None, out=None, overwrite: bool = False, resume=None,
          progress: bool = True, quiet: bool = False):
    """Train ``model`` (a registry name, default ``"lenet5"``) on ``data`` (``"mnist"``, the
    default, or a directory) and return the trained :class:`~convscope.Classifier`.

    Options left as None take the defaults of :class:`TrainConfig` (the README's recipe);
    ``lr=None`` resolves to the optimizer's own default (0.05 for SGD, 1e-3 for Adam/AdamW).
    ``out``: a run directory to write (``model.npz``, ``metrics.json``, ``checkpoint.npz``);
    one that already holds a run is refused unless ``overwrite=True``. ``resume``: a run
    directory to continue with its saved settings (then no run option may be given).
    ``progress=False`` (or ``quiet=True``) hides the progress bars.

    >>> clf = train("lenet5", epochs=1, limit=256, test_limit=256, progress=False)
    >>> clf.predict(np.zeros((1, 28, 28), dtype=np.uint8)).shape
    (1, 10)
    """
    from ..data import load_dataset
    from .trainer import Trainer

    given = {name: value for name, value in locals().items() if name in RUN_OPTIONS and value is not None}
    progress = bool(progress) and not quiet
    say = (lambda msg: print(msg, file=sys.stderr)) if progress else (lambda msg: None)
    if resume is not None:
        if given:
            flags = ", ".join(f"--{name.replace('_', '-')}" for name in given)
            raise ValueError(f"resume continues a run with its saved settings; drop {flags}")
        if out is not None and Path(out) != Path(resume):
            raise ValueError(f"resume writes into the run it continues ({resume}); drop out={str(out)!r}")
        trainer = _resumed(resume, load_dataset, progress)
        say(f"convscope: resuming {trainer.model.config['name']} on {trainer.data_spec} after epoch "
            f"{trainer.start_epoch} of {trainer.config.epochs}")
    else:
        config = TrainConfig(**{k: v for k, v in given.items() if k in _CONFIG_FIELDS}).resolved()
        trainer = _new_trainer(given.get("model", "lenet5"), given.get("data", "mnist"), config,
                               bool(given.get("aux_logits", False)), out, overwrite, progress, say)
    trainer.fit()
    return _classifier(trainer)


def _new_trainer(model_name: str, data, config: TrainConfig, aux_logits: bool, out, overwrite: bool,
                 progress: bool, say):
    from ..data import load_dataset
    from ..models import build_model, resolve_model_name
    from .trainer import Trainer

    model_name = resolve_model_name(model_name)
    options = {}
    if aux_logits:
        if model_name != "googlenet":
            raise ValueError(f"--aux-logits (aux_logits) is for --model googlenet, not {model_name!r}")
        options["aux_logits"] = True
    replaces = ()
    if out is not None:
        out = check_run_dir(out, overwrite=overwrite)
        replaces = tuple(holds_run(out))
    dataset = load_dataset(data)
    c, h, w = dataset.input_shape
    model = build_model(model_name, num_classes=dataset.num_classes, in_channels=c, input_size=(h, w),
                        rng=np.random.default_rng(config.seed), **options)
    trainer = Trainer(model, dataset, config, out, data_spec=str(data), progress=progress, replaces=replaces)
    ds = trainer.dataset
    say(f"convscope: training {model_name} ({model.num_parameters():,} parameters) on {data}: "
        f"{len(ds.train_images):,} training and {len(ds.test_images):,} test images "
        f"of shape {c}x{h}x{w}, {ds.num_classes} classes"
        + (f"; writing {out}" if out is not None else ""))
    return trainer


def _resumed(run_dir, load_dataset, progress: bool):
    from .checkpoint import CheckpointError, read_checkpoint
    from .trainer import Trainer

    run_dir = Path(run_dir)
    path = run_dir / "checkpoint.npz"
    if not run_dir.is_dir():
        raise ValueError(f"--resume: run directory '{run_dir}' does not exist")
    if not path.exists():
        raise CheckpointError(f"--resume: '{run_dir}' has no checkpoint.npz to continue from "
                              "(it is written after each finished epoch)")
    meta, _ = read_checkpoint(path)
    dataset = load_dataset(meta.get("data") or "mnist")
    trainer = Trainer.resume(run_dir, dataset, progress=progress)
    if trainer.start_epoch >= trainer.config.epochs and (run_dir / "model.npz").exists():
        raise ValueError(f"--resume: the run in '{run_dir}' is finished ({trainer.config.epochs} of "
                         f"{trainer.config.epochs} epochs); its model is {run_dir / 'model.npz'}")
    return trainer


def _classifier(trainer):
    from ..classifier import Classifier
    ds = trainer.dataset
    meta = {"data": trainer.data_spec, "train": trainer.config.to_dict(), "history": trainer.history,
            "model": trainer.model.config}
    return Classifier(trainer.model, trainer.normalizer, ds.class_names, ds.input_shape, meta)
