"""``convscope train``: train a model from the registry on a dataset, write a run directory.

``--resume RUN_DIR`` continues a stopped run from its last per-epoch checkpoint with the
settings saved in it; the result is the same as that of an uninterrupted run.
"""

from __future__ import annotations

from pathlib import Path

from ..training import DEFAULT_LR, TrainConfig

__all__ = ["add_parser", "run"]

_DEFAULTS = TrainConfig()


def add_parser(sub) -> None:
    from .argtypes import non_negative_float, non_negative_int, positive_float, positive_int
    from ..models import available_models
    from ..optim import OPTIMIZERS, SCHEDULES

    p = sub.add_parser("train", help="train a model and write RUN_DIR/model.npz and metrics.json",
                       description="Train a model. With no arguments: LeNet-5 on the MNIST copy "
                                   "shipped with convscope, to >= 99.0% test accuracy.")
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
                   help="peak learning rate (default: " + ", ".join(f"{v:g} for {k}" for k, v in DEFAULT_LR.items()) + ")")
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
    p.add_argument("--seed", type=non_negative_int, help="seed for initialisation, shuffling and augmentation "
                                                         "(default 0)")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="train on the first N training images only (quick trials)")
    p.add_argument("--test-limit", type=positive_int, metavar="N",
                   help="evaluate on the first N test images only (quick trials; the full test split "
                        "can take longer than a short epoch)")
    tune = p.add_argument_group("fine-tuning a trained or imported network")
    tune.add_argument("--init", metavar="CK", help="start from this checkpoint's weights and preprocessing "
                                                  "(a run directory, model.npz, or an imported network)")
    tune.add_argument("--num-classes", type=positive_int, metavar="K",
                      help="classes of the new head (default: the data's); the head is replaced when "
                           "this differs from the checkpoint's")
    tune.add_argument("--freeze", metavar="UP_TO_LAYER",
                      help="keep the weights of every layer up to and including this one "
                           "(a name 'convscope summary' prints)")
    p.add_argument("--out", metavar="RUN_DIR",
                   help="where to write model.npz, metrics.json and checkpoint.npz (default: a fresh "
                        "runs/MODEL-DATA, runs/MODEL-DATA-2, ...)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run that --out already holds (refused otherwise)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last checkpoint, with its saved settings")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="data-parallel training on N MPI ranks on this machine (starts mpiexec; needs "
                        "convscope[mpi]); for several machines run 'mpiexec -n N -f HOSTFILE convscope train ...'")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _launch(args) -> int:
    """Run this same command on ``--workers`` MPI ranks (mpiexec from the mpich wheel or the PATH),
    each with an equal share of the machine's cores for its BLAS."""
    import os
    import shutil
    import subprocess
    import sys
    mpiexec = shutil.which("mpiexec", path=os.pathsep.join([os.path.dirname(sys.executable),
                                                            os.environ.get("PATH", "")]))
    if mpiexec is None:
        raise ValueError('--workers needs MPI: pip install "convscope[mpi]" (mpi4py and the mpich wheel)')
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise ValueError('--workers needs mpi4py: pip install "convscope[mpi]"') from None
    argv, skip = [], False
    for item in args.argv:                                   # the same command without --workers
        if skip:
            skip = False
        elif item == "--workers":
            skip = True
        elif not item.startswith("--workers="):
            argv.append(item)
    env = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // args.workers))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, threads)
    return subprocess.run([mpiexec, "-n", str(args.workers), sys.executable, "-m", "convscope", *argv],
                          env=env).returncode


def run(args) -> int:
    from ..training import fresh_run_dir
    from ..training.api import RUN_OPTIONS, train
    from ..training.distributed import under_mpi, world

    if args.workers and args.workers > 1 and not under_mpi():
        return _launch(args)

    options = {name: getattr(args, name) for name in RUN_OPTIONS}
    out = args.out
    if out is None and args.resume is None:
        init = Path(args.init) if args.init else None
        model = ((init.parent.name if init.stem == "model" else init.stem) + "-tuned") if init \
            else (args.model or "lenet5").lower()
        data = args.data or "mnist"
        out = fresh_run_dir(Path("runs") / f"{model}-{Path(data).name or 'data'}")
    clf = train(**options, out=out, overwrite=args.overwrite, resume=args.resume, progress=not args.quiet)
    if world().rank != 0:
        return 0
    run_dir = Path(args.resume) if args.resume is not None else Path(out)
    history = clf.meta.get("history") or [{}]
    print(f"test accuracy {history[-1].get('test_accuracy', float('nan')):.4f}; wrote {run_dir / 'model.npz'}, "
          f"{run_dir / 'metrics.json'} and {run_dir / 'checkpoint.npz'}")
    return 0
