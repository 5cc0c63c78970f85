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
               "label_smoothing", "translate", "hflip", "pca_color", "seed", "limit", "test_limit", "aux_logits",
               "init", "num_classes", "freeze")
_CONFIG_FIELDS = {f.name for f in fields(TrainConfig)}


def train(model: str | None = None, data: str | None = None, *, epochs: int | None = None,
          batch_size: int | None = None, lr: float | None = None, optimizer: str | None = None,
          schedule: str | None = None, weight_decay: float | None = None, label_smoothing: float | None = None,
          translate: int | None = None, hflip: bool | None = None, pca_color: float | None = None,
          seed: int | None = None, limit: int | None = None, test_limit: int | None = None,
          aux_logits: bool | None = None, init=None, num_classes: int | None = None, freeze: str | None = None,
          out=None, overwrite: bool = False, resume=None, progress: bool = True, quiet: bool = False):
    """Train ``model`` (a registry name, default ``"lenet5"``) on ``data`` (``"mnist"``, the
    default, or a directory) and return the trained :class:`~convscope.Classifier`.

    Options left as None take the defaults of :class:`TrainConfig` (the README's recipe);
    ``lr=None`` resolves to the optimizer's own default (0.05 for SGD, 1e-3 for Adam/AdamW).
    ``out``: a run directory to write (``model.npz``, ``metrics.json``, ``checkpoint.npz``);
    one that already holds a run is refused unless ``overwrite=True``. ``resume``: a run
    directory to continue with its saved settings (then no run option may be given).
    ``progress=False`` (or ``quiet=True``) hides the progress bars.

    Fine-tuning: ``init`` is a checkpoint (a run directory, an imported network) whose weights
    the run starts from, with its preprocessing (normaliser; an image folder's photos are resized
    and cropped as its preset says, with random resized crops for training); when the data's class
    count (or ``num_classes``) differs from the checkpoint's, its classifier head is replaced by a
    new one. ``freeze`` names the last layer (as ``convscope summary`` prints it) that keeps its
    weights.

    >>> clf = train("lenet5", epochs=1, limit=256, test_limit=256, progress=False)
    >>> clf.predict(np.zeros((1, 28, 28), dtype=np.uint8)).shape
    (1, 10)
    """
    from ..data import load_dataset
    from .trainer import Trainer

    given = {name: value for name, value in locals().items() if name in RUN_OPTIONS and value is not None}
    from .distributed import world
    progress = bool(progress) and not quiet and world().rank == 0     # one voice for N ranks
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
    elif init is not None:
        if "model" in given or "aux_logits" in given:
            raise ValueError("--init starts from a checkpoint's model; drop --model/--aux-logits")
        config = TrainConfig(**{k: v for k, v in given.items() if k in _CONFIG_FIELDS}).resolved()
        trainer = _fine_tuner(init, given.get("data", "mnist"), config, num_classes, out, overwrite, progress, say)
    else:
        if num_classes is not None:
            raise ValueError("--num-classes is for fine-tuning (--init); a new model has the data's classes")
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
    out, replaces = _output_dir(out, overwrite)
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


def _output_dir(out, overwrite: bool):
    """(the checked run directory or None, the run files it holds that this run replaces)."""
    if out is None:
        return None, ()
    out = check_run_dir(out, overwrite=overwrite)
    return out, tuple(holds_run(out))


def _fine_tuner(init, data, config: TrainConfig, num_classes, out, overwrite: bool, progress: bool, say):
    from ..classifier import Classifier
    from ..data import load_dataset
    from ..validation import check_int
    from .trainer import Trainer

    start = Classifier.from_checkpoint(init)
    out, replaces = _output_dir(out, overwrite)
    square = start.transform.get("resize") if start.transform else None
    dataset = load_dataset(data, square=square)
    k = dataset.num_classes if num_classes is None else check_int(num_classes, "num_classes", minimum=2)
    if dataset.num_classes > k:
        raise ValueError(f"--num-classes {k} is fewer than the {dataset.num_classes} classes in {data!r}")
    if dataset.input_shape[0] != start.input_shape[0]:
        raise ValueError(f"the data in {data!r} have {dataset.input_shape[0]} channel(s) but the checkpoint's "
                         f"model takes {start.input_shape[0]}")
    model, replaced = replace_head(start.model, k, np.random.default_rng(config.seed))
    meta = {"init": str(init)}
    if start.transform:
        meta["preprocess"] = start.meta["preprocess"]
    trainer = Trainer(model, dataset, config, out, data_spec=str(data), progress=progress, replaces=replaces,
                      normalizer=start.normalizer, meta=meta)
    ds = trainer.dataset
    head = f"; new head {', '.join(replaced)} for {k} classes" if replaced else ""
    say(f"convscope: fine-tuning {start.name} from {init} on {data}: {len(ds.train_images):,} training and "
        f"{len(ds.test_images):,} test images, {ds.num_classes} classes{head}"
        + (f"; layers up to {config.freeze} frozen" if config.freeze else "")
        + (f"; writing {out}" if out is not None else ""))
    return trainer


def replace_head(model, num_classes: int, rng: np.random.Generator):
    """``model`` itself when it already predicts ``num_classes`` classes; else the same architecture
    built for ``num_classes`` with every weight copied except those whose shape changed (the
    classifier head, freshly initialised). Returns (model, names of the new parameters)."""
    from ..models import build_model
    config = model.config
    if config["num_classes"] == num_classes:
        return model, []
    if config["name"] == "graph":
        from ..models.graph import graph_with_classes
        options = {**config.get("options", {}), "graph": graph_with_classes(config["options"]["graph"], num_classes)}
    else:
        options = config.get("options", {})
    new = build_model(config["name"], num_classes=num_classes, in_channels=config["in_channels"],
                      input_size=tuple(config["input_size"]), rng=rng, **options)
    old_state, state = model.state_dict(), new.state_dict()
    replaced = sorted(name for name, value in state.items()
                      if name not in old_state or old_state[name].shape != value.shape)
    new.load_state_dict({name: (state[name] if name in replaced else old_state[name]) for name in state})
    return new, [name for name in replaced if name in new.named_parameters()]


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
    square = (meta.get("preprocess") or {}).get("resize")
    dataset = load_dataset(meta.get("data") or "mnist", square=square)
    trainer = Trainer.resume(run_dir, dataset, progress=progress)
    if trainer.start_epoch >= trainer.config.epochs and (run_dir / "model.npz").exists():
        raise ValueError(f"--resume: the run in '{run_dir}' is finished ({trainer.config.epochs} of "
                         f"{trainer.config.epochs} epochs); its model is {run_dir / 'model.npz'}")
    return trainer


def _classifier(trainer):
    from ..classifier import Classifier
    meta = {**trainer.meta, "data": trainer.data_spec, "train": trainer.config.to_dict(),
            "history": trainer.history, "model": trainer.model.config}
    return Classifier(trainer.model, trainer.normalizer, trainer.class_names, trainer.input_shape, meta)
