"""``convscope train``: train a model from the registry on a dataset, write a run directory.

``--resume RUN_DIR`` continues a stopped run from its last per-epoch checkpoint with the
settings saved in it; the result is the same as that of an uninterrupted run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..training import TrainConfig

__all__ = ["add_parser", "run"]

_DEFAULTS = TrainConfig()
# Flags that define a run; with --resume they come from the checkpoint instead.
_RUN_FLAGS = ("model", "data", "epochs", "batch_size", "lr", "optimizer", "schedule", "weight_decay",
              "label_smoothing", "translate", "hflip", "pca_color", "seed", "limit", "out", "aux_logits")


def add_parser(sub) -> None:
    from .argtypes import non_negative_float, non_negative_int, positive_float, positive_int
    from ..models import available_models
    from ..optim import OPTIMIZERS, SCHEDULES

    p = sub.add_parser("train", help="train a model and write RUN_DIR/model.npz and metrics.json",
                       description="Train a model. With no arguments: LeNet-5 on the MNIST copy "
                                   "shipped with convscope, to >= 99.0%% test accuracy.")
    p.add_argument("--model", metavar="NAME",
                   help=f"architecture (default lenet5); one of: {', '.join(available_models())}")
    p.add_argument("--aux-logits", action="store_true", default=None,
                   help="googlenet only: also train its two auxiliary classifiers (each side loss "
                        "weighted 0.3, as in the paper)")
    p.add_argument("--data", metavar="mnist|PATH",
                   help="'mnist' (built in, the default) or a directory: IDX files, CIFAR-10 batches "
                        "or an image folder")
    p.add_argument("--epochs", type=positive_int, help=f"passes over the training set (default {_DEFAULTS.epochs})")
    p.add_argument("--batch-size", type=positive_int,
                   help=f"images per step (default {_DEFAULTS.batch_size})")
    p.add_argument("--lr", type=positive_float,
                   help=f"peak learning rate (default {_DEFAULTS.lr} for sgd, 0.001 for adam/adamw)")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="default sgd (Nesterov momentum 0.9)")
    p.add_argument("--schedule", choices=SCHEDULES,
                   help="learning-rate schedule after a half-epoch warm-up (default cosine)")
    p.add_argument("--weight-decay", type=non_negative_float,
                   help=f"L2 weight decay (default {_DEFAULTS.weight_decay})")
    p.add_argument("--label-smoothing", type=non_negative_float, help="label smoothing in [0, 1) (default 0)")
    aug = p.add_argument_group("data augmentation (notes §2.2, AlexNet)")
    aug.add_argument("--translate", type=non_negative_int, metavar="PX",
                     help="random shifts of up to PX pixels (pad and crop; default 0 = off)")
    aug.add_argument("--hflip", action="store_true", default=None,
                     help="random horizontal reflections (off by default: they change digits)")
    aug.add_argument("--pca-color", type=non_negative_float, metavar="STD",
                     help="AlexNet's PCA colour augmentation for RGB data, STD of the coefficients (paper: 0.1)")
    p.add_argument("--seed", type=int, help="seed for initialisation, shuffling and augmentation (default 0)")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="train on the first N training images only (quick trials)")
    p.add_argument("--out", metavar="RUN_DIR",
                   help="where to write model.npz, metrics.json and checkpoint.npz (default runs/MODEL-DATA)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last checkpoint, with its saved settings")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _default_out(model: str, data: str) -> Path:
    return Path("runs") / f"{model}-{Path(data).name or 'data'}"


def _config(args) -> TrainConfig:
    optimizer = args.optimizer or _DEFAULTS.optimizer
    values = {"optimizer": optimizer, "lr": args.lr or (_DEFAULTS.lr if optimizer == "sgd" else 1e-3)}
    for name in ("epochs", "batch_size", "schedule", "weight_decay", "label_smoothing", "translate",
                 "hflip", "pca_color", "seed", "limit"):
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    config = TrainConfig(**values)
    config.validate()
    return config


def run(args) -> int:
    from ..data import load_dataset
    from ..models import build_model
    from ..training import Trainer

    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    if args.resume is not None:
        given = [f"--{name.replace('_', '-')}" for name in _RUN_FLAGS if getattr(args, name) is not None]
        if given:
            raise ValueError(f"--resume continues a run with its saved settings; drop {', '.join(given)}")
        trainer = _resumed(args.resume, load_dataset)
        out, data = Path(args.resume), trainer.data_spec
        done = len(trainer.history)
        say(f"convscope: resuming {trainer.model.config['name']} on {data} after epoch {done} "
            f"of {trainer.config.epochs}")
    else:
        config = _config(args)
        model_name, data = args.model or "lenet5", args.data or "mnist"
        options = {}
        if args.aux_logits:
            if model_name != "googlenet":
                raise ValueError(f"--aux-logits is for --model googlenet, not {model_name!r}")
            options["aux_logits"] = True
        dataset = load_dataset(data)
        if config.limit is not None:
            dataset = dataset.limit(config.limit)
        c, h, w = dataset.input_shape
        model = build_model(model_name, num_classes=dataset.num_classes, in_channels=c, input_size=(h, w),
                            rng=np.random.default_rng(config.seed), **options)
        out = Path(args.out) if args.out else _default_out(model_name, data)
        say(f"convscope: training {model_name} ({model.num_parameters():,} parameters) on {data}: "
            f"{len(dataset.train_images):,} training and {len(dataset.test_images):,} test images "
            f"of shape {c}x{h}x{w}, {dataset.num_classes} classes")
        trainer = Trainer(model, dataset, config, out, data_spec=data)
    trainer.progress = not args.quiet
    metrics = trainer.fit()
    print(f"test accuracy {metrics['test_accuracy']:.4f}; wrote {out / 'model.npz'} and {out / 'metrics.json'}")
    return 0


def _resumed(run_dir: str, load_dataset):
    from ..training import CheckpointError, Trainer, read_checkpoint

    path = Path(run_dir) / "checkpoint.npz"
    if not Path(run_dir).is_dir():
        raise ValueError(f"--resume: run directory '{run_dir}' does not exist")
    if not path.exists():
        raise CheckpointError(f"--resume: '{run_dir}' has no checkpoint.npz to continue from "
                              "(it is written after each finished epoch)")
    meta, _ = read_checkpoint(path)
    limit = meta.get("train", {}).get("limit")
    dataset = load_dataset(meta.get("data") or "mnist")
    if limit is not None:
        dataset = dataset.limit(limit)
    return Trainer.resume(run_dir, dataset)
