"""``convscope export CK --out MODEL.onnx [--opset N]``: a checkpoint as an ONNX model.

The model's input is ``input`` (N, C, H, W) with a dynamic batch and its output ``logits``;
initializers carry the state-dict names; the normaliser, class names, preprocessing and input
shape travel in ``metadata_props`` (see :mod:`convscope.onnx.metadata`). Needs the ``onnx``
package: ``pip install "convscope[onnx]"``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    from ..onnx.export import DEFAULT_OPSET
    from ..onnx.writer import MIN_OPSET
    from .argtypes import positive_int

    p = sub.add_parser("export", help="write a checkpoint as an ONNX model",
                       description="Write the classifier in a checkpoint (or a run directory) as an ONNX "
                                   "model that onnxruntime and other tools run, with its preprocessing and "
                                   "class names in the model's metadata.")
    p.add_argument("checkpoint", metavar="CK", help="a checkpoint file or a run directory (its model.npz)")
    p.add_argument("--out", required=True, metavar="MODEL.onnx", help="the ONNX file to write")
    p.add_argument("--opset", type=positive_int, default=DEFAULT_OPSET, metavar="N",
                   help=f"ONNX operator set version, {MIN_OPSET} or later (default {DEFAULT_OPSET})")
    p.set_defaults(run=run)


def run(args) -> int:
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out '{out}' is a directory; name the file to write, e.g. {out}/model.onnx")
    try:
        from ..onnx import export_checkpoint
        path = export_checkpoint(args.checkpoint, out, opset=args.opset)
    except ImportError as err:               # the onnx package is missing: one line with the fix
        raise ValueError(str(err)) from None
    print(f"wrote {path} ({path.stat().st_size:,} bytes, opset {args.opset})")
    return 0
