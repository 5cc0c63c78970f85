"""``convscope visualize TECHNIQUE``: look inside a trained model (notes §3).

Writes PNG figures and ``TECHNIQUE.json`` (the numbers behind them) into ``--out`` and prints
the path of each file written; the ``report`` technique gathers every technique, the
training curves and the confusion matrix into one self-contained HTML page.

``--images`` takes test-split indices or image files (photos of any size, resized as the
checkpoint's preset says). The dataset (``--data``, else the one the checkpoint was trained
on) is loaded only when a technique needs it: ``neighbors`` and ``dissect`` always, the
others only to read test images by index. An imported ImageNet network has no dataset of its
own: give it photos, and ``--data DIR`` (a folder of class sub-folders) for the dataset
techniques; its images are resized and cropped as the preset says.

``--methods`` chooses the attribution methods of ``saliency`` and ``faithfulness`` (which scores
their maps by ``--metrics``: deletion, insertion, ROAD); both lists are checked before the
checkpoint is read.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["add_parser", "run", "parse_indices", "parse_images", "parse_names"]

_TECHNIQUES = ("filters", "activations", "neighbors", "deconv", "actmax", "saliency", "faithfulness", "inversion",
               "dissect", "report")
_DEFAULT_IMAGES = 4
_DEFAULT_SAMPLE, _DEFAULT_SAMPLE_LARGE = 1000, 64     # a forward pass of an ImageNet network per image


def add_parser(sub) -> None:
    from .argtypes import non_negative_int, positive_int

    p = sub.add_parser("visualize", help="see inside a trained model: filters, saliency, deconvnet, ... or a report",
                       description="Run one of the notes' §3 techniques on a checkpoint and write PNG figures "
                                   "plus TECHNIQUE.json, or 'report' for one HTML page with all of them.")
    p.add_argument("technique", choices=_TECHNIQUES, metavar="TECHNIQUE", help=", ".join(_TECHNIQUES))
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR/model.npz")
    p.add_argument("--data", default=None, metavar="mnist|PATH",
                   help="dataset for test-image indices and for neighbors / dissect (default: the checkpoint's); "
                        "an image folder's photos are resized to the checkpoint's preset")
    p.add_argument("--layer", default=None, metavar="NAME",
                   help="layer name as 'convscope summary' prints it (each technique has a sensible default)")
    p.add_argument("--unit", type=non_negative_int, default=None, metavar="K",
                   help="channel / unit of the layer (filters, activations, deconv, actmax, dissect)")
    p.add_argument("--class", dest="target", default=None, metavar="C",
                   help="class to explain (saliency) or to synthesise (actmax), as an index or a class name "
                        "(default: the predicted class)")
    p.add_argument("--images", default=None, metavar="I,J,...|PHOTO,...",
                   help=f"test-image indices, or image files (PNG/JPEG of any size) to explain (default: the "
                        f"first test image of each of the first {_DEFAULT_IMAGES} classes met in the test split, "
                        f"so the images are of different classes even when the split is ordered by class)")
    p.add_argument("--methods", default=None, metavar="M1,M2,...",
                   help="attribution methods of saliency and faithfulness: names of convscope.visualize.METHODS "
                        "or 'random' (a noise map, the baseline) (default: gradient, guided_backprop, smoothgrad, "
                        "integrated_gradients, grad_cam, occlusion for saliency; gradient, input_x_gradient, "
                        "integrated_gradients, grad_cam, occlusion, random for faithfulness)")
    p.add_argument("--metrics", default=None, metavar="M1,M2,...",
                   help="faithfulness metrics: deletion, insertion, road_morf, road_lerf, road "
                        "(default: deletion, insertion, road)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the random parts (actmax, SmoothGrad, RISE, inversion, the random map, ROAD)")
    p.add_argument("--sample", type=positive_int, default=None, metavar="N",
                   help=f"test images used for statistics: sparsity, dissection (default {_DEFAULT_SAMPLE}; "
                        f"{_DEFAULT_SAMPLE_LARGE} for models with inputs over 64 px)")
    p.add_argument("--steps", type=positive_int, default=None, metavar="N",
                   help="optimisation steps of actmax and inversion (default 256 and 200; 64 for inputs over "
                        "64 px, e.g. 224)")
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


def parse_images(text: str) -> list[str] | None:
    """The image files named in ``text`` ('a.jpg,b.png'), or None when it lists indices."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or all(part.lstrip("-").isdigit() for part in parts):
        return None
    for part in parts:
        if part.lstrip("-").isdigit():
            raise ValueError(f"--images takes test-image indices or image files, not both; got {text!r}")
        if not Path(part).is_file():
            raise ValueError(f"--images: {part!r} is neither a test-image index nor an image file")
    return parts


def parse_names(text: str | None, flag: str) -> list[str] | None:
    """'gradient, occlusion' -> ['gradient', 'occlusion']; None stays None."""
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError(f"{flag} expects comma-separated names like gradient,occlusion, got {text!r}")
    return names


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
    """Refuse --unit, --class, --methods and --metrics where the technique has no use for them
    (never silently ignored)."""
    from ..visualize.techniques import CLASS_TECHNIQUES, METHOD_TECHNIQUES, METRIC_TECHNIQUES, UNIT_TECHNIQUES
    if args.technique == "report":
        return
    if args.unit is not None and args.technique not in UNIT_TECHNIQUES:
        raise ValueError(f"--unit {args.unit}: {args.technique} takes no unit (--unit is for "
                         f"{', '.join(UNIT_TECHNIQUES)})" + ("; to choose the class explained use --class"
                                                            if args.technique in CLASS_TECHNIQUES else ""))
    if args.target is not None and args.technique not in CLASS_TECHNIQUES:
        raise ValueError(f"--class {args.target}: {args.technique} takes no class (--class is for "
                         f"{', '.join(CLASS_TECHNIQUES)})")
    if args.methods is not None and args.technique not in METHOD_TECHNIQUES:
        raise ValueError(f"--methods {args.methods}: {args.technique} takes no attribution methods (--methods is "
                         f"for {', '.join(METHOD_TECHNIQUES)} and report)")
    if args.metrics is not None and args.technique not in METRIC_TECHNIQUES:
        raise ValueError(f"--metrics {args.metrics}: {args.technique} takes no faithfulness metrics (--metrics is "
                         f"for {', '.join(METRIC_TECHNIQUES)} and report)")


def _out_dir(args) -> Path:
    run_dir = Path(args.checkpoint) if Path(args.checkpoint).is_dir() else Path(args.checkpoint).parent
    out = Path(args.out) if args.out else run_dir / "visualize"
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out '{out}' is a file, not a directory; name a directory for the figures")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _data_source(args, clf):
    """The dataset as a DataSource (loaded on first use) and its spec (None when there is none)."""
    from ..data import load_dataset
    from ..visualize.context import DataSource
    from .common import check_fits

    spec = args.data or clf.meta.get("data") or ("mnist" if clf.input_shape == (1, 28, 28) else None)
    if spec is None:
        return DataSource(None, "the checkpoint names no dataset: give --data DIR (a folder with one "
                                "sub-folder of images per class)"), None

    def load():
        if not clf.transform:
            dataset = load_dataset(spec)
            check_fits(clf, dataset, spec)
            return dataset
        dataset = load_dataset(spec, square=clf.transform["resize"])     # the preset's resize, then its crop
        if dataset.input_shape[0] != clf.input_shape[0]:
            raise ValueError(f"the data in {spec!r} have {dataset.input_shape[0]} channel(s) but the checkpoint's "
                             f"model takes {clf.input_shape[0]}")
        return dataset
    return DataSource(load), spec


def run(args) -> int:
    from ..classifier import Classifier
    from ..io import atomic_write_json, jsonable
    from ..visualize import render
    from ..visualize.context import Context, check_methods, check_metrics, default_images
    from ..visualize.core import find_layer, is_large

    render.pyplot()                                   # fail early and clearly without matplotlib
    _check_flags(args)
    methods = check_methods(parse_names(args.methods, "--methods"))
    metrics = check_metrics(parse_names(args.metrics, "--metrics"))
    clf = Classifier.from_checkpoint(args.checkpoint)
    if args.layer is not None:
        try:
            find_layer(clf.model, args.layer)
        except ValueError as err:
            raise ValueError(f"--layer {args.layer!r}: {err}") from None
    source, spec = _data_source(args, clf)
    images = parse_images(args.images) if args.images is not None else None
    if images is None and args.images is None and not source.available:
        raise ValueError("there are no test images to explain: give --images PHOTO.jpg[,PHOTO...] (image files) "
                         "or --data DIR (a dataset)")
    if images is None:
        test = source.get("--images").test_labels
        images = (default_images(test, _DEFAULT_IMAGES) if args.images is None
                  else parse_indices(args.images, len(test)))
    sample = args.sample or (_DEFAULT_SAMPLE_LARGE if is_large(clf.input_shape) else _DEFAULT_SAMPLE)
    ctx = Context(clf, source, images, args.layer, args.unit, _target(args.target, clf.class_names),
                  args.seed, sample, args.steps, not args.quiet, methods=methods, metrics=metrics)
    out = _out_dir(args)
    if args.technique == "report":
        from ..visualize.report import write_report
        path = write_report(ctx, out, metrics=_metrics_beside(args.checkpoint), title=str(args.checkpoint))
        print(f"wrote {path}")
        return 0
    from ..visualize.techniques import run_technique
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
