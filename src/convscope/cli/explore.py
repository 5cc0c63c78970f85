"""``convscope explore``: serve a local web page that looks inside a trained network, live.

``convscope explore --checkpoint CK [--data mnist|PATH] [--host 127.0.0.1] [--port 8000]``
prints the page's URL and serves until Ctrl-C. See :mod:`convscope.explore`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535 (0: any free port), got {text}")
    return value


def add_parser(sub) -> None:
    from .argtypes import positive_int

    p = sub.add_parser(
        "explore", help="a local web page to look inside a trained network, live",
        description="Serve a web page (on this machine only, unless --host says otherwise) that shows "
                    "a checkpoint's predictions, every layer's activations, a unit's receptive field "
                    "and arithmetic, its top dataset images, activation maximisation, deconvnet and "
                    "saliency overlays, and the training run. Stop with Ctrl-C.")
    p.add_argument("--checkpoint", required=True, metavar="CK", help="a checkpoint file or a run directory")
    p.add_argument("--data", default=None, metavar="mnist|PATH",
                   help="dataset for the dataset picker and the units' top images (default: the one "
                        "the checkpoint was trained on, when it can be found)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--sample", type=positive_int, default=None, metavar="N",
                   help="test images dissected for a unit's top images (default 512; 64 above 64x64 pixels)")
    p.add_argument("--log", action="store_true", help="print one line per request on stderr")
    p.set_defaults(run=run)


def _dataset(clf, spec: str | None):
    """The dataset to show: ``--data``, else the checkpoint's own when it loads (else None)."""
    from ..data import DataFormatError, load_dataset
    from .common import check_fits

    if spec is not None:
        dataset = load_dataset(spec)
        check_fits(clf, dataset, spec)
        return dataset
    own = clf.meta.get("data")
    if not own:
        return None
    try:
        dataset = load_dataset(own)
        check_fits(clf, dataset, own)
        return dataset
    except (DataFormatError, ValueError, OSError) as err:
        print(f"convscope explore: not using the training data {own!r} ({err}); pick one with --data",
              file=sys.stderr)
        return None


def run(args) -> int:
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ValueError('convscope explore needs Pillow: pip install "convscope[pictures]"') from None
    from ..classifier import Classifier
    from ..explore import Explorer, make_server

    clf = Classifier.from_checkpoint(args.checkpoint)
    path = Path(args.checkpoint)
    explorer = Explorer(clf, _dataset(clf, args.data), run_dir=path if path.is_dir() else path.parent,
                        sample=args.sample)
    try:
        server = make_server(explorer, args.host, args.port)
    except BaseException:
        explorer.close()
        raise
    server.quiet = not args.log
    print(f"convscope explore: {clf.name} at {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("convscope explore: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
