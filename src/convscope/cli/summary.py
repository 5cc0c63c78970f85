"""``convscope summary``: per-layer output shapes, parameters, receptive fields and MACs.

``convscope summary MODEL [--input-shape C,H,W] [--num-classes K] [--json]`` builds a model
from the registry; ``convscope summary --checkpoint RUN/model.npz [--json]`` reads the
architecture, input shape and classes from a checkpoint. See :mod:`convscope.summary` for
what each column means.
"""

from __future__ import annotations

import json

__all__ = ["add_parser", "run", "parse_input_shape"]

DEFAULT_INPUT_SHAPE = (1, 28, 28)     # MNIST, the data `convscope train` uses by default
DEFAULT_NUM_CLASSES = 10


def add_parser(sub) -> None:
    from ..models import available_models
    from .argtypes import positive_int

    p = sub.add_parser(
        "summary", help="per-layer shapes, parameters, receptive fields and MACs of a model",
        description="Print one row per layer: output shape, parameters, receptive field and jump "
                    "(effective stride) in input pixels, and multiply-adds for one image (conv and "
                    "linear layers only). Give a MODEL name, or --checkpoint for a trained model.")
    p.add_argument("model", nargs="?", default=None, metavar="MODEL",
                   help=f"architecture, one of: {', '.join(available_models())}")
    p.add_argument("--checkpoint", default=None, metavar="RUN_DIR/model.npz",
                   help="summarise the model stored in this checkpoint instead of MODEL")
    p.add_argument("--input-shape", default=None, metavar="C,H,W",
                   help="one input image's shape, e.g. 3,224,224 (default %s, MNIST's)"
                        % ",".join(map(str, DEFAULT_INPUT_SHAPE)))
    p.add_argument("--num-classes", type=positive_int, default=None, metavar="K",
                   help=f"number of classes (default {DEFAULT_NUM_CLASSES})")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object: {"model", "input_shape", "total_params", "total_macs", '
                        '"layers": [{"name", "type", "output_shape", "params", "receptive_field", '
                        '"jump", "macs"}]}')
    p.set_defaults(run=run)


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """'3,224,224' (or '3x224x224') -> (3, 224, 224); ValueError with the text received otherwise."""
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p.strip()) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--input-shape: expected C,H,W like 3,224,224, got {text!r}")
    return shape


def _from_registry(args):
    from ..layers.base import shapes_only
    from ..models import build_model

    shape = parse_input_shape(args.input_shape) if args.input_shape is not None else DEFAULT_INPUT_SHAPE
    classes = args.num_classes if args.num_classes is not None else DEFAULT_NUM_CLASSES
    with shapes_only():                   # only shapes are needed, not initialised weights
        model = build_model(args.model, num_classes=classes, in_channels=shape[0], input_size=shape[1:])
    return model, shape


def _from_checkpoint(args):
    from ..training import load_checkpoint

    if args.input_shape is not None or args.num_classes is not None:
        raise ValueError("--input-shape and --num-classes do not go with --checkpoint: "
                         "the checkpoint fixes both")
    model, config = load_checkpoint(args.checkpoint)
    mc = config["model"]
    return model, (int(mc["in_channels"]), *(int(s) for s in mc["input_size"]))


def run(args) -> int:
    from ..summary import summarize
    from .main import UsageError

    if args.model is not None and args.checkpoint is not None:
        raise UsageError("convscope summary: give a MODEL or --checkpoint, not both "
                         "(see 'convscope summary --help')")
    if args.model is None and args.checkpoint is None:
        raise UsageError("convscope summary: give a MODEL name or --checkpoint RUN_DIR/model.npz "
                         "(see 'convscope summary --help')")
    model, shape = _from_checkpoint(args) if args.checkpoint is not None else _from_registry(args)
    result = summarize(model, shape)
    print(json.dumps(result.to_dict()) if args.json else result.format_table())
    return 0
