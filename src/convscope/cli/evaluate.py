"""``convscope evaluate``: test accuracy, per-class accuracy and confusion matrix of a checkpoint."""

from __future__ import annotations

import json

import numpy as np

__all__ = ["add_parser", "run", "format_confusion"]


def add_parser(sub) -> None:
    from .argtypes import positive_int

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset's test split",
                       description="Print test accuracy, per-class accuracy and the confusion matrix.")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR/model.npz")
    p.add_argument("--data", default=None, metavar="mnist|PATH",
                   help="dataset to test on (default: the one the checkpoint was trained on)")
    p.add_argument("--batch-size", type=positive_int, default=500, help="images per forward pass")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(run=run)


def format_confusion(cm: np.ndarray, names: list[str]) -> str:
    """The confusion matrix as text: rows are true classes, columns predictions."""
    width = max(max(len(n) for n in names), len(str(cm.max())), 4)
    head = " " * (width + 1) + " ".join(f"{n[:width]:>{width}}" for n in names)
    rows = [f"{n[:width]:>{width}} " + " ".join(f"{v:>{width}}" for v in row) for n, row in zip(names, cm)]
    return "\n".join(["true \\ predicted", head, *rows])


def run(args) -> int:
    from ..training import evaluate
    from .common import load_with_data

    clf, dataset, spec = load_with_data(args.checkpoint, args.data)
    classes = clf.class_names
    result = evaluate(clf.model, dataset.test_images, dataset.test_labels, clf.normalizer, len(classes),
                      args.batch_size)
    per_class = [None if np.isnan(a) else float(a) for a in result["per_class_accuracy"]]
    if args.json:
        print(json.dumps({"checkpoint": str(args.checkpoint), "data": spec, "model": clf.name,
                          "test_accuracy": result["test_accuracy"], "test_images": len(dataset.test_images),
                          "class_names": list(classes), "per_class_accuracy": per_class,
                          "confusion_matrix": result["confusion_matrix"].tolist()}))
        return 0
    print(f"{clf.name} on {spec}: test accuracy {result['test_accuracy']:.4f} "
          f"({len(dataset.test_images):,} images)")
    print("per-class accuracy:")
    for name, acc in zip(classes, per_class):
        print(f"  {name:>12}: " + ("  n/a" if acc is None else f"{acc:.4f}"))
    print(format_confusion(result["confusion_matrix"], list(classes)))
    return 0
