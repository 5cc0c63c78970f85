"""``convscope visualize TECHNIQUE``: look inside a trained model (notes §3).

Writes PNG figures and ``TECHNIQUE.json`` (the numbers behind them) into ``--out`` and prints
the path of each file written; the ``report`` technique gathers every technique, the
training curves and the confusion matrix into one self-contained HTML page.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["add_parser", "run", "parse_indices"]

_TECHNIQUES = ("filters", "activations", "neighbors", "deconv", "actmax", "saliency", "inversion", "dissect",
               "report")
_DEFAULT_IMAGES = 4


def add_parser(sub) -> None:
    from .argtypes import non_negative_int, positive_int

    p = sub.add_parser("visualize", help="see inside a trained model: filters, saliency, deconvnet, ... or a report",
                       description="Run one of the notes' §3 techniques on a checkpoint and write PNG figures "
                                   "plus TECHNIQUE.json, or 'report' for one HTML page with all of them.")
    p.add_argument("technique", choices=_TECHNIQUES, metavar="TECHNIQUE", help=", ".join(_TECHNIQUES))
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR/model.npz")
    p.add_argument("--data", default=None, metavar="mnist|PATH",
                   help="dataset whose test images are explained (default: the checkpoint's)")
    p.add_argument("--layer", default=None, metavar="NAME",
                   help="layer name as 'convscope summary' prints it (each technique has a sensible default)")
    p.add_argument("--unit", type=non_negative_int, default=None, metavar="K",
                   help="channel / unit of the layer (filters, activations, deconv, actmax, dissect)")
    p.add_argument("--class", dest="target", default=None, metavar="C",
                   help="class to explain (saliency) or to synthesise (actmax), as an index or a class name "
                        "(default: the predicted class)")
    p.add_argument("--images", default=None, metavar="I,J,...",
                   help=f"test images to use (default: the first test image of each of the first "
                        f"{_DEFAULT_IMAGES} classes met in the test split, so the images are of different "
                        f"classes even when the split is ordered by class)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the random parts (actmax, SmoothGrad, inversion)")
    p.add_argument("--sample", type=positive_int, default=1000, metavar="N",
                   help="test images used for statistics: sparsity, dissection (default 1000)")
    p.add_argument("--steps", type=positive_int, default=None, metavar="N",
                   help="optimisation steps of actmax and inversion (default 256 and 200)")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default: RUN_DIR/visualize)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def parse_indices(text: str, count: int) -> list[int]:
    """'3,5,8' -> [3, 5, 8], each a valid index into ``count`` test images."""
    try:
        indices = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--images expects comma-separated image indices like 0,5,9, got {text!r}") from None
    if not indices:
        raise ValueError(f"--images expects at least one index, got {text!r}")
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise ValueError(f"--images {bad[0]} is out of range: the test split has {count} images (0..{count - 1})")
    return indices


def _target(text: str | None, class_names: list[str]) -> int | None:
    if text is None:
        return None
    if text in class_names:
        return class_names.index(text)
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"--class: unknown class {text!r}; use an index 0..{len(class_names) - 1} or one of "
                         f"{', '.join(class_names)}") from None
    if not 0 <= value < len(class_names):
        raise ValueError(f"--class {value} is out of range: the model has {len(class_names)} classes "
                         f"(0..{len(class_names) - 1})")
    return value


def _check_flags(args) -> None:
    """Refuse --unit and --class where the technique has no use for them (never silently ignored)."""
    from ..visualize.techniques import CLASS_TECHNIQUES, UNIT_TECHNIQUES
    if args.technique == "report":
        return
    if args.unit is not None and args.technique not in UNIT_TECHNIQUES:
        raise ValueError(f"--unit {args.unit}: {args.technique} takes no unit (--unit is for "
                         f"{', '.join(UNIT_TECHNIQUES)})" + ("; to choose the class explained use --class"
                                                            if args.technique in CLASS_TECHNIQUES else ""))
    if args.target is not None and args.technique not in CLASS_TECHNIQUES:
        raise ValueError(f"--class {args.target}: {args.technique} takes no class (--class is for "
                         f"{', '.join(CLASS_TECHNIQUES)})")


def _out_dir(args) -> Path:
    run_dir = Path(args.checkpoint) if Path(args.checkpoint).is_dir() else Path(args.checkpoint).parent
    out = Path(args.out) if args.out else run_dir / "visualize"
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out '{out}' is a file, not a directory; name a directory for the figures")
    out.mkdir(parents=True, exist_ok=True)
    return out


def run(args) -> int:
    from ..io import atomic_write_json, jsonable
    from ..visualize import render
    from ..visualize.context import Context, default_images
    from ..visualize.core import find_layer
    from ..visualize.techniques import run_technique
    from .common import load_with_data

    render.pyplot()                                   # fail early and clearly without matplotlib
    _check_flags(args)
    clf, dataset, spec = load_with_data(args.checkpoint, args.data)
    if args.layer is not None:
        try:
            find_layer(clf.model, args.layer)
        except ValueError as err:
            raise ValueError(f"--layer {args.layer!r}: {err}") from None
    images = (default_images(dataset.test_labels, _DEFAULT_IMAGES) if args.images is None
              else parse_indices(args.images, len(dataset.test_images)))
    ctx = Context(clf, dataset, images, args.layer, args.unit, _target(args.target, clf.class_names),
                  args.seed, args.sample, args.steps, not args.quiet)
    out = _out_dir(args)
    if args.technique == "report":
        from ..visualize.report import write_report
        path = write_report(ctx, out, metrics=_metrics_beside(args.checkpoint), title=str(args.checkpoint))
        print(f"wrote {path}")
        return 0
    result = run_technique(args.technique, ctx)
    files = [str(render.save_png(fig, out / f"{stem}.png")) for stem, fig in result.figures.items()]
    numbers = {"technique": args.technique, "checkpoint": str(args.checkpoint), "data": spec,
               "images": images, "caption": result.caption, **result.numbers, "figures": files}
    summary = atomic_write_json(out / f"{args.technique}.json", jsonable(numbers))
    for path in files + [str(summary)]:
        print(f"wrote {path}")
    return 0


def _metrics_beside(checkpoint: str) -> dict | None:
    path = Path(checkpoint)
    path = (path if path.is_dir() else path.parent) / "metrics.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
