"""``convscope predict``: the most probable classes of image files under a checkpoint.

``convscope predict --checkpoint CK IMAGE... [--top K] [--json]`` reads each PNG / JPEG
file as the checkpoint's classifier does (its channels; its resize and centre crop when it
has a preset, e.g. an imported ImageNet network, else a stretch to its input size) and
prints its top K classes with their probabilities. ``--json`` prints one object::

    {"predictions": [{"image": PATH, "top": [{"index": I, "class": NAME, "probability": P}, ...]}]}
"""

from __future__ import annotations

import json

__all__ = ["add_parser", "run"]

DEFAULT_TOP = 5
_CHUNK = 32            # images read and classified at a time


def add_parser(sub) -> None:
    from .argtypes import positive_int

    p = sub.add_parser("predict", help="classify image files with a checkpoint: top classes and probabilities",
                       description="Print the K most probable classes of each image file (PNG/JPEG) under "
                                   "a checkpoint, with their probabilities.")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR/model.npz")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    p.add_argument("--top", type=positive_int, default=DEFAULT_TOP, metavar="K",
                   help=f"classes per image (default {DEFAULT_TOP}; at most the model's number of classes)")
    p.add_argument("--json", action="store_true",
                   help='print {"predictions": [{"image", "top": [{"index", "class", "probability"}]}]}')
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    from ..classifier import Classifier
    from ..visualize.core import batch_limit

    for image in args.images:
        path = Path(image)
        if not path.is_file():
            raise ValueError(f"image '{image}' " + ("is a directory" if path.is_dir() else "does not exist"))
    clf = Classifier.from_checkpoint(args.checkpoint)
    batch = batch_limit(clf.input_shape, 64, forward_only=True)
    predictions = []
    for start in range(0, len(args.images), _CHUNK):
        paths = args.images[start:start + _CHUNK]
        tops = clf.top(list(paths), k=args.top, batch_size=batch)
        predictions += [{"image": path, "top": top} for path, top in zip(paths, tops)]
    if args.json:
        print(json.dumps({"predictions": predictions}))
        return 0
    for entry in predictions:
        print(entry["image"])
        for rank, item in enumerate(entry["top"], start=1):
            print(f"  {rank:>2}. {item['probability']:.4f}  {item['class']} ({item['index']})")
    return 0
