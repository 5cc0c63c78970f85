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
    for module in (train_cmd, evaluate_cmd, summary_cmd, visualize_cmd):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..data import DataFormatError
    from ..training import CheckpointError, TrainingDiverged

    parser = build_parser()
    debug = bool(os.environ.get("CONVSCOPE_DEBUG"))   # set it to see tracebacks
    try:
        args = parser.parse_args(argv)
        return int(args.run(args) or 0)
    except UsageError as err:
        print(f"{err}", file=sys.stderr)
        return 2
    except (DataFormatError, CheckpointError, TrainingDiverged, ValueError, TypeError) as err:
        if debug:
            raise
        print(f"convscope: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
        print(f"convscope: error: {err.strerror or err}: '{err.filename}'", file=sys.stderr)
        return 2
    except BrokenPipeError:                            # e.g. `convscope summary vgg16 | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("convscope: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
