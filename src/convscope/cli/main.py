"""``convscope`` command line: train, evaluate (and more subcommands as they arrive).

A user mistake (bad flag value, missing or corrupt data, unreadable checkpoint, ...) ends
with exit status 2 and one line on stderr that says what is wrong; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from . import evaluate as evaluate_cmd
from . import export as export_cmd
from . import explore as explore_cmd
from . import import_ as import_cmd
from . import predict as predict_cmd
from . import summary as summary_cmd
from . import train as train_cmd
from . import visualize as visualize_cmd

__all__ = ["main", "build_parser", "UsageError"]


class UsageError(Exception):
    """A user mistake the CLI reports in one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (with a pointer to --help), not usage + error."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="convscope", description="Train, inspect and look inside CNNs written in NumPy.")
    parser.add_argument("--version", action="version", version=f"convscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in (train_cmd, evaluate_cmd, summary_cmd, visualize_cmd, explore_cmd, import_cmd, predict_cmd, export_cmd):
        module.add_parser(sub)
    return parser


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def main(argv: list[str] | None = None) -> int:
    """Run one command; under MPI, a rank that fails ends every rank (no hang in a collective)."""
    code = _run(argv)
    if code not in (0, None):
        from ..training.distributed import under_mpi, world
        if under_mpi():
            sys.stderr.flush()
            world().abort(code)
    return code


def _run(argv: list[str] | None) -> int:
    from ..data import DataFormatError
    from ..training import CheckpointError, TrainingDiverged, TrainingInterrupted

    parser = build_parser()
    debug = bool(os.environ.get("CONVSCOPE_DEBUG"))   # set it to see tracebacks
    try:
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        return int(args.run(args) or 0)
    except UsageError as err:
        print(f"{err}", file=sys.stderr)
        return 2
    except (DataFormatError, CheckpointError, TrainingDiverged, ValueError, TypeError) as err:
        if debug:
            raise
        print(f"convscope: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except MemoryError:
        if debug:
            raise
        print("convscope: error: out of memory; try a smaller --batch-size, fewer images or a smaller model",
              file=sys.stderr)
        return 2
    except BrokenPipeError:                            # e.g. `convscope summary vgg16 | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:        # missing files, permissions, a full disk (earlier files stay intact)
        if debug:
            raise
        where = f": '{err.filename}'" if err.filename else ""
        print(f"convscope: error: {err.strerror or _one_line(err)}{where}", file=sys.stderr)
        return 2
    except TrainingInterrupted as err:
        print(f"convscope: {_one_line(err)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("convscope: interrupted", file=sys.stderr)
        return 130
    except Exception as err:                           # a genuine bug: say so, briefly
        if debug:
            raise
        print(f"convscope: internal error (a bug in convscope, not your input): {type(err).__name__}: "
              f"{_one_line(err)}; run again with CONVSCOPE_DEBUG=1 for the traceback and please report it",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
