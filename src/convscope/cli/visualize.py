"""``convscope visualize TECHNIQUE``: look inside a trained model (notes §3).

Writes PNG figures and ``TECHNIQUE.json`` (the numbers behind them) into ``--out``; the
``report`` technique gathers every technique, the training curves and the confusion matrix
into one self-contained HTML page.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["add_parser", "run", "parse_indices"]

_TECHNIQUES = ("filters", "activations", "neighbors", "deconv", "actmax", "saliency", "inversion", "dissect",
               "report")


def add_parser(sub) -> None:
    from .argtypes import positive_int

    p = sub.add_parser("visualize", help="see inside a trained model: filters, saliency, deconvnet, ... or a report",
                       description="Run one of the notes' §3 techniques on a checkpoint and write PNG figures "
                                   "plus TECHNIQUE.json, or 'report' for one HTML page with all of them.")
    p.add_argument("technique", choices=_TECHNIQUES, metavar="TECHNIQUE", help=", ".join(_TECHNIQUES))
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR/model.npz")
    p.add_argument("--data", default=None, metavar="mnist|PATH",
                   help="dataset whose test images are explained (default: the checkpoint's)")
    p.add_argument("--layer", default=None, metavar="NAME",
                   help="layer name as 'convscope summary' prints it (each technique has a sensible default)")
    p.add_argument("--unit", type=int, default=None, metavar="K", help="channel / unit of the layer")
    p.add_argument("--class", dest="target", default=None, metavar="C",
                   help="class to explain, as an index or a class name (default: the predicted class)")
    p.add_argument("--images", default="0,1,2,3", metavar="I,J,...", help="test images to use (default 0,1,2,3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random parts (actmax, SmoothGrad, inversion)")
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
        raise ValueError(f"--images: index {bad[0]} is out of range; the test split has {count} images "
                         f"(0..{count - 1})")
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
        raise ValueError(f"--class {value} is out of range: the model has {len(class_names)} classes")
    return value


def run(args) -> int:
    from ..visualize import render
    from ..visualize.techniques import Context, jsonable, run_technique
    from .common import load_run

    render.pyplot()                                   # fail early and clearly without matplotlib
    loaded = load_run(args.checkpoint, args.data)
    if args.layer is not None:
        loaded.model.get_module(args.layer)           # unknown names list the known ones
    if args.unit is not None and args.unit < 0:
        raise ValueError(f"--unit must be a non-negative index, got {args.unit}")
    ctx = Context(loaded.model, loaded.normalizer, loaded.data, loaded.class_names,
                  parse_indices(args.images, len(loaded.data.test_images)), args.layer, args.unit,
                  _target(args.target, loaded.class_names), args.seed, args.sample, args.steps, not args.quiet)
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / "visualize"
    out.mkdir(parents=True, exist_ok=True)
    if args.technique == "report":
        from ..visualize.report import write_report
        path = write_report(ctx, out, metrics=_metrics_beside(args.checkpoint), title=str(args.checkpoint))
        print(f"wrote {path}")
        return 0
    result = run_technique(args.technique, ctx)
    files = [str(render.save_png(fig, out / f"{stem}.png")) for stem, fig in result.figures.items()]
    numbers = {"technique": args.technique, "checkpoint": str(args.checkpoint), "data": loaded.data_spec,
               "caption": result.caption, **result.numbers, "figures": files}
    from ..training.checkpoint import atomic_write_text
    atomic_write_text(out / f"{args.technique}.json", json.dumps(jsonable(numbers), indent=2) + "\n")
    print(f"wrote {len(files)} figure(s) and {out / (args.technique + '.json')}", file=sys.stdout)
    return 0


def _metrics_beside(checkpoint: str) -> dict | None:
    path = Path(checkpoint).parent / "metrics.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
