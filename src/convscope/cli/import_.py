"""``convscope import``: weights from PyTorch (torchvision models) or ONNX as a convscope checkpoint.

``convscope import WEIGHTS --model NAME [--num-classes K] [--preset imagenet|none] --out OUT.npz``
reads a ``torch.save`` state_dict (zip or legacy format, or a dict holding it under
"state_dict" / "model") or a ``.safetensors`` file without torch and without running anything
in it (:mod:`convscope.interop`), maps torchvision's names onto the zoo's architecture and
writes an ordinary checkpoint that ``evaluate``, ``summary``, ``visualize`` and ``predict``
take. A file ending in ``.onnx`` goes to the ONNX importer (``convscope.onnx.import_onnx``),
which reads the architecture from the file, so ``--model`` is not used then.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    from ..interop import PRESETS, TORCHVISION_MODELS
    from .argtypes import positive_int

    p = sub.add_parser(
        "import", help="turn PyTorch (torchvision) or ONNX weights into a convscope checkpoint",
        description="Read a PyTorch state_dict (torch.save's zip or legacy format, or .safetensors) of a "
                    "torchvision model, without torch and without running code from the file, or an .onnx "
                    "file, and write a convscope checkpoint with the preprocessing and class names of the "
                    "preset.")
    p.add_argument("weights", metavar="WEIGHTS", help="a .pth/.pt state_dict, a .safetensors or an .onnx file")
    p.add_argument("--model", default=None, metavar="NAME",
                   help=f"the torchvision architecture (not for .onnx): {', '.join(TORCHVISION_MODELS)}")
    p.add_argument("--num-classes", type=positive_int, default=None, metavar="K",
                   help="classes of the output layer (default: read from the weights)")
    p.add_argument("--preset", choices=PRESETS, default=None,
                   help="imagenet (the default for weight files): torchvision's resize 256, centre crop 224, "
                        "ImageNet mean/std and class names; none: pixels in [0, 1] (mean 0, std 1), classes "
                        "0..K-1. For an .onnx file the default is the preprocessing its convscope metadata "
                        "records, else none")
    p.add_argument("--out", required=True, metavar="OUT.npz", help="the checkpoint to write")
    p.set_defaults(run=run)


def _import_onnx(args):
    from .main import UsageError
    for flag, value in (("--model", args.model), ("--num-classes", args.num_classes)):
        if value is not None:
            raise UsageError(f"convscope import: {flag} is for PyTorch weights; an ONNX file describes its own "
                             f"network (see 'convscope import --help')")
    try:
        from ..onnx import import_onnx
    except ImportError as err:
        raise ValueError(f"cannot import ONNX files here: {err}") from None
    return import_onnx(args.weights, preset=args.preset)


def run(args) -> int:
    from ..interop import import_torchvision
    from .main import UsageError

    source, out = Path(args.weights), Path(args.out)
    if not source.is_file():
        raise ValueError(f"weights file '{source}' " + ("is a directory" if source.is_dir() else "does not exist"))
    if out.is_dir():
        raise ValueError(f"--out '{out}' is a directory; name the checkpoint file to write, e.g. {out}/model.npz")
    if source.suffix.lower() == ".onnx":
        clf = _import_onnx(args)
    else:
        if args.model is None:
            raise UsageError("convscope import: --model NAME is required for PyTorch weights "
                             "(see 'convscope import --help')")
        clf = import_torchvision(source, args.model, num_classes=args.num_classes,
                                 preset=args.preset or "imagenet")
    out.parent.mkdir(parents=True, exist_ok=True)
    clf.save(out)
    print(f"wrote {out}: {clf!r}")
    return 0
